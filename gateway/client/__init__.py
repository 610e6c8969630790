"""Python client SDK for the Kootabase gateway (async): the WS API and signed REST.

    async with WsApiClient.connect(url, Credentials.hmac(key, secret)) as c:
        await c.logon()
        order = await c.place_order("BTCUSDT", "BUY", "LIMIT", quantity="0.01",
                                    price="30000", time_in_force="GTC")

Errors arrive as `ClientError` with the server's ``code``/``msg`` and status.
"""

from gateway.client.credentials import Credentials
from gateway.client.rest import RestClient
from gateway.client.ws import ClientError, WsApiClient

__all__ = ["ClientError", "Credentials", "RestClient", "WsApiClient"]

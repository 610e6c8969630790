"""Kootabase gateway: the aiohttp app (WebSocket order entry, REST, market-data stream
mounting), auth, rate limits, sessions, the ``kootabase`` CLI and the Python client SDK.

The gateway holds no business state that replaying the journal cannot rebuild.
"""

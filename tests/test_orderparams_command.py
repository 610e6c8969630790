"""`OrderSpec.command` builds the engine's PlaceOrder positionally (order entry's hot path): each
field must land where its keyword would put it, and a field added to PlaceOrder must be seen."""

from __future__ import annotations

import msgspec

from engine.schema import PlaceOrder
from gateway.orderparams import OrderSpec


def test_command_puts_every_field_where_its_name_says() -> None:
    spec = OrderSpec("LIMIT", 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11)
    assert spec.command(100, 200, 300) == PlaceOrder(
        account_id=100,
        market_id=200,
        side=spec.side,
        order_type=spec.order_type,
        time_in_force=spec.time_in_force,
        price_atoms=spec.price,
        qty_atoms=spec.qty,
        quote_qty_atoms=spec.quote_qty,
        client_order_id=300,
        stop_price_atoms=spec.stop_price,
        trailing_delta_bps=spec.trailing_delta,
        limit_offset_atoms=spec.limit_offset,
        display_qty_atoms=spec.display_qty,
        expire_at_ns=0,
        stp_mode=spec.stp_mode,
    )
    assert spec.stp_mode == 11 and spec.display_qty == 10  # OrderSpec's own positional order
    assert len(msgspec.structs.fields(PlaceOrder)) == 15  # a new field needs a place above

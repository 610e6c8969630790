"""Read-model snapshots: the gateway store's state at one journal sequence, so a start-up loads
it and replays only the journal tail instead of the whole history.

Market data's books, recent trades, candles and tickers ride along (`marketdata.snapshot`).

What the store needs to go on folding events is small and bounded by what is *live*, never by
history: assets, markets, per-account balances, open orders, armed dead-man's switches and the
per-market prevented-match counters. Closed orders and trades are not in it: they are in the
history index (`gateway.history`), which is flushed through the snapshot's sequence before the
snapshot is written, so the two together are the whole read model at ``last_seq``.

`ReadModelImage` is a plain msgspec structure with its sequence number: the same image can be
stored in a file (here) or in an object store (cluster mode) and restored by `restore`.

File ``{last_seq:020d}.rms``: header ``<4sHQI`` (magic, format version, last_seq, CRC32C of the
body), then the msgpack body; written to a temporary name, fsync'd, renamed. A bad file is
skipped with a log line: the journal can always rebuild the read model.

Format 2 carries the 24 h ticker as one-minute buckets (`marketdata.ticker`); format 1 carried
each trade of the window. Both read (`READABLE_VERSIONS`): a trimmed journal or stream may
have nothing older than a format-1 snapshot to rebuild from, so an upgrade must not refuse it.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Final

import google_crc32c
import msgspec
import structlog

from engine.filemodes import create_private, private_dir
from gateway.records import AccountView, OrderRecord
from gateway.store import Store
from marketdata import snapshot as md_snapshot
from marketdata.snapshot import MarketDataImage
from marketdata.state import MarketDataState

log = structlog.get_logger(__name__)

FORMAT_VERSION: Final = 2
READABLE_VERSIONS: Final = frozenset({1, 2})
MAGIC: Final = b"KBR1"
HEADER: Final = struct.Struct("<4sHQI")
SUFFIX: Final = ".rms"
KEEP: Final = 3


class AssetImage(msgspec.Struct, array_like=True, frozen=True):
    asset_id: int
    symbol: str
    decimals: int


class MarketImage(msgspec.Struct, array_like=True, frozen=True):
    market_id: int
    symbol: str
    base_asset_id: int
    quote_asset_id: int
    tick: int
    lot: int
    min_notional: int
    maker_fee_ppm: int
    taker_fee_ppm: int
    max_order_qty: int
    state: int


class AccountImage(msgspec.Struct, array_like=True, frozen=True):
    account_id: int
    balances: list[tuple[int, int, int, int]]
    """(asset_id, available, held_orders, held_withdrawals)."""
    update_ns: int


class ReadModelImage(msgspec.Struct, frozen=True):
    format_version: int
    last_seq: int
    last_ts_ns: int
    assets: list[AssetImage]
    markets: list[MarketImage]
    accounts: list[AccountImage]
    open_orders: list[OrderRecord]
    dead_mans: dict[int, int]
    """account_id -> fire_at_ns of its armed dead-man's switch."""
    stp_ids: dict[int, int]
    """market_id -> next prevented match id."""
    marketdata: MarketDataImage | None = None
    """Market data at the same sequence (None: the gateway runs without market data)."""
    standing: dict[int, tuple[bool, int]] = {}
    """account_id -> (frozen, KYC tier) of accounts staff touched (absent in older images)."""
    tier_limits: list[tuple[int, int, int]] = []
    """(quote asset, tier, largest order notional atoms) in force (absent in older images)."""
    staff_actions: list[tuple[int, int, bytes]] = []
    """The cluster replica's audit log records (`Store.staff_actions`; absent in older
    images, and empty in single-process mode, whose audit log reads the journal)."""
    aml: bytes = b""
    """The AML engine's state at the same sequence (`backoffice.aml.image`; empty without
    AML rules and in older images)."""


_ENCODER: Final = msgspec.msgpack.Encoder()
_DECODER: Final = msgspec.msgpack.Decoder(ReadModelImage)


def image(
    store: Store, marketdata: MarketDataState | None = None, aml: bytes = b""
) -> ReadModelImage:
    """The store's live state (and market data's); between batches, nothing half-applied."""
    assert not store.new_orders and not store.new_trades, "take_history before the image"
    if marketdata is not None:
        assert marketdata.last_seq == store.last_seq, (marketdata.last_seq, store.last_seq)
    return ReadModelImage(
        format_version=FORMAT_VERSION,
        last_seq=store.last_seq,
        last_ts_ns=store.last_ts_ns,
        assets=[AssetImage(a.asset_id, a.symbol, a.decimals) for a in store.assets.values()],
        markets=[
            MarketImage(
                m.market_id,
                m.symbol,
                m.base.asset_id,
                m.quote.asset_id,
                m.tick,
                m.lot,
                m.min_notional,
                m.maker_fee_ppm,
                m.taker_fee_ppm,
                m.max_order_qty,
                m.state,
            )
            for m in store.markets.values()
        ],
        accounts=[
            AccountImage(aid, [(asset, *b) for asset, b in a.balances.items()], a.update_ns)
            for aid, a in store.accounts.items()
        ],
        open_orders=[o for a in store.accounts.values() for o in a.open_orders.values()],
        dead_mans=dict(store.dead_mans),
        standing=dict(store.standing),
        tier_limits=[(a, t, n) for (a, t), n in sorted(store.tier_limits.items())],
        staff_actions=list(store.staff_actions),
        stp_ids=dict(store._stp_ids),
        marketdata=None if marketdata is None else md_snapshot.image(marketdata),
        aml=aml,
    )


def restore(img: ReadModelImage, *, memory_orders: int) -> Store:
    """A store that continues folding from ``img.last_seq + 1``."""
    from engine.schema import AssetCreated, MarketCreated, MarketStateChanged

    store = Store(memory_orders=memory_orders)
    for a in img.assets:
        store._asset(AssetCreated(seq=0, asset_id=a.asset_id, symbol=a.symbol, decimals=a.decimals))
    for m in img.markets:
        store._market(
            MarketCreated(
                seq=0,
                market_id=m.market_id,
                symbol=m.symbol,
                base_asset_id=m.base_asset_id,
                quote_asset_id=m.quote_asset_id,
                tick_size_atoms=m.tick,
                lot_size_atoms=m.lot,
                min_notional_atoms=m.min_notional,
                maker_fee_ppm=m.maker_fee_ppm,
                taker_fee_ppm=m.taker_fee_ppm,
                max_order_qty_atoms=m.max_order_qty,
            )
        )
        store._market_state(MarketStateChanged(seq=0, market_id=m.market_id, state=m.state))
    for a in img.accounts:
        view = store.accounts[a.account_id] = AccountView(update_ns=a.update_ns)
        for asset, avail, held, held_w in a.balances:
            view.balances[asset] = [avail, held, held_w]
    for o in img.open_orders:
        assert o.is_open, o
        acct = store.accounts[o.account_id]
        acct.open_orders[o.order_id] = o
        store.orders[o.order_id] = o
        if o.client_order_id:
            acct.open_client_ids[o.client_order_id] = o.order_id
    store.dead_mans.update(img.dead_mans)
    store.standing.update(img.standing)
    store.tier_limits.update({(a, t): n for a, t, n in img.tier_limits})
    store.staff_actions.extend(img.staff_actions)
    store._stp_ids.update(img.stp_ids)
    store.last_seq = store.durable_seq = store.trimmed_seq = img.last_seq
    store.last_ts_ns = img.last_ts_ns
    return store


class EncodedImage(msgspec.Struct, frozen=True):
    """A snapshot's file bytes with what its log line names."""

    last_seq: int
    data: bytes
    open_orders: int


def write(directory: Path, img: ReadModelImage, *, keep: int = KEEP, quiet: bool = False) -> Path:
    """Durably write ``img``; keep the newest ``keep`` snapshots (``quiet``: log at debug)."""
    return store_encoded(directory, encode(img), keep=keep, quiet=quiet)


def encode(img: ReadModelImage) -> EncodedImage:
    """The snapshot file's bytes. Must run where ``img`` was taken (the loop, between batches):
    its open orders are the store's live records, which the next batch changes."""
    body = _ENCODER.encode(img)
    header = HEADER.pack(MAGIC, FORMAT_VERSION, img.last_seq, google_crc32c.value(body))
    return EncodedImage(img.last_seq, header + body, len(img.open_orders))


def store_encoded(
    directory: Path, encoded: EncodedImage, *, keep: int = KEEP, quiet: bool = False
) -> Path:
    """Write an encoded snapshot durably (temporary name, fsync, rename) from any thread."""
    assert keep >= 1
    private_dir(directory)
    path = directory / f"{encoded.last_seq:020d}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with os.fdopen(create_private(tmp), "wb") as fh:
        fh.write(encoded.data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    for old in _list(directory)[:-keep]:
        old.unlink()
    (log.debug if quiet else log.info)(
        "readmodel_snapshot_written",
        last_seq=encoded.last_seq,
        bytes=len(encoded.data),
        open_orders=encoded.open_orders,
    )
    return path


def read(path: Path) -> ReadModelImage:
    return decode(path.read_bytes(), str(path))


def decode(data: bytes, where: str) -> ReadModelImage:
    """An encoded snapshot's image (file or Object Store): ValueError or msgspec.DecodeError
    when the header, checksum or body do not check out."""
    if len(data) < HEADER.size:
        raise ValueError(f"{where}: truncated")
    magic, version, last_seq, crc = HEADER.unpack_from(data)
    body = data[HEADER.size :]
    if magic != MAGIC or version not in READABLE_VERSIONS:
        raise ValueError(f"{where}: magic {magic!r} version {version}")
    if google_crc32c.value(body) != crc:
        raise ValueError(f"{where}: checksum mismatch")
    img = _DECODER.decode(body)
    if img.last_seq != last_seq:
        raise ValueError(f"{where}: header seq {last_seq}, body seq {img.last_seq}")
    return img


def latest(directory: Path, usable: Callable[[int], bool]) -> ReadModelImage | None:
    """The newest snapshot that reads back and whose sequence ``usable`` accepts."""
    for path in reversed(_list(directory)):
        try:
            seq = int(path.stem)
            if not usable(seq):
                continue
            return read(path)
        except (ValueError, msgspec.DecodeError, OSError) as exc:
            log.error("readmodel_snapshot_skipped", path=str(path), reason=str(exc))
    return None


def candidates(directory: Path) -> list[int]:
    """Sequences of the snapshots present, newest first."""
    out = []
    for path in reversed(_list(directory)):
        try:
            out.append(int(path.stem))
        except ValueError:
            continue
    return out


def _list(directory: Path) -> list[Path]:
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX)

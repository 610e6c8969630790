"""The setup's admin commands (CreateAccount, Deposit) as command rows, run without Python.

A journal's setup is tens of thousands of CreateAccount and Deposit records (workload (b):
10,000 accounts, 30,000 deposits). Replay used to decode each into a msgspec `Command`, park
it, and run `AdminCommands._create_account` / `_deposit` in Python: ~8-10 us a record, half
of replay's time outside the kernel. Here `parse_admin` reads those two payloads in place in
the journal's bytes (as `engine.core.cmdrows` does for the hot kinds), and `run_admin_rows`
applies a run of them to the core's arrays in one njit call, with the checks of
`AdminCommands` in the same order (docs/engine-semantics.md, "Admin and custody commands").

Only state is produced (replay, recovery, benchmarks: ``keep_events=False``). A deposit's key
stays a Python string in the engine's set; the caller resolves, per deposit row, whether its
key was credited before the run (``in_set``) and which earlier row of the run carries the same
key (``prev_same``), and adds the keys of the rows this function accepted. Any payload the
parser is not sure of (another field type, a non-empty ``recorded_by``/``approved_by``, an
integer outside int64, ...) is left to the slow path, which accepts or refuses it as before.
tests/test_adminrows.py holds both paths to the same state.
"""

from __future__ import annotations

import bisect

import msgspec
import numpy as np
from numba import njit

from engine.core.accountrow import install_account
from engine.core.admin import AdminCommands
from engine.core.cmdrows import finish_row, read_int
from engine.core.layout import (
    A_EXISTS,
    B_AVAILABLE,
    C_LAST_SEQ,
    C_NEXT_DMS,
    C_NEXT_GTD,
    C_NEXT_TXN,
    CMD_ADMIN,
    MAX,
    R_ACCOUNT,
    R_COID,
    R_KIND,
    R_MARKET,
    R_PRICE,
    R_QTY,
    R_SEQ,
    R_SIDE,
    R_TS,
    R_TYPE,
    R_W,
    S_CUSTODY,
)
from engine.schema import Command, CreateAccount, Deposit, Event

R_ADMIN_KIND = R_TYPE
"""Column of a parsed admin row that says which command it is (0 in every parked admin row
`engine.core.codec` writes, so such rows still run in Python)."""
ADMIN_ACCOUNT = 1
ADMIN_DEPOSIT = 2
R_ASSET = R_MARKET
R_AMOUNT = R_QTY
R_DEMO = R_SIDE
R_KEY_START = R_PRICE
"""A deposit row's key: bytes ``R_KEY_START..R_KEY_END`` of the buffer it was parsed from."""
R_KEY_END = R_COID


def _tag(cls: type) -> np.ndarray:
    info = msgspec.inspect.type_info(cls)
    assert isinstance(info, msgspec.inspect.StructType) and info.array_like
    return np.frombuffer(msgspec.msgpack.encode(info.tag), dtype=np.uint8).copy()


_ACCOUNT_TAG = _tag(CreateAccount)
_DEPOSIT_TAG = _tag(Deposit)
ADMIN_TAGS = (_ACCOUNT_TAG, _DEPOSIT_TAG)
"""`parse_admin_rows`' two msgpack tags (CreateAccount, Deposit), for engine.core.journalrows."""
assert [f.name for f in msgspec.structs.fields(CreateAccount)] == ["account_id"]
assert [f.name for f in msgspec.structs.fields(Deposit)] == [
    "account_id",
    "asset_id",
    "amount_atoms",
    "deposit_key",
    "demo",
    "recorded_by",
    "approved_by",
], "parse_admin reads Deposit's fields in this order"


@njit(cache=True, nogil=True)
def _same(buf, p, end, tag):  # pragma: no cover - njit
    if p + len(tag) > end:
        return False
    for j in range(len(tag)):  # noqa: SIM110 - njit: a plain loop
        if buf[p + j] != tag[j]:
            return False
    return True


@njit(cache=True, nogil=True)
def parse_admin_rows(
    buf, starts, ends, seqs, stamps, rows, fast, account_tag, deposit_tag
):  # pragma: no cover - njit
    parsed = 0
    for i in range(len(starts)):
        if fast[i]:
            continue
        p = starts[i]
        end = ends[i]
        if p >= end or not 0x92 <= buf[p] <= 0x98:
            continue
        count = buf[p] - 0x90
        p += 1
        asset = amount = demo = key_start = key_end = 0
        if count == 2 and _same(buf, p, end, account_tag):
            account, p, ok = read_int(buf, p + len(account_tag), end)
            if not ok or p != end:
                continue
            admin_kind = ADMIN_ACCOUNT
        elif count >= 5 and _same(buf, p, end, deposit_tag):
            p += len(deposit_tag)
            account, p, ok = read_int(buf, p, end)
            if ok:
                asset, p, ok = read_int(buf, p, end)
            if ok:
                amount, p, ok = read_int(buf, p, end)
            if not ok or p >= end:
                continue
            b = buf[p]  # the key: fixstr, str8 or str16 (str32: slow path)
            if 0xA0 <= b <= 0xBF:
                key_start = p + 1
                key_end = key_start + (b - 0xA0)
            elif b == 0xD9 and p + 2 <= end:
                key_start = p + 2
                key_end = key_start + buf[p + 1]
            elif b == 0xDA and p + 3 <= end:
                key_start = p + 3
                key_end = key_start + ((np.int64(buf[p + 1]) << 8) | np.int64(buf[p + 2]))
            else:
                continue
            if key_end > end:
                continue
            p = key_end
            if count >= 6:  # demo: a msgpack bool only
                if p >= end or (buf[p] != 0xC2 and buf[p] != 0xC3):
                    continue
                demo = 1 if buf[p] == 0xC3 else 0
                p += 1
            empty = True  # recorded_by, approved_by: only "" here
            for _ in range(count - 6):
                if p >= end or buf[p] != 0xA0:
                    empty = False
                    break
                p += 1
            if not empty or p != end:
                continue
            admin_kind = ADMIN_DEPOSIT
        else:
            continue
        for c in range(R_W):
            rows[i, c] = 0
        rows[i, R_ADMIN_KIND] = admin_kind
        rows[i, R_ACCOUNT] = account
        rows[i, R_ASSET] = asset
        rows[i, R_AMOUNT] = amount
        rows[i, R_DEMO] = demo
        rows[i, R_KEY_START] = key_start
        rows[i, R_KEY_END] = key_end
        finish_row(rows, i, CMD_ADMIN, seqs, stamps, fast)
        parsed += 1
    return parsed


def parse_admin(
    buf: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    seqs: np.ndarray,
    stamps: np.ndarray,
    rows: np.ndarray,
    fast: np.ndarray,
) -> list[tuple[int, str]]:
    """Parse the CreateAccount and Deposit payloads among the records ``fast`` leaves (rows and
    ``fast`` updated in place, as `engine.core.cmdrows.buffer_rows` fills them); returns
    (seq, deposit key) of every parsed deposit (`deposit_keys`)."""
    if fast.all() or not parse_admin_rows(
        buf, starts, ends, seqs, stamps, rows, fast, _ACCOUNT_TAG, _DEPOSIT_TAG
    ):
        return []
    return deposit_keys(buf, rows, fast)


@njit(cache=True, nogil=True)
def _join_keys(buf, key_starts, key_ends, out):  # pragma: no cover - njit
    """The keys' bytes into ``out``, each followed by a 0 byte; False if a key holds a 0 byte
    (then the joined bytes do not split back into the keys)."""
    q = 0
    for k in range(len(key_starts)):
        for p in range(key_starts[k], key_ends[k]):
            if buf[p] == 0:
                return False
            out[q] = buf[p]
            q += 1
        out[q] = 0
        q += 1
    return True


def deposit_keys(buf: np.ndarray, rows: np.ndarray, fast: np.ndarray) -> list[tuple[int, str]]:
    """(seq, deposit key) of every parsed deposit row among ``rows`` (keys in ``buf``). A key
    that is not valid UTF-8 leaves its record to the slow path (whose decoder refuses it).

    The keys are joined by njit, 0-separated, and decoded and split by two C calls: per key
    in Python (a slice, a decode, a tuple) was ~0.5 us, (b)'s setup has 30,000. A 0 byte
    cannot occur inside another character's UTF-8 bytes, so the split gives back exactly the
    keys when none holds one, and the joined bytes decode when every key does."""
    deposits = np.flatnonzero(
        fast & (rows[:, R_KIND] == CMD_ADMIN) & (rows[:, R_ADMIN_KIND] == ADMIN_DEPOSIT)
    )
    if not len(deposits):
        return []
    seqs = rows[deposits, R_SEQ].tolist()
    key_starts = rows[deposits, R_KEY_START]
    key_ends = rows[deposits, R_KEY_END]
    joined = np.empty(int((key_ends - key_starts).sum()) + len(deposits), dtype=np.uint8)
    if _join_keys(buf, key_starts, key_ends, joined):
        try:
            keys = joined.tobytes().decode().split("\x00")
        except UnicodeDecodeError:
            pass
        else:
            return list(zip(seqs, keys[:-1], strict=True))
    out = []
    spans = zip(deposits.tolist(), seqs, key_starts.tolist(), key_ends.tolist(), strict=True)
    for i, seq, start, stop in spans:
        try:
            out.append((seq, buf[start:stop].tobytes().decode()))
        except UnicodeDecodeError:
            fast[i] = False
    return out


@njit(cache=True, nogil=True)
def run_admin_rows(
    rows, start, stop, acct, bal, sysb, ctr, asset_known, in_set, prev_same, accepted
):  # pragma: no cover - njit
    """Apply parsed admin rows ``start..stop`` (all of them ``ADMIN_ACCOUNT`` or
    ``ADMIN_DEPOSIT`` rows); returns the first row not run. It stops before a row whose
    sequence does not increase or at whose time a timer is due (the kernel sweeps first).
    ``in_set[k]``, ``prev_same[k]``, ``accepted[k]``: row ``start + k``'s key was credited
    before, the row of the run with the same key before it (-1: none), whether it was
    accepted (written here)."""
    max_accounts = acct.shape[0]
    i = start
    while i < stop:
        seq = rows[i, R_SEQ]
        now = rows[i, R_TS]
        if seq <= ctr[C_LAST_SEQ] or ctr[C_NEXT_DMS] <= now or ctr[C_NEXT_GTD] <= now:
            return i
        ctr[C_LAST_SEQ] = seq
        k = i - start
        accepted[k] = False
        account = rows[i, R_ACCOUNT]
        if rows[i, R_ADMIN_KIND] == ADMIN_ACCOUNT:
            if 1 <= account < max_accounts and acct[account, A_EXISTS] == 0:
                install_account(acct, ctr, account)
                accepted[k] = True
            i += 1
            continue
        # Deposit: AdminCommands._deposit's checks in its order (the first failing one is
        # the reject; state is untouched by any reject).
        asset = rows[i, R_ASSET]
        amount = rows[i, R_AMOUNT]
        taken = in_set[k] if prev_same[k] < 0 else in_set[prev_same[k]] or accepted[prev_same[k]]
        in_set[k] = taken  # for later rows with this key: credited before them
        if (
            1 <= account < max_accounts
            and acct[account, A_EXISTS] != 0
            and 0 <= asset < len(asset_known)
            and asset_known[asset]
            and 1 <= amount <= MAX
            and not taken
            and -sysb[asset, S_CUSTODY] <= MAX - amount
        ):
            ctr[C_NEXT_TXN] += 1
            sysb[asset, S_CUSTODY] -= amount
            bal[account, asset, B_AVAILABLE] += amount
            accepted[k] = True
        i += 1
    return i


def _no_key(seq: int) -> ValueError:
    return ValueError(
        f"seq {seq}: a parsed deposit row without its key: rows run only on the "
        "engine given their keys (park_deposit_keys)"
    )


class ParsedAdmin(AdminCommands):
    """`CompiledEngine`'s side of parsed admin rows: the deposit keys parked by sequence
    (`park_deposit_keys`, as `encode` parks admin commands) and the run of such rows."""

    _parsed_keys: dict[int, str]
    _decoded: list[Event]

    def park_deposit_keys(self, keys: list[tuple[int, str]]) -> None:
        """Keys of parsed deposit rows by sequence (`parse_admin`'s answer), until they run."""
        self._parsed_keys.update(keys)

    def _deposit_key(self, seq: int) -> str:
        key = self._parsed_keys.pop(seq, None)
        if key is None:
            raise _no_key(seq)
        return key

    def _run_parsed(self, rows: np.ndarray, i: int, n: int, keep_events: bool) -> tuple[int, int]:
        """Run the parsed admin rows from ``i`` (whose sequence is new, no timer due): with
        ``keep_events`` row ``i`` alone through `AdminCommands` (same events as ever), else
        the whole run of such rows in `run_admin_rows`. Returns (next row, events)."""
        a = self._a
        if keep_events:
            row = rows[i]
            seq = int(row[R_SEQ])
            cmd: Command
            if row[R_ADMIN_KIND] == ADMIN_ACCOUNT:
                cmd = CreateAccount(account_id=int(row[R_ACCOUNT]))
            else:
                cmd = Deposit(
                    account_id=int(row[R_ACCOUNT]),
                    asset_id=int(row[R_ASSET]),
                    amount_atoms=int(row[R_AMOUNT]),
                    deposit_key=self._deposit_key(seq),
                    demo=bool(row[R_DEMO]),
                )
            a.ctr[C_LAST_SEQ] = seq
            events = self._run_admin(seq, int(row[R_TS]), cmd)
            self._decoded.extend(events)
            return i + 1, len(events)
        kinds = rows[i:n, R_ADMIN_KIND]
        run = (rows[i:n, R_KIND] == CMD_ADMIN) & (kinds != 0)
        m = len(run) if run.all() else int(np.argmin(run))
        at = np.flatnonzero(kinds[:m] == ADMIN_DEPOSIT)
        seqs = rows[i + at, R_SEQ].tolist()  # the deposits' sequences
        deposits = at.tolist()
        try:  # one C loop (per key in Python: ~0.2 us each, 30,000 in (b)'s setup)
            dkeys = list(map(self._parsed_keys.pop, seqs))
        except KeyError as missing:  # the first deposit without its key, in order
            raise _no_key(missing.args[0]) from None
        in_set = np.zeros(m, dtype=np.bool_)
        prev_same = np.full(m, -1, dtype=np.int64)
        fresh = set(dkeys)
        if len(fresh) < len(dkeys) or not self._deposit_keys.isdisjoint(fresh):
            # the usual run is distinct new keys (both arrays stay as made); else per key
            last: dict[str, int] = {}
            for k, key in zip(deposits, dkeys, strict=True):
                in_set[k] = key in self._deposit_keys
                prev_same[k] = last.get(key, -1)
                last[key] = k
        asset_known = np.zeros(a.bal.shape[1], dtype=np.bool_)
        asset_known[list(self._assets)] = True
        accepted = np.zeros(m, dtype=np.bool_)
        stop = run_admin_rows(
            rows, i, i + m, a.acct, a.bal, a.sysb, a.ctr, asset_known, in_set, prev_same, accepted
        )
        done = stop - i
        ran = bisect.bisect_left(deposits, done)  # deposits[:ran] ran
        # not run yet (a timer due, a bad sequence)
        self._parsed_keys.update(zip(seqs[ran:], dkeys[ran:], strict=True))
        if ran == len(deposits) and accepted[deposits].all():
            self._deposit_keys |= fresh
        else:
            taken = accepted[deposits[:ran]].tolist()
            self._deposit_keys.update(k for k, ok in zip(dkeys[:ran], taken, strict=True) if ok)
        return stop, done


__all__ = [
    "ADMIN_ACCOUNT",
    "ADMIN_DEPOSIT",
    "ADMIN_TAGS",
    "R_ADMIN_KIND",
    "ParsedAdmin",
    "deposit_keys",
    "parse_admin",
    "parse_admin_rows",
    "run_admin_rows",
]

"""The dead-man's switch and cancel-on-disconnect, enforced by the engine on journal time.

Both WS API extensions are journaled engine commands, so the engine, not the gateway, decides
what is cancelled and when, and a replay of the journal cancels the same orders at the same
sequences (DESIGN.md: timers enter as journaled commands):

- ``deadMansSwitch.set {timeoutMs}`` journals ``SetDeadMansSwitch(account, fire_at_ns)`` with
  ``fire_at_ns`` = journal "now" + timeout (0 disarms; sending it again is the refresh). The
  engine fires a switch in the sweep that precedes *any* command whose journal time reaches
  ``fire_at_ns``: ``DeadMansSwitchFired`` then ``OrderCancelled(DEAD_MANS_SWITCH)`` per order.
- On an idle exchange no command would arrive to carry time forward, so the `Ticker` journals
  a ``Tick`` (journal time only) once the earliest armed switch is due, no more often than
  ``Limits.tick_interval_s``; with nothing armed it journals nothing (an idle exchange does not
  grow its journal). It learns what is armed from the read model (`Store.dead_mans`, folded
  from ``DeadMansSwitchSet``/``Fired`` events), so after a restart it resumes from the journal.
- ``session.logon`` with ``cancelOnDisconnect`` journals ``CancelOnDisconnect(account)`` when
  the connection drops (the engine cancels with reason DISCONNECT).

"Now" for ``fire_at_ns`` follows the sequencer's rule: wall clock, floored at the last journal
time (journal time never goes backwards). The command is stamped a little later than that, so a
timeout shorter than the queueing delay would already be in the past: the engine refuses it
(INVALID_EXPIRY), which is answered as a clear error; ``Limits.dead_mans_min_ms`` keeps that
rare.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import structlog

from engine.schema import CancelOnDisconnect, CommandRejected, Reject, SetDeadMansSwitch, Tick
from gateway import errors
from gateway.params import get_int

if TYPE_CHECKING:
    from gateway.app import Gateway

log = structlog.get_logger(__name__)
FAILURE_BACKOFF_S = 1.0
"""Pause after a Tick that could not be journaled (engine unavailable), instead of spinning."""


class DeadMansSwitches:
    """Journals the switch, cancel-on-disconnect and the idle ``Tick`` commands of one gateway."""

    def __init__(self, gw: Gateway) -> None:
        self.gw = gw
        self.ticks = 0
        """Ticks journaled by this process (tests and logs)."""
        self._wake: asyncio.Event | None = None
        self._task: asyncio.Task[None] | None = None

    def _now_ns(self) -> int:
        """Journal "now" as the sequencer will see it: wall clock floored at journal time."""
        return max(time.time_ns(), self.gw.store.last_ts_ns)

    # ---- deadMansSwitch.set -------------------------------------------------------------------

    def parse_timeout(self, params: Mapping[str, Any]) -> int:
        """``timeoutMs``: 0 (disarm) or ``dead_mans_min_ms..dead_mans_max_ms``; anything else is
        refused before journaling, so it changes nothing."""
        limits = self.gw.config.limits
        lo, hi = limits.dead_mans_min_ms, limits.dead_mans_max_ms
        timeout = get_int(params, "timeoutMs", required=True, hi=hi)
        assert timeout is not None
        if 0 < timeout < lo:
            raise errors.ApiError(
                errors.INVALID_PARAMETER,
                f"Parameter 'timeoutMs' must be 0 (disarm) or between {lo} and {hi}.",
            )
        return timeout

    async def set(self, account_id: int, params: Mapping[str, Any]) -> dict[str, Any]:
        """Arm (or refresh, or with 0 disarm) the account's switch; answered once journaled and
        processed, with the journal time of the command as ``serverTime``."""
        timeout = self.parse_timeout(params)
        fire_at = self._now_ns() + timeout * 1_000_000 if timeout else 0
        command = SetDeadMansSwitch(account_id=account_id, fire_at_ns=fire_at)
        _, ts, events = await self.gw.trading.execute(account_id, command)
        for ev in events:  # sweep events of other accounts may come first; they are not refusals
            if isinstance(ev, CommandRejected):
                raise _refusal(ev.reason)
        self.wake()
        out: dict[str, Any] = {"armed": bool(fire_at)}
        if fire_at:
            out["fireAt"] = fire_at // 1_000_000
        out["serverTime"] = ts // 1_000_000
        return out

    # ---- cancel-on-disconnect ----------------------------------------------------------------

    def cancel_on_disconnect(self, account_id: int) -> None:
        """Journal ``CancelOnDisconnect`` unless the account certainly has nothing to cancel
        (no open order and no command in flight: the read model is then current)."""
        gw = self.gw
        acct = gw.store.accounts.get(account_id)
        if acct is None or (not acct.open_orders and account_id not in gw.trading.inflight):
            return
        fut = gw.trading.submit(account_id, CancelOnDisconnect(account_id=account_id))
        fut.add_done_callback(_log_failure)
        log.info("cancel_on_disconnect", account_id=account_id)

    # ---- the ticker ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._wake = asyncio.Event()
            self._task = asyncio.get_running_loop().create_task(self._run(), name="dms-ticker")

    def wake(self) -> None:
        """Re-read the armed switches now (one was armed earlier than the ticker knows)."""
        if self._wake is not None:
            self._wake.set()

    async def stop(self) -> None:
        """Stop ticking (before the bridge closes). Idempotent."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def close(self) -> None:
        """Synchronous counterpart of `stop` for `Gateway.close` (possibly on another loop)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()

    async def _run(self) -> None:
        wake = self._wake
        assert wake is not None
        interval = self.gw.config.limits.tick_interval_s
        armed = self.gw.store.dead_mans
        while True:
            wake.clear()
            if not armed:
                await wake.wait()
                continue
            delay = (min(armed.values()) - self._now_ns()) / 1e9
            if delay > 0:  # sleep until due, or until a switch is (re)armed
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wake.wait(), min(delay, 3_600.0))
                continue
            # Due and still armed in the read model: no command with a later journal time has
            # been processed yet, so one is needed to carry time past fire_at.
            await asyncio.sleep(interval if await self._tick() else FAILURE_BACKOFF_S)

    async def _tick(self) -> bool:
        try:
            await self.gw.bridge.submit(Tick())
        except errors.ApiError as exc:
            log.warning("tick_failed", error=exc.msg)
            return False
        self.ticks += 1
        return True


def _refusal(reason: int) -> errors.ApiError:
    if reason == Reject.INVALID_EXPIRY:
        return errors.ApiError(
            errors.INVALID_PARAMETER,
            "Parameter 'timeoutMs': the timeout elapsed before the switch was journaled "
            "(server busy); the switch was not changed. Retry with a longer timeoutMs.",
        )
    return errors.from_reject(reason)


def _log_failure(fut: asyncio.Future[Any]) -> None:
    exc = None if fut.cancelled() else fut.exception()
    if exc is not None:
        log.warning("cancel_on_disconnect_failed", error=str(exc))

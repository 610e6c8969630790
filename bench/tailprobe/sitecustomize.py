"""Tail probe for a cluster gateway process (``kootabase bench cluster --probe DIR``).

Why: an ack-latency p99 is the sum of many small delays; to say what it is made of, each
gateway records, on the same clock as the load generator (`time.perf_counter`, CLOCK_MONOTONIC
on Linux, shared by processes):

- loop lag: a task sleeps 1 ms and records how late it woke, with the CPU its own (loop)
  thread and the process's other threads spent meanwhile; a late wake-up with little CPU
  is time the process was not running (the machine's), with much loop CPU it is the code's;
- the duration and thread CPU of the suspects: the cross-check's checkpoint (`note`), the
  read-model snapshot, a stream message's delivery, the history writer's commits and
  after-commit work, and each garbage collection.

Loaded by the interpreter's ``site`` as ``sitecustomize`` when this directory is on
``PYTHONPATH`` and ``KB_TAILPROBE`` names the output directory; it does nothing otherwise.
It wraps functions by name and skips those that no longer exist. Output: one
``probe-<pid>.txt`` per gateway, lines ``<t> <kind> <wall ms>``; ``<t> LAGS <ms> ...`` holds
every lag sample. `bench.tailprobe_report` reads them. A bench tool, never loaded in service.
"""

from __future__ import annotations

import os

_DIR = os.environ.get("KB_TAILPROBE")
if _DIR:
    import asyncio
    import gc
    import importlib
    import time
    from typing import Any

    _pc = time.perf_counter
    _events: list[tuple[float, str, float]] = []
    _lags_s: list[float] = []
    _gc_started: list[float] = []
    FLUSH_EVERY = 200
    """Lag samples between writes of the file (about every 0.2-0.5 s)."""
    SUSPECTS = (
        ("engine.crosscheck", "Checker", "note", "checkpoint"),
        ("engine.follower", "Follower", "_deliver", "deliver"),
        ("gateway.cluster", None, "snapshot_readmodel", "readmodel_snapshot"),
        ("gateway.history.writer", "HistoryWriter", "_write", "history_commit"),
        ("gateway.history.writer", "HistoryWriter", "_run_after", "history_after"),
    )

    def _on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            _gc_started[:] = [_pc(), time.thread_time()]
            return
        if not _gc_started:
            return
        t, c = _gc_started
        wall_ms = (_pc() - t) * 1e3
        cpu_ms = (time.thread_time() - c) * 1e3
        _events.append((t, f"gc{info['generation']}/cpu={cpu_ms:.2f}", wall_ms))

    def _wrap(owner: Any, name: str, kind: str) -> None:
        fn = getattr(owner, name, None)
        if fn is None:
            return

        def timed(*args: Any, **kwargs: Any) -> Any:
            t, c = _pc(), time.thread_time()
            try:
                return fn(*args, **kwargs)
            finally:
                wall_ms = (_pc() - t) * 1e3
                if wall_ms > 0.5:
                    cpu_ms = (time.thread_time() - c) * 1e3
                    _events.append((t, f"{kind}/cpu={cpu_ms:.2f}", wall_ms))

        setattr(owner, name, timed)

    def _install() -> None:
        for module, cls, name, kind in SUSPECTS:
            try:
                mod = importlib.import_module(module)
            except ImportError:
                continue
            owner = getattr(mod, cls, None) if cls else mod
            if owner is not None:
                _wrap(owner, name, kind)
        gc.callbacks.append(_on_gc)

    async def _monitor() -> None:
        path = os.path.join(_DIR, f"probe-{os.getpid()}.txt")
        with open(path, "w") as out:
            n = 0
            while True:
                t0, m0, p0 = _pc(), time.thread_time(), time.process_time()
                await asyncio.sleep(0.001)
                lag_s = _pc() - t0 - 0.001
                _lags_s.append(lag_s)
                if lag_s > 0.003:
                    loop_ms = (time.thread_time() - m0) * 1e3
                    other_ms = (time.process_time() - p0) * 1e3 - loop_ms
                    _events.append((t0, f"lag/cpu={loop_ms:.2f}/other={other_ms:.2f}", lag_s * 1e3))
                n += 1
                if n % FLUSH_EVERY == 0:
                    events, lags = _events[:], _lags_s[:]
                    del _events[: len(events)], _lags_s[: len(lags)]
                    out.writelines(f"{t:.6f} {k} {ms:.3f}\n" for t, k, ms in events)
                    out.write(f"{_pc():.6f} LAGS {' '.join(f'{x * 1e3:.2f}' for x in lags)}\n")
                    out.flush()

    _run = asyncio.run

    def _probed_run(main: Any, **kwargs: Any) -> Any:
        """`asyncio.run` of the serving coroutine with the probe installed (other runs:
        start-up checks, as they are)."""
        if getattr(main, "__name__", "") != "serve_forever":
            return _run(main, **kwargs)

        async def probed() -> Any:
            _install()
            monitor = asyncio.get_running_loop().create_task(_monitor())
            try:
                return await main
            finally:
                monitor.cancel()

        return _run(probed(), **kwargs)

    asyncio.run = _probed_run

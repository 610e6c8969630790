"""Child process for the history SIGKILL test: a real gateway server on a given port.

First start: creates a second funded account (the taker) and writes both accounts' keys to
``<data_dir>/keys.txt``; every start prints ``ready demo_key=... demo_secret=... taker_key=...
taker_secret=...`` once it serves. The parent kills it with SIGKILL during the load."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

from engine.logsetup import configure_logging
from gateway.admin import Admin
from gateway.app import Gateway, GatewayConfig
from gateway.server import start
from tests.test_gateway_history import CONFIG, LIMITS


async def _main(data_dir: Path, port: int) -> None:
    gw = Gateway(
        GatewayConfig(
            data_dir=data_dir,
            master_key_file=data_dir / "master.key",
            limits=LIMITS,
            demo=True,
            **CONFIG,
        )
    )
    keys = data_dir / "keys.txt"

    async def announce() -> None:
        if not keys.exists():
            demo = await gw.ensure_demo_account()
            assert demo is not None
            taker = await Admin(gw).create_account(("read", "trade"))
            await Admin(gw).deposit(taker.account_id, "USDT", "1000000")
            await Admin(gw).deposit(taker.account_id, "BTC", "100")
            tmp = keys.with_suffix(".tmp")
            tmp.write_text(
                f"demo_key={demo.api_key} demo_secret={demo.secret} "
                f"taker_key={taker.api_key} taker_secret={taker.secret}\n"
            )
            tmp.replace(keys)
        snap, replayed = gw.start_point
        sys.stdout.write(f"ready snapshot={snap} replayed={replayed} " + keys.read_text())
        sys.stdout.flush()

    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    running = await start(gw, "127.0.0.1", port)
    try:
        await announce()
        await stop.wait()
    finally:
        await running.runner.cleanup()


if __name__ == "__main__":
    configure_logging("warning")
    asyncio.run(_main(Path(sys.argv[1]), int(sys.argv[2])))

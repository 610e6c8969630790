"""The audit chain in cluster mode: the stream stores no digest (its publishers do not know
sequences), so ``kootabase audit anchor|verify --nats`` compute the chain over the records a
replica derives; a journal imported into a stream and the stream give the same anchors.

Real NATS on 127.0.0.1:4222 (a unique stream, deleted afterwards)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from engine.auditchain import anchor_at, encode_anchor
from engine.schema import CreateAccount, CreateAsset, Deposit
from engine.streamjournal import import_journal
from engine.streamlog import NatsOptions, StreamLog
from ledger.source import write_journal
from tests.cluster_support import LOCAL_NATS, kootabase, stream_on


def test_stream_anchors_equal_the_journal_anchors(tmp_path: Path) -> None:
    commands = [
        CreateAsset(asset_id=0, symbol="USDT", decimals=6),
        *(CreateAccount(account_id=a) for a in range(1, 6)),
        *(
            Deposit(account_id=a, asset_id=0, amount_atoms=10 * a, deposit_key=f"d{a}")
            for a in range(1, 6)
        ),
    ]
    # two journal times, so the import publishes more than one batch
    records = [(i + 1, 1_000 if i < 6 else 2_000, c) for i, c in enumerate(commands)]
    journal = tmp_path / "journal"
    write_journal(journal, records)
    with stream_on() as spec:

        async def publish() -> None:
            log = await StreamLog.connect(NatsOptions(), spec)
            try:
                await import_journal(journal, log)
            finally:
                await log.close()

        asyncio.run(publish())
        nats = ("--nats", LOCAL_NATS, "--stream", spec.name)
        done = kootabase("audit", "anchor", *nats, "--seq", "4")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == json.loads(encode_anchor(anchor_at(journal, 4)))
        done = kootabase("audit", "anchor", *nats)
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout) == json.loads(encode_anchor(anchor_at(journal)))
        anchor_file = tmp_path / "anchor.json"
        anchor_file.write_bytes(encode_anchor(anchor_at(journal, 7)))
        done = kootabase("audit", "verify", *nats, "--anchor", str(anchor_file))
        assert done.returncode == 0 and "1 anchor(s) matched" in done.stdout, done.stderr
        forged = json.loads(anchor_file.read_text())
        forged["head"] = "ab" * 32
        anchor_file.write_text(json.dumps(forged))
        done = kootabase("audit", "verify", *nats, "--anchor", str(anchor_file))
        assert done.returncode == 3 and "audit chain broken at sequence 7" in done.stderr
        assert "Traceback" not in done.stderr
        done = kootabase("audit", "anchor", *nats, "--journal", str(journal))
        assert done.returncode == 2 and "exactly one of" in done.stderr

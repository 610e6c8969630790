"""Cluster mode closed to strangers (issue 18), on a 3-node NATS cluster with users and TLS.

The nodes require TLS with a client certificate (mutual TLS, routes between nodes too) and a
user: ``gateway`` may publish commands, ``reader`` (market data, ledger projector) may not
publish to the command subject nor delete or purge streams, ``admin`` may do anything (the
tests' cleanup). What reaches a replica from the stream is handled alike by every replica.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Iterator
from pathlib import Path

import nats
import pytest

from engine.crosscheck import checkpoint_key, hash_bucket, read_checkpoints, record_checkpoint
from engine.follower import Follower
from engine.natsauth import NatsUser, authorization_conf
from engine.replica import BATCH_FORMAT, CommandBatch, encode_batch, msg_id
from engine.schema import CreateAccount, Deposit, StreamMessageRejected, StreamReject
from engine.service import DEMO_COMMANDS
from engine.snapstore import bucket_name as snap_bucket_name
from engine.snapstore import list_names, load_newest, object_name, save, snapshot_bucket
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from tests.cluster_support import kootabase
from tests.nats_cluster import NatsCluster, User
from tests.tlscerts import make_tls

REPO = Path(__file__).resolve().parent.parent
ADMIN = User("admin", "admin-pw")
GATEWAY = User("gateway", "gateway-pw")
REPLICA = User("replica", "replica-pw")
"""A market-data server or the ledger projector: a replica that never publishes commands."""
READER = User("reader", "reader-pw")
"""An auditor (replay, cluster status): reads, writes nothing."""
STREAMS = ("SEC1", "SEC2", "SEC3")
"""One stream per test: the permissions name the streams they cover."""
USERS = [
    NatsUser(ADMIN.name, "admin", ADMIN.password),
    NatsUser(GATEWAY.name, "gateway", GATEWAY.password),
    NatsUser(REPLICA.name, "replica", REPLICA.password),
    NatsUser(READER.name, "reader", READER.password),
]


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    root = tmp_path_factory.mktemp("nats-secure")
    c = NatsCluster(
        root,
        users=[ADMIN, GATEWAY, REPLICA, READER],
        tls=make_tls(root / "tls"),
        authorization=authorization_conf(USERS, STREAMS),
    )
    c.start()
    try:
        c.wait_ready(user=ADMIN)
        yield c
    finally:
        c.stop()


def _options(c: NatsCluster, user: User | None, *, cert: bool = True) -> NatsOptions:
    assert c.tls is not None
    return NatsOptions.parse(
        c.urls,
        user=user.name if user else None,
        password=user.password if user else None,
        tls_ca_file=c.tls.ca,
        tls_cert_file=c.tls.client_cert if cert else None,
        tls_key_file=c.tls.client_key if cert else None,
        connect_timeout_s=1.0,
    )


async def _refused(options: NatsOptions) -> str:
    kw = options.connect_kwargs()
    kw.update(allow_reconnect=False, max_reconnect_attempts=0)

    async def quiet(exc: Exception) -> None:
        pass

    try:
        nc = await nats.connect(**kw, error_cb=quiet)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    await nc.close()
    raise AssertionError("connected without credentials")


async def _drop(c: NatsCluster, spec: StreamSpec) -> None:
    """Only the admin user may delete a stream."""
    admin = await StreamLog.connect(_options(c, ADMIN), spec, create=False)
    await admin.js.delete_stream(spec.name)
    await admin.close()


def _log_sizes(c: NatsCluster) -> dict[str, int]:
    return {n.name: len(n.log.read_text()) if n.log.exists() else 0 for n in c.nodes}


def _violations(c: NatsCluster, user: str, since: dict[str, int]) -> list[str]:
    """Permission violations the nodes logged for connections of ``user`` after ``since``."""
    return [
        line
        for n in c.nodes
        if n.log.exists()
        for line in n.log.read_text()[since.get(n.name, 0) :].splitlines()
        if "Violation" in line and f'User "{user}"' in line
    ]


async def _denied(what: Awaitable[object]) -> None:
    """An operation the user's permissions refuse: an error or no answer, never success."""
    try:
        await asyncio.wait_for(what, 1.5)
    except Exception:
        return
    raise AssertionError("a refused operation succeeded")


def test_strangers_cannot_connect_and_each_role_does_only_its_part(secure: NatsCluster) -> None:
    """No credentials, wrong ones, no TLS or no client certificate: refused. A reader (auditor)
    follows the stream but writes nothing; a replica (market data, ledger) also records
    checkpoints and snapshots but publishes no command; only a gateway publishes, and nobody
    but the operator deletes the stream."""
    spec = StreamSpec(name=STREAMS[0], replicas=3)

    async def body() -> None:
        assert "Authorization" in await _refused(_options(secure, None))
        assert await _refused(_options(secure, User("gateway", "wrong")))
        plain = NatsOptions.parse(
            secure.urls.replace("tls://", "nats://"),
            user="gateway",
            password="gateway-pw",
            connect_timeout_s=1.0,
        )
        assert await _refused(plain)  # TLS is required
        assert await _refused(_options(secure, GATEWAY, cert=False))  # and a client cert

        gw = await StreamLog.connect(_options(secure, GATEWAY), spec)
        await gw.publish(
            encode_batch(CommandBatch(0, 1, list(DEMO_COMMANDS))), msg_id(0, 1), fmt=BATCH_FORMAT
        )
        kv = await hash_bucket(gw)
        # the replica role: follows, records checkpoints, loads the snapshots a gateway stored
        rep_log = await StreamLog.connect(_options(secure, REPLICA), spec, create=False)
        follower = Follower(None, "replica", "marketdata", lambda a: None)
        await follower.attach(rep_log, snapshot_every=0)
        assert follower.replica.last_seq == len(DEMO_COMMANDS)
        digest = follower.replica.checkpoint_digest()
        await record_checkpoint(await hash_bucket(rep_log), 1, digest)
        assert await save(gw, follower.replica.image()) == object_name(1)
        assert (await load_newest(rep_log)) is not None, "the replica loads it"
        # ... but stores no snapshot, writes no other key, publishes no command, creates no stream
        rep_store = await snapshot_bucket(rep_log, create=False)
        await _denied(rep_store.put(object_name(2), b"forged"))
        await _denied(rep_store.delete(object_name(1)))
        await _denied((await hash_bucket(rep_log, create=False)).put("other.key", b"x"))
        batch = encode_batch(CommandBatch(9, 1, [CreateAccount(account_id=9)]))
        await _denied(rep_log.publish(batch, msg_id(9, 1), fmt=BATCH_FORMAT, timeout_s=1.0))
        await _denied(rep_log.js.add_stream(name="SEC_OTHER", subjects=["kb.x.commands"]))
        # the reader role: reads the stream and the recorded hashes, writes nothing at all
        reader = await StreamLog.connect(_options(secure, READER), spec, create=False)
        await _denied(reader.publish(batch, msg_id(9, 2), fmt=BATCH_FORMAT, timeout_s=1.0))
        await _denied(reader.js.purge_stream(spec.name))
        reader_kv = await hash_bucket(reader, create=False)
        await _denied(reader_kv.put(checkpoint_key(1), b"0" * 64))
        await _denied(reader_kv.put("replica.forged", b"{}"))
        await _denied(snapshot_bucket(reader, create=False))  # not even bound
        forged = f"$O.{snap_bucket_name(spec.name)}.M.{object_name(2)}"
        await _denied(reader.js.publish(forged, b"{}", timeout=1.0))
        assert await read_checkpoints(reader) == {1: follower.replica.checkpoint_digest()}
        got = [m.stream_seq async for m in reader.read(1, 1)]
        assert got == [1], "the reader follows the stream"
        assert await gw.last_sequence() == 1, "neither the replica nor the reader changed it"
        assert (await kv.get(checkpoint_key(1))).value == digest.encode()
        assert await list_names(gw) == [object_name(1)]
        await _denied(gw.js.delete_stream(spec.name))  # the operator's, not a gateway's
        await follower.close()
        for sl in (reader, gw):
            await sl.close()
        await _drop(secure, spec)

    asyncio.run(body())


def test_bad_messages_and_retries_alike_on_every_replica(secure: NatsCluster) -> None:
    """Garbage and a future format version published with gateway credentials: every replica
    journals the same rejection (a `RejectStreamMessage` with the message's stream sequence,
    the `StreamMessageRejected` event) and ends with the same hash; a batch published again
    under another message id (a retry after the stream's duplicate window) executes once."""
    spec = StreamSpec(name=STREAMS[1], replicas=3)

    async def body() -> None:
        gw = await StreamLog.connect(_options(secure, GATEWAY), spec)
        followers = []
        seen: dict[str, list[StreamMessageRejected]] = {}
        for name in ("r1", "r2"):
            got = seen.setdefault(name, [])
            f = Follower(
                None,
                name,
                "test",
                lambda a, got=got: got.extend(
                    e for e in a.events if isinstance(e, StreamMessageRejected)
                ),
            )
            await f.attach(await StreamLog.connect(_options(secure, REPLICA), spec))
            followers.append(f)
        deposit = CommandBatch(
            7,
            1,
            [
                CreateAccount(account_id=1),
                Deposit(account_id=1, asset_id=0, amount_atoms=10**9, deposit_key="k1"),
            ],
        )
        await gw.publish(
            encode_batch(CommandBatch(0, 1, list(DEMO_COMMANDS))), msg_id(0, 1), fmt=BATCH_FORMAT
        )
        await gw.publish(b"\x00garbage", "g1", fmt=BATCH_FORMAT)
        await gw.publish(encode_batch(deposit), "future", fmt="99")
        await gw.publish(encode_batch(deposit), msg_id(7, 1), fmt=BATCH_FORMAT)
        dup = await gw.publish(encode_batch(deposit), msg_id(7, 1), fmt=BATCH_FORMAT)
        assert dup.duplicate, "the stream dropped the retry within its window"
        await gw.publish(encode_batch(deposit), "after-the-window", fmt=BATCH_FORMAT)
        last = await gw.last_sequence()
        assert last == 5
        for f in followers:
            while f.replica.stream_seq < last:
                await asyncio.sleep(0.01)
        a, b = followers
        assert a.replica.state_hash() == b.replica.state_hash()
        n = len(DEMO_COMMANDS)
        want = [
            StreamMessageRejected(seq=n + 1, stream_seq=2, reason=StreamReject.UNDECODABLE),
            StreamMessageRejected(seq=n + 2, stream_seq=3, reason=StreamReject.UNKNOWN_FORMAT),
        ]
        assert seen == {"r1": want, "r2": want}
        for f in followers:
            assert f.replica.state.rejected_messages == 2
            assert f.replica.last_seq == n + 2 + 2, "two rejections, the deposit ran once"
            await f.close()
        await gw.close()
        await _drop(secure, spec)

    asyncio.run(body())


def _tls_args(c: NatsCluster) -> list[str]:
    assert c.tls is not None
    return [
        "--nats-ca",
        str(c.tls.ca),
        "--nats-cert",
        str(c.tls.client_cert),
        "--nats-key",
        str(c.tls.client_key),
    ]


def test_serve_with_credentials_and_tls(secure: NatsCluster, tmp_path: Path) -> None:
    """``kootabase serve`` takes the user (password from the environment) and TLS files."""
    from tests.cluster_procs import GatewayProc

    assert secure.tls is not None
    spec = StreamSpec(name=STREAMS[2], replicas=3)
    logs_before = _log_sizes(secure)
    os.environ["KOOTABASE_NATS_PASSWORD"] = GATEWAY.password
    try:
        g = GatewayProc(
            tmp_path / "g",
            secure.urls,
            spec.name,
            extra=["--nats-user", GATEWAY.name, *_tls_args(secure)],
        )
        g.start()
        assert g.creds is not None
        g.stop()
        status = kootabase(
            "cluster",
            "status",
            "--nats",
            secure.urls,
            "--stream",
            spec.name,
            "--nats-user",
            READER.name,
            *_tls_args(secure),
            "--json",
            env={"KOOTABASE_NATS_PASSWORD": READER.password},
        )
        assert status.returncode == 0, status.stderr
        assert [r["role"] for r in json.loads(status.stdout)["replica_processes"]] == ["gateway"]
        res = kootabase(
            "replay",
            "--nats",
            secure.urls,
            "--stream",
            spec.name,
            "--nats-user",
            READER.name,
            *_tls_args(secure),
            "--verify",
            env={"KOOTABASE_NATS_PASSWORD": READER.password},
        )
        assert res.returncode == 0, res.stderr
        assert "rejected messages: 0" in res.stdout
        # each role's allow-list covers all its process does: nothing was refused
        assert _violations(secure, GATEWAY.name, logs_before) == []
        assert _violations(secure, READER.name, logs_before) == []
    finally:
        del os.environ["KOOTABASE_NATS_PASSWORD"]

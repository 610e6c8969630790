"""Cluster mode closed to strangers (issue 18), on a 3-node NATS cluster with users and TLS.

The nodes require TLS with a client certificate (mutual TLS, routes between nodes too) and a
user: ``gateway`` may publish commands, ``reader`` (market data, ledger projector) may not
publish to the command subject nor delete or purge streams, ``admin`` may do anything (the
tests' cleanup). What reaches a replica from the stream is handled alike by every replica.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from pathlib import Path

import nats
import pytest

from engine.follower import Follower
from engine.replica import BATCH_FORMAT, CommandBatch, encode_batch, msg_id
from engine.schema import CreateAccount, Deposit
from engine.service import DEMO_COMMANDS
from engine.streamlog import NatsOptions, StreamLog, StreamSpec
from tests.cluster_support import kootabase, unique_stream
from tests.nats_cluster import NatsCluster, User
from tests.tlscerts import make_tls

REPO = Path(__file__).resolve().parent.parent
ADMIN = User("admin", "admin-pw")
GATEWAY = User(
    "gateway", "gateway-pw", publish_deny=["$JS.API.STREAM.DELETE.>", "$JS.API.STREAM.PURGE.>"]
)
READER = User(
    "reader",
    "reader-pw",
    publish_deny=[
        "kb.>",
        "$JS.API.STREAM.DELETE.>",
        "$JS.API.STREAM.PURGE.>",
        "$JS.API.STREAM.CREATE.>",
        "$JS.API.STREAM.UPDATE.>",
        "$JS.API.STREAM.MSG.DELETE.>",
    ],
)


@pytest.fixture(scope="module")
def secure(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsCluster]:
    root = tmp_path_factory.mktemp("nats-secure")
    c = NatsCluster(root, users=[ADMIN, GATEWAY, READER], tls=make_tls(root / "tls"))
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


def test_strangers_cannot_connect_and_readers_cannot_publish(secure: NatsCluster) -> None:
    spec = StreamSpec(name=unique_stream("S").name, replicas=3)

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
        reader = await StreamLog.connect(_options(secure, READER), spec, create=False)
        with pytest.raises(Exception):  # noqa: B017 - a permission error or no answer
            await reader.publish(
                encode_batch(CommandBatch(9, 1, [CreateAccount(account_id=9)])),
                msg_id(9, 1),
                fmt=BATCH_FORMAT,
                timeout_s=1.0,
            )
        with pytest.raises(Exception):  # noqa: B017
            await reader.js.purge_stream(spec.name)
        assert await gw.last_sequence() == 1, "the reader changed nothing"
        # ... but it can follow the stream as a replica (market data, ledger projector)
        follower = Follower(None, "reader", "ledger", lambda a: None)
        await follower.attach(reader)
        assert follower.replica.last_seq == len(DEMO_COMMANDS)
        await follower.close()
        with pytest.raises(Exception):  # noqa: B017
            await gw.js.delete_stream(spec.name)
        await gw.close()
        await _drop(secure, spec)

    asyncio.run(body())


def test_bad_messages_and_retries_alike_on_every_replica(secure: NatsCluster) -> None:
    """Garbage and a future format version published with gateway credentials: every replica
    rejects them the same way (counted, logged) and ends with the same hash; a batch
    published again under another message id (a retry after the stream's duplicate window)
    executes once."""
    spec = StreamSpec(name=unique_stream("S").name, replicas=3)

    async def body() -> None:
        gw = await StreamLog.connect(_options(secure, GATEWAY), spec)
        followers = []
        for name in ("r1", "r2"):
            f = Follower(None, name, "test", lambda a: None)
            await f.attach(await StreamLog.connect(_options(secure, READER), spec))
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
        for f in followers:
            assert f.replica.state.rejected_messages == 2
            assert f.replica.last_seq == len(DEMO_COMMANDS) + 2, "the deposit ran once"
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
    spec = unique_stream("S")
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
    finally:
        del os.environ["KOOTABASE_NATS_PASSWORD"]

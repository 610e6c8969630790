"""Command-line options of cluster mode (``--nats`` and friends) and the commands that use them.

Every process that touches the stream takes the same options, so credentials and TLS are
given the same way everywhere (issue 18: NATS is never used open by accident in cluster mode).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:  # the engine (numba) loads only when a command runs, not for --help
    from engine.streamlog import NatsOptions, StreamSpec

PASSWORD_ENV = "KOOTABASE_NATS_PASSWORD"  # read by engine.streamlog.options_from_args
PUBLISH_LINGER_MS: Final = 2.0
"""``serve --publish-linger-ms`` default (`gateway.cluster.ClusterConfig.publish_linger_s`)."""
PUBLISH_INTERVAL_MS: Final = 5.0
"""``serve --publish-interval-ms`` default: on a quiet 2-core machine, 5 ms between a gateway's
publishes made stream messages ~1.6x larger at 5,000 orders/s, cut the NATS nodes' CPU per
order by ~23 % and raised R3 saturation in 6 of 6 alternated pairs (median 14.8k -> 16.7k
orders/s) with p99 unchanged (docs/scaling.md, "The publish interval on a quiet machine")."""


def add_nats_options(p: argparse.ArgumentParser, *, required: bool = False) -> None:
    g = p.add_argument_group("cluster mode (NATS JetStream)")
    g.add_argument(
        "--nats",
        metavar="URL[,URL...]",
        required=required,
        help="NATS servers of the cluster (nats:// or tls://); the command log is a "
        "JetStream stream there",
    )
    g.add_argument(
        "--stream",
        default="KOOTABASE",
        metavar="NAME",
        help="JetStream stream holding the command log (default: KOOTABASE)",
    )
    g.add_argument(
        "--replicas",
        type=int,
        choices=(1, 3),
        default=1,
        help="replicas of the stream when it is created: 1, or 3 on a 3-node cluster",
    )
    g.add_argument("--nats-creds", type=Path, metavar="FILE", help="NATS .creds file (JWT)")
    g.add_argument("--nats-nkey", type=Path, metavar="FILE", help="NATS nkey seed file")
    g.add_argument("--nats-user", metavar="USER", help=f"NATS user (password from ${PASSWORD_ENV})")
    g.add_argument("--nats-ca", type=Path, metavar="PEM", help="CA certificate of the servers")
    g.add_argument("--nats-cert", type=Path, metavar="PEM", help="client certificate (mTLS)")
    g.add_argument("--nats-key", type=Path, metavar="PEM", help="client certificate's key")


def nats_options(args: argparse.Namespace, name: str) -> NatsOptions:
    """Raises ValueError with a clear message on a bad URL."""
    from engine.streamlog import options_from_args

    return options_from_args(args, name)[0]


def stream_spec(args: argparse.Namespace) -> StreamSpec:
    from engine.streamlog import options_from_args

    return options_from_args(args, "kootabase")[1]


def cluster_config(args: argparse.Namespace) -> object | None:
    """`gateway.cluster.ClusterConfig` from ``serve``'s options; None without ``--nats``."""
    if not getattr(args, "nats", None):
        return None
    from gateway.cluster import ClusterConfig

    return ClusterConfig(
        nats=nats_options(args, "kootabase-gateway"),
        stream=stream_spec(args),
        publish_linger_s=getattr(args, "publish_linger_ms", PUBLISH_LINGER_MS) / 1000,
        publish_interval_s=getattr(args, "publish_interval_ms", PUBLISH_INTERVAL_MS) / 1000,
    )


def run_replay_cli(args: argparse.Namespace) -> int:
    """``kootabase replay``: a local journal (``--journal``) or the stream (``--nats``)."""
    import sys

    if bool(args.journal) == bool(args.nats):
        sys.stderr.write("kootabase replay: give exactly one of --journal DIR or --nats URL\n")
        raise SystemExit(2)  # a usage error, like argparse's
    if args.journal:
        from engine.replay import run_replay_cli as run_journal

        return run_journal(args)
    from engine.streamreplay import run_stream_replay_cli

    try:
        options = nats_options(args, "kootabase-replay")
        spec = stream_spec(args)
    except ValueError as exc:
        sys.stderr.write(f"kootabase replay: {exc}\n")
        return 2
    return run_stream_replay_cli(args, options, spec)


def add_cluster_commands(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """``cluster status`` and ``journal export|import``."""
    cluster = sub.add_parser("cluster", help="cluster mode: the stream and its replicas")
    csub = cluster.add_subparsers(dest="cluster_command", metavar="ACTION", required=True)
    status = csub.add_parser("status", help="the stream, each replica's seq, lag and hash")
    add_nats_options(status, required=True)
    status.add_argument("--json", action="store_true", help="print as JSON")
    status.set_defaults(handler=run_status_cli)
    auth = csub.add_parser(
        "nats-auth",
        help="print the NATS server's authorization block: one user per process role",
    )
    auth.add_argument(
        "--stream",
        action="append",
        required=True,
        metavar="NAME",
        help="command stream the users may use (repeat for several)",
    )
    auth.add_argument(
        "--user",
        action="append",
        required=True,
        metavar="NAME:ROLE",
        help="a user and its role: gateway, replica (market data, ledger), reader "
        "(replay, status), admin (operators); repeat per user",
    )
    auth.set_defaults(handler=run_nats_auth_cli)

    journal = sub.add_parser("journal", help="move history between a journal and a stream")
    jsub = journal.add_subparsers(dest="journal_command", metavar="ACTION", required=True)
    for name, text in (
        ("export", "write the stream into a new local journal"),
        ("import", "publish a local journal into a new (empty) stream"),
    ):
        p = jsub.add_parser(name, help=text)
        add_nats_options(p, required=True)
        p.add_argument(
            "--journal",
            type=Path,
            required=True,
            metavar="DIR",
            help="journal directory (export: must be new or empty)",
        )
        p.set_defaults(handler=run_journal_cli, direction=name)


def _connect_args(args: argparse.Namespace, what: str) -> tuple[NatsOptions, StreamSpec]:
    import sys

    try:
        return nats_options(args, f"kootabase-{what}"), stream_spec(args)
    except ValueError as exc:
        sys.stderr.write(f"kootabase {what}: {exc}\n")
        raise SystemExit(2) from None


def run_status_cli(args: argparse.Namespace) -> int:
    import asyncio
    import json
    import sys

    from nats.js.errors import NotFoundError

    from engine.crosscheck import now_ms, read_reports
    from engine.streamlog import StreamLog
    from engine.usererror import UserError

    options, spec = _connect_args(args, "cluster status")

    async def body() -> dict[str, Any]:
        sl = await StreamLog.connect(options, spec, create=False)
        try:
            info = await sl.js.stream_info(spec.name)
            reports = await read_reports(sl)
        finally:
            await sl.close()
        last = int(info.state.last_seq)
        cluster = info.cluster
        return {
            "stream": spec.name,
            "messages": int(info.state.messages),
            "last_stream_seq": last,
            "bytes": int(info.state.bytes),
            "replicas": info.config.num_replicas,
            "leader": cluster.leader if cluster else None,
            "replica_processes": [
                {
                    "replica": r.replica,
                    "role": r.role,
                    "stream_seq": r.stream_seq,
                    "lag": max(0, last - r.stream_seq),
                    "last_seq": r.last_seq,
                    "digest": r.digest,
                    "checkpoint_seq": r.checkpoint_seq,
                    "reported_ms_ago": now_ms() - r.at_ms,
                }
                for r in reports
            ],
        }

    try:
        out = asyncio.run(body())
    except UserError:
        raise  # one line from the top-level handler
    except NotFoundError:
        raise UserError(
            f"stream {spec.name} does not exist on NATS", hint="check --stream"
        ) from None
    except Exception as exc:
        sys.stderr.write(f"kootabase cluster status: {type(exc).__name__}: {exc}\n")
        return 1
    if args.json:
        sys.stdout.write(json.dumps(out, indent=1) + "\n")
        return 0
    sys.stdout.write(
        f"stream {out['stream']}: {out['messages']} messages, last seq "
        f"{out['last_stream_seq']}, {out['bytes']} bytes, R{out['replicas']}, "
        f"leader {out['leader'] or '-'}\n"
    )
    for r in out["replica_processes"]:
        sys.stdout.write(
            f"  {r['role']:8} {r['replica']:16} stream seq {r['stream_seq']:>9} "
            f"lag {r['lag']:>7}  seq {r['last_seq']:>10}  digest at {r['checkpoint_seq']}: "
            f"{r['digest']}  "
            f"({r['reported_ms_ago'] / 1000:.1f} s ago)\n"
        )
    return 0


def run_nats_auth_cli(args: argparse.Namespace) -> int:
    """``cluster nats-auth``: the allow-lists of `engine.natsauth`, passwords left to the
    server's environment (``$KB_NATS_PASSWORD_<USER>``)."""
    import sys

    from engine.natsauth import ROLES, NatsUser, authorization_conf, password_variable

    users = []
    for spec in args.user:
        name, _, role = spec.partition(":")
        if role not in ROLES:
            sys.stderr.write(
                f"kootabase cluster nats-auth: --user {spec!r}: give NAME:ROLE, ROLE one of "
                f"{', '.join(ROLES)}\n"
            )
            return 2
        users.append(NatsUser(name, role))
    try:
        for stream in args.stream:
            stream_spec_of(stream)
        conf = authorization_conf(users, args.stream)
    except ValueError as exc:
        sys.stderr.write(f"kootabase cluster nats-auth: {exc}\n")
        return 2
    sys.stdout.write(
        "# generated by kootabase cluster nats-auth; passwords from the server's environment: "
        + ", ".join(f"${password_variable(u.name)}" for u in users)
        + "\n"
        + conf
    )
    return 0


def stream_spec_of(name: str) -> object:
    """ValueError when ``name`` is not a valid stream name."""
    from engine.streamlog import StreamSpec

    return StreamSpec(name=name)


def run_journal_cli(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from engine.replay import ReplayMismatch
    from engine.streamjournal import Moved, export_stream, import_journal
    from engine.streamlog import StreamLog

    options, spec = _connect_args(args, f"journal {args.direction}")
    if args.direction == "import":  # before the stream is created: a wrong path leaves none
        from engine.datadir import require_journal_dir

        require_journal_dir(Path(args.journal))

    async def body() -> Moved:
        sl = await StreamLog.connect(options, spec, create=args.direction == "import")
        try:
            if args.direction == "export":
                return await export_stream(sl, args.journal)
            return await import_journal(args.journal, sl)
        finally:
            await sl.close()

    try:
        moved = asyncio.run(body())
    except ReplayMismatch as exc:
        sys.stderr.write(f"kootabase journal {args.direction}: HASH MISMATCH: {exc}\n")
        return 3
    except (ValueError, FileNotFoundError) as exc:
        sys.stderr.write(f"kootabase journal {args.direction}: {exc}\n")
        return 1
    sys.stdout.write(
        f"{args.direction}ed {moved.commands} commands in {moved.messages} "
        f"stream messages; state hash {moved.state_hash} (stream and journal "
        "agree)\n"
    )
    return 0

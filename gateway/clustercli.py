"""Command-line options of cluster mode (``--nats`` and friends) and the commands that use them.

Every process that touches the stream takes the same options, so credentials and TLS are
given the same way everywhere (issue 18: NATS is never used open by accident in cluster mode).
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the engine (numba) loads only when a command runs, not for --help
    from engine.streamlog import NatsOptions, StreamSpec

PASSWORD_ENV = "KOOTABASE_NATS_PASSWORD"


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
    from engine.streamlog import NatsOptions

    return NatsOptions.parse(
        args.nats,
        name=name,
        creds_file=args.nats_creds,
        nkey_seed_file=args.nats_nkey,
        user=args.nats_user,
        password=os.environ.get(PASSWORD_ENV) if args.nats_user else None,
        tls_ca_file=args.nats_ca,
        tls_cert_file=args.nats_cert,
        tls_key_file=args.nats_key,
    )


def stream_spec(args: argparse.Namespace) -> StreamSpec:
    from engine.streamlog import StreamSpec

    return StreamSpec(name=args.stream, replicas=args.replicas)


def cluster_config(args: argparse.Namespace) -> object | None:
    """`gateway.cluster.ClusterConfig` from ``serve``'s options; None without ``--nats``."""
    if not getattr(args, "nats", None):
        return None
    from gateway.cluster import ClusterConfig

    return ClusterConfig(nats=nats_options(args, "kootabase-gateway"), stream=stream_spec(args))


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

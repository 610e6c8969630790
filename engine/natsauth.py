"""NATS permissions per role in cluster mode (issue 18): allow-lists, everything else denied.

In cluster mode the command stream is the exchange: whoever publishes to its subject moves
money, whoever writes the hash cross-check bucket or the snapshot Object Store can make honest
replicas stop (a false recorded hash) or offer them a state to load (refused unless it matches
the recorded hash, but still). So every process connects as a user of one of these roles, and
each role gets only the subjects its code uses (listed per call site below). A permission
``allow`` list in NATS denies whatever it does not name, so no ``deny`` list is needed.

* ``reader`` (``replay --nats``, ``cluster status``, ``journal export``): reads the stream
  through ephemeral consumers and the cross-check bucket by key; writes nothing.
* ``replica`` (market data, ledger projector): a reader that also records checkpoints and
  reports itself in the cross-check bucket (keys ``cp.*`` and ``replica.*`` only) and *loads*
  snapshots; it never publishes commands and never writes a snapshot (a compromised market-data
  host must not be able to offer every replica a state to start from).
* ``gateway`` (and ``journal import``): a replica that also publishes command batches, stores
  engine and read-model snapshots and prunes old read-model ones (`engine.snapstore`,
  `gateway.clustersnap`), and creates the stream and its two buckets when they do not exist
  yet.
* ``admin``: no limits; the operator's own user for administration (deleting or purging
  streams, editing buckets), never given to a process.

`authorization_conf` renders the ``authorization`` block of ``nats-server.conf`` for a set of
users (``kootabase cluster nats-auth`` prints it; passwords come from environment variables at
server start, never from the file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

ROLES: Final = ("reader", "replica", "gateway", "admin")
API: Final = "$JS.API"


@dataclass(frozen=True, slots=True)
class Permissions:
    publish: tuple[str, ...]
    subscribe: tuple[str, ...]


def _names(stream: str) -> tuple[str, str, str, str]:
    """(command subject, stream, KV bucket, Object Store bucket) of one command stream."""
    from engine.crosscheck import bucket_name as hash_bucket
    from engine.snapstore import bucket_name as snap_bucket

    return f"kb.{stream}.commands", stream, hash_bucket(stream), snap_bucket(stream)


def _reader(stream: str) -> list[str]:
    _, name, kv, _obj = _names(stream)
    return [
        f"{API}.STREAM.INFO.{name}",  # last_sequence, cluster status
        f"{API}.CONSUMER.CREATE.{name}",  # follow/read: ephemeral push consumers
        f"{API}.CONSUMER.CREATE.{name}.>",
        f"{API}.CONSUMER.DELETE.{name}.>",  # unsubscribe
        f"$JS.FC.{name}.>",  # flow-control replies of the ordered consumer (read)
        f"{API}.STREAM.INFO.KV_{kv}",  # bind the bucket; its key list (subjects_filter)
        f"{API}.DIRECT.GET.KV_{kv}.>",  # kv.get by key
        f"{API}.STREAM.MSG.GET.KV_{kv}",
    ]


def _replica(stream: str) -> list[str]:
    _, _name, kv, obj = _names(stream)
    return [
        *_reader(stream),
        f"$KV.{kv}.cp.>",  # record checkpoints (create/compare)
        f"$KV.{kv}.replica.>",  # report this replica (cluster status)
        f"{API}.STREAM.INFO.OBJ_{obj}",  # bind the Object Store
        f"{API}.DIRECT.GET.OBJ_{obj}.>",  # object info (its meta message)
        f"{API}.STREAM.MSG.GET.OBJ_{obj}",
        f"{API}.CONSUMER.CREATE.OBJ_{obj}",  # list objects, read an object's chunks
        f"{API}.CONSUMER.CREATE.OBJ_{obj}.>",
        f"{API}.CONSUMER.DELETE.OBJ_{obj}.>",
        f"$JS.FC.OBJ_{obj}.>",
        f"{API}.STREAM.NAMES",  # nats-py's object store finds its stream by subject
    ]


def _gateway(stream: str) -> list[str]:
    subject, name, kv, obj = _names(stream)
    return [
        *_replica(stream),
        subject,  # publish command batches
        f"$O.{obj}.>",  # store a snapshot (chunks, then its meta)
        f"{API}.STREAM.PURGE.OBJ_{obj}",  # prune old read-model snapshots (their chunks)
        f"{API}.STREAM.CREATE.{name}",  # the first gateway creates the stream and buckets
        f"{API}.STREAM.CREATE.KV_{kv}",
        f"{API}.STREAM.CREATE.OBJ_{obj}",
    ]


def permissions(role: str, streams: Sequence[str]) -> Permissions:
    """The allow-lists of ``role`` over the command ``streams`` (ValueError on a bad role)."""
    build = {"reader": _reader, "replica": _replica, "gateway": _gateway}.get(role)
    if build is None:
        raise ValueError(f"unknown role {role!r}: one of {', '.join(ROLES)}")
    publish = [s for stream in streams for s in build(stream)]
    return Permissions(tuple(dict.fromkeys(publish)), ("_INBOX.>",))


@dataclass(frozen=True, slots=True)
class NatsUser:
    name: str
    role: str
    password: str | None = None
    """Literal password (tests); None: ``$KB_NATS_PASSWORD_<NAME>`` from the server's
    environment (NATS substitutes variables in its config)."""


def password_variable(user: str) -> str:
    return "KB_NATS_PASSWORD_" + "".join(c if c.isalnum() else "_" for c in user.upper())


def _quoted(items: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{s}"' for s in items) + "]"


def user_entry(user: NatsUser, streams: Sequence[str]) -> str:
    """One entry of the ``users`` list (``admin``: no limits)."""
    if not user.name.replace("-", "").replace("_", "").isalnum():
        raise ValueError(f"NATS user {user.name!r}: letters, digits, - and _ only")
    password = (
        f'"{user.password}"' if user.password is not None else f"${password_variable(user.name)}"
    )
    if user.role == "admin":
        return f'{{ user: "{user.name}", password: {password} }}'
    p = permissions(user.role, streams)
    return (
        f'{{ user: "{user.name}", password: {password}, permissions: {{ '
        f"publish: {{ allow: {_quoted(p.publish)} }}, "
        f"subscribe: {{ allow: {_quoted(p.subscribe)} }} }} }}"
    )


def authorization_conf(users: Sequence[NatsUser], streams: Sequence[str]) -> str:
    """The ``authorization { users: [...] }`` block for ``nats-server.conf``."""
    entries = ",\n  ".join(user_entry(u, streams) for u in users)
    return f"authorization {{ users: [\n  {entries}\n] }}\n"

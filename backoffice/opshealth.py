"""``GET /ops/v1/health/overview``: every replica's position and hash agreement, the NATS
stream's Raft health, the ledger follower's lag and the custody watchers, for staff.

``/health`` answers for one process; in cluster mode the operations console needs the whole
venue, which only the shared KV bucket and JetStream know (`gateway.clusterhealth` gathers it).
Read-only, every staff role (an operator on call may be support): nothing in it is a secret
(no server address, no credentials, digests only).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiohttp import web

from backoffice.staff import StaffSession

if TYPE_CHECKING:
    from backoffice.ops import Ops

PATH = "/health/overview"


async def _overview(ops: Ops, request: web.Request, session: StaffSession) -> Any:
    from gateway.clusterhealth import overview

    return await overview(ops.gw)


def operations(p: str) -> dict[tuple[str, str], dict[str, Any]]:
    """The OpenAPI description of the route, merged by `backoffice.opsdoc.operations`."""
    from backoffice.opsdoc import STR, _int, _obj, _operation

    def maybe(schema: dict[str, Any]) -> dict[str, Any]:
        return {"anyOf": [schema, {"type": "null"}]}

    boolean = {"type": "boolean"}
    peer = _obj(name=STR, current=boolean, offline=boolean, lag=_int(), active_ms=_int())
    stream = _obj(
        name=STR,
        messages=_int(),
        last_stream_seq=_int(),
        bytes=_int(),
        replicas=_int(1),
        clustered=boolean,
        leader=maybe(STR),
        peers={"type": "array", "items": peer},
        healthy=boolean,
    )
    replica = _obj(
        replica=STR,
        role=STR,
        self=boolean,
        stream_seq=_int(),
        lag=_int(),
        last_seq=_int(),
        digest=STR,
        checkpoint_seq=_int(),
        recorded=maybe(STR),
        agrees=maybe(boolean),
        reported_ms_ago={"type": "integer"},
        stale=boolean,
    )
    me = _obj(
        replica=STR,
        ready=boolean,
        reason=maybe(STR),
        last_seq=_int(),
        state_hash=maybe(STR),
        state_hash_seq=_int(),
    )
    follower = _obj(
        required=False,
        ok=boolean,
        state=STR,
        pid=maybe(_int()),
        restarts=_int(),
        lastError=maybe(STR),
        projected_seq=maybe(_int()),
        lag=maybe(_int()),
        error=STR,
    )
    watcher = _obj(
        required=False,
        chain=STR,
        ok=maybe(boolean),
        tip=maybe(_int()),
        last_ok_ms=maybe(_int()),
        error=STR,
        signer=boolean,
        open_alerts=_int(),
    )
    result = _obj(
        mode={"type": "string", "enum": ["single", "cluster"]},
        self=me,
        stream=maybe(stream),
        replicas={"type": "array", "items": replica},
        agreement={"type": "string", "enum": ["single", "agree", "disagree", "unknown"]},
        ledger_follower=maybe(follower),
        custody={"type": "array", "items": watcher},
        error=STR,
    )
    path = f"{p}{PATH}"
    out = _operation(
        "GET",
        path,
        "The venue's health across replicas: this gateway's sequence and state hash; in "
        "cluster mode every replica's stream position, lag and checkpoint digest with whether "
        "it agrees with the recorded one, and the stream's leader and peers (current or "
        "lagging); this gateway's ledger follower (projection lag) and custody watchers. "
        "A read that fails (NATS, PostgreSQL) is named in `error`, not a 5xx",
        "health.view",
        result,
    )
    return {("GET", path): out}


def setup(app: web.Application, ops: Ops) -> None:
    from backoffice.ops import PREFIX

    async def handler(request: web.Request, session: StaffSession) -> Any:
        return await _overview(ops, request, session)

    app.router.add_route("GET", f"{PREFIX}{PATH}", ops.route("health.view", handler))

"""KYC document files on a real gateway (SQLite identity store, then PostgreSQL): a user
uploads a document's bytes, typed by their content (a PNG sent as text/plain is a PNG; text
sent as image/png is refused), at most 5 MiB (a larger body is refused while it is read), stored
in the data dir 0600 under its SHA-256 with its metadata in the identity store; a submission
lists it by digest; only compliance staff read it back, byte for byte, as an attachment, and
only a file the submission lists and its own user uploaded. Every documented status of the
operator route is provoked and validated against ``/openapi.json``.
"""

from __future__ import annotations

import hashlib
import stat
from typing import Any

import pytest
import requests
import schemathesis

from backoffice.errors import KYC_FILE_NOT_FOUND, KYC_FILE_TOO_LARGE, KYC_FILE_TYPE
from backoffice.kycfiles import MAX_FILE_BYTES
from backoffice.roles import Role
from tests.backoffice_support import BACKENDS, backoffice_server
from tests.gateway_support import ServerThread
from tests.test_backoffice_kyc import sign_up, user_call
from tests.test_backoffice_ops import login, make_staff

server = pytest.fixture(params=BACKENDS)(backoffice_server)
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 40
PDF = b"%PDF-1.7\n" + b"scan " * 3000


def upload(
    srv: ServerThread, token: str, data: bytes, kind: str = "image/png"
) -> requests.Response:
    return requests.post(
        f"{srv.http}/api/v1/me/kyc/files",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": kind},
        timeout=60,
    )


def test_kyc_files_upload_and_compliance_only_download(server: ServerThread) -> None:
    srv = server
    _, ada = sign_up(srv, "ada@users.example.com")
    _, bob = sign_up(srv, "bob@users.example.com")

    answer = upload(srv, ada, PNG, "text/plain")  # the content decides, not the header
    assert answer.status_code == 201, answer.text
    png = answer.json()
    assert png == {
        "sha256": hashlib.sha256(PNG).hexdigest(),
        "size_bytes": len(PNG),
        "content_type": "image/png",
    }
    pdf = upload(srv, ada, PDF, "application/pdf").json()
    stored = srv.gw.config.data_dir / "backoffice" / "kyc" / png["sha256"]
    assert stored.read_bytes() == PNG
    assert stat.S_IMODE(stored.stat().st_mode) == 0o600
    assert stat.S_IMODE(stored.parent.stat().st_mode) == 0o700

    for data, kind, status, code in (
        (b"<html><script>alert(1)</script>", "image/png", 415, KYC_FILE_TYPE),
        (b"GIF89a" + b"x" * 100, "image/gif", 415, KYC_FILE_TYPE),
        (b"", "image/png", 400, "BAD_REQUEST"),
        (b"%PDF-" + b"x" * MAX_FILE_BYTES, "application/pdf", 413, KYC_FILE_TOO_LARGE),
    ):
        answer = upload(srv, ada, data, kind)
        assert (answer.status_code, answer.json()["error"]["code"]) == (status, code), answer.text
    assert requests.post(f"{srv.http}/api/v1/me/kyc/files", data=PNG, timeout=30).status_code == 401
    assert sorted(p.name for p in stored.parent.iterdir()) == sorted([png["sha256"], pdf["sha256"]])

    doc = {"type": "passport", "country": "FR", "sha256": png["sha256"], "size_bytes": len(PNG)}
    status, sub = user_call(srv, "POST", ada, {"requested_tier": 1, "documents": [doc]})
    assert status == 201, sub
    bob_png = upload(srv, bob, PNG[:-1]).json()  # Bob's own file, not in Ada's submission
    _described(srv, sub["submission_id"], png["sha256"], pdf["sha256"], bob_png["sha256"])


def _described(srv: ServerThread, submission_id: str, png: str, unlisted: str, other: str) -> None:
    tokens = {
        r: login(
            srv, f"{r.value}@kyc.example.com", make_staff(srv, f"{r.value}@kyc.example.com", r)
        )
        for r in (Role.COMPLIANCE, Role.ADMIN, Role.SUPPORT)
    }
    spec = requests.get(srv.http + "/openapi.json", timeout=30).json()
    (op,) = [
        r.ok() for r in schemathesis.openapi.from_dict(spec).get_all_operations()
        if r.ok().definition.raw.get("x-requires") == "kyc-files"
    ]  # fmt: skip
    c = Role.COMPLIANCE
    plan: list[tuple[str, str, Role | None, int, str | None]] = [
        (submission_id, png, c, 200, None),
        (submission_id, png, None, 401, "UNAUTHENTICATED"),
        (submission_id, png, Role.ADMIN, 403, "ROLE_REFUSED"),  # compliance only
        (submission_id, png, Role.SUPPORT, 403, "ROLE_REFUSED"),
        (submission_id, "AB" * 32, c, 400, "BAD_REQUEST"),
        ("nope", png, c, 404, "KYC_NOT_FOUND"),
        (submission_id, unlisted, c, 404, KYC_FILE_NOT_FOUND),  # uploaded, not listed
        (submission_id, other, c, 404, KYC_FILE_NOT_FOUND),  # another user's file
    ]
    given = set()
    for sid, digest, who, want, code in plan:
        headers: dict[str, Any] = {} if who is None else {"Authorization": f"Bearer {tokens[who]}"}
        url = srv.http + op.path.format(submission_id=sid, sha256=digest)
        response = requests.get(url, headers=headers, timeout=30)
        assert response.status_code == want, (want, response.text)
        if want == 200:
            assert response.content == PNG and response.headers["Content-Type"] == "image/png"
            assert response.headers["Content-Disposition"].startswith("attachment")
            assert response.headers["X-Content-Type-Options"] == "nosniff"
            assert response.headers["Cache-Control"] == "no-store"
        else:
            assert response.json()["code"] == code, response.text
        op.validate_response(response)
        given.add(want)
    assert given == {int(s) for s in op.definition.raw["responses"]} - {503}

"""KYC document files: the bytes a user uploads, kept in the data dir, shown only to compliance.

A user uploads a document's file (``POST /api/v1/me/kyc/files``, the raw bytes as the body);
its type is sniffed from its first bytes (JPEG, PNG or PDF; anything else, whatever the
request's Content-Type says, is ``KYC_FILE_TYPE`` 415), its size is at most `MAX_FILE_BYTES`
(``KYC_FILE_TOO_LARGE`` 413, counted while reading, so a lying Content-Length does not help),
and it is stored content-addressed, ``DATA_DIR/backoffice/kyc/<sha256>`` (file 0600, folder
0700; written to a temporary name and renamed, so a crash leaves no half file under the name).
The metadata (who uploaded which digest, its type and size, when) is a row of ``bo_kyc_files``
in the identity store (SQLite or PostgreSQL). The answer is the digest and size a submission's
document lists (`backoffice.kyc`), so a submission names the files by their SHA-256.

Staff read a file through ``GET /ops/v1/kyc/{submission_id}/files/{sha256}`` (action
``kyc.files``: compliance only): only a digest the submission lists and its own user uploaded,
answered as an attachment with the sniffed type, ``nosniff`` and ``no-store``, never rendered
inline. With several gateways sharing PostgreSQL, the bytes are on the gateway that took the
upload (the metadata is shared; a file missing here is ``KYC_FILE_NOT_FOUND``).
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from backoffice import errors
from backoffice.db import Db
from backoffice.errors import (
    KYC_FILE_NOT_FOUND,
    KYC_FILE_TOO_LARGE,
    KYC_FILE_TYPE,
    BackofficeError,
)
from backoffice.store import now_ms
from engine.filemodes import private_dir, write_private

MAX_FILE_BYTES: Final = 5 * 1024 * 1024
"""Largest upload: a phone photo or a scanned page, compressed."""
SNIFF: Final = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"%PDF-", "application/pdf"),
)


def sniff(head: bytes) -> str | None:
    """The content type of a file from its first bytes; None for anything not accepted."""
    return next((kind for magic, kind in SNIFF if head.startswith(magic)), None)


async def read_capped(request: web.Request, cap: int) -> bytes:
    """The raw body, refused (413) as soon as it passes ``cap`` bytes."""
    if (request.content_length or 0) > cap:
        raise BackofficeError(413, KYC_FILE_TOO_LARGE, f"a file is at most {cap} bytes")
    chunks, size = [], 0
    while chunk := await request.content.read(64 * 1024):
        size += len(chunk)
        if size > cap:
            raise BackofficeError(413, KYC_FILE_TOO_LARGE, f"a file is at most {cap} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class KycFiles:
    def __init__(self, db: Db, folder: Path) -> None:
        self.db = db
        self.folder = folder

    def path(self, sha256: str) -> Path:
        assert len(sha256) == 64 and all(c in "0123456789abcdef" for c in sha256), sha256
        return self.folder / sha256

    async def upload(self, user_id: str, data: bytes) -> dict[str, Any]:
        if not data:
            raise errors.bad_request("the body is the file's bytes (empty here)")
        kind = sniff(data[:16])
        if kind is None:
            raise BackofficeError(
                415, KYC_FILE_TYPE, "a document is a JPEG, PNG or PDF file (by its content)"
            )
        digest = hashlib.sha256(data).hexdigest()
        await asyncio.to_thread(self._write, digest, data)
        await self.db.execute(
            "INSERT INTO bo_kyc_files (user_id, sha256, content_type, size_bytes, uploaded_ms) "
            "VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
            user_id,
            digest,
            kind,
            len(data),
            now_ms(),
        )
        return {"sha256": digest, "size_bytes": len(data), "content_type": kind}

    def _write(self, digest: str, data: bytes) -> None:
        private_dir(self.folder)
        final = self.path(digest)
        if final.exists():
            return
        tmp = final.with_name(f".{digest}.{os.getpid()}.tmp")
        write_private(tmp, data)
        os.replace(tmp, final)

    async def for_staff(self, submission: dict[str, Any], sha256: str) -> web.Response:
        """The file of a document ``submission`` lists, uploaded by its own user."""
        listed = {d["sha256"] for d in submission["documents"]}
        row = None
        if sha256 in listed:
            row = await self.db.fetchrow(
                "SELECT f.* FROM bo_kyc_files f JOIN bo_kyc_submissions s "
                "ON s.user_id = f.user_id WHERE s.submission_id = $1 AND f.sha256 = $2",
                submission["submission_id"],
                sha256,
            )
        path = self.path(sha256) if row is not None else None
        if path is None or not path.is_file():
            raise BackofficeError(404, KYC_FILE_NOT_FOUND, "no uploaded file with this digest")
        data = await asyncio.to_thread(path.read_bytes)
        return web.Response(
            body=data,
            content_type=row["content_type"],
            headers={
                "Content-Disposition": f'attachment; filename="{sha256[:16]}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

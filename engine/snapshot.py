"""Snapshots: the whole engine state at one sequence, with the hash that proves it.

A snapshot is the canonical StateImage (engine/schema/image.py) plus its state hash, so
restoring one and replaying the journal tail gives the state a full replay would give, and a
replay that passes a snapshot's sequence can check its own hash against the recorded one
(money rule 5).

File ``{last_seq:020d}.snap``: a fixed header ``<4sHQ32sI`` (magic, format version, last_seq,
BLAKE2b-256 state hash, CRC32C), for magic ``KBS2`` followed by the journal anchor ``<Qq32s``
(engine/provenance.py: the sequence, timestamp and digest of the journal record at last_seq),
then the msgpack body. The CRC32C covers the anchor and the body. Magic ``KBS1`` (written before
anchors existed) has no anchor and its CRC covers the body; it still loads, and the node checks
its provenance by full replay once. The state hash definition is the same for both.

Written to a temporary name, fsync'd, renamed, and the directory fsync'd: a crash leaves either
the old set or the new one. A snapshot that fails its checksum or hash is skipped with a loud log
line: the journal can always rebuild the state, so a bad snapshot costs time, never correctness.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import google_crc32c
import structlog

from engine.filemodes import create_private, private_dir
from engine.journalsegment import fsync_dir
from engine.provenance import ANCHOR, JournalAnchor
from engine.schema import FORMAT_VERSION, IMAGE_DECODER, StateImage, encode_image, state_hash
from engine.usererror import UserError

log = structlog.get_logger(__name__)

MAGIC: Final = b"KBS2"
MAGIC_UNANCHORED: Final = b"KBS1"
HEADER: Final = struct.Struct("<4sHQ32sI")
SUFFIX: Final = ".snap"
KEEP_DEFAULT: Final = 3


class SnapshotError(UserError):
    """A snapshot file that cannot be trusted: names the file and what is wrong."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"snapshot {path} cannot be trusted: {reason}")
        self.path = path
        self.reason = reason


@dataclass(frozen=True, slots=True)
class Snapshot:
    path: Path
    last_seq: int
    state_hash: str
    image: StateImage
    anchor: JournalAnchor | None = None
    """The journal record this snapshot was taken after; None for a ``KBS1`` snapshot."""


def write_snapshot(
    directory: Path,
    image: StateImage,
    *,
    anchor: JournalAnchor | None,
    keep: int = KEEP_DEFAULT,
    quiet: bool = False,
) -> Snapshot:
    """Durably write ``image`` and prune all but the newest ``keep`` snapshots (``quiet``: log
    at debug, for the shutdown snapshot that the one "stopped" line reports). ``anchor`` is the
    journal record at ``image.last_seq`` (None writes the unanchored ``KBS1`` format, for
    snapshots not taken beside a journal)."""
    assert keep >= 1
    private_dir(directory)
    body = encode_image(image)
    digest = state_hash(image)
    if anchor is None:
        crc, magic, extra = google_crc32c.value(body), MAGIC_UNANCHORED, b""
    else:
        assert anchor.seq == image.last_seq, f"anchor {anchor} is not at {image.last_seq}"
        extra = anchor.pack()
        crc, magic = google_crc32c.extend(google_crc32c.value(extra), body), MAGIC
    header = HEADER.pack(magic, FORMAT_VERSION, image.last_seq, bytes.fromhex(digest), crc)
    header += extra
    path = directory / f"{image.last_seq:020d}{SUFFIX}"
    tmp = path.with_suffix(".tmp")
    with os.fdopen(create_private(tmp), "wb") as fh:
        fh.write(header)
        fh.write(body)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    fsync_dir(directory)
    for old in list_snapshots(directory)[:-keep]:
        old.unlink()
    (log.debug if quiet else log.info)(
        "snapshot_written",
        path=str(path),
        last_seq=image.last_seq,
        state_hash=digest,
        bytes=len(header) + len(body),
    )
    return Snapshot(path, image.last_seq, digest, image, anchor)


def read_snapshot(path: Path) -> Snapshot:
    """Read and verify one snapshot; raise SnapshotError when anything does not check out."""
    data = path.read_bytes()
    if len(data) < HEADER.size:
        raise SnapshotError(path, f"truncated: {len(data)} bytes")
    magic, version, last_seq, digest, crc = HEADER.unpack_from(data)
    if magic not in (MAGIC, MAGIC_UNANCHORED):
        raise SnapshotError(path, f"bad magic {magic!r}")
    if version != FORMAT_VERSION:
        raise SnapshotError(path, f"format version {version}, this build reads {FORMAT_VERSION}")
    anchor: JournalAnchor | None = None
    if magic == MAGIC_UNANCHORED:
        body = data[HEADER.size :]
        if google_crc32c.value(body) != crc:
            raise SnapshotError(path, "checksum mismatch")
    else:
        body_at = HEADER.size + ANCHOR.size
        if len(data) < body_at:
            raise SnapshotError(path, f"truncated: {len(data)} bytes")
        extra, body = data[HEADER.size : body_at], data[body_at:]
        if google_crc32c.extend(google_crc32c.value(extra), body) != crc:
            raise SnapshotError(path, "checksum mismatch")
        anchor = JournalAnchor.unpack(extra)
        if anchor.seq != last_seq:
            raise SnapshotError(path, f"header says seq {last_seq}, anchor says {anchor.seq}")
    image = IMAGE_DECODER.decode(body)
    recorded = digest.hex()
    if image.last_seq != last_seq:
        raise SnapshotError(path, f"header says seq {last_seq}, body says {image.last_seq}")
    actual = state_hash(image)
    if actual != recorded:
        raise SnapshotError(path, f"state hash {actual} != recorded {recorded}")
    return Snapshot(path, last_seq, recorded, image, anchor)


def list_snapshots(directory: Path) -> list[Path]:
    """Snapshot files, oldest first (the zero-padded name sorts by sequence)."""
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if p.suffix == SUFFIX)


def latest_valid(directory: Path, *, at_most_seq: int | None = None) -> Snapshot | None:
    """The newest snapshot that verifies (and covers no more than ``at_most_seq``)."""
    for path in reversed(list_snapshots(directory)):
        try:
            snapshot = read_snapshot(path)
        except SnapshotError as exc:
            log.error("snapshot_invalid_skipped", path=str(path), reason=exc.reason)
            continue
        if at_most_seq is None or snapshot.last_seq <= at_most_seq:
            return snapshot
    return None

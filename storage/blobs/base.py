"""What every blob store offers, the key rules, and streaming SHA-256 helpers.

Semantics shared by all stores:
- keys are relative POSIX paths of [A-Za-z0-9._-] segments (see validate_key);
- a key is written once: putting the same bytes again succeeds (idempotent), other bytes raise
  Conflict and leave the stored object untouched;
- the SHA-256 of every object is recorded when it is written and verified on every read;
  a mismatch raises IntegrityError naming the key;
- delete is idempotent.
"""
from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from storage.errors import IntegrityError, InvalidInput

MAX_KEY_BYTES = 1024  # S3's limit
MAX_SEGMENT_CHARS = 255  # common file-name limit
CHUNK_BYTES = 1 << 20
_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@dataclass(frozen=True)
class BlobInfo:
    """A stored object: its key, length and SHA-256 (hex)."""

    key: str
    size_bytes: int
    sha256: str


@runtime_checkable
class BlobStore(Protocol):
    """A content-checked key/value store for blobs (local directory or S3)."""

    def put(self, key: str, data: bytes) -> BlobInfo:
        """Store `data` under `key` (conditional create)."""
        ...

    def put_file(self, key: str, path: Path | str) -> BlobInfo:
        """Store a file's bytes under `key`, streamed from disk (conditional create)."""
        ...

    def get(self, key: str) -> bytes:
        """The object's bytes, verified against the recorded SHA-256."""
        ...

    def get_file(self, key: str, path: Path | str) -> BlobInfo:
        """Stream the object into `path` (via a temp file beside it, verified, then renamed)."""
        ...

    def stat(self, key: str) -> BlobInfo:
        """Size and recorded SHA-256 of the object; NotFound if absent."""
        ...

    def exists(self, key: str) -> bool:
        """Whether an object is stored under `key`."""
        ...

    def list(self, prefix: str = "") -> list[str]:
        """Sorted keys that start with `prefix`."""
        ...

    def delete(self, key: str) -> None:
        """Remove the object if present."""
        ...

    def uri(self, key: str) -> str:
        """Where the object lives (file:// or s3://), for records and logs."""
        ...

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A URL that downloads the object without credentials (file:// for a local store)."""
        ...


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative POSIX key, else raise InvalidInput.

    Rejected: empty, absolute, trailing slash, empty/`.`/`..` segments, backslashes, NUL and any
    character outside [A-Za-z0-9._-/], over-long keys or segments.
    """
    if not isinstance(key, str) or not key:
        raise InvalidInput(f"blob key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidInput(f"blob key longer than {MAX_KEY_BYTES} bytes: {key[:60]!r}…")
    if key.startswith("/"):
        raise InvalidInput(f"blob key must be relative: {key!r}")
    if key.endswith("/"):
        raise InvalidInput(f"blob key must not end with '/': {key!r}")
    for segment in key.split("/"):
        if segment in ("", ".", ".."):
            raise InvalidInput(f"blob key has an empty, '.' or '..' segment: {key!r}")
        if len(segment) > MAX_SEGMENT_CHARS:
            raise InvalidInput(f"blob key segment longer than {MAX_SEGMENT_CHARS}: {key[:60]!r}…")
        if not _SEGMENT.fullmatch(segment):
            raise InvalidInput(f"blob key may hold only [A-Za-z0-9._-/]: {key!r}")
    return key


def validate_prefix(prefix: str) -> str:
    """A listing prefix: empty, a key, a key followed by '/', or a key ending in a partial segment."""
    if prefix:
        validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def sha256_hex(data: bytes) -> str:
    """SHA-256 of `data`, hex."""
    return hashlib.sha256(data).hexdigest()


def file_digest(path: Path | str, chunk_bytes: int = CHUNK_BYTES) -> tuple[str, int]:
    """(SHA-256 hex, size in bytes) of a file, read in chunks."""
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb") as f:
        while chunk := f.read(chunk_bytes):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def iter_chunks(f: BinaryIO, chunk_bytes: int = CHUNK_BYTES) -> Iterator[bytes]:
    """Chunks of a binary stream until EOF."""
    while chunk := f.read(chunk_bytes):
        yield chunk


def check_digest(key: str, expected_sha256: str, actual_sha256: str, expected_size: int, actual_size: int) -> None:
    """Raise IntegrityError naming `key` if the bytes read are not the bytes recorded."""
    if actual_sha256 != expected_sha256 or actual_size != expected_size:
        raise IntegrityError(
            f"blob {key} is corrupt: read {actual_size} bytes with sha256 {actual_sha256[:16]}…, "
            f"recorded {expected_size} bytes with sha256 {expected_sha256[:16]}…"
        )


def temp_path_beside(path: Path) -> Path:
    """A fresh hidden temp file name in the same directory (same filesystem, so rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{os.urandom(6).hex()}.part")


def fsync_dir(directory: Path) -> None:
    """Make a rename or link in `directory` durable (no-op where directories can't be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""Blob store in a local directory.

Layout under the root:
    objects/<key>        the bytes, exactly (so file:// URLs serve them as they are)
    meta/<key>.json      {"sha256": ..., "size_bytes": ...}: the sidecar, outside the key namespace
    tmp/                 files being written (same filesystem, so links and renames are atomic)

Writing is a conditional create. The bytes go to a temp file (hashed on the way, fsynced); then
the sidecar is published with os.link, which fails if it exists, so exactly one writer of a key
wins; the winner renames its temp file into objects/. A loser compares SHA-256s: equal means
the put is idempotent, different raises Conflict and leaves the object untouched. An object is
visible only once both files are in place.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path

from storage.blobs.base import (
    CHUNK_BYTES,
    BlobInfo,
    check_digest,
    fsync_dir,
    iter_chunks,
    temp_path_beside,
    validate_key,
    validate_prefix,
)
from storage.errors import Conflict, InvalidInput, NotFound

log = logging.getLogger(__name__)


class LocalBlobStore:
    """BlobStore over a directory tree (the embedded default)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).expanduser().resolve()
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"
        try:
            for directory in (self._objects, self._meta, self._tmp):
                directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise InvalidInput(f"cannot use {self.root} as a blob store: {err.strerror or err}") from err

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- paths -----------------------------------------------------------------------------

    def object_path(self, key: str) -> Path:
        """Where the bytes of `key` live on disk."""
        return self._objects / validate_key(key)

    def _meta_path(self, key: str) -> Path:
        return self._meta / f"{validate_key(key)}.json"

    def _read_meta(self, key: str) -> BlobInfo:
        try:
            record = json.loads(self._meta_path(key).read_text(encoding="utf-8"))
        except (FileNotFoundError, NotADirectoryError) as err:
            raise NotFound(f"no blob {key} in {self.root}") from err
        return BlobInfo(key=key, size_bytes=int(record["size_bytes"]), sha256=str(record["sha256"]))

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> BlobInfo:
        validate_key(key)
        tmp = self._tmp / f"{os.getpid()}.{os.urandom(8).hex()}.data"
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        return self._commit(key, tmp, hashlib.sha256(data).hexdigest(), len(data))

    def put_file(self, key: str, path: Path | str) -> BlobInfo:
        validate_key(key)
        digest = hashlib.sha256()
        size = 0
        tmp = self._tmp / f"{os.getpid()}.{os.urandom(8).hex()}.data"
        try:
            with open(path, "rb") as src, open(tmp, "wb") as dst:
                for chunk in iter_chunks(src, CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
        except FileNotFoundError as err:
            tmp.unlink(missing_ok=True)
            raise NotFound(f"no file {path} to store as {key}") from err
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return self._commit(key, tmp, digest.hexdigest(), size)

    def _commit(self, key: str, tmp_data: Path, sha256: str, size_bytes: int) -> BlobInfo:
        """Publish a fully written temp file under `key` (conditional create, see module doc)."""
        info = BlobInfo(key=key, size_bytes=size_bytes, sha256=sha256)
        data_path = self.object_path(key)
        meta_path = self._meta_path(key)
        tmp_meta = tmp_data.with_suffix(".json")
        try:
            try:
                data_path.parent.mkdir(parents=True, exist_ok=True)
                meta_path.parent.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError) as err:
                raise Conflict(f"blob key {key} collides with an existing key that is a prefix of it") from err
            if data_path.is_dir():
                raise Conflict(f"blob key {key} collides with existing keys under {key}/")
            tmp_meta.write_text(json.dumps({"sha256": sha256, "size_bytes": size_bytes}), encoding="utf-8")
            try:
                os.link(tmp_meta, meta_path)
            except FileExistsError:
                existing = self._read_meta(key)
                if existing != info:
                    raise Conflict(
                        f"blob {key} already holds other bytes (sha256 {existing.sha256[:12]}…, "
                        f"not {sha256[:12]}…)"
                    ) from None
                if not data_path.exists():  # the first writer is still renaming, or crashed: same bytes
                    os.replace(tmp_data, data_path)
                log.debug("blob %s already stored with the same bytes", key)
                return info
            try:
                os.replace(tmp_data, data_path)
            except OSError:
                meta_path.unlink(missing_ok=True)
                raise
            fsync_dir(data_path.parent)
            fsync_dir(meta_path.parent)
            log.debug("blob %s stored (%d bytes)", key, size_bytes)
            return info
        finally:
            tmp_data.unlink(missing_ok=True)
            tmp_meta.unlink(missing_ok=True)

    # -- reading ---------------------------------------------------------------------------

    def get(self, key: str) -> bytes:
        info = self._read_meta(validate_key(key))
        try:
            data = self.object_path(key).read_bytes()
        except (FileNotFoundError, IsADirectoryError) as err:
            raise NotFound(f"no blob {key} in {self.root}") from err
        check_digest(key, info.sha256, hashlib.sha256(data).hexdigest(), info.size_bytes, len(data))
        return data

    def get_file(self, key: str, path: Path | str) -> BlobInfo:
        info = self._read_meta(validate_key(key))
        target = Path(path)
        tmp = temp_path_beside(target)
        digest = hashlib.sha256()
        size = 0
        try:
            with open(self.object_path(key), "rb") as src, open(tmp, "wb") as dst:
                for chunk in iter_chunks(src, CHUNK_BYTES):
                    digest.update(chunk)
                    size += len(chunk)
                    dst.write(chunk)
                dst.flush()
                os.fsync(dst.fileno())
            check_digest(key, info.sha256, digest.hexdigest(), info.size_bytes, size)
            os.replace(tmp, target)
        except FileNotFoundError as err:
            if not target.parent.is_dir():
                raise NotFound(f"no directory {target.parent} to write {key} into") from err
            raise NotFound(f"no blob {key} in {self.root}") from err
        finally:
            tmp.unlink(missing_ok=True)
        return info

    def stat(self, key: str) -> BlobInfo:
        info = self._read_meta(validate_key(key))
        if not self.object_path(key).is_file():
            raise NotFound(f"no blob {key} in {self.root}")
        return info

    def exists(self, key: str) -> bool:
        validate_key(key)
        return self._meta_path(key).is_file() and self.object_path(key).is_file()

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)
        keys: list[str] = []
        for dirpath, _dirnames, filenames in os.walk(self._objects):
            for name in filenames:
                key = Path(dirpath, name).relative_to(self._objects).as_posix()
                if key.startswith(prefix) and self._meta_path(key).is_file():
                    keys.append(key)
        return sorted(keys)

    def delete(self, key: str) -> None:
        validate_key(key)
        self.object_path(key).unlink(missing_ok=True)
        self._meta_path(key).unlink(missing_ok=True)
        log.debug("blob %s deleted", key)

    def uri(self, key: str) -> str:
        return self.object_path(key).as_uri()

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        """A file:// URL: local files need no signature, so `expires_s` is not enforced."""
        assert expires_s > 0, f"{expires_s=}"
        return self.uri(key)

    def clear_tmp(self) -> int:
        """Remove leftovers of crashed writers from tmp/ (only while no writer runs); returns the count."""
        count = 0
        for entry in self._tmp.iterdir():
            if entry.is_file():
                entry.unlink(missing_ok=True)
                count += 1
            else:
                shutil.rmtree(entry, ignore_errors=True)
        return count

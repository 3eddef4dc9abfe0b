"""Blob store in an S3 bucket (AWS or any S3-compatible server: MinIO, moto, ...).

- The SHA-256 of every object travels as user metadata (`x-amz-meta-sha256`) and is verified
  while the bytes stream in on every read.
- Writes are conditional creates: put_object and complete_multipart_upload carry
  `If-None-Match: *`; on 412 the existing object's SHA-256 decides: same bytes → idempotent
  success, other bytes → Conflict (the object is untouched).
- Files over `multipart_threshold_bytes` go up in parts read from disk, at most
  `max_concurrent_parts` in flight (memory stays near (that + 1) × part size); any failure
  aborts the multipart upload, so no parts are left behind.
- botocore retries with its own policy; around each call (and each part) this module retries
  throttling, 5xx and connection errors with jittered exponential backoff, then raises
  ServiceUnavailable (cannot connect) or TransientError (the service kept failing).
"""
from __future__ import annotations

import hashlib
import logging
import os
import random
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError, NoCredentialsError
from botocore.exceptions import ConnectionError as BotoConnectionError

from storage.blobs.base import (
    CHUNK_BYTES,
    BlobInfo,
    check_digest,
    file_digest,
    temp_path_beside,
    validate_key,
    validate_prefix,
)
from storage.errors import (
    Conflict,
    FoleyError,
    IntegrityError,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
    TransientError,
)
from storage.urls import mask_url, short_reason

log = logging.getLogger(__name__)

T = TypeVar("T")
MiB = 1 << 20
S3_MIN_PART_BYTES = 5 * MiB
S3_MAX_PARTS = 10_000
SHA256_META = "sha256"  # sent as x-amz-meta-sha256
_TRANSIENT_CODES = frozenset(
    {
        "SlowDown", "Throttling", "ThrottlingException", "RequestThrottled", "RequestTimeout",
        "InternalError", "ServiceUnavailable", "ConditionalRequestConflict", "OperationAborted",
    }
)
_NOT_FOUND_CODES = frozenset({"NoSuchKey", "NotFound", "404"})
_DENIED_CODES = frozenset({"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "403"})
# Could not connect, connection dropped, timed out, stream broken mid-body.
_CONNECTION_ERRORS = (BotoConnectionError, HTTPClientError)


@dataclass(frozen=True)
class S3Options:
    """Timeouts, retries and multipart sizes of an S3BlobStore."""

    connect_timeout_s: float = 5.0
    read_timeout_s: float = 60.0
    botocore_retry_mode: str = "standard"  # or "adaptive" (client-side rate limiting)
    botocore_max_attempts: int = 3  # per HTTP call, first try included
    retry_attempts: int = 4  # ours, around each call / part, first try included
    retry_base_delay_s: float = 0.25
    retry_max_delay_s: float = 8.0
    multipart_threshold_bytes: int = 16 * MiB
    part_size_bytes: int = 16 * MiB
    max_concurrent_parts: int = 4  # parts in flight; memory ≈ (this + 1) × part_size_bytes

    def __post_init__(self) -> None:
        assert self.part_size_bytes >= S3_MIN_PART_BYTES, f"{self.part_size_bytes=} < S3's 5 MiB minimum"
        assert self.max_concurrent_parts >= 1, f"{self.max_concurrent_parts=}"
        assert self.retry_attempts >= 1 and self.botocore_max_attempts >= 1, (
            f"{self.retry_attempts=} {self.botocore_max_attempts=}"
        )
        assert self.botocore_retry_mode in ("standard", "adaptive", "legacy"), f"{self.botocore_retry_mode=}"


class _AlreadyExists(Exception):
    """A conditional create found the key taken (HTTP 412); settled by comparing SHA-256s."""


def _error_code(err: ClientError) -> tuple[str, int]:
    code = str(err.response.get("Error", {}).get("Code", ""))
    status = int(err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _is_retryable(err: BaseException) -> bool:
    if isinstance(err, _CONNECTION_ERRORS):
        return True
    if isinstance(err, ClientError):
        code, status = _error_code(err)
        return status >= 500 or status == 429 or code in _TRANSIENT_CODES
    return False


class S3BlobStore:
    """BlobStore over `s3://bucket/prefix`."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        options: S3Options | None = None,
        client: Any | None = None,
    ) -> None:
        if not bucket:
            raise InvalidInput("S3 store needs a bucket: s3://bucket/prefix")
        prefix = prefix.strip("/")
        if prefix:
            validate_key(prefix)
        self.bucket = bucket
        self.prefix = f"{prefix}/" if prefix else ""
        self.endpoint_url = endpoint_url
        self.options = options or S3Options()
        self.client = client if client is not None else self._make_client()
        self._where = mask_url(endpoint_url) if endpoint_url else "AWS S3"

    def __repr__(self) -> str:
        return f"S3BlobStore(s3://{self.bucket}/{self.prefix}, endpoint={self._where})"

    def _make_client(self) -> Any:
        opts = self.options
        config = Config(
            connect_timeout=opts.connect_timeout_s,
            read_timeout=opts.read_timeout_s,
            retries={"mode": opts.botocore_retry_mode, "max_attempts": opts.botocore_max_attempts},
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            signature_version="s3v4",
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        return boto3.session.Session().client("s3", endpoint_url=self.endpoint_url, config=config)

    def _full(self, key: str) -> str:
        return self.prefix + validate_key(key)

    # -- errors and retries ----------------------------------------------------------------

    def _translate(self, err: BaseException, what: str, key: str | None) -> BaseException:
        """The FoleyError a boto/botocore error means, with a one-line message."""
        target = f"s3://{self.bucket}/{self.prefix}{key or ''}"
        if isinstance(err, _CONNECTION_ERRORS):
            return ServiceUnavailable(f"cannot reach S3 endpoint {self._where} ({what} {target}): {short_reason(err)}")
        if isinstance(err, NoCredentialsError):
            return InvalidInput("no AWS credentials found (set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY)")
        if isinstance(err, ClientError):
            code, status = _error_code(err)
            if code in ("PreconditionFailed", "412") or status == 412:
                return _AlreadyExists(target)
            if code == "NoSuchBucket":
                return NotFound(f"no bucket {self.bucket} at {self._where}")
            if code in _NOT_FOUND_CODES or status == 404:
                return NotFound(f"no blob {key} in s3://{self.bucket}/{self.prefix}")
            if code in _DENIED_CODES or status == 403:
                return FoleyError(f"S3 refused {what} {target} ({code or status}): check credentials and policy")
            if _is_retryable(err):
                return TransientError(f"S3 {what} {target} kept failing: {code or status}")
            return FoleyError(f"S3 {what} {target} failed: {code or status}: {short_reason(err)}")
        if isinstance(err, BotoCoreError):
            return FoleyError(f"S3 {what} {target} failed: {short_reason(err)}")
        return err

    def _retry(self, what: str, key: str | None, call: Callable[[], T]) -> T:
        """Run `call`, retrying transient failures with jittered exponential backoff."""
        opts = self.options
        for attempt in range(1, opts.retry_attempts + 1):
            try:
                return call()
            except (ClientError, BotoCoreError) as err:
                if not _is_retryable(err) or attempt == opts.retry_attempts:
                    translated = self._translate(err, what, key)
                    if translated is err:
                        raise
                    raise translated from err
                delay_s = min(opts.retry_max_delay_s, opts.retry_base_delay_s * 2 ** (attempt - 1))
                delay_s *= random.uniform(0.5, 1.0)
                log.warning(
                    "S3 %s %s failed (attempt %d/%d, %s); retrying in %.2f s",
                    what, key, attempt, opts.retry_attempts, short_reason(err), delay_s,
                )
                time.sleep(delay_s)
        raise AssertionError("unreachable")  # pragma: no cover

    def _settle_existing(self, info: BlobInfo) -> BlobInfo:
        """The key is taken: same bytes → idempotent success, other bytes → Conflict."""
        existing = self.stat(info.key)
        if existing.sha256 != info.sha256 or existing.size_bytes != info.size_bytes:
            raise Conflict(
                f"blob {info.key} already holds other bytes (sha256 {existing.sha256[:12]}…, not {info.sha256[:12]}…)"
            )
        log.debug("blob %s already stored with the same bytes", info.key)
        return info

    # -- writing ---------------------------------------------------------------------------

    def put(self, key: str, data: bytes) -> BlobInfo:
        full = self._full(key)
        info = BlobInfo(key=key, size_bytes=len(data), sha256=hashlib.sha256(data).hexdigest())
        try:
            self._retry(
                "put",
                key,
                lambda: self.client.put_object(
                    Bucket=self.bucket, Key=full, Body=data, Metadata={SHA256_META: info.sha256}, IfNoneMatch="*"
                ),
            )
        except _AlreadyExists:
            return self._settle_existing(info)
        log.debug("blob %s stored (%d bytes)", key, info.size_bytes)
        return info

    def put_file(self, key: str, path: Path | str) -> BlobInfo:
        """Store a file; below the multipart threshold in one request (the file is read into
        memory, at most `multipart_threshold_bytes`), above it in parts streamed from disk."""
        validate_key(key)
        try:
            size_bytes = os.path.getsize(path)
        except FileNotFoundError as err:
            raise NotFound(f"no file {path} to store as {key}") from err
        if size_bytes < self.options.multipart_threshold_bytes:
            with open(path, "rb") as f:
                data = f.read()
            return self.put(key, data)
        sha256, size_bytes = file_digest(path)
        info = BlobInfo(key=key, size_bytes=size_bytes, sha256=sha256)
        try:
            return self._settle_existing(info)  # already there: skip the upload (or Conflict)
        except NotFound:
            pass
        return self._put_multipart(info, Path(path))

    def _put_multipart(self, info: BlobInfo, path: Path) -> BlobInfo:
        key, full = info.key, self._full(info.key)
        part_size = max(self.options.part_size_bytes, -(-info.size_bytes // S3_MAX_PARTS))
        upload_id: str = self._retry(
            "start multipart upload",
            key,
            lambda: self.client.create_multipart_upload(
                Bucket=self.bucket, Key=full, Metadata={SHA256_META: info.sha256}
            )["UploadId"],
        )
        log.debug("blob %s: multipart upload %s of %d bytes started", key, upload_id, info.size_bytes)
        try:
            parts = self._upload_parts(info, path, upload_id, part_size)
            self._retry(
                "complete multipart upload",
                key,
                lambda: self.client.complete_multipart_upload(
                    Bucket=self.bucket, Key=full, UploadId=upload_id, MultipartUpload={"Parts": parts}, IfNoneMatch="*"
                ),
            )
        except _AlreadyExists:
            self._abort(key, upload_id)
            return self._settle_existing(info)
        except BaseException:
            self._abort(key, upload_id)
            raise
        log.debug("blob %s stored in %d parts (%d bytes)", key, len(parts), info.size_bytes)
        return info

    def _upload_parts(self, info: BlobInfo, path: Path, upload_id: str, part_size: int) -> list[dict[str, Any]]:
        """Read the file part by part and upload up to `max_concurrent_parts` at once.

        Re-hashes what it reads: if the file changed since it was hashed, raise InvalidInput
        (the caller aborts the upload). Returns the parts list for completion.
        """
        key, full = info.key, self._full(info.key)

        def upload(body: bytes, number: int) -> str:
            response = self.client.upload_part(
                Bucket=self.bucket, Key=full, UploadId=upload_id, PartNumber=number, Body=body
            )
            return str(response["ETag"])

        etags: dict[int, str] = {}
        in_flight: dict[Future[str], int] = {}
        digest = hashlib.sha256()
        sent = 0
        pool = ThreadPoolExecutor(max_workers=self.options.max_concurrent_parts, thread_name_prefix="s3-part")
        try:
            with open(path, "rb") as f:
                while chunk := f.read(part_size):
                    digest.update(chunk)
                    sent += len(chunk)
                    number = len(etags) + len(in_flight) + 1
                    while len(in_flight) >= self.options.max_concurrent_parts:
                        done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                        for future in done:
                            etags[in_flight.pop(future)] = future.result()
                    future = pool.submit(self._retry, f"upload part {number} of", key, partial(upload, chunk, number))
                    in_flight[future] = number
            for future in list(in_flight):
                etags[in_flight.pop(future)] = future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
        if digest.hexdigest() != info.sha256 or sent != info.size_bytes:
            raise InvalidInput(f"{path} changed while it was being stored as {key}")
        return [{"ETag": etags[n], "PartNumber": n} for n in sorted(etags)]

    def _abort(self, key: str, upload_id: str) -> None:
        """Abort a multipart upload so its parts do not linger (best effort, logged)."""
        try:
            self._retry(
                "abort multipart upload",
                key,
                lambda: self.client.abort_multipart_upload(Bucket=self.bucket, Key=self._full(key), UploadId=upload_id),
            )
            log.info("blob %s: multipart upload %s aborted", key, upload_id)
        except NotFound:
            pass  # already completed or aborted
        except FoleyError as err:
            log.error("blob %s: could not abort multipart upload %s: %s", key, upload_id, err)

    # -- reading ---------------------------------------------------------------------------

    def _open(self, key: str) -> tuple[Any, str, int]:
        response = self.client.get_object(Bucket=self.bucket, Key=self._full(key))
        expected = response.get("Metadata", {}).get(SHA256_META)
        if not expected:
            response["Body"].close()
            raise IntegrityError(f"blob {key} has no recorded sha256")
        return response["Body"], str(expected), int(response["ContentLength"])

    def get(self, key: str) -> bytes:
        validate_key(key)

        def download() -> bytes:
            body, expected, size = self._open(key)
            digest = hashlib.sha256()
            chunks: list[bytes] = []
            with body:
                for chunk in body.iter_chunks(CHUNK_BYTES):
                    digest.update(chunk)
                    chunks.append(chunk)
            data = b"".join(chunks)
            check_digest(key, expected, digest.hexdigest(), size, len(data))
            return data

        return self._retry("get", key, download)

    def get_file(self, key: str, path: Path | str) -> BlobInfo:
        validate_key(key)
        target = Path(path)
        if not target.parent.is_dir():
            raise NotFound(f"no directory {target.parent} to write {key} into")

        def download() -> BlobInfo:
            body, expected, size = self._open(key)
            tmp = temp_path_beside(target)
            digest = hashlib.sha256()
            written = 0
            try:
                with body, open(tmp, "wb") as f:
                    for chunk in body.iter_chunks(CHUNK_BYTES):
                        digest.update(chunk)
                        written += len(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
                check_digest(key, expected, digest.hexdigest(), size, written)
                os.replace(tmp, target)
            finally:
                tmp.unlink(missing_ok=True)
            return BlobInfo(key=key, size_bytes=size, sha256=expected)

        return self._retry("get", key, download)

    def stat(self, key: str) -> BlobInfo:
        full = self._full(key)
        head = self._retry("stat", key, lambda: self.client.head_object(Bucket=self.bucket, Key=full))
        sha256 = head.get("Metadata", {}).get(SHA256_META)
        if not sha256:
            raise IntegrityError(f"blob {key} has no recorded sha256")
        return BlobInfo(key=key, size_bytes=int(head["ContentLength"]), sha256=str(sha256))

    def exists(self, key: str) -> bool:
        full = self._full(key)
        try:
            self._retry("stat", key, lambda: self.client.head_object(Bucket=self.bucket, Key=full))
        except NotFound:
            return False
        return True

    def list(self, prefix: str = "") -> list[str]:
        validate_prefix(prefix)

        def listing() -> list[str]:
            keys: list[str] = []
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix + prefix):
                keys.extend(item["Key"][len(self.prefix):] for item in page.get("Contents", []))
            return sorted(keys)

        return self._retry("list", prefix, listing)

    def delete(self, key: str) -> None:
        full = self._full(key)
        self._retry("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=full))
        log.debug("blob %s deleted", key)

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{self._full(key)}"

    def presigned_url(self, key: str, expires_s: int = 3600) -> str:
        assert 0 < expires_s <= 7 * 24 * 3600, f"{expires_s=} (S3 allows up to 7 days)"
        full = self._full(key)
        return str(
            self._retry(
                "presign",
                key,
                lambda: self.client.generate_presigned_url(
                    "get_object", Params={"Bucket": self.bucket, "Key": full}, ExpiresIn=expires_s
                ),
            )
        )

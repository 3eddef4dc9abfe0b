"""S3BlobStore against the real moto server: corruption, multipart, failures, retries, outages."""
from __future__ import annotations

import hashlib
import os
import threading
import time
import tracemalloc
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from storage.blobs import S3BlobStore, S3Options, open_store
from storage.errors import IntegrityError, ServiceUnavailable

MiB = 1 << 20


def _big_file(path: Path, size_bytes: int) -> str:
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        chunk = os.urandom(4 * MiB)
        for offset in range(0, size_bytes, len(chunk)):
            piece = chunk[: min(len(chunk), size_bytes - offset)]
            piece = offset.to_bytes(8, "little") + piece[8:]  # every chunk differs
            digest.update(piece)
            f.write(piece)
    return digest.hexdigest()


def test_sha256_travels_in_object_metadata(s3_store: S3BlobStore, s3_client: Any) -> None:
    info = s3_store.put("k/v", b"hello")
    head = s3_client.head_object(Bucket=s3_store.bucket, Key="farm/store/k/v")
    assert head["Metadata"]["sha256"] == info.sha256 == hashlib.sha256(b"hello").hexdigest()


def test_object_overwritten_behind_the_stores_back_is_detected(
    s3_store: S3BlobStore, s3_client: Any, tmp_path: Path
) -> None:
    info = s3_store.put("jobs/j/latents.bin", b"A" * 5000)
    s3_client.put_object(
        Bucket=s3_store.bucket, Key="farm/store/jobs/j/latents.bin", Body=b"B" * 5000, Metadata={"sha256": info.sha256}
    )
    with pytest.raises(IntegrityError, match="jobs/j/latents.bin"):
        s3_store.get("jobs/j/latents.bin")
    with pytest.raises(IntegrityError, match="jobs/j/latents.bin"):
        s3_store.get_file("jobs/j/latents.bin", tmp_path / "out.bin")
    assert list(tmp_path.iterdir()) == []


def test_object_without_recorded_sha_is_refused(s3_store: S3BlobStore, s3_client: Any) -> None:
    s3_client.put_object(Bucket=s3_store.bucket, Key="farm/store/foreign", Body=b"x")
    with pytest.raises(IntegrityError, match="foreign"):
        s3_store.get("foreign")


def test_100_mb_put_file_goes_multipart_and_round_trips(
    s3_endpoint: str, s3_bucket: str, s3_client: Any, tmp_path: Path
) -> None:
    options = S3Options(part_size_bytes=8 * MiB, multipart_threshold_bytes=8 * MiB, max_concurrent_parts=3)
    s3_store = S3BlobStore(s3_bucket, "farm/store", endpoint_url=s3_endpoint, options=options)
    src = tmp_path / "master.mov"
    sha = _big_file(src, 100 * MiB)
    calls: list[str] = []
    s3_store.client.meta.events.register("before-call.s3.*", lambda model, **_: calls.append(model.name))
    tracemalloc.start()
    try:
        info = s3_store.put_file("inputs/master.mov", src)
        upload_peak_bytes = tracemalloc.get_traced_memory()[1]
        tracemalloc.reset_peak()
        out = tmp_path / "back.mov"
        assert s3_store.get_file("inputs/master.mov", out) == info
        download_peak_bytes = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert (info.size_bytes, info.sha256) == (100 * MiB, sha)
    # parts in flight + the one being read, each possibly copied once by botocore: far below 100 MiB
    assert upload_peak_bytes < 2 * (3 + 1) * 8 * MiB and download_peak_bytes < 20 * MiB, (
        f"streamed, not whole-file: {upload_peak_bytes=} {download_peak_bytes=}"
    )
    assert calls.count("UploadPart") == 13, f"{calls=}"
    assert "CompleteMultipartUpload" in calls and "PutObject" not in calls, f"{calls=}"
    head = s3_client.head_object(Bucket=s3_store.bucket, Key="farm/store/inputs/master.mov")
    assert head["Metadata"]["sha256"] == sha
    assert out.stat().st_size == 100 * MiB
    src.unlink()
    # the same bytes again are idempotent without re-uploading
    calls.clear()
    out.rename(src)
    assert s3_store.put_file("inputs/master.mov", src) == info
    assert "UploadPart" not in calls, f"{calls=}"


def test_failure_mid_upload_leaves_no_object_and_no_dangling_upload(
    s3_store: S3BlobStore, s3_client: Any, tmp_path: Path
) -> None:
    src = tmp_path / "big.bin"
    _big_file(src, 40 * MiB)
    parts_seen = 0
    lock = threading.Lock()

    def fail_second_part(**_: Any) -> None:
        nonlocal parts_seen
        with lock:
            parts_seen += 1
            if parts_seen == 2:
                raise RuntimeError("disk pulled mid-upload")

    s3_store.client.meta.events.register("before-call.s3.UploadPart", fail_second_part)
    with pytest.raises(RuntimeError, match="disk pulled"):
        s3_store.put_file("inputs/big.bin", src)
    assert not s3_store.exists("inputs/big.bin")
    assert s3_client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


def test_transient_part_failure_is_retried(s3_store: S3BlobStore, s3_client: Any, tmp_path: Path) -> None:
    src = tmp_path / "big.bin"
    sha = _big_file(src, 33 * MiB)
    failures = 0
    lock = threading.Lock()

    def flaky(**_: Any) -> None:
        nonlocal failures
        with lock:
            if failures < 2:
                failures += 1
                raise EndpointConnectionError(endpoint_url="http://flaky")

    s3_store.client.meta.events.register("before-call.s3.UploadPart", flaky)
    assert s3_store.put_file("inputs/big.bin", src).sha256 == sha
    assert failures == 2
    assert s3_client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


def test_multipart_conflict_with_other_bytes_is_refused_and_aborted(
    s3_store: S3BlobStore, s3_client: Any, tmp_path: Path
) -> None:
    from storage.errors import Conflict

    src = tmp_path / "big.bin"
    _big_file(src, 17 * MiB)
    s3_store.put("inputs/big.bin", b"someone else's bytes")
    with pytest.raises(Conflict):
        s3_store.put_file("inputs/big.bin", src)
    # and when the other writer lands between our check and our completion:
    s3_store.delete("inputs/big.bin")

    def other_writer_lands_first(**_: Any) -> None:
        s3_client.put_object(
            Bucket=s3_store.bucket, Key="farm/store/inputs/big.bin", Body=b"late", Metadata={"sha256": "0" * 64}
        )

    s3_store.client.meta.events.register("before-call.s3.CompleteMultipartUpload", other_writer_lands_first)
    with pytest.raises(Conflict):
        s3_store.put_file("inputs/big.bin", src)
    assert s3_client.get_object(Bucket=s3_store.bucket, Key="farm/store/inputs/big.bin")["Body"].read() == b"late"
    assert s3_client.list_multipart_uploads(Bucket=s3_store.bucket).get("Uploads", []) == []


def test_unreachable_endpoint_is_service_unavailable_quickly(tmp_path: Path) -> None:
    options = S3Options(connect_timeout_s=1, read_timeout_s=2, botocore_max_attempts=1, retry_attempts=2,
                        retry_base_delay_s=0.01)
    store = open_store("s3://bucket/prefix", "http://user:hunter2@127.0.0.1:1", s3_options=options)
    started = time.monotonic()
    for call in (lambda: store.put("k", b"x"), lambda: store.get("k"), lambda: store.exists("k")):
        with pytest.raises(ServiceUnavailable, match=r"cannot reach S3 endpoint http://user:\*\*\*@127.0.0.1:1") as e:
            call()
        assert "hunter2" not in str(e.value) and "\n" not in str(e.value)
    assert time.monotonic() - started < 10


def test_missing_bucket_is_not_found(s3_endpoint: str) -> None:
    from storage.errors import NotFound

    store = open_store("s3://no-such-bucket-for-foley/x", s3_endpoint)
    with pytest.raises(NotFound, match="no-such-bucket-for-foley"):
        store.put("k", b"x")

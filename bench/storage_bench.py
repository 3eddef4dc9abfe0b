"""Blob store throughput: put_file / get_file of one large object, S3 (e.g. the local moto
server) and, for reference, a local directory store.

    python bench/storage_bench.py --endpoint http://127.0.0.1:55000 --size-mib 100 --repeats 3

Prints a table of MB/s (1 MB = 10^6 bytes), best and median over the repeats. Needs AWS
credentials in the environment (any values for moto). Creates and removes its own bucket.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from storage.blobs import BlobStore, LocalBlobStore, S3BlobStore, S3Options  # noqa: E402
from storage.blobs.base import file_digest  # noqa: E402

MiB = 1 << 20


@dataclass(frozen=True)
class Row:
    store: str
    op: str
    size_bytes: int
    seconds: list[float]

    def mb_per_s(self, seconds: float) -> float:
        return self.size_bytes / seconds / 1e6


def _write_random(path: Path, size_bytes: int) -> None:
    block = os.urandom(4 * MiB)
    with open(path, "wb") as f:
        for offset in range(0, size_bytes, len(block)):
            f.write(offset.to_bytes(8, "little") + block[8 : min(len(block), size_bytes - offset)])


def _timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def bench_store(name: str, store: BlobStore, src: Path, workdir: Path, repeats: int) -> list[Row]:
    size = src.stat().st_size
    sha, _ = file_digest(src)
    put_s, get_s = [], []
    for n in range(repeats):
        key = f"bench/{n}/object.bin"
        out = workdir / f"out-{n}.bin"
        put_s.append(_timed(partial(store.put_file, key, src)))
        get_s.append(_timed(partial(store.get_file, key, out)))
        assert file_digest(out)[0] == sha, f"{key=} round trip changed the bytes"
        out.unlink()
        store.delete(key)
    return [Row(name, "put_file", size, put_s), Row(name, "get_file", size, get_s)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint", default=os.environ.get("FOLEY_TEST_S3_ENDPOINT", "http://127.0.0.1:55000"))
    parser.add_argument("--size-mib", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--part-mib", type=int, default=16)
    args = parser.parse_args(argv)
    moto_credentials = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1"}
    for var, value in moto_credentials.items():
        os.environ.setdefault(var, value)

    client = boto3.client("s3", endpoint_url=args.endpoint)
    bucket = f"foley-bench-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=bucket)
    rows: list[Row] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            src = workdir / "input.bin"
            _write_random(src, args.size_mib * MiB)
            options = S3Options(part_size_bytes=args.part_mib * MiB, multipart_threshold_bytes=args.part_mib * MiB)
            s3 = S3BlobStore(bucket, "bench", endpoint_url=args.endpoint, options=options)
            rows += bench_store(f"s3 ({args.endpoint})", s3, src, workdir, args.repeats)
            rows += bench_store("local dir", LocalBlobStore(workdir / "store"), src, workdir, args.repeats)
    finally:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for item in page.get("Contents", []):
                client.delete_object(Bucket=bucket, Key=item["Key"])
        client.delete_bucket(Bucket=bucket)

    print(f"object: {args.size_mib} MiB, S3 parts: {args.part_mib} MiB, repeats: {args.repeats}")
    print(f"{'store':<36} {'op':<9} {'best MB/s':>10} {'median MB/s':>12}")
    for row in rows:
        best = row.mb_per_s(min(row.seconds))
        median = row.mb_per_s(statistics.median(row.seconds))
        print(f"{row.store:<36} {row.op:<9} {best:>10.1f} {median:>12.1f}")


if __name__ == "__main__":
    main()

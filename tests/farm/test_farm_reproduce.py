"""`foley audit reproduce` of a farm job: rendered by two real Celery workers over Redis into
PostgreSQL and S3 (moto), then re-rendered from its record alone and compared byte for byte."""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import boto3
import pytest

if TYPE_CHECKING:
    from tests.farm.conftest import Farm

pytestmark = pytest.mark.slow


def _objects(farm: Farm) -> dict[str, str]:
    """Every object in the farm's bucket: key → ETag."""
    client = boto3.client("s3", endpoint_url=farm.s3_endpoint)
    return {o["Key"]: o["ETag"] for page in client.get_paginator("list_objects_v2").paginate(Bucket=farm.bucket)
            for o in page.get("Contents", [])}


def test_reproduce_of_a_farm_job_reports_identical_bytes(farm: Farm, toy: Path, embedded_output: bytes) -> None:
    farm.start_worker("w1", wait=False)
    farm.start_worker("w2")
    farm.wait_ready("w1")
    job_id = farm.submit(toy, "--project", "ep7", "--user", "ann")
    job = farm.wait_state(job_id, {"done", "failed"}, timeout_s=240)
    assert job.state == "done", job.error
    status = json.loads(farm.foley("status", job_id, "--json").stdout)
    recorded = {o["kind"]: o for o in status["outputs"]}
    assert set(recorded) == {"output", "stem"}
    output_uri = recorded["output"]["uri"]
    assert output_uri.startswith(f"s3://{farm.bucket}/farm/") and job.input_uri.startswith(f"s3://{farm.bucket}/")
    assert farm.s3_object(output_uri)[0] == embedded_output, "the farm made what `foley render` makes"
    before = _objects(farm)

    # The whole job: input fetched from S3 and checked against its recorded SHA-256, rendered again
    # in a scratch directory, output and stem compared with the record and with the S3 copies.
    proc = farm.foley("audit", "reproduce", job_id, "-q", check=False, timeout=900)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[-1] == "identical"
    assert f"job {job_id}: input {job.input_uri} has its recorded sha256 {job.input_sha256}" in lines
    for kind in ("output", "stem"):
        key = recorded[kind]["uri"].removeprefix(f"s3://{farm.bucket}/farm/")
        assert f"{kind} {key}: identical (sha256 {recorded[kind]['sha256']})" in lines, (kind, lines)
    assert not any("not compared" in line or "note:" in line for line in lines), lines

    # One window: its planned batch rendered again, its latents compared with the S3 blob.
    windows = farm.windows(job_id)
    last = windows[-1]
    proc = farm.foley("audit", "reproduce", job_id, "--window", str(last.index), "-q", check=False, timeout=900)
    assert (proc.returncode, proc.stderr) == (0, ""), proc.stdout + proc.stderr
    assert f"window {last.index} latents: identical" in proc.stdout and proc.stdout.splitlines()[-1] == "identical"

    assert _objects(farm) == before, "reproducing wrote nothing to the farm's store"
    assert len(farm.windows(job_id)) == len(windows) and farm.sql("SELECT count(*) FROM jobs")[0][0] == 1, (
        "reproducing recorded nothing in the farm's database")

    # The S3 copy's bytes changed behind the store's back (its recorded checksum left as it was):
    # the reproduction still matches the record, but the stored copy is named as a difference.
    data, meta = farm.s3_object(output_uri)
    bucket, _, key = output_uri.removeprefix("s3://").partition("/")
    tampered = bytearray(data)
    tampered[len(tampered) // 2] ^= 0xFF
    client = boto3.client("s3", endpoint_url=farm.s3_endpoint)
    client.put_object(Bucket=bucket, Key=key, Body=bytes(tampered), Metadata=meta)
    try:
        proc = farm.foley("audit", "reproduce", job_id, "-q", check=False, timeout=900)
    finally:
        client.put_object(Bucket=bucket, Key=key, Body=data, Metadata=meta)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert proc.stderr == f"foley: error: reproduce: job {job_id} differs from its record (1 difference)\n"
    (line,) = [line for line in proc.stdout.splitlines() if ": differs: " in line]
    assert "the reproduction matches the record" in line and "corrupt in the store" in line, line

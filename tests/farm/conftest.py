"""A real farm per test: PostgreSQL database, Redis db number, S3 bucket, Celery worker processes.

Workers are `python -m render_farm worker` subprocesses with the FOLEY_* environment a studio
would set; the test drives them through the `foley` CLI and checks the SQL state directly.
"""
from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from sqlalchemy import text

from storage.db import make_engine, make_sessionmaker
from tests.pg_scratch import scratch_database

FOLEY = [sys.executable, "-m", "render_farm"]
# Tiny, fast renders: 1–2 s windows, one window per batch (so pause/cancel act per window).
SPEC = ["--steps", "2", "--window-s", "1:2", "--overlap-s", "0.25", "--batch", "1", "--seed", "3"]
LEASE_S = 8.0
_redis_dbs = itertools.count(1)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight tiny checkpoint (the trained one is not committed yet)."""
    import torch

    from foley_model.checkpoint import save_checkpoint
    from foley_model.configs import get_config
    from foley_model.model import FoleyModel

    torch.manual_seed(0)
    out = tmp_path_factory.mktemp("ckpt") / "tiny-random"
    save_checkpoint(FoleyModel(get_config("tiny")), out)
    return out


@pytest.fixture(scope="session")
def toy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6 s toy video with a cut: five windows of 1–2 s."""
    from render_farm.toyvideo import write_toy_video

    return write_toy_video(tmp_path_factory.mktemp("toy") / "toy.mp4", 6.0, seed=1, size=(256, 144), segment_s=3.0).path


@pytest.fixture(scope="session")
def embedded_output(toy: Path, checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """`foley render` of the toy video in-process (no broker, SQLite, local store): the reference."""
    d = tmp_path_factory.mktemp("embedded")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
    env["FOLEY_DATA_DIR"] = str(d / "data")
    out = d / "out.mp4"
    proc = subprocess.run(FOLEY + ["render", str(toy), "-o", str(out), "--model", str(checkpoint), "--quiet", *SPEC],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr
    return out.read_bytes()


@dataclass
class Farm:
    env: dict[str, str]
    tmp: Path
    checkpoint: Path
    database_url: str
    bucket: str
    s3_endpoint: str
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.engine = make_engine(self.database_url)
        self.sessions = make_sessionmaker(self.engine)

    def foley(self, *args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        proc = subprocess.run(FOLEY + list(args), capture_output=True, text=True, env=self.env, timeout=timeout)
        if check:
            assert proc.returncode == 0, f"foley {' '.join(args)}: {proc.stderr}"
        return proc

    def submit(self, video: Path, *extra: str) -> str:
        proc = self.foley("submit", str(video), "--model", str(self.checkpoint), *SPEC, *extra)
        return proc.stdout.strip().splitlines()[-1]

    def start_worker(self, name: str, queues: str = "cpu,gpu-episode,gpu-catalog", wait: bool = True,
                     stall_s: float = 20, lease_s: float = LEASE_S) -> subprocess.Popen:
        log = open(self.tmp / f"{name}.log", "w")
        proc = subprocess.Popen(FOLEY + ["worker", "-Q", queues, "-n", f"{name}@%h", "--lease-s", str(lease_s),
                                         "--stall-s", str(stall_s), "-l", "INFO"],
                                env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs[name] = proc
        if wait:
            self.wait_ready(name)
        return proc

    def wait_ready(self, name: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if "ready." in (self.tmp / f"{name}.log").read_text(errors="replace"):
                return
            assert self.procs[name].poll() is None, (self.tmp / f"{name}.log").read_text()
            time.sleep(0.2)
        raise AssertionError(f"worker {name} not ready: {(self.tmp / f'{name}.log').read_text()}")

    def start_beat(self, interval_s: float = 1.0) -> subprocess.Popen:
        log = open(self.tmp / "beat.log", "w")
        proc = subprocess.Popen(FOLEY + ["beat", "--interval", str(interval_s), "--schedule", str(self.tmp / "beat-schedule"),
                                         "-l", "INFO"], env=self.env, stdout=log, stderr=subprocess.STDOUT)
        self.procs["beat"] = proc
        return proc

    def client(self) -> Any:
        """An in-process client context (no CLI start-up delay, for actions that race the workers)."""
        if not hasattr(self, "_client"):
            from render_farm.config import Settings
            from render_farm.farm_ops import client_context

            self._client = client_context(Settings.from_env(self.env))
        return self._client

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def job(self, job_id: str) -> Any:
        return self.sql("SELECT * FROM jobs WHERE id = :id", id=job_id)[0]

    def windows(self, job_id: str) -> list[Any]:
        return self.sql('SELECT * FROM windows WHERE job_id = :id ORDER BY "index"', id=job_id)

    def wait_until(self, predicate, timeout_s: float = 180, poll_s: float = 0.05, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(poll_s)
        raise AssertionError(f"timed out waiting for {what}; logs in {self.tmp}")

    def wait_state(self, job_id: str, states: set[str], timeout_s: float = 180) -> Any:
        return self.wait_until(lambda: self.job(job_id).state in states and self.job(job_id), timeout_s,
                               poll_s=0.2, what=f"job {job_id} in {states}")

    def s3_object(self, uri: str) -> tuple[bytes, dict[str, str]]:
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        obj = boto3.client("s3", endpoint_url=self.s3_endpoint).get_object(Bucket=bucket, Key=key)
        return obj["Body"].read(), obj["Metadata"]

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.engine.dispose()


@pytest.fixture
def farm_db(pg_url: str) -> Iterator[str]:
    """A new PostgreSQL database migrated to head (`foley db upgrade`), dropped after the test."""
    import migrations

    with scratch_database(pg_url, "foley_farm") as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture
def farm_bucket(s3_endpoint: str) -> Iterator[str]:
    client = boto3.client("s3", endpoint_url=s3_endpoint)
    name = f"foley-farm-{uuid.uuid4().hex[:16]}"
    client.create_bucket(Bucket=name)
    yield name
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            client.delete_object(Bucket=name, Key=item["Key"])
    client.delete_bucket(Bucket=name)


@pytest.fixture
def farm_broker(redis_url: str) -> Iterator[str]:
    """A Redis db number of its own (1–15), emptied before and after the test."""
    db = next(_redis_dbs) % 15 + 1
    url = redis_url.rsplit("/", 1)[0] + f"/{db}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    yield url
    client.flushdb()
    client.close()


@pytest.fixture
def farm(farm_db: str, farm_broker: str, farm_bucket: str, s3_endpoint: str, checkpoint: Path,
         tmp_path: Path) -> Iterator[Farm]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
    env.update(FOLEY_DATABASE_URL=farm_db, FOLEY_BROKER_URL=farm_broker, FOLEY_STORE=f"s3://{farm_bucket}/farm",
               FOLEY_S3_ENDPOINT_URL=s3_endpoint, FOLEY_DATA_DIR=str(tmp_path / "data"),
               AWS_ACCESS_KEY_ID=os.environ.get("AWS_ACCESS_KEY_ID", "test"),
               AWS_SECRET_ACCESS_KEY=os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
               AWS_DEFAULT_REGION=os.environ.get("AWS_DEFAULT_REGION", "us-east-1"))
    f = Farm(env=env, tmp=tmp_path, checkpoint=checkpoint, database_url=farm_db, bucket=farm_bucket,
             s3_endpoint=s3_endpoint)
    yield f
    f.stop()

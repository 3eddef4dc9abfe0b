"""Fixtures for audit tests: migrated databases (SQLite file, PostgreSQL database) with the
append-only triggers, a local blob store in a temp dir, and an S3 store on the moto server."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy.orm import Session, sessionmaker

import migrations
from storage.blobs import LocalBlobStore, S3BlobStore, S3Options
from storage.db import make_engine, make_sessionmaker
from tests.pg_scratch import scratch_database


@pytest.fixture
def pg_migrated_url(pg_url: str) -> Iterator[str]:
    """A new PostgreSQL database migrated to head, dropped after the test."""
    with scratch_database(pg_url, "foley_audit") as url:
        migrations.upgrade(url)
        yield url


@pytest.fixture
def sqlite_migrated_url(tmp_path: Path) -> str:
    """A new SQLite file migrated to head."""
    url = f"sqlite:///{tmp_path / 'db' / 'foley.db'}"
    migrations.upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test runs once on SQLite and once on PostgreSQL, both migrated to head."""
    return str(request.getfixturevalue("sqlite_migrated_url" if request.param == "sqlite" else "pg_migrated_url"))


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(db_url)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def local_store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "store")


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    """A plain boto3 client on the test S3 server (to act behind a store's back)."""
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    name = f"foley-audit-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=item["Key"])
    s3_client.delete_bucket(Bucket=name)


FAST_S3 = S3Options(retry_base_delay_s=0.01, retry_max_delay_s=0.05, connect_timeout_s=2, read_timeout_s=30)


@pytest.fixture
def s3_store(s3_endpoint: str, s3_bucket: str) -> S3BlobStore:
    return S3BlobStore(s3_bucket, "farm/store", endpoint_url=s3_endpoint, options=FAST_S3)

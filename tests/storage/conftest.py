"""Fixtures for storage tests: a throwaway database per test (SQLite and PostgreSQL) and a
fresh S3 bucket per test on the real moto server."""
from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import S3BlobStore, S3Options
from storage.db import make_engine, make_sessionmaker
from storage.models import Base
from tests.pg_scratch import scratch_database


@pytest.fixture
def pg_db_url(pg_url: str) -> Iterator[str]:
    """URL of a new, empty PostgreSQL database, dropped after the test."""
    with scratch_database(pg_url, "foley_test") as url:
        yield url


@pytest.fixture
def sqlite_db_url(tmp_path: Path) -> str:
    """URL of a new SQLite file (in a directory that does not exist yet)."""
    return f"sqlite:///{tmp_path / 'db' / 'foley.db'}"


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest) -> str:
    """Each test runs once on SQLite and once on PostgreSQL."""
    return str(request.getfixturevalue(f"{request.param.replace('postgresql', 'pg')}_db_url"))


@pytest.fixture
def sessions(db_url: str) -> Iterator[sessionmaker[Session]]:
    """Sessions on a database holding the models' schema."""
    engine = make_engine(db_url)
    Base.metadata.create_all(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


@pytest.fixture
def s3_client(s3_endpoint: str) -> Any:
    """A plain boto3 client on the test S3 server (to act behind a store's back)."""
    return boto3.client("s3", endpoint_url=s3_endpoint)


@pytest.fixture
def s3_bucket(s3_client: Any) -> Iterator[str]:
    """A new bucket, emptied and removed after the test."""
    name = f"foley-test-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for upload in s3_client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3_client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for item in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=item["Key"])
    s3_client.delete_bucket(Bucket=name)


FAST_S3 = S3Options(retry_base_delay_s=0.01, retry_max_delay_s=0.05, connect_timeout_s=2, read_timeout_s=30)


@pytest.fixture
def s3_store(s3_endpoint: str, s3_bucket: str) -> S3BlobStore:
    """An S3 store under a prefix of the test bucket."""
    return S3BlobStore(s3_bucket, "farm/store", endpoint_url=s3_endpoint, options=FAST_S3)


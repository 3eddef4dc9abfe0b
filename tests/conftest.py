"""Shared fixtures: the real services `make test` starts (Redis, PostgreSQL, an S3 server).

Under CI=true a missing service is an error, never a skip: the suite must run everything.
Outside CI, run the suite through `make test`, or start the services yourself with
`scripts/services.sh start && source .services/env`.
"""
from __future__ import annotations

import os
import shutil
import subprocess

import pytest

_SERVICES = {
    "pg_url": "FOLEY_TEST_PG_URL",
    "redis_url": "FOLEY_TEST_REDIS_URL",
    "s3_endpoint": "FOLEY_TEST_S3_ENDPOINT",
}


def _service(env_var: str) -> str:
    value = os.environ.get(env_var)
    if not value:
        pytest.fail(
            f"{env_var} is not set: run the suite with `make test` "
            "(or `scripts/services.sh start && source .services/env`)",
            pytrace=False,
        )
    return value


@pytest.fixture(scope="session")
def pg_url() -> str:
    """SQLAlchemy URL of a real PostgreSQL server where tests may create databases."""
    return _service(_SERVICES["pg_url"])


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of a real Redis server."""
    return _service(_SERVICES["redis_url"])


@pytest.fixture(scope="session")
def s3_endpoint() -> str:
    """HTTP endpoint of a real S3-compatible server (moto in server mode)."""
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "test")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    return _service(_SERVICES["s3_endpoint"])


def _has_gpu() -> bool:
    if shutil.which("nvidia-smi") is None:
        return False
    try:
        return subprocess.run(["nvidia-smi", "-L"], capture_output=True, timeout=10).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "gpu: needs a CUDA GPU; deselected where none exists")
    config.addinivalue_line("markers", "slow: takes more than a few seconds")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (not skip) GPU tests on machines without a GPU."""
    if _has_gpu():
        return
    keep, drop = [], []
    for item in items:
        (drop if item.get_closest_marker("gpu") else keep).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = keep

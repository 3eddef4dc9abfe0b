"""A throwaway database per test, on SQLite and on PostgreSQL."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.pg_scratch import scratch_database


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """URL of a new, empty database (a SQLite file, or a PostgreSQL database dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'foley.db'}"
        return
    with scratch_database(str(request.getfixturevalue("pg_url")), "foley_mig") as url:
        yield url

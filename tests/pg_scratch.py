"""Throwaway PostgreSQL databases on the test server, shared by the suites' fixtures."""
from __future__ import annotations

import uuid
from contextlib import contextmanager
from typing import Iterator

from sqlalchemy import create_engine, text

from storage.db import normalize_url


@contextmanager
def scratch_database(pg_url: str, prefix: str = "foley_test") -> Iterator[str]:
    """Create a new, empty database on the server of `pg_url`; yield its URL; drop it after."""
    server = normalize_url(pg_url)
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

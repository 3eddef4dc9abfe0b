"""Engines, sessions and the unit of work.

SQLite (the embedded default) runs in WAL mode with foreign keys on and every transaction
opened with BEGIN IMMEDIATE: writers queue on the database lock (waiting up to `busy_timeout`)
instead of failing on a stale snapshot, so conditional UPDATEs and the audit hash chain are
serialised. PostgreSQL goes through psycopg 3 at READ COMMITTED, where a conditional UPDATE
re-checks its WHERE clause on the latest row version after waiting for a competing writer.

Driver errors are translated here, at the storage edge: an unreachable server becomes
ServiceUnavailable with the URL's password masked.
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.engine.interfaces import ExceptionContext
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.pool import StaticPool

from storage.errors import InvalidInput, ServiceUnavailable, TransientError
from storage.urls import short_reason

log = logging.getLogger(__name__)

SQLITE_BUSY_TIMEOUT_MS = 30_000
PG_CONNECT_TIMEOUT_S = 10


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL; `postgresql://` and `postgres://` become `postgresql+psycopg://`."""
    text = url.render_as_string(hide_password=False) if isinstance(url, URL) else url
    if text.startswith("postgres://"):
        text = "postgresql://" + text[len("postgres://"):]
    try:
        parsed = make_url(text)
    except exc.ArgumentError as err:
        raise InvalidInput(f"not a database URL: {masked_url(text)}") from err
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() not in ("sqlite", "postgresql"):
        raise InvalidInput(f"unsupported database {parsed.get_backend_name()!r}: use sqlite:/// or postgresql://")
    return parsed


def masked_url(url: str | URL) -> str:
    """The URL with its password replaced by ***, for messages and logs."""
    try:
        parsed = url if isinstance(url, URL) else make_url(url)
    except exc.ArgumentError:
        return "<unparseable database url>"
    return parsed.render_as_string(hide_password=True)


def _is_memory(url: URL) -> bool:
    return url.database in (None, "", ":memory:")


def _setup_sqlite(engine: Engine) -> None:
    """WAL, busy timeout, foreign keys, and BEGIN IMMEDIATE for every transaction."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves, below
        cursor = dbapi_conn.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _setup_error_translation(engine: Engine, url: URL) -> None:
    """Turn a failure to connect into ServiceUnavailable naming the masked URL."""
    shown = masked_url(url)

    @event.listens_for(engine, "handle_error")
    def _on_error(ctx: ExceptionContext) -> None:
        if ctx.is_pre_ping:
            return  # the pool reconnects by itself
        if ctx.connection is None and ctx.execution_context is None:
            raise ServiceUnavailable(
                f"cannot reach database at {shown}: {short_reason(ctx.original_exception)}"
            )


def make_engine(url: str | URL, *, echo: bool = False, connect_timeout_s: int = PG_CONNECT_TIMEOUT_S) -> Engine:
    """An Engine for SQLite (file or memory) or PostgreSQL (psycopg 3), configured for the farm.

    For a SQLite file, its parent directory is created.
    """
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {"echo": echo}
    if parsed.get_backend_name() == "sqlite":
        if _is_memory(parsed):
            kwargs.update(poolclass=StaticPool, connect_args={"check_same_thread": False})
        else:
            Path(parsed.database or "").expanduser().resolve().parent.mkdir(parents=True, exist_ok=True)
            kwargs.update(connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
    else:
        kwargs.update(pool_pre_ping=True, connect_args={"connect_timeout": connect_timeout_s})
    engine = create_engine(parsed, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _setup_sqlite(engine)
    _setup_error_translation(engine, parsed)
    log.debug("engine for %s", masked_url(parsed))
    return engine


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    """Sessions that keep loaded attributes after commit (tasks pass ids, not ORM objects)."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True)


@contextmanager
def translate_db_errors(engine: Engine) -> Iterator[None]:
    """Map driver errors that are worth retrying onto TransientError / ServiceUnavailable."""
    try:
        yield
    except exc.DBAPIError as err:
        if not isinstance(err, (exc.OperationalError, exc.InterfaceError)):
            raise
        shown = masked_url(engine.url)
        if err.connection_invalidated:
            raise ServiceUnavailable(f"lost connection to database at {shown}: {short_reason(err)}") from err
        raise TransientError(f"database at {shown} failed: {short_reason(err)}") from err


@contextmanager
def unit_of_work(sessions: sessionmaker[Session]) -> Iterator[Session]:
    """One transaction: commit when the block finishes, roll back if it raises.

    Repositories never commit; this is the only place that does.
    """
    session = sessions()
    engine = session.get_bind()
    assert isinstance(engine, Engine), f"{engine=}"
    try:
        with translate_db_errors(engine):
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
    finally:
        session.close()

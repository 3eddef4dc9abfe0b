"""Alembic environment: runs revisions against storage.models' metadata.

The URL comes from `config.attributes["url"]` (set by migrations.make_config), else
`-x url=...` on the alembic command line, else `sqlalchemy.url` in the ini file. SQLite uses
batch mode (ALTER via table copies), with foreign keys off for the duration of the migration.
"""
from __future__ import annotations

import logging

from alembic import context
from sqlalchemy import Connection

from storage.db import make_engine, translate_db_errors
from storage.models import Base

log = logging.getLogger("migrations.env")

config = context.config
target_metadata = Base.metadata


def _url() -> str:
    url = config.attributes.get("url") or context.get_x_argument(as_dictionary=True).get("url")
    url = url or config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("no database URL: pass -x url=... or use migrations.upgrade(url)")
    return str(url)


def _configure(connection: Connection | None = None, url: str | None = None) -> None:
    is_sqlite = (connection.dialect.name if connection is not None else str(url).split(":")[0]) == "sqlite"
    context.configure(
        connection=connection,
        url=url,
        target_metadata=target_metadata,
        render_as_batch=is_sqlite,
        compare_type=True,
        literal_binds=connection is None,
        dialect_opts={"paramstyle": "named"} if connection is None else {},
    )


def run_migrations_offline() -> None:
    """Emit SQL to stdout instead of running it (`alembic upgrade --sql`)."""
    _configure(url=_url())
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    """Run the revisions on a live connection, in one transaction."""
    engine = make_engine(_url())
    try:
        with translate_db_errors(engine), engine.connect() as connection:
            is_sqlite = connection.dialect.name == "sqlite"
            if is_sqlite:
                # PRAGMA foreign_keys is ignored inside a transaction, so set it on the raw
                # connection before SQLAlchemy begins one (table copies would cascade).
                connection.connection.driver_connection.execute("PRAGMA foreign_keys = OFF")  # type: ignore[union-attr]
            try:
                _configure(connection=connection)
                with context.begin_transaction():
                    context.run_migrations()
                connection.commit()
            finally:
                if is_sqlite:
                    connection.rollback()
                    connection.connection.driver_connection.execute("PRAGMA foreign_keys = ON")  # type: ignore[union-attr]
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()

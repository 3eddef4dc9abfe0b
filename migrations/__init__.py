"""Alembic migrations for the farm's SQL schema, usable from code and from an installed package.

The Alembic Config is built here in code (script_location is this package's directory), so no
alembic.ini is needed at run time; `alembic.ini` beside this file serves developers who run the
`alembic` command (e.g. `alembic -c migrations/alembic.ini -x url=sqlite:///dev.db revision
--autogenerate -m "..." --rev-id 0002`).
"""
from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError

from storage.db import make_engine, masked_url, translate_db_errors
from storage.errors import InvalidInput

log = logging.getLogger(__name__)

PACKAGE_DIR = Path(__file__).resolve().parent
FILE_TEMPLATE = "%%(year)d_%%(month).2d_%%(day).2d_%%(rev)s_%%(slug)s"


def make_config(url: str) -> Config:
    """An Alembic Config for `url` whose scripts are this package (the URL travels in attributes,
    so a '%' in a password never meets ConfigParser interpolation)."""
    config = Config()
    config.set_main_option("script_location", str(PACKAGE_DIR))
    config.set_main_option("file_template", FILE_TEMPLATE)
    config.set_main_option("path_separator", "os")
    config.attributes["url"] = url
    return config


@contextmanager
def _alembic_errors() -> Iterator[None]:
    """An unknown revision or similar misuse becomes one line of InvalidInput."""
    try:
        yield
    except CommandError as err:
        raise InvalidInput(f"migration: {err}") from err


def head() -> str:
    """The newest revision shipped with this package."""
    rev = ScriptDirectory.from_config(make_config("sqlite://")).get_current_head()
    assert rev is not None, "no migration revisions found"
    return rev


def upgrade(url: str, revision: str = "head") -> None:
    """Migrate the database at `url` up to `revision`."""
    log.info("db upgrade %s to %s", masked_url(url), revision)
    with _alembic_errors():
        command.upgrade(make_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    """Migrate the database at `url` down to `revision` ("base" removes every table)."""
    log.info("db downgrade %s to %s", masked_url(url), revision)
    with _alembic_errors():
        command.downgrade(make_config(url), revision)


def current(url: str) -> str | None:
    """The revision the database at `url` is at, or None if it was never migrated."""
    engine = make_engine(url)
    try:
        with translate_db_errors(engine), engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    finally:
        engine.dispose()

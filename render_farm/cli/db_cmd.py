"""`foley db`: create and migrate the farm's SQL schema (Alembic, see migrations/)."""
from __future__ import annotations

import logging

import click

import migrations
from render_farm.config import Settings
from storage.db import masked_url

log = logging.getLogger(__name__)

_URL_HELP = "Database URL (default: FOLEY_DATABASE_URL, else SQLite under the data dir)."


def _database_url(url: str | None) -> str:
    """The --url given, else the configured database URL."""
    return url if url else Settings.from_env().database_url


@click.group("db")
def db_group() -> None:
    """Create and migrate the SQL schema."""


@db_group.command("upgrade")
@click.option("--url", default=None, help=_URL_HELP)
@click.option("--revision", default="head", show_default=True, help="Target revision.")
def upgrade_cmd(url: str | None, revision: str) -> None:
    """Migrate the database up to REVISION (creates the schema on an empty database)."""
    target = _database_url(url)
    migrations.upgrade(target, revision)
    click.echo(f"{masked_url(target)}: at {migrations.current(target) or 'base'}")


@db_group.command("downgrade")
@click.argument("revision")
@click.option("--url", default=None, help=_URL_HELP)
def downgrade_cmd(revision: str, url: str | None) -> None:
    """Migrate the database down to REVISION ("base" drops every table)."""
    target = _database_url(url)
    migrations.downgrade(target, revision)
    click.echo(f"{masked_url(target)}: at {migrations.current(target) or 'base'}")


@db_group.command("current")
@click.option("--url", default=None, help=_URL_HELP)
def current_cmd(url: str | None) -> None:
    """Print the revision the database is at ("base" if never migrated) and the newest one."""
    target = _database_url(url)
    click.echo(f"{masked_url(target)}: at {migrations.current(target) or 'base'} (head {migrations.head()})")


def register(group: click.Group) -> None:
    """Add `db` to the foley command group."""
    group.add_command(db_group)

"""Alembic revisions build exactly the models' schema, both ways, on SQLite and PostgreSQL."""
from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

import migrations
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.errors import InvalidInput, ServiceUnavailable
from storage.models import Base, JobState
from storage.repos import EventRepo, JobRepo

TABLES = {"jobs", "windows", "artifacts", "events"}


def _schema_diff(url: str) -> list[object]:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"compare_type": True})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def _tables(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return set(inspect(engine).get_table_names()) - {"alembic_version"}
    finally:
        engine.dispose()


def test_upgrade_from_empty_yields_exactly_the_models_schema(empty_db_url: str) -> None:
    assert migrations.current(empty_db_url) is None
    migrations.upgrade(empty_db_url)
    assert migrations.current(empty_db_url) == migrations.head()
    assert _tables(empty_db_url) == TABLES
    diff = _schema_diff(empty_db_url)
    assert diff == [], f"{diff=}"


def test_downgrade_to_base_then_upgrade_again(empty_db_url: str) -> None:
    migrations.upgrade(empty_db_url)
    migrations.downgrade(empty_db_url, "base")
    assert migrations.current(empty_db_url) is None
    assert _tables(empty_db_url) == set()
    migrations.upgrade(empty_db_url, "head")
    assert _schema_diff(empty_db_url) == []
    # the migrated schema works for real: write through the repositories
    engine = make_engine(empty_db_url)
    with unit_of_work(make_sessionmaker(engine)) as session:
        job = JobRepo(session).create(project="p", submitted_by="u", input_uri="x", seed=1, model_name="tiny")
        EventRepo(session).append("job.submitted", actor="u", job_id=job.id)
    with unit_of_work(make_sessionmaker(engine)) as session:
        assert JobRepo(session).get(job.id).state == JobState.QUEUED
        assert EventRepo(session).verify_chain() == []
    engine.dispose()


def test_revisions_form_one_line_with_dated_file_names() -> None:
    script = ScriptDirectory.from_config(migrations.make_config("sqlite://"))
    assert len(script.get_heads()) == 1, f"{script.get_heads()=}"
    for revision in script.walk_revisions():
        name = Path(revision.path).name
        assert name[:10].replace("_", "").isdigit() and name.startswith("20"), f"{name=}"


def test_unknown_revision_is_invalid_input(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'f.db'}"
    migrations.upgrade(url)
    with pytest.raises(InvalidInput, match="9999"):
        migrations.downgrade(url, "9999")
    with pytest.raises(InvalidInput, match="9999"):
        migrations.upgrade(url, "9999")
    assert migrations.current(url) == migrations.head()


def test_unreachable_database_is_service_unavailable() -> None:
    with pytest.raises(ServiceUnavailable, match=r"postgresql\+psycopg://farm:\*\*\*@127.0.0.1:1/foley") as info:
        migrations.upgrade("postgresql://farm:hunter2@127.0.0.1:1/foley")
    assert "hunter2" not in str(info.value)

"""Engines and the unit of work, on SQLite and PostgreSQL."""
from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_sessionmaker, masked_url, normalize_url, unit_of_work
from storage.errors import InvalidInput, ServiceUnavailable
from storage.models import Job
from storage.repos import JobRepo


def _new_job(session: Session) -> str:
    return JobRepo(session).create(
        project="ep101", submitted_by="ana", input_uri="file:///in.mp4", seed=7, model_name="tiny"
    ).id


def test_unit_of_work_commits(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        job_id = _new_job(session)
    with unit_of_work(sessions) as session:
        assert JobRepo(session).get(job_id).project == "ep101"


def test_unit_of_work_rolls_back_on_error(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(RuntimeError, match="boom"), unit_of_work(sessions) as session:
        job_id = _new_job(session)
        raise RuntimeError("boom")
    with unit_of_work(sessions) as session:
        assert JobRepo(session).find(job_id) is None
        assert session.scalars(select(Job)).all() == []


def test_datetimes_round_trip_as_aware_utc(sessions: sessionmaker[Session]) -> None:
    at = datetime(2026, 11, 27, 8, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    with unit_of_work(sessions) as session:
        job_id = JobRepo(session).create(
            project="p", submitted_by="u", input_uri="x", seed=1, model_name="tiny", now=at
        ).id
    with unit_of_work(sessions) as session:
        created = JobRepo(session).get(job_id).created_at
    assert created == at and created.tzinfo is not None and created.utcoffset() == timedelta(0), f"{created=}"


def test_naive_datetimes_are_refused(sessions: sessionmaker[Session]) -> None:
    with pytest.raises(Exception, match="naive"), unit_of_work(sessions) as session:
        JobRepo(session).create(
            project="p", submitted_by="u", input_uri="x", seed=1, model_name="tiny", now=datetime(2026, 1, 1)
        )


def test_sqlite_engine_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'a' / 'b' / 'farm.db'}"
    engine = make_engine(url)
    with engine.connect() as conn:
        assert conn.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert conn.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert conn.exec_driver_sql("PRAGMA busy_timeout").scalar() == 30_000
    engine.dispose()
    assert (tmp_path / "a" / "b" / "farm.db").is_file()


def test_postgres_urls_use_psycopg3() -> None:
    assert normalize_url("postgresql://u:p@h:5432/db").drivername == "postgresql+psycopg"
    assert normalize_url("postgres://u:p@h/db").drivername == "postgresql+psycopg"
    assert masked_url("postgresql://u:hunter2@h:5432/db") == "postgresql://u:***@h:5432/db"
    with pytest.raises(InvalidInput):
        normalize_url("mysql://u@h/db")
    with pytest.raises(InvalidInput):
        normalize_url("not a url")


def test_unreachable_postgres_is_service_unavailable_without_password() -> None:
    engine = make_engine("postgresql://farm:hunter2@127.0.0.1:1/foley", connect_timeout_s=2)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable) as info, unit_of_work(make_sessionmaker(engine)) as session:
        session.execute(text("SELECT 1"))
    message = str(info.value)
    assert "hunter2" not in message and "farm:***@127.0.0.1:1/foley" in message, message
    assert "\n" not in message, message
    assert time.monotonic() - started < 5


def test_sqlite_foreign_keys_cascade(sessions: sessionmaker[Session]) -> None:
    from storage.repos import NewWindow, WindowRepo

    with unit_of_work(sessions) as session:
        job_id = _new_job(session)
        WindowRepo(session).create_many(job_id, [NewWindow(0, 0, 100, 0)])
    with unit_of_work(sessions) as session:
        session.execute(text("DELETE FROM jobs WHERE id = :id"), {"id": job_id})
    with unit_of_work(sessions) as session:
        assert WindowRepo(session).list_for_job(job_id) == []

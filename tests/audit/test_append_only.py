"""Revision 0002: the events table refuses UPDATE and DELETE (and TRUNCATE on PostgreSQL) after
upgrade, still takes inserts, and the downgrade lifts the refusal."""
from __future__ import annotations

import pytest
from sqlalchemy import exc, text
from sqlalchemy.orm import Session, sessionmaker

import migrations
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.repos import EventRepo


def _append_three(sessions: sessionmaker[Session]) -> list[int]:
    with unit_of_work(sessions) as s:
        return [EventRepo(s).append("job.submitted", actor="ann", job_id="j1", payload={"n": n}).id for n in range(3)]


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET actor = 'mallory' WHERE id = :id",
        "UPDATE events SET payload = '{}', hash = prev_hash WHERE id = :id",
        "DELETE FROM events WHERE id = :id",
    ],
)
def test_update_and_delete_on_events_are_refused(
    sessions: sessionmaker[Session], db_url: str, statement: str
) -> None:
    ids = _append_three(sessions)
    with pytest.raises(exc.IntegrityError, match="events is append-only"):
        with unit_of_work(sessions) as s:
            s.execute(text(statement), {"id": ids[1]})
    with unit_of_work(sessions) as s:
        events = EventRepo(s)
        assert [e.actor for e in events.list_for_job("j1")] == ["ann"] * 3
        assert events.verify_chain() == []
        # inserts still work, and chain on
        events.append("job.done", actor="w1", job_id="j1")
    with unit_of_work(sessions) as s:
        assert len(EventRepo(s).list_for_job("j1")) == 4
        assert EventRepo(s).verify_chain() == []


def test_truncate_is_refused_on_postgresql(pg_migrated_url: str) -> None:
    engine = make_engine(pg_migrated_url)
    sessions = make_sessionmaker(engine)
    _append_three(sessions)
    with pytest.raises(exc.IntegrityError, match="append-only: TRUNCATE refused"):
        with unit_of_work(sessions) as s:
            s.execute(text("TRUNCATE events"))
    with unit_of_work(sessions) as s:
        assert len(EventRepo(s).list_for_job("j1")) == 3
    engine.dispose()


def test_downgrade_removes_the_triggers_and_upgrade_restores_them(db_url: str) -> None:
    migrations.downgrade(db_url, "0001")
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    ids = _append_three(sessions)
    with unit_of_work(sessions) as s:
        assert s.execute(text("UPDATE events SET actor = 'x' WHERE id = :id"), {"id": ids[0]}).rowcount == 1
    engine.dispose()
    migrations.upgrade(db_url)
    engine = make_engine(db_url)
    sessions = make_sessionmaker(engine)
    with pytest.raises(exc.IntegrityError, match="append-only"):
        with unit_of_work(sessions) as s:
            s.execute(text("DELETE FROM events"))
    engine.dispose()

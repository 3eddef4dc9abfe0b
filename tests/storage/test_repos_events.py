"""EventRepo: the SHA-256 hash chain of the audit log, on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.models import Event
from storage.repos import GENESIS_HASH, EventRepo, event_hash

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)


def _append_five(sessions: sessionmaker[Session]) -> list[int]:
    ids = []
    for n in range(5):
        with unit_of_work(sessions) as session:
            event = EventRepo(session).append(
                "window.done", actor=f"gpu-{n}", job_id="a" * 32, window_id=f"{n:032x}",
                payload={"n": n, "sha256": "f" * 64, "seconds": 1.25, "note": "pluie ☂"}, now=T0 + timedelta(seconds=n),
            )
            ids.append(event.id)
    return ids


def test_chain_links_and_verifies(sessions: sessionmaker[Session]) -> None:
    ids = _append_five(sessions)
    with unit_of_work(sessions) as session:
        events = EventRepo(session)
        assert events.verify_chain() == []
        rows = [session.get(Event, i) for i in ids]
        assert rows[0] is not None and rows[0].prev_hash == GENESIS_HASH
        for before, after in zip(rows, rows[1:], strict=False):
            assert before is not None and after is not None and after.prev_hash == before.hash
        assert [e.id for e in events.list_for_job("a" * 32)] == ids


def test_edited_event_is_detected(sessions: sessionmaker[Session]) -> None:
    ids = _append_five(sessions)
    with unit_of_work(sessions) as session:
        session.execute(text("UPDATE events SET actor = 'mallory' WHERE id = :id"), {"id": ids[2]})
    with unit_of_work(sessions) as session:
        assert EventRepo(session).verify_chain() == [ids[2]]


def test_edit_with_recomputed_hash_breaks_the_next_link(sessions: sessionmaker[Session]) -> None:
    ids = _append_five(sessions)
    with unit_of_work(sessions) as session:
        row = session.get(Event, ids[1])
        assert row is not None
        forged = event_hash(row.prev_hash, at=row.at, job_id=row.job_id, window_id=row.window_id,
                            kind=row.kind, actor=row.actor, payload={"n": 99})
        session.execute(text("UPDATE events SET payload = :p, hash = :h WHERE id = :id"),
                        {"p": '{"n": 99}', "h": forged, "id": ids[1]})
    with unit_of_work(sessions) as session:
        assert EventRepo(session).verify_chain() == [ids[2]]


def test_deleted_event_is_detected(sessions: sessionmaker[Session]) -> None:
    ids = _append_five(sessions)
    with unit_of_work(sessions) as session:
        session.execute(text("DELETE FROM events WHERE id = :id"), {"id": ids[3]})
    with unit_of_work(sessions) as session:
        assert EventRepo(session).verify_chain() == [ids[4]]


def test_concurrent_appenders_do_not_fork_the_chain(db_url: str, sessions: sessionmaker[Session]) -> None:
    workers, per_worker = 4, 10
    barrier = threading.Barrier(workers, timeout=30)
    errors: list[BaseException] = []

    def run(n: int) -> None:
        engine = make_engine(db_url)
        uow = make_sessionmaker(engine)
        try:
            barrier.wait()
            for i in range(per_worker):
                with unit_of_work(uow) as session:
                    EventRepo(session).append("tick", actor=f"w{n}", payload={"i": i})
        except BaseException as err:  # reported below
            errors.append(err)
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert not errors, f"{errors=}"
    with unit_of_work(sessions) as session:
        prevs = session.execute(text("SELECT prev_hash FROM events")).scalars().all()
        assert len(prevs) == workers * per_worker and len(set(prevs)) == len(prevs), "the chain forked"
        assert EventRepo(session).verify_chain() == []

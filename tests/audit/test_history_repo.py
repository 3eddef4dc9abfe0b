"""HistoryRepo: filters and keyset pagination give the right jobs, newest first, on SQLite and
PostgreSQL; on PostgreSQL each filter is served in order by its (…, created_at, id) index."""
from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import event, text
from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import LocalBlobStore
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.errors import InvalidInput
from storage.models import JobState
from storage.repos import JobRepo
from storage.repos.history import JobCursor, JobFilter, HistoryRepo
from tests.audit.factory import T0, build_job

PROJECTS = ("ep101", "ep102", "catalog")
USERS = ("ann", "bob")
MODELS = ("tiny", "kling")
STATES = (JobState.QUEUED, JobState.DONE, JobState.FAILED)


def _seed_jobs(sessions: sessionmaker[Session], n: int = 30) -> list[dict[str, object]]:
    """n jobs spread over projects/users/models/states, two of them sharing each timestamp."""
    made: list[dict[str, object]] = []
    with unit_of_work(sessions) as s:
        jobs = JobRepo(s)
        for i in range(n):
            at = T0 + timedelta(minutes=i // 2)  # pairs share created_at: the id breaks the tie
            job = jobs.create(project=PROJECTS[i % 3], submitted_by=USERS[i % 2], input_uri=f"file:///in/{i}.mp4",
                              seed=i, model_name=MODELS[(i // 3) % 2], now=at)
            state = STATES[i % 3]
            if state is not JobState.QUEUED:
                jobs.transition(job.id, [JobState.QUEUED], state, now=at)
            made.append({"id": job.id, "at": at, "project": job.project, "user": job.submitted_by,
                         "model": job.model_name, "state": state})
    return made


def _expected(made: list[dict[str, object]], keep) -> list[str]:  # type: ignore[no-untyped-def]
    rows = [m for m in made if keep(m)]
    rows.sort(key=lambda m: (m["at"], m["id"]), reverse=True)
    return [str(m["id"]) for m in rows]


def _all_pages(sessions: sessionmaker[Session], filters: JobFilter, limit: int) -> tuple[list[str], int]:
    ids: list[str] = []
    cursor: JobCursor | None = None
    pages = 0
    while True:
        with unit_of_work(sessions) as s:
            page = HistoryRepo(s).list_jobs(filters, limit=limit, cursor=cursor)
        pages += 1
        assert len(page.jobs) <= limit
        ids += [j.id for j in page.jobs]
        if page.next_cursor is None:
            return ids, pages
        # the cursor survives its text form
        cursor = JobCursor.decode(page.next_cursor.encode())
        assert cursor == page.next_cursor


def test_filters_and_pages_give_exactly_the_matching_jobs_newest_first(sessions: sessionmaker[Session]) -> None:
    made = _seed_jobs(sessions)
    since, until = T0 + timedelta(minutes=3), T0 + timedelta(minutes=11)
    cases = [
        (JobFilter(), lambda m: True),
        (JobFilter(project="ep102"), lambda m: m["project"] == "ep102"),
        (JobFilter(submitted_by="bob"), lambda m: m["user"] == "bob"),
        (JobFilter(model_name="kling"), lambda m: m["model"] == "kling"),
        (JobFilter(states=(JobState.DONE,)), lambda m: m["state"] is JobState.DONE),
        (JobFilter(states=(JobState.DONE, JobState.FAILED)), lambda m: m["state"] in (JobState.DONE, JobState.FAILED)),
        (JobFilter(since=since, until=until), lambda m: since <= m["at"] < until),
        (
            JobFilter(project="ep101", submitted_by="ann", model_name="tiny", since=since),
            lambda m: m["project"] == "ep101" and m["user"] == "ann" and m["model"] == "tiny" and m["at"] >= since,
        ),
        (JobFilter(project="nope"), lambda m: False),
    ]
    for filters, keep in cases:
        want = _expected(made, keep)
        for limit in (1, 4, 7, 100):
            got, pages = _all_pages(sessions, filters, limit)
            assert got == want, f"{filters=} {limit=}"
            assert pages == max(1, -(-len(want) // limit)), f"{filters=} {limit=} {pages=}"


def test_first_page_and_cursor_of_the_last_page(sessions: sessionmaker[Session]) -> None:
    made = _seed_jobs(sessions, n=5)
    with unit_of_work(sessions) as s:
        page = HistoryRepo(s).list_jobs(limit=5)
        assert page.next_cursor is None and len(page.jobs) == 5
        page = HistoryRepo(s).list_jobs(limit=4)
        assert page.next_cursor == JobCursor(page.jobs[-1].created_at, page.jobs[-1].id)
        assert [j.id for j in page.jobs] == _expected(made, lambda m: True)[:4]


def test_bad_cursor_and_page_size_are_invalid_input(sessions: sessionmaker[Session]) -> None:
    bad = ("", "garbage", "2026-11-20T09:00:00Z/abc", "2026-13-40T09:00:00.000000Z/abc", "2026-11-20T09:00:00.000000Z/")
    for text_ in bad:
        with pytest.raises(InvalidInput, match="cursor"):
            JobCursor.decode(text_)
    with unit_of_work(sessions) as s, pytest.raises(InvalidInput, match="page size"):
        HistoryRepo(s).list_jobs(limit=0)


def test_iter_artifacts_of_one_job_and_of_all(sessions: sessionmaker[Session], local_store: LocalBlobStore) -> None:
    a = build_job(sessions, local_store, seed=1, num_windows=3)
    b = build_job(sessions, local_store, seed=2, num_windows=1, created_at=T0 + timedelta(hours=1))
    with unit_of_work(sessions) as s:
        history = HistoryRepo(s)
        of_a = list(history.iter_artifacts(job_id=a.id, batch_rows=2))
        every = list(history.iter_artifacts(batch_rows=3))
    assert {r.key for r in of_a} == set(a.keys.values()) and len(of_a) == 4
    assert {r.job_id for r in every} == {a.id, b.id} and len(every) == 4 + 2
    assert [r.id for r in every] == sorted(r.id for r in every)


def test_postgresql_serves_each_filter_from_its_index_without_sorting(pg_migrated_url: str) -> None:
    engine = make_engine(pg_migrated_url)
    sessions = make_sessionmaker(engine)
    _seed_jobs(sessions, n=60)
    cursor = JobCursor(T0 + timedelta(minutes=20), "f" * 32)
    expected_index = {
        "project": "ix_jobs_project_created_at_id",
        "submitted_by": "ix_jobs_submitted_by_created_at_id",
        "model_name": "ix_jobs_model_name_created_at_id",
        "states": "ix_jobs_state_created_at_id",
        None: "ix_jobs_created_at_id",
    }
    values = {"project": "ep101", "submitted_by": "ann", "model_name": "tiny", "states": (JobState.DONE,)}
    with unit_of_work(sessions) as s:
        s.execute(text("ANALYZE jobs"))
        s.execute(text("SET LOCAL enable_seqscan = off"))
        s.execute(text("SET LOCAL enable_bitmapscan = off"))
        for field, index in expected_index.items():
            filters = JobFilter(**({field: values[field]} if field else {}))
            captured: list[tuple[str, object]] = []

            def grab(conn, cur, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
                captured.append((statement, parameters))

            event.listen(engine, "before_cursor_execute", grab)
            try:
                HistoryRepo(s).list_jobs(filters, limit=10, cursor=cursor)
            finally:
                event.remove(engine, "before_cursor_execute", grab)
            ((statement, parameters),) = [c for c in captured if "FROM jobs" in c[0]]
            rows = s.connection().exec_driver_sql("EXPLAIN " + statement, parameters)  # type: ignore[arg-type]
            plan = "\n".join(row[0] for row in rows)
            assert index in plan and "Sort" not in plan, f"{field=}\n{plan}"
    engine.dispose()

"""The reaper on SQLite: expired window leases, expired step leases, stalled jobs."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from schedulers.base import StepCall
from schedulers.reaper import StepNames, reap
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.models import Base, JobState, Priority, WindowState, utcnow
from storage.repos import EventRepo, JobRepo, WindowRepo
from storage.repos.windows import NewWindow

STEPS = StepNames(ingest="m:ingest", render="m:render", assemble="m:assemble")


class Recorder:
    def __init__(self) -> None:
        self.calls: list[StepCall] = []

    def submit(self, call: StepCall) -> None:
        self.calls.append(call)


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    engine = make_engine(f"sqlite:///{tmp_path / 'farm.db'}")
    Base.metadata.create_all(engine)
    yield make_sessionmaker(engine)
    engine.dispose()


def _job(sessions: sessionmaker[Session], state: JobState, windows: int = 0, priority: Priority = Priority.CATALOG,
         max_attempts: int = 3) -> str:
    with unit_of_work(sessions) as s:
        jobs = JobRepo(s)
        job = jobs.create(project="p", submitted_by="t", input_uri="s3://b/x.mp4", seed=1, model_name="tiny",
                          priority=priority)
        if windows:
            WindowRepo(s).create_many(job.id, [NewWindow(i, i * 10, i * 10 + 12, i) for i in range(windows)],
                                      max_attempts=max_attempts)
            jobs.set_windows_total(job.id, windows)
        if state is not JobState.QUEUED:
            jobs.transition(job.id, [JobState.QUEUED], state)
        return job.id


def _claim(sessions: sessionmaker[Session], job_id: str, index: int, lease_s: float = 1.0, ago_s: float = 10.0) -> str:
    with unit_of_work(sessions) as s:
        w = WindowRepo(s).list_for_job(job_id)[index]
        assert WindowRepo(s).claim(w.id, "host:1", lease_s, utcnow() - timedelta(seconds=ago_s))
        return w.id


def test_expired_window_goes_back_and_its_batch_is_resent(sessions) -> None:
    job_id = _job(sessions, JobState.RENDERING, windows=3)
    wid = _claim(sessions, job_id, 1)
    _claim(sessions, job_id, 2, lease_s=3600)  # still leased: left alone
    executor = Recorder()
    report = reap(sessions, executor, STEPS)
    assert report.windows_requeued == [wid]
    assert executor.calls == [StepCall("m:render", (job_id, 1), queue="gpu-catalog")]
    with unit_of_work(sessions) as s:
        assert WindowRepo(s).get(wid).state is WindowState.PENDING
        assert [e.kind for e in EventRepo(s).list_for_job(job_id)] == ["reaper.requeued"]
    assert reap(sessions, executor, STEPS).windows_requeued == [], "a second sweep finds nothing"


def test_window_out_of_attempts_fails_the_job(sessions) -> None:
    job_id = _job(sessions, JobState.RENDERING, windows=2, max_attempts=1)
    _claim(sessions, job_id, 0)
    executor = Recorder()
    report = reap(sessions, executor, STEPS)
    assert report.jobs_failed == [job_id] and executor.calls == []
    with unit_of_work(sessions) as s:
        job = JobRepo(s).get(job_id)
        assert job.state is JobState.FAILED and "last attempt" in (job.error or "")


def test_expired_step_lease_resends_ingest_and_assemble(sessions) -> None:
    ingesting = _job(sessions, JobState.INGESTING)
    assembling = _job(sessions, JobState.ASSEMBLING, windows=1)
    past = utcnow() - timedelta(seconds=60)
    with unit_of_work(sessions) as s:
        for job_id, state in ((ingesting, JobState.INGESTING), (assembling, JobState.ASSEMBLING)):
            assert JobRepo(s).claim(job_id, state=state, owner="dead:1", lease_s=1, now=past)
    executor = Recorder()
    reap(sessions, executor, STEPS)
    assert sorted((c.step, c.args) for c in executor.calls) == sorted(
        [("m:ingest", (ingesting,)), ("m:assemble", (assembling,))])
    with unit_of_work(sessions) as s:
        assert JobRepo(s).get(ingesting).lease_owner is None, "released, so the re-sent step can claim it"


def test_stalled_jobs_are_resent_only_when_their_queue_is_empty(sessions) -> None:
    queued = _job(sessions, JobState.QUEUED)
    rendering = _job(sessions, JobState.RENDERING, windows=2, priority=Priority.EPISODE)
    later = utcnow() + timedelta(seconds=700)
    busy = Recorder()
    reap(sessions, busy, STEPS, now=later, stall_s=600, queue_depth=lambda q: 5)
    assert busy.calls == [], "messages are waiting: nothing was lost"
    idle = Recorder()
    reap(sessions, idle, STEPS, now=later, stall_s=600, queue_depth=lambda q: 0)
    assert sorted((c.step, c.args, c.queue) for c in idle.calls) == sorted([
        ("m:ingest", (queued,), "cpu"),
        ("m:render", (rendering, 0), "gpu-episode"),
        ("m:render", (rendering, 1), "gpu-episode"),
    ])
    again = Recorder()
    reap(sessions, again, STEPS, now=later + timedelta(seconds=1), stall_s=600, queue_depth=lambda q: 0)
    assert again.calls == [], "at most once per stall period"


def test_stalled_job_with_every_window_done_goes_to_assembly(sessions) -> None:
    job_id = _job(sessions, JobState.RENDERING, windows=1)
    wid = _claim(sessions, job_id, 0, lease_s=3600)
    with unit_of_work(sessions) as s:
        assert WindowRepo(s).complete(wid, "host:1", "k", "0" * 64)  # the worker died before counting it
    executor = Recorder()
    reap(sessions, executor, STEPS, now=utcnow() + timedelta(seconds=700), stall_s=600)
    assert [(c.step, c.args) for c in executor.calls] == [("m:assemble", (job_id,))]
    with unit_of_work(sessions) as s:
        assert JobRepo(s).get(job_id).state is JobState.ASSEMBLING

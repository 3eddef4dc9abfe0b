"""Job control on SQLite: pause/resume/cancel/retry re-send only unfinished work; catalog dedup query."""
from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from sqlalchemy.orm import Session, sessionmaker

from render_farm import farm_ops
from render_farm.steps import STEP_ASSEMBLE, STEP_INGEST, STEP_RENDER
from schedulers.base import StepCall
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.errors import Conflict
from storage.models import Base, JobState, Priority, WindowState, utcnow
from storage.repos import JobRepo, WindowRepo
from storage.repos.windows import NewWindow


class Recorder:
    def __init__(self) -> None:
        self.calls: list[StepCall] = []

    def submit(self, call: StepCall) -> None:
        self.calls.append(call)


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[SimpleNamespace]:
    engine = make_engine(f"sqlite:///{tmp_path / 'farm.db'}")
    Base.metadata.create_all(engine)
    yield SimpleNamespace(sessions=make_sessionmaker(engine), executor=Recorder())
    engine.dispose()


def _job(sessions: sessionmaker[Session], state: JobState, windows: int = 4, done: int = 0) -> str:
    with unit_of_work(sessions) as s:
        jobs, repo = JobRepo(s), WindowRepo(s)
        job = jobs.create(project="p", submitted_by="t", input_uri="s3://b/x.mp4", seed=1, model_name="tiny",
                          priority=Priority.EPISODE, input_sha256="a" * 64, model_sha256="b" * 64, params={"k": 1})
        ids = repo.create_many(job.id, [NewWindow(i, i * 10, i * 10 + 12, i) for i in range(windows)])
        jobs.set_windows_total(job.id, windows)
        for wid in ids[:done]:
            assert repo.claim(wid, "w:1", 60, utcnow())
            assert repo.complete(wid, "w:1", f"k{wid}", "c" * 64)
        jobs.recount_windows_done(job.id)
        if state is not JobState.QUEUED:
            jobs.transition(job.id, [JobState.QUEUED], state)
        return job.id


def test_pause_resume_resends_only_unfinished_batches(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.RENDERING, windows=4, done=2)
    farm_ops.pause(ctx, job_id)
    with pytest.raises(Conflict):
        farm_ops.pause(ctx, job_id)
    calls = farm_ops.resume(ctx, job_id)
    assert calls == ctx.executor.calls == [StepCall(STEP_RENDER, (job_id, b), queue="gpu-episode") for b in (2, 3)]
    with unit_of_work(ctx.sessions) as s:
        assert JobRepo(s).get(job_id).state is JobState.RENDERING


def test_resume_with_every_window_done_assembles(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.PAUSED, windows=2, done=2)
    assert farm_ops.resume(ctx, job_id) == [StepCall(STEP_ASSEMBLE, (job_id,), queue="cpu")]
    with unit_of_work(ctx.sessions) as s:
        assert JobRepo(s).get(job_id).state is JobState.ASSEMBLING


def test_cancel_is_final(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.RENDERING)
    farm_ops.cancel(ctx, job_id)
    with pytest.raises(Conflict):
        farm_ops.cancel(ctx, job_id)
    with pytest.raises(Conflict):
        farm_ops.resume(ctx, job_id)


def test_retry_resets_failed_windows_and_resends_their_batches(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.RENDERING, windows=3, done=1)
    with unit_of_work(ctx.sessions) as s:
        repo = WindowRepo(s)
        failed = repo.list_for_job(job_id)[2]
        for _ in range(3):
            assert repo.claim(failed.id, "w:1", 60, utcnow())
            repo.fail(failed.id, "w:1", "boom")
        JobRepo(s).transition(job_id, [JobState.RENDERING], JobState.FAILED, error="window 2 failed")
    with pytest.raises(Conflict):
        farm_ops.resume(ctx, job_id)
    calls = farm_ops.retry(ctx, job_id)
    assert calls == [StepCall(STEP_RENDER, (job_id, b), queue="gpu-episode") for b in (1, 2)]
    with unit_of_work(ctx.sessions) as s:
        job, w = JobRepo(s).get(job_id), WindowRepo(s).get(failed.id)
        assert job.state is JobState.RENDERING and job.error is None and job.windows_done == 1
        assert w.state is WindowState.PENDING and w.attempts == 0


def test_retry_of_a_job_that_failed_in_ingest_ingests_again(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.FAILED, windows=0)
    assert farm_ops.retry(ctx, job_id) == [StepCall(STEP_INGEST, (job_id,), queue="cpu")]
    with pytest.raises(Conflict):
        farm_ops.retry(ctx, job_id)


def test_find_rendered_matches_bytes_weights_and_params(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.DONE)
    with unit_of_work(ctx.sessions) as s:
        assert farm_ops.find_rendered(s, "a" * 64, "b" * 64, {"k": 1}).id == job_id
        assert farm_ops.find_rendered(s, "a" * 64, "b" * 64, {"k": 2}) is None
        assert farm_ops.find_rendered(s, "a" * 64, "d" * 64, {"k": 1}) is None
    failed = _job(ctx.sessions, JobState.FAILED)
    with unit_of_work(ctx.sessions) as s:
        assert farm_ops.find_rendered(s, "a" * 64, "b" * 64, {"k": 1}).id == job_id
        JobRepo(s).transition(job_id, [JobState.DONE], JobState.CANCELLED)
    with unit_of_work(ctx.sessions) as s:
        assert farm_ops.find_rendered(s, "a" * 64, "b" * 64, {"k": 1}) is None, f"{failed} failed: render it again"


def test_eta_uses_elapsed_time_per_window(ctx) -> None:
    job_id = _job(ctx.sessions, JobState.RENDERING, windows=4, done=2)
    with unit_of_work(ctx.sessions) as s:
        for w in WindowRepo(s).list_for_job(job_id):
            w.started_at = utcnow() - timedelta(seconds=10)
    ctx.store = SimpleNamespace(uri=lambda key: f"s3://b/{key}")
    status = farm_ops.job_status(ctx, job_id)
    assert status["windows_done"] == 2 and status["windows_total"] == 4
    assert status["eta_s"] == pytest.approx(10, abs=1)
    assert status["outputs"] == [] and status["presigned_url"] is None

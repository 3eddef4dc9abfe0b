"""Ingest and assembly on SQLite when their work raises: a transient error (the database or the
store went away) leaves the job where it was, still leased by this process, for the retry to take
back as the same attempt; any other error fails the job with its reason."""
from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

from render_farm.steps import assemble as assemble_step
from render_farm.steps import ingest as ingest_step
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.errors import InvalidInput, ServiceUnavailable
from storage.models import Base, JobState
from storage.repos import JobRepo


@pytest.fixture
def ctx(tmp_path: Path) -> Iterator[SimpleNamespace]:
    engine = make_engine(f"sqlite:///{tmp_path / 'farm.db'}")
    Base.metadata.create_all(engine)
    yield SimpleNamespace(sessions=make_sessionmaker(engine), worker="host:101", lease_s=60.0)
    engine.dispose()


def _job(ctx: SimpleNamespace, state: JobState) -> str:
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        job_id = jobs.create(project="p", submitted_by="t", input_uri="s3://b/x.mp4", seed=1, model_name="tiny").id
        if state is not JobState.QUEUED:
            assert jobs.transition(job_id, [JobState.QUEUED], state)
    return job_id


def _job_row(ctx: SimpleNamespace, job_id: str):
    with unit_of_work(ctx.sessions) as s:
        return JobRepo(s).get(job_id)


@pytest.mark.parametrize("step, work, state", [
    (ingest_step.ingest, "_ingest", JobState.QUEUED),
    (assemble_step.assemble, "_assemble", JobState.ASSEMBLING),
])
def test_transient_error_keeps_the_job_for_the_retry_other_errors_fail_it(
        ctx: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, step, work: str, state: JobState) -> None:
    module = ingest_step if step is ingest_step.ingest else assemble_step
    job_id = _job(ctx, state)

    def store_down(*_a, **_k):
        raise ServiceUnavailable("cannot reach s3://renders/prod: connection refused")

    monkeypatch.setattr(module, work, store_down)
    with pytest.raises(ServiceUnavailable):
        step(ctx, job_id)
    job = _job_row(ctx, job_id)
    running = JobState.INGESTING if state is JobState.QUEUED else JobState.ASSEMBLING
    assert (job.state, job.error, job.lease_owner, job.attempts) == (running, None, "host:101", 1)

    def bad_input(*_a, **_k):
        raise InvalidInput("no video stream")

    monkeypatch.setattr(module, work, bad_input)
    with pytest.raises(InvalidInput):
        step(ctx, job_id)  # the retry, in the same process: takes its lease back, same attempt
    job = _job_row(ctx, job_id)
    assert job.state is JobState.FAILED and "no video stream" in (job.error or "") and job.attempts == 1

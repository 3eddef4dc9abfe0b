"""JobRepo and ArtifactRepo on SQLite and PostgreSQL."""
from __future__ import annotations

import threading
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.errors import Conflict, NotFound
from storage.models import ArtifactKind, JobState, Priority
from storage.repos import ArtifactRepo, JobRepo

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)


def _job(session: Session, project: str = "ep101", **kwargs: object) -> str:
    return JobRepo(session).create(
        project=project, submitted_by="ana", input_uri="s3://in/ep101.mov", seed=2**40, model_name="tiny",
        params={"cfg": 4.5, "steps": 25, "prompt": "rain on a tin roof"}, **kwargs,  # type: ignore[arg-type]
    ).id


def test_create_and_read_back(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        job_id = _job(session, priority=Priority.CATALOG)
    with unit_of_work(sessions) as session:
        job = JobRepo(session).get(job_id)
    assert len(job_id) == 32 and int(job_id, 16) >= 0
    assert (job.state, job.priority, job.seed, job.params["steps"]) == (JobState.QUEUED, Priority.CATALOG, 2**40, 25)
    with unit_of_work(sessions) as session, pytest.raises(NotFound):
        JobRepo(session).get("0" * 32)


def test_list_filters_by_state_and_project(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        a = _job(session, "ep101", now=T0)
        b = _job(session, "ep102", now=T0 + timedelta(seconds=1))
        c = _job(session, "ep101", now=T0 + timedelta(seconds=2))
        JobRepo(session).transition(c, [JobState.QUEUED], JobState.CANCELLED)
    with unit_of_work(sessions) as session:
        jobs = JobRepo(session)
        assert [j.id for j in jobs.list()] == [c, b, a]
        assert [j.id for j in jobs.list(project="ep101")] == [c, a]
        assert [j.id for j in jobs.list(states=[JobState.QUEUED], project="ep101")] == [a]


def test_transition_only_from_allowed_states(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        jobs = JobRepo(session)
        job_id = _job(session)
        assert not jobs.transition(job_id, [JobState.RENDERING], JobState.ASSEMBLING)
        assert jobs.transition(job_id, [JobState.QUEUED, JobState.PAUSED], JobState.INGESTING)
        assert jobs.transition(job_id, [JobState.INGESTING], JobState.FAILED, error="no video stream")
        job = jobs.get(job_id)
        assert (job.state, job.error) == (JobState.FAILED, "no video stream")
        with pytest.raises(NotFound):
            jobs.transition("f" * 32, [JobState.QUEUED], JobState.INGESTING)


def test_record_ingest_and_output(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        jobs = JobRepo(session)
        job_id = _job(session)
        jobs.record_ingest(job_id, input_sha256="1" * 64, model_sha256="2" * 64)
        jobs.set_output(job_id, "s3://out/ep101.mov")
        with pytest.raises(NotFound):
            jobs.record_ingest("0" * 32, input_sha256="1" * 64)
    with unit_of_work(sessions) as session:
        job = JobRepo(session).get(job_id)
    assert (job.input_sha256, job.model_sha256, job.output_uri) == ("1" * 64, "2" * 64, "s3://out/ep101.mov")


def test_job_lease_for_cpu_steps(sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        jobs = JobRepo(session)
        job_id = _job(session)
        assert jobs.claim(job_id, state=JobState.QUEUED, owner="cpu-1", lease_s=30, now=T0)
        assert not jobs.claim(job_id, state=JobState.QUEUED, owner="cpu-2", lease_s=30, now=T0 + timedelta(seconds=5))
        assert jobs.expired_leases(T0 + timedelta(seconds=31)) == [job_id]
        assert jobs.claim(job_id, state=JobState.QUEUED, owner="cpu-2", lease_s=30, now=T0 + timedelta(seconds=31))
        assert not jobs.release(job_id, "cpu-1")
        assert jobs.release(job_id, "cpu-2")
        assert jobs.get(job_id).attempts == 2


def test_job_lease_owner_takes_it_back_as_the_same_attempt(sessions: sessionmaker[Session]) -> None:
    """The retry of a CPU step that claimed, then lost the database before it finished."""
    with unit_of_work(sessions) as session:
        jobs = JobRepo(session)
        job_id = _job(session)
        assert jobs.claim(job_id, state=JobState.QUEUED, owner="cpu-1", lease_s=30, now=T0)
        assert jobs.claim(job_id, state=JobState.QUEUED, owner="cpu-1", lease_s=30, now=T0 + timedelta(seconds=5))
        assert not jobs.claim(job_id, state=JobState.QUEUED, owner="cpu-2", lease_s=30, now=T0 + timedelta(seconds=34))
        job = jobs.get(job_id)
        assert (job.attempts, job.lease_owner, job.lease_expires_at) == (1, "cpu-1", T0 + timedelta(seconds=35))
        assert not jobs.claim(job_id, state=JobState.INGESTING, owner="cpu-1", lease_s=30, now=T0 + timedelta(seconds=6))


def test_racing_job_claims_exactly_one_wins(db_url: str, sessions: sessionmaker[Session]) -> None:
    with unit_of_work(sessions) as session:
        job_id = _job(session)
    workers = 4
    barrier = threading.Barrier(workers, timeout=30)
    wins: list[bool] = []
    lock = threading.Lock()

    def run(n: int) -> None:
        engine = make_engine(db_url)
        barrier.wait()
        with unit_of_work(make_sessionmaker(engine)) as session:
            won = JobRepo(session).claim(job_id, state=JobState.QUEUED, owner=f"cpu-{n}", lease_s=30, now=T0)
        engine.dispose()
        with lock:
            wins.append(won)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(wins) == [False] * (workers - 1) + [True], f"{wins=}"


def test_artifacts_are_idempotent_and_conflict_on_other_bytes(sessions: sessionmaker[Session]) -> None:
    proxy = ("jobs/x/proxy.mp4",)
    with unit_of_work(sessions) as session:
        job_id = _job(session)
        artifacts = ArtifactRepo(session)
        first = artifacts.add(job_id, ArtifactKind.PROXY, *proxy, uri="file:///p", sha256="a" * 64, size_bytes=10)
        again = artifacts.add(job_id, ArtifactKind.PROXY, *proxy, uri="file:///p", sha256="a" * 64, size_bytes=10)
        assert again.id == first.id
        with pytest.raises(Conflict):
            artifacts.add(job_id, ArtifactKind.PROXY, *proxy, uri="file:///p", sha256="b" * 64, size_bytes=10)
        artifacts.add(
            job_id, ArtifactKind.OUTPUT, "jobs/x/out.mp4", uri="file:///o", sha256="c" * 64, size_bytes=5,
            meta={"loudness_lufs": -23.0},
        )
    with unit_of_work(sessions) as session:
        kinds = [a.kind for a in ArtifactRepo(session).list_for_job(job_id)]
        assert sorted(kinds) == [ArtifactKind.OUTPUT, ArtifactKind.PROXY]
        assert ArtifactRepo(session).get(job_id, ArtifactKind.OUTPUT, "jobs/x/out.mp4").meta == {"loudness_lufs": -23.0}

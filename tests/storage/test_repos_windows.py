"""WindowRepo: claims, leases, completion, failure, the reaper — and real races on both databases."""
from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

from sqlalchemy.orm import Session, sessionmaker

from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.models import JobState, WindowState
from storage.repos import JobRepo, NewWindow, WindowRepo

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=timezone.utc)


def _job_with_windows(sessions: sessionmaker[Session], count: int, *, max_attempts: int = 3) -> tuple[str, list[str]]:
    with unit_of_work(sessions) as session:
        jobs = JobRepo(session)
        job_id = jobs.create(project="p", submitted_by="u", input_uri="file:///v.mp4", seed=1, model_name="tiny").id
        ids = WindowRepo(session).create_many(
            job_id, [NewWindow(i, i * 90, i * 90 + 100, i // 4) for i in range(count)], max_attempts=max_attempts
        )
        jobs.set_windows_total(job_id, count)
        assert jobs.transition(job_id, [JobState.QUEUED], JobState.RENDERING)
    return job_id, ids


def _race(db_url: str, workers: int, body: Callable[[Session, int, threading.Barrier], bool]) -> list[bool]:
    """Run `body` in `workers` threads at once, each with its own engine; return their results."""
    barrier = threading.Barrier(workers, timeout=30)
    results: list[bool | BaseException] = [False] * workers
    engines = [make_engine(db_url) for _ in range(workers)]

    def run(n: int) -> None:
        try:
            with unit_of_work(make_sessionmaker(engines[n])) as session:
                results[n] = body(session, n, barrier)
        except BaseException as err:  # reported below
            results[n] = err

    threads = [threading.Thread(target=run, args=(n,)) for n in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for engine in engines:
        engine.dispose()
    errors = [r for r in results if isinstance(r, BaseException)]
    assert not errors, f"{errors=}"
    return [bool(r) for r in results]


def _in_transaction_barrier(session: Session, barrier: threading.Barrier) -> None:
    """On PostgreSQL, meet the other workers inside the open transaction so the racing UPDATEs
    overlap; SQLite transactions hold the write lock (BEGIN IMMEDIATE), so they cannot overlap."""
    if session.get_bind().dialect.name == "postgresql":
        barrier.wait()


def test_claim_complete_round_trip(sessions: sessionmaker[Session]) -> None:
    _, (window_id,) = _job_with_windows(sessions, 1)
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        assert windows.claim(window_id, "w1", 60, T0, worker_host="gpu-01", device="cuda:0")
        assert not windows.claim(window_id, "w2", 60, T0 + timedelta(seconds=30))
        assert not windows.complete(window_id, "w2", "k", "0" * 64)
        assert windows.complete(window_id, "w1", "jobs/x/latents/0000.npy", "a" * 64, now=T0)
        window = windows.get(window_id)
    assert (window.state, window.attempts, window.lease_owner, window.worker_host) == (
        WindowState.DONE, 1, None, "gpu-01",
    ), f"{window=}"
    assert window.result_sha256 == "a" * 64 and window.started_at == T0


def test_expired_lease_can_be_taken_over_and_old_owner_cannot_complete(sessions: sessionmaker[Session]) -> None:
    _, (window_id,) = _job_with_windows(sessions, 1)
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        assert windows.claim(window_id, "w1", 60, T0)
        assert windows.heartbeat(window_id, "w1", 60, T0 + timedelta(seconds=50))
        assert not windows.claim(window_id, "w2", 60, T0 + timedelta(seconds=100)), "lease was extended"
        assert windows.claim(window_id, "w2", 60, T0 + timedelta(seconds=111))
        assert not windows.complete(window_id, "w1", "k", "0" * 64)
        assert not windows.heartbeat(window_id, "w1", 60, T0 + timedelta(seconds=112))
        assert windows.get(window_id).attempts == 2


def test_owner_takes_back_a_window_it_still_holds_as_the_same_attempt(sessions: sessionmaker[Session]) -> None:
    """The retry of a step that claimed, then lost the database before recording its result."""
    _, (window_id,) = _job_with_windows(sessions, 1, max_attempts=1)
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        assert windows.claim(window_id, "w1", 60, T0)
        assert not windows.claim(window_id, "w2", 60, T0 + timedelta(seconds=10))
        assert windows.claim(window_id, "w1", 60, T0 + timedelta(seconds=10)), "its own lease, even at max attempts"
        window = windows.get(window_id)
        assert (window.attempts, window.started_at, window.lease_owner) == (1, T0, "w1"), f"{window=}"
        assert window.lease_expires_at == T0 + timedelta(seconds=70), "the lease was renewed"
        assert windows.complete(window_id, "w1", "k", "0" * 64)
        assert not windows.claim(window_id, "w1", 60, T0 + timedelta(seconds=20)), "done is done"
        assert windows.get(window_id).attempts == 1


def test_fail_retries_until_max_attempts(sessions: sessionmaker[Session]) -> None:
    _, (window_id,) = _job_with_windows(sessions, 1, max_attempts=2)
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        assert windows.claim(window_id, "w1", 60, T0)
        assert windows.fail(window_id, "w1", "CUDA OOM") == WindowState.PENDING
        assert windows.fail(window_id, "w1", "again") is None, "no longer its owner"
        assert windows.claim(window_id, "w2", 60, T0)
        assert windows.fail(window_id, "w2", "CUDA OOM") == WindowState.FAILED
        assert not windows.claim(window_id, "w3", 60, T0 + timedelta(hours=1))
        assert windows.get(window_id).error == "CUDA OOM"


def test_reaper_requeues_expired_leases(sessions: sessionmaker[Session]) -> None:
    job_id, ids = _job_with_windows(sessions, 3, max_attempts=1)
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        assert windows.claim(ids[0], "w1", 10, T0)
        assert windows.claim(ids[1], "w2", 1000, T0)
        assert [w.id for w in windows.expired_leases(T0 + timedelta(seconds=11))] == [ids[0]]
        assert windows.requeue_expired(T0 + timedelta(seconds=11)) == [ids[0]]
        # max_attempts=1: the expired window is out of attempts, so it failed
        counts = windows.count_by_state(job_id)
    assert counts == {WindowState.PENDING: 1, WindowState.RUNNING: 1, WindowState.DONE: 0, WindowState.FAILED: 1}


def test_windows_by_batch(sessions: sessionmaker[Session]) -> None:
    job_id, ids = _job_with_windows(sessions, 6)  # batches of 4: [0..3], [4, 5]
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        assert [w.id for w in windows.list_for_batch(job_id, 1)] == ids[4:]
        assert [(w.index, w.start_frame, w.end_frame) for w in windows.list_for_batch(job_id, 0)][:2] == [
            (0, 0, 100), (1, 90, 190),
        ]
        assert windows.list_for_batch(job_id, 2) == []


def test_claim_next_takes_windows_in_order(sessions: sessionmaker[Session]) -> None:
    job_id, ids = _job_with_windows(sessions, 3)
    with unit_of_work(sessions) as session:
        windows = WindowRepo(session)
        got = [windows.claim_next(job_id, f"w{n}", 60, T0) for n in range(4)]
    assert got == [*ids, None], f"{got=}"


def test_two_workers_racing_for_one_window_exactly_one_wins(db_url: str, sessions: sessionmaker[Session]) -> None:
    _, ids = _job_with_windows(sessions, 10)
    for window_id in ids:

        def claim(session: Session, n: int, barrier: threading.Barrier, window_id: str = window_id) -> bool:
            _in_transaction_barrier(session, barrier)
            return WindowRepo(session).claim(window_id, f"worker-{n}", 60, T0)

        results = _race(db_url, 2, claim)
        assert sorted(results) == [False, True], f"{window_id=} {results=}"
    with unit_of_work(sessions) as session:
        assert all(WindowRepo(session).get(w).attempts == 1 for w in ids)


def test_racing_claims_of_an_expired_lease_exactly_one_wins(db_url: str, sessions: sessionmaker[Session]) -> None:
    _, (window_id,) = _job_with_windows(sessions, 1, max_attempts=10)
    with unit_of_work(sessions) as session:
        assert WindowRepo(session).claim(window_id, "crashed", 5, T0)
    later = T0 + timedelta(seconds=10)

    def claim(session: Session, n: int, barrier: threading.Barrier) -> bool:
        _in_transaction_barrier(session, barrier)
        return WindowRepo(session).claim(window_id, f"worker-{n}", 60, later)

    assert sum(_race(db_url, 4, claim)) == 1
    with unit_of_work(sessions) as session:
        assert WindowRepo(session).get(window_id).attempts == 2


def test_last_window_to_finish_hands_off_to_assembly_exactly_once(db_url: str, sessions: sessionmaker[Session]) -> None:
    workers = 6
    for _round in range(3):
        job_id, ids = _job_with_windows(sessions, workers)
        with unit_of_work(sessions) as session:
            for n, window_id in enumerate(ids):
                assert WindowRepo(session).claim(window_id, f"worker-{n}", 600, T0)

        def finish(
            session: Session, n: int, barrier: threading.Barrier, ids: list[str] = ids, job_id: str = job_id
        ) -> bool:
            assert WindowRepo(session).complete(ids[n], f"worker-{n}", f"k{n}", "b" * 64)
            _in_transaction_barrier(session, barrier)  # every window done, none committed yet
            return JobRepo(session).count_window_done_and_maybe_assemble(job_id)

        results = _race(db_url, workers, finish)
        assert sum(results) == 1, f"{results=}"
        with unit_of_work(sessions) as session:
            job = JobRepo(session).get(job_id)
            assert job.state == JobState.ASSEMBLING, f"{job=}"
            assert job.windows_done == job.windows_total == workers, f"{job=}"
            assert not JobRepo(session).mark_rendering_finished(job_id), "hand-off happens once"

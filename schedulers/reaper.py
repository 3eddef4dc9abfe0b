"""The reaper: puts work whose worker vanished back on the queues. Scheduling is a query.

Three sweeps, each one transaction, messages sent after it commits (a lost message is found
again by the next sweep; a duplicate one finds nothing to claim and returns):

1. windows whose lease ran out go back to pending (or failed when out of attempts, which fails
   the job); the batch of each is re-sent;
2. jobs whose CPU-step lease ran out (ingest, assemble) are released and the step re-sent;
3. jobs untouched for `stall_s` with work left, nothing running and nothing waiting in their
   queue (a message lost with a broker restart, or a step that died without retrying) get that
   work re-sent, at most once per `stall_s`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from schedulers.base import Executor, StepCall
from schedulers.celery_executor import gpu_queue
from storage.db import unit_of_work
from storage.models import Job, JobState, Window, WindowState, utcnow
from storage.repos import EventRepo, JobRepo, WindowRepo

log = logging.getLogger(__name__)

ACTOR = "reaper"


@dataclass(frozen=True)
class StepNames:
    """The steps the reaper may re-send, by `module:function` name (schedulers never imports them)."""

    ingest: str
    render: str
    assemble: str


@dataclass
class ReapReport:
    windows_requeued: list[str] = field(default_factory=list)
    jobs_failed: list[str] = field(default_factory=list)
    sent: list[tuple[str, tuple[Any, ...]]] = field(default_factory=list)  # (step, args)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def reap(sessions: sessionmaker[Session], executor: Executor, steps: StepNames, *, now: datetime | None = None,
         stall_s: float = 600.0, queue_depth: Callable[[str], int] | None = None) -> ReapReport:
    now = now or utcnow()
    report = ReapReport()
    calls: list[StepCall] = []
    calls += _expired_windows(sessions, steps, now, report)
    calls += _expired_job_leases(sessions, steps, now)
    calls += _stalled_jobs(sessions, steps, now, stall_s, queue_depth or (lambda _q: 0))
    for call in calls:
        executor.submit(call)
        report.sent.append((call.step, call.args))
    if calls or report.windows_requeued:
        log.info("reaper: %d windows requeued, %d jobs failed, %d steps re-sent",
                 len(report.windows_requeued), len(report.jobs_failed), len(calls))
    return report


def _expired_windows(sessions: sessionmaker[Session], steps: StepNames, now: datetime, report: ReapReport) -> list[StepCall]:
    calls: list[StepCall] = []
    with unit_of_work(sessions) as s:
        ids = WindowRepo(s).requeue_expired(now)
        if not ids:
            return []
        report.windows_requeued = ids
        rows = s.execute(select(Window.job_id, Window.batch_index, Window.state, Window.id, Window.index)
                         .where(Window.id.in_(ids)).order_by(Window.job_id, Window.index)).all()
        jobs, events = JobRepo(s), EventRepo(s)
        for job_id in sorted({r.job_id for r in rows}):
            mine = [r for r in rows if r.job_id == job_id]
            events.append("reaper.requeued", job_id=job_id, actor=ACTOR,
                          payload={"windows": [r.index for r in mine], "states": [WindowState(r.state).value for r in mine]})
            job = jobs.get(job_id)
            out_of_attempts = [r.index for r in mine if r.state == WindowState.FAILED]
            if out_of_attempts:
                reason = f"windows {out_of_attempts} lost their worker on their last attempt"
                if jobs.transition(job_id, [JobState.RENDERING, JobState.PAUSED], JobState.FAILED, error=reason):
                    events.append("job.failed", job_id=job_id, actor=ACTOR, payload={"error": reason})
                    report.jobs_failed.append(job_id)
                    log.info("job %s failed: %s", job_id, reason)
            elif job.state is JobState.RENDERING:
                for batch in sorted({r.batch_index for r in mine}):
                    calls.append(StepCall(steps.render, (job_id, batch), queue=gpu_queue(job.priority.value)))
    return calls


def _expired_job_leases(sessions: sessionmaker[Session], steps: StepNames, now: datetime) -> list[StepCall]:
    calls: list[StepCall] = []
    with unit_of_work(sessions) as s:
        jobs = JobRepo(s)
        for job_id in jobs.expired_leases(now):
            job = jobs.get(job_id)
            owner = job.lease_owner
            # Release only if the lease is still the expired one (the owner may be renewing it now).
            s.execute(update(Job).where(Job.id == job_id, Job.lease_owner == owner, Job.lease_expires_at < now)
                      .values(lease_owner=None, lease_expires_at=None).execution_options(synchronize_session=False))
            step = {JobState.INGESTING: steps.ingest, JobState.ASSEMBLING: steps.assemble}.get(job.state)
            if step is not None:
                EventRepo(s).append("reaper.lease_expired", job_id=job_id, actor=ACTOR,
                                    payload={"state": job.state.value, "owner": owner})
                calls.append(StepCall(step, (job_id,), queue="cpu"))
                log.info("job %s: %s lease of %s expired, step re-sent", job_id, job.state.value, owner)
    return calls


def _stalled_jobs(sessions: sessionmaker[Session], steps: StepNames, now: datetime, stall_s: float,
                  queue_depth: Callable[[str], int]) -> list[StepCall]:
    calls: list[StepCall] = []
    before = now - timedelta(seconds=stall_s)
    with unit_of_work(sessions) as s:
        stalled = s.scalars(
            select(Job).where(Job.state.in_([JobState.QUEUED, JobState.RENDERING, JobState.ASSEMBLING]),
                              Job.lease_owner.is_(None), Job.updated_at < before)
            .order_by(Job.created_at).execution_options(populate_existing=True)
        ).all()
        depth: dict[str, int] = {}

        def idle(queue: str) -> bool:
            if queue not in depth:
                depth[queue] = queue_depth(queue)
            return depth[queue] == 0

        for job in stalled:
            found: list[StepCall] = []
            if job.state is JobState.QUEUED and idle("cpu"):
                found.append(StepCall(steps.ingest, (job.id,), queue="cpu"))
            elif job.state is JobState.ASSEMBLING and idle("cpu"):
                found.append(StepCall(steps.assemble, (job.id,), queue="cpu"))
            elif job.state is JobState.RENDERING:
                found += _stalled_render(s, job, steps, now, idle)
            if found:
                s.execute(update(Job).where(Job.id == job.id).values(updated_at=now)
                          .execution_options(synchronize_session=False))
                EventRepo(s).append("reaper.resent", job_id=job.id, actor=ACTOR,
                                    payload={"state": job.state.value, "calls": [[c.step, list(c.args)] for c in found]})
                calls += found
    return calls


def _stalled_render(s: Session, job: Job, steps: StepNames, now: datetime, idle: Callable[[str], bool]) -> list[StepCall]:
    windows = WindowRepo(s).list_for_job(job.id)
    if any(w.state is WindowState.RUNNING for w in windows):
        return []  # someone works on it; an expired lease is sweep 1's business
    if windows and all(w.state is WindowState.DONE for w in windows):
        jobs = JobRepo(s)
        jobs.recount_windows_done(job.id, now=now)
        if jobs.mark_rendering_finished(job.id, now=now):
            return [StepCall(steps.assemble, (job.id,), queue="cpu")]
        return []
    queue = gpu_queue(job.priority.value)
    pending = sorted({w.batch_index for w in windows if w.state is WindowState.PENDING and w.attempts < w.max_attempts})
    if not pending or not idle(queue):
        return []
    return [StepCall(steps.render, (job.id, b), queue=queue) for b in pending]

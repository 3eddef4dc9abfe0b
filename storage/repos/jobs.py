"""Queries on jobs: create, read, state transitions, leases, and the last-window hand-off."""
from __future__ import annotations

import logging
from collections.abc import Collection, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, case, func, select, update
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.models import Job, JobState, Priority, Window, WindowState, utcnow

log = logging.getLogger(__name__)


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult), f"{type(result)=}"
    return result.rowcount


class JobRepo:
    """Every query on the `jobs` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create(
        self,
        *,
        project: str,
        submitted_by: str,
        input_uri: str,
        seed: int,
        model_name: str,
        params: dict[str, Any] | None = None,
        input_sha256: str | None = None,
        model_sha256: str | None = None,
        priority: Priority = Priority.EPISODE,
        job_id: str | None = None,
        now: datetime | None = None,
    ) -> Job:
        """Insert a queued job and return it (flushed, so its id is set)."""
        now = now or utcnow()
        job = Job(
            project=project,
            submitted_by=submitted_by,
            input_uri=input_uri,
            input_sha256=input_sha256,
            params=dict(params or {}),
            seed=seed,
            model_name=model_name,
            model_sha256=model_sha256,
            priority=priority,
            state=JobState.QUEUED,
            created_at=now,
            updated_at=now,
            windows_total=0,
            windows_done=0,
            attempts=0,
        )
        if job_id is not None:
            job.id = job_id
        self.session.add(job)
        self.session.flush()
        log.debug("job %s created in project %s", job.id, project)
        return job

    def find(self, job_id: str) -> Job | None:
        """The job as the database holds it now, or None."""
        return self.session.get(Job, job_id, populate_existing=True)

    def get(self, job_id: str) -> Job:
        """The job as the database holds it now; NotFound if there is none."""
        job = self.find(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        return job

    def list(
        self,
        *,
        states: Collection[JobState] | None = None,
        project: str | None = None,
        limit: int = 100,
        offset: int = 0,
    ) -> Sequence[Job]:
        """Jobs, newest first, optionally filtered by state and project."""
        query = select(Job).order_by(Job.created_at.desc(), Job.id).limit(limit).offset(offset)
        if states is not None:
            query = query.where(Job.state.in_(list(states)))
        if project is not None:
            query = query.where(Job.project == project)
        return self.session.scalars(query.execution_options(populate_existing=True)).all()

    def _require(self, job_id: str) -> None:
        if self.session.scalar(select(Job.id).where(Job.id == job_id)) is None:
            raise NotFound(f"no job {job_id}")

    def transition(
        self,
        job_id: str,
        from_states: Collection[JobState],
        to_state: JobState,
        *,
        error: str | None = None,
        now: datetime | None = None,
    ) -> bool:
        """Move the job to `to_state` if it is in one of `from_states`; True if this call moved it."""
        assert from_states, f"{from_states=}"
        values: dict[str, Any] = {"state": to_state, "updated_at": now or utcnow()}
        if error is not None:
            values["error"] = error
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.state.in_(list(from_states)))
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        moved = _rowcount(result) == 1
        if not moved:
            self._require(job_id)
        log.debug("job %s → %s: %s", job_id, to_state.value, "moved" if moved else "not in " + str(list(from_states)))
        return moved

    def set_windows_total(self, job_id: str, windows_total: int, *, now: datetime | None = None) -> None:
        """Record how many windows the plan made (and reset the done count)."""
        assert windows_total >= 0, f"{windows_total=}"
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(windows_total=windows_total, windows_done=0, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise NotFound(f"no job {job_id}")

    def record_ingest(
        self,
        job_id: str,
        *,
        input_sha256: str,
        model_sha256: str | None = None,
        now: datetime | None = None,
    ) -> None:
        """Record what ingest learned: the input's SHA-256 and the exact model weights used."""
        values: dict[str, Any] = {"input_sha256": input_sha256, "updated_at": now or utcnow()}
        if model_sha256 is not None:
            values["model_sha256"] = model_sha256
        result = self.session.execute(
            update(Job).where(Job.id == job_id).values(**values).execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise NotFound(f"no job {job_id}")

    def set_output(self, job_id: str, output_uri: str, *, now: datetime | None = None) -> None:
        """Record where the finished output lives."""
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(output_uri=output_uri, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise NotFound(f"no job {job_id}")

    def claim(self, job_id: str, *, state: JobState, owner: str, lease_s: float, now: datetime) -> bool:
        """Take the job's lease for a CPU step (ingest, assemble) while it is in `state`.

        True for exactly one of several racing callers: the job must be unleased or its lease
        expired. Increments `attempts`.

        A lease `owner` still holds is renewed, as the same attempt: the retry of a step that
        claimed it and then failed on a transient error (see WindowRepo.claim).
        """
        assert lease_s > 0, f"{lease_s=}"
        held = Job.lease_owner == owner
        result = self.session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.state == state,
                (Job.lease_owner.is_(None)) | (Job.lease_expires_at < now) | held,
            )
            .values(  # every right-hand side reads the row as it was before this UPDATE
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=case((held, Job.attempts), else_=Job.attempts + 1),
                updated_at=now,
            )
            .execution_options(synchronize_session=False)
        )
        won = _rowcount(result) == 1
        log.debug("job %s claim by %s in %s: %s", job_id, owner, state.value, won)
        return won

    def release(self, job_id: str, owner: str, *, now: datetime | None = None) -> bool:
        """Drop the lease if `owner` still holds it."""
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id, Job.lease_owner == owner)
            .values(lease_owner=None, lease_expires_at=None, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    def expired_leases(self, now: datetime) -> Sequence[str]:
        """Ids of jobs whose CPU-step lease has run out (for the reaper)."""
        return self.session.scalars(
            select(Job.id).where(Job.lease_owner.is_not(None), Job.lease_expires_at < now).order_by(Job.id)
        ).all()

    def count_window_done_and_maybe_assemble(self, job_id: str, *, now: datetime | None = None) -> bool:
        """Count one more finished window; True for the one caller whose window was the last.

        Call it once per window, in the same unit of work as the WindowRepo.complete that
        returned True. The increment locks the job row (PostgreSQL), so concurrent finishers
        queue and each sees the counts of those before it; the following conditional UPDATE
        moves rendering → assembling for exactly one of them.
        """
        now = now or utcnow()
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(windows_done=Job.windows_done + 1, updated_at=now)
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise NotFound(f"no job {job_id}")
        return self.mark_rendering_finished(job_id, now=now)

    def mark_rendering_finished(self, job_id: str, *, now: datetime | None = None) -> bool:
        """Move rendering → assembling if every window is done; True only for the caller that moved it."""
        result = self.session.execute(
            update(Job)
            .where(
                Job.id == job_id,
                Job.state == JobState.RENDERING,
                Job.windows_done == Job.windows_total,
                Job.windows_total > 0,
            )
            .values(state=JobState.ASSEMBLING, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        last = _rowcount(result) == 1
        if last:
            log.info("job %s: all windows done, rendering → assembling", job_id)
        return last

    def recount_windows_done(self, job_id: str, *, now: datetime | None = None) -> int:
        """Repair: set windows_done from the windows table and return it."""
        done = (
            select(func.count())
            .select_from(Window)
            .where(Window.job_id == job_id, Window.state == WindowState.DONE)
            .scalar_subquery()
        )
        result = self.session.execute(
            update(Job)
            .where(Job.id == job_id)
            .values(windows_done=done, updated_at=now or utcnow())
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            raise NotFound(f"no job {job_id}")
        count = self.session.scalar(select(Job.windows_done).where(Job.id == job_id))
        assert count is not None, f"{job_id=}"
        return count

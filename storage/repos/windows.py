"""Queries on windows: plan insertion, claims with leases, completion, failure, the reaper."""
from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import CursorResult, case, func, insert, or_, select, update
from sqlalchemy.orm import Session

from storage.errors import NotFound
from storage.models import Window, WindowState, new_id, utcnow

log = logging.getLogger(__name__)

# How many candidates claim_next tries before giving up on a busy job.
CLAIM_NEXT_CANDIDATES = 16


@dataclass(frozen=True)
class NewWindow:
    """One planned window, in integer latent frames [start_frame, end_frame)."""

    index: int
    start_frame: int
    end_frame: int
    batch_index: int
    padded_frames: int | None = None  # the batch's length bucket (None: pad to its longest window)
    shot_from: int | None = None  # picture frames [shot_from, shot_to) it may see (None: unbounded)
    shot_to: int | None = None

    def __post_init__(self) -> None:
        assert 0 <= self.start_frame < self.end_frame, f"{self.start_frame=} {self.end_frame=}"
        assert self.index >= 0 and self.batch_index >= 0, f"{self.index=} {self.batch_index=}"
        assert self.padded_frames is None or self.padded_frames >= self.end_frame - self.start_frame, (
            f"{self.padded_frames=} {self.start_frame=} {self.end_frame=}")
        assert self.shot_from is None or self.shot_to is None or 0 <= self.shot_from < self.shot_to, (
            f"{self.shot_from=} {self.shot_to=}")


def _rowcount(result: Any) -> int:
    assert isinstance(result, CursorResult), f"{type(result)=}"
    return result.rowcount


def _claimable(now: datetime) -> Any:
    """Pending with attempts left, or running with an expired lease and attempts left."""
    return (Window.attempts < Window.max_attempts) & or_(
        Window.state == WindowState.PENDING,
        (Window.state == WindowState.RUNNING) & (Window.lease_expires_at < now),
    )


class WindowRepo:
    """Every query on the `windows` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def create_many(self, job_id: str, windows: Iterable[NewWindow], *, max_attempts: int = 3) -> list[str]:
        """Insert a job's planned windows (state pending); return their ids in the given order."""
        assert max_attempts >= 1, f"{max_attempts=}"
        rows: list[dict[str, Any]] = [
            {
                "id": new_id(),
                "job_id": job_id,
                "index": w.index,
                "start_frame": w.start_frame,
                "end_frame": w.end_frame,
                "batch_index": w.batch_index,
                "padded_frames": w.padded_frames,
                "shot_from": w.shot_from,
                "shot_to": w.shot_to,
                "state": WindowState.PENDING,
                "attempts": 0,
                "max_attempts": max_attempts,
            }
            for w in windows
        ]
        if rows:
            self.session.execute(insert(Window), rows)
        log.debug("job %s: %d windows planned", job_id, len(rows))
        return [str(row["id"]) for row in rows]

    def find(self, window_id: str) -> Window | None:
        """The window as the database holds it now, or None."""
        return self.session.get(Window, window_id, populate_existing=True)

    def get(self, window_id: str) -> Window:
        """The window as the database holds it now; NotFound if there is none."""
        window = self.find(window_id)
        if window is None:
            raise NotFound(f"no window {window_id}")
        return window

    def list_for_job(
        self, job_id: str, *, state: WindowState | None = None, batch_index: int | None = None
    ) -> Sequence[Window]:
        """A job's windows in timeline order, optionally one state or one batch."""
        query = select(Window).where(Window.job_id == job_id).order_by(Window.index)
        if state is not None:
            query = query.where(Window.state == state)
        if batch_index is not None:
            query = query.where(Window.batch_index == batch_index)
        return self.session.scalars(query.execution_options(populate_existing=True)).all()

    def list_for_batch(self, job_id: str, batch_index: int) -> Sequence[Window]:
        """The windows of one planned batch, in timeline order."""
        return self.list_for_job(job_id, batch_index=batch_index)

    def count_by_state(self, job_id: str) -> dict[WindowState, int]:
        """How many of a job's windows are in each state (every state present, zeros included)."""
        counts = {state: 0 for state in WindowState}
        rows = self.session.execute(
            select(Window.state, func.count()).where(Window.job_id == job_id).group_by(Window.state)
        )
        for state, count in rows:
            counts[WindowState(state)] = count
        return counts

    def claim(
        self,
        window_id: str,
        owner: str,
        lease_s: float,
        now: datetime,
        *,
        worker_host: str | None = None,
        device: str | None = None,
    ) -> bool:
        """Take the window for rendering; True for exactly one of several racing workers.

        Claimable: pending, or running with an expired lease, and attempts < max_attempts.
        Sets the lease and increments attempts in the same UPDATE.

        A window `owner` still holds (running under its lease) is taken back with a renewed lease,
        as the same attempt (attempts and started_at unchanged): that is the retry of a step that
        claimed it and then failed on a transient error (the database went away before the
        result was recorded). Owners are one per process and a process runs one step at a time,
        so no other step of the owner can be working on it.
        """
        assert lease_s > 0, f"{lease_s=}"
        held = (Window.state == WindowState.RUNNING) & (Window.lease_owner == owner)
        result = self.session.execute(
            update(Window)
            .where(Window.id == window_id, or_(_claimable(now), held))
            .values(  # every right-hand side reads the row as it was before this UPDATE
                state=WindowState.RUNNING,
                lease_owner=owner,
                lease_expires_at=now + timedelta(seconds=lease_s),
                attempts=case((held, Window.attempts), else_=Window.attempts + 1),
                worker_host=worker_host,
                device=device,
                started_at=case((held, Window.started_at), else_=now),
                finished_at=None,
                error=None,
            )
            .execution_options(synchronize_session=False)
        )
        won = _rowcount(result) == 1
        log.debug("window %s claim by %s: %s", window_id, owner, won)
        return won

    def claim_next(
        self,
        job_id: str,
        owner: str,
        lease_s: float,
        now: datetime,
        *,
        worker_host: str | None = None,
        device: str | None = None,
    ) -> str | None:
        """Claim the lowest-index claimable window of the job; its id, or None if none is left."""
        candidates = self.session.scalars(
            select(Window.id)
            .where(Window.job_id == job_id, _claimable(now))
            .order_by(Window.index)
            .limit(CLAIM_NEXT_CANDIDATES)
        ).all()
        for window_id in candidates:
            if self.claim(window_id, owner, lease_s, now, worker_host=worker_host, device=device):
                return window_id
        return None

    def heartbeat(self, window_id: str, owner: str, lease_s: float, now: datetime) -> bool:
        """Extend the lease; False if `owner` no longer holds the window."""
        result = self.session.execute(
            update(Window)
            .where(Window.id == window_id, Window.state == WindowState.RUNNING, Window.lease_owner == owner)
            .values(lease_expires_at=now + timedelta(seconds=lease_s))
            .execution_options(synchronize_session=False)
        )
        return _rowcount(result) == 1

    def complete(
        self, window_id: str, owner: str, result_key: str, result_sha256: str, *, now: datetime | None = None
    ) -> bool:
        """Mark the window done with its result, only if `owner` still holds it; True if it did."""
        result = self.session.execute(
            update(Window)
            .where(Window.id == window_id, Window.state == WindowState.RUNNING, Window.lease_owner == owner)
            .values(
                state=WindowState.DONE,
                result_key=result_key,
                result_sha256=result_sha256,
                finished_at=now or utcnow(),
                lease_owner=None,
                lease_expires_at=None,
                error=None,
            )
            .execution_options(synchronize_session=False)
        )
        done = _rowcount(result) == 1
        if not done:
            log.warning("window %s: complete by %s refused (no longer its owner)", window_id, owner)
        return done

    def fail(self, window_id: str, owner: str, error: str, *, now: datetime | None = None) -> WindowState | None:
        """Record a failed attempt by `owner`: back to pending while attempts remain, else failed.

        Returns the new state, or None if `owner` no longer held the window.
        """
        new_state = case((Window.attempts < Window.max_attempts, WindowState.PENDING), else_=WindowState.FAILED)
        result = self.session.execute(
            update(Window)
            .where(Window.id == window_id, Window.state == WindowState.RUNNING, Window.lease_owner == owner)
            .values(
                state=new_state,
                error=error,
                finished_at=now or utcnow(),
                lease_owner=None,
                lease_expires_at=None,
            )
            .execution_options(synchronize_session=False)
        )
        if _rowcount(result) != 1:
            return None
        state = self.session.scalar(select(Window.state).where(Window.id == window_id))
        assert state is not None, f"{window_id=}"
        log.info("window %s attempt failed (%s): now %s", window_id, error, WindowState(state).value)
        return WindowState(state)

    def expired_leases(self, now: datetime) -> Sequence[Window]:
        """Running windows whose lease has run out."""
        return self.session.scalars(
            select(Window)
            .where(Window.state == WindowState.RUNNING, Window.lease_expires_at < now)
            .order_by(Window.job_id, Window.index)
            .execution_options(populate_existing=True)
        ).all()

    def requeue_expired(self, now: datetime) -> list[str]:
        """Reaper: expired running windows go back to pending (or failed when out of attempts).

        One UPDATE; a window a worker completes at the same moment is not touched, because the
        WHERE clause is re-checked against the row as committed. Returns the ids touched.
        """
        new_state = case((Window.attempts < Window.max_attempts, WindowState.PENDING), else_=WindowState.FAILED)
        result = self.session.execute(
            update(Window)
            .where(Window.state == WindowState.RUNNING, Window.lease_expires_at < now)
            .values(state=new_state, lease_owner=None, lease_expires_at=None, error="lease expired")
            .returning(Window.id)
            .execution_options(synchronize_session=False)
        )
        ids = sorted(result.scalars().all())
        if ids:
            log.info("reaper: %d expired window leases requeued", len(ids))
        return ids

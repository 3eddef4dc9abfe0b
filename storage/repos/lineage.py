"""Queries of lineage exports and history pruning: provenance recorded at submission, windows and
artifacts (with their meta) of many jobs at once, finished jobs older than a cutoff, which blobs
other jobs still reference, and deleting a job's rows (never its events: the log is append-only).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from storage.models import Artifact, ArtifactKind, Event, Job, JobState, Window

log = logging.getLogger(__name__)

FINISHED_STATES = (JobState.DONE, JobState.FAILED, JobState.CANCELLED)
_IN_CHUNK = 500  # ids per IN (...) list


def _chunks(ids: Collection[str]) -> list[list[str]]:
    items = list(dict.fromkeys(ids))
    return [items[i : i + _IN_CHUNK] for i in range(0, len(items), _IN_CHUNK)]


@dataclass(frozen=True)
class LastEvent:
    """The newest event of the log (id 0 and the genesis hash for an empty log)."""

    id: int
    hash: str


class LineageRepo:
    """Reads for exports and `foley audit show`, and the deletes of `foley history prune`."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- reads -----------------------------------------------------------------------------

    def submitted_payloads(self, job_ids: Collection[str]) -> dict[str, dict[str, Any]]:
        """job id → payload of its (first) `job.submitted` event."""
        found: dict[str, dict[str, Any]] = {}
        for chunk in _chunks(job_ids):
            rows = self.session.execute(
                select(Event.job_id, Event.payload)
                .where(Event.job_id.in_(chunk), Event.kind == "job.submitted")
                .order_by(Event.id)
            )
            for job_id, payload in rows:
                found.setdefault(job_id, dict(payload))
        return found

    def windows_of_jobs(self, job_ids: Collection[str]) -> dict[str, list[Window]]:
        """job id → its windows in timeline order."""
        found: dict[str, list[Window]] = defaultdict(list)
        for chunk in _chunks(job_ids):
            rows = self.session.scalars(
                select(Window).where(Window.job_id.in_(chunk)).order_by(Window.job_id, Window.index)
            )
            for w in rows:
                found[w.job_id].append(w)
        return dict(found)

    def artifacts_of_jobs(
        self, job_ids: Collection[str], kinds: Collection[ArtifactKind] | None = None
    ) -> dict[str, list[Artifact]]:
        """job id → its artifacts (with meta; only `kinds` if given), oldest first."""
        found: dict[str, list[Artifact]] = defaultdict(list)
        for chunk in _chunks(job_ids):
            query = select(Artifact).where(Artifact.job_id.in_(chunk))
            if kinds is not None:
                query = query.where(Artifact.kind.in_(list(kinds)))
            rows = self.session.scalars(
                query.order_by(Artifact.job_id, Artifact.created_at, Artifact.kind, Artifact.key)
            )
            for a in rows:
                found[a.job_id].append(a)
        return dict(found)

    def finished_before(self, cutoff: datetime, *, project: str | None = None, limit: int = 10_000) -> Sequence[Job]:
        """Jobs done, failed or cancelled, created and last changed before `cutoff`, oldest first."""
        query = (
            select(Job)
            .where(Job.state.in_(list(FINISHED_STATES)), Job.created_at < cutoff, Job.updated_at < cutoff)
            .order_by(Job.created_at, Job.id)
            .limit(limit)
        )
        if project is not None:
            query = query.where(Job.project == project)
        return self.session.scalars(query.execution_options(populate_existing=True)).all()

    def uris_used_by_others(self, uris: Collection[str], excluded_job_ids: Collection[str]) -> set[str]:
        """Which of `uris` an artifact of a job outside `excluded_job_ids` still points to."""
        used: set[str] = set()
        excluded = list(excluded_job_ids)
        for chunk in _chunks(uris):
            query = select(Artifact.uri).where(Artifact.uri.in_(chunk))
            if excluded:
                query = query.where(Artifact.job_id.not_in(excluded))
            used.update(self.session.scalars(query.distinct()))
        return used

    def last_event(self) -> LastEvent:
        """The newest event's id and hash."""
        from storage.repos.events import GENESIS_HASH

        row = self.session.execute(select(Event.id, Event.hash).order_by(Event.id.desc()).limit(1)).first()
        return LastEvent(0, GENESIS_HASH) if row is None else LastEvent(int(row.id), row.hash)

    def events_of_jobs(self, job_ids: Collection[str]) -> list[Event]:
        """Every event of these jobs, in log order."""
        found: list[Event] = []
        for chunk in _chunks(job_ids):
            found.extend(self.session.scalars(select(Event).where(Event.job_id.in_(chunk)).order_by(Event.id)))
        return sorted(found, key=lambda e: e.id)

    # -- deletes ---------------------------------------------------------------------------

    def delete_jobs(self, job_ids: Collection[str], *, states: Collection[JobState] = FINISHED_STATES) -> int:
        """Delete the artifact, window and job rows of those of `job_ids` still in `states`; the
        number of jobs deleted. Events are never touched."""
        deleted = 0
        for chunk in _chunks(job_ids):
            still = list(self.session.scalars(
                select(Job.id).where(Job.id.in_(chunk), Job.state.in_(list(states))).with_for_update()
            ))
            if not still:
                continue
            self.session.execute(delete(Artifact).where(Artifact.job_id.in_(still)).execution_options(
                synchronize_session=False))
            self.session.execute(delete(Window).where(Window.job_id.in_(still)).execution_options(
                synchronize_session=False))
            result = self.session.execute(delete(Job).where(Job.id.in_(still)).execution_options(
                synchronize_session=False))
            deleted += int(getattr(result, "rowcount", 0) or 0)
        log.info("pruned the rows of %d jobs", deleted)
        return deleted

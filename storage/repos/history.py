"""Queries of the render history: filtered job listings with keyset pagination, and the reads an
audit needs (artifacts in batches for re-hashing, a job's lineage, events by id).

Jobs are listed newest first, ordered by (created_at DESC, id DESC). A page ends with a cursor,
the (created_at, id) of its last job; the next page is the jobs strictly before it in that
order, read with a row-value comparison. Each filter has an index ending in (created_at, id)
(see storage.models.Job), so a page costs one index range scan of `limit` + 1 rows however deep
into the history it is, unlike OFFSET.
"""
from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlalchemy import func, select, tuple_
from sqlalchemy.orm import Session

from storage.errors import InvalidInput
from storage.models import ID_HEX_LEN, Artifact, ArtifactKind, Event, Job, JobState, Window

log = logging.getLogger(__name__)

MAX_PAGE = 10_000
_CURSOR_TIME = "%Y-%m-%dT%H:%M:%S.%fZ"


@dataclass(frozen=True)
class JobCursor:
    """Where a page of the history ended: the (created_at, id) of its last job."""

    created_at: datetime
    job_id: str

    def __post_init__(self) -> None:
        assert self.created_at.tzinfo is not None, f"naive cursor time: {self.created_at=}"

    def encode(self) -> str:
        """`<created_at, UTC, microseconds>/<job id>`: printable, and what `decode` accepts."""
        return f"{self.created_at.astimezone(timezone.utc).strftime(_CURSOR_TIME)}/{self.job_id}"

    @classmethod
    def decode(cls, text: str) -> JobCursor:
        """Parse a cursor made by `encode`; InvalidInput if it is not one."""
        at, sep, job_id = text.strip().partition("/")
        try:
            created_at = datetime.strptime(at, _CURSOR_TIME).replace(tzinfo=timezone.utc)
        except ValueError:
            created_at = None
        valid_id = 0 < len(job_id) <= ID_HEX_LEN and job_id.isascii() and job_id.isprintable()
        if not sep or created_at is None or not valid_id:
            raise InvalidInput(f"not a history cursor: {text!r} (pass the one the previous page printed)")
        return cls(created_at, job_id)


@dataclass(frozen=True)
class JobFilter:
    """Which jobs to list; every field left at None (or empty) matches all.

    `since` is inclusive and `until` exclusive, both on created_at.
    """

    project: str | None = None
    submitted_by: str | None = None
    states: tuple[JobState, ...] = ()
    model_name: str | None = None
    since: datetime | None = None
    until: datetime | None = None

    def __post_init__(self) -> None:
        for name in ("since", "until"):
            value = getattr(self, name)
            assert value is None or value.tzinfo is not None, f"naive {name}: {value=}"


@dataclass(frozen=True)
class JobPage:
    """One page of jobs, newest first, and the cursor of the next page (None on the last)."""

    jobs: Sequence[Job]
    next_cursor: JobCursor | None


@dataclass(frozen=True)
class ArtifactRecord:
    """An artifact's row as plain data (safe to use after its session closed)."""

    id: str
    job_id: str
    window_id: str | None
    kind: str
    key: str
    uri: str
    sha256: str
    size_bytes: int


@dataclass(frozen=True)
class EventRecord:
    """An event's row as plain data."""

    id: int
    at: datetime
    job_id: str | None
    window_id: str | None
    kind: str
    actor: str
    payload: dict[str, object]
    prev_hash: str
    hash: str


def _artifact_record(a: Artifact) -> ArtifactRecord:
    return ArtifactRecord(
        id=a.id, job_id=a.job_id, window_id=a.window_id, kind=str(a.kind.value), key=a.key, uri=a.uri,
        sha256=a.sha256, size_bytes=a.size_bytes,
    )


def _event_record(e: Event) -> EventRecord:
    return EventRecord(
        id=e.id, at=e.at, job_id=e.job_id, window_id=e.window_id, kind=e.kind, actor=e.actor,
        payload=dict(e.payload), prev_hash=e.prev_hash, hash=e.hash,
    )


class HistoryRepo:
    """Every query of `foley history` and `foley audit` (read-only)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    # -- jobs ------------------------------------------------------------------------------

    def list_jobs(
        self, filters: JobFilter = JobFilter(), *, limit: int = 50, cursor: JobCursor | None = None
    ) -> JobPage:
        """A page of at most `limit` jobs matching `filters`, newest first, after `cursor`."""
        if not 1 <= limit <= MAX_PAGE:
            raise InvalidInput(f"page size must be 1..{MAX_PAGE}, not {limit}")
        query = select(Job)
        if filters.project is not None:
            query = query.where(Job.project == filters.project)
        if filters.submitted_by is not None:
            query = query.where(Job.submitted_by == filters.submitted_by)
        if filters.model_name is not None:
            query = query.where(Job.model_name == filters.model_name)
        if filters.states:
            states = list(dict.fromkeys(filters.states))
            query = query.where(Job.state == states[0] if len(states) == 1 else Job.state.in_(states))
        if filters.since is not None:
            query = query.where(Job.created_at >= filters.since)
        if filters.until is not None:
            query = query.where(Job.created_at < filters.until)
        if cursor is not None:
            query = query.where(tuple_(Job.created_at, Job.id) < tuple_(cursor.created_at, cursor.job_id))
        query = query.order_by(Job.created_at.desc(), Job.id.desc()).limit(limit + 1)
        rows = self.session.scalars(query.execution_options(populate_existing=True)).all()
        jobs, more = rows[:limit], len(rows) > limit
        next_cursor = JobCursor(jobs[-1].created_at, jobs[-1].id) if more else None
        return JobPage(jobs=jobs, next_cursor=next_cursor)

    def output_sha256s(self, job_ids: Collection[str]) -> dict[str, str]:
        """job id → SHA-256 of its delivered output (the newest output artifact), for those that have one."""
        if not job_ids:
            return {}
        rows = self.session.execute(
            select(Artifact.job_id, Artifact.sha256)
            .where(Artifact.job_id.in_(list(job_ids)), Artifact.kind == ArtifactKind.OUTPUT)
            .order_by(Artifact.created_at, Artifact.id)
        )
        return {job_id: sha256 for job_id, sha256 in rows}

    def job_ids(self, job_ids: Collection[str]) -> set[str]:
        """Which of `job_ids` exist."""
        if not job_ids:
            return set()
        return set(self.session.scalars(select(Job.id).where(Job.id.in_(list(job_ids)))).all())

    def windows_of(self, job_id: str) -> Sequence[Window]:
        """A job's windows in timeline order."""
        return self.session.scalars(
            select(Window).where(Window.job_id == job_id).order_by(Window.index)
            .execution_options(populate_existing=True)
        ).all()

    # -- artifacts -------------------------------------------------------------------------

    def artifact_batch(self, *, job_id: str | None = None, after_id: str | None = None,
                       limit: int = 500) -> list[ArtifactRecord]:
        """Up to `limit` artifacts (of one job, or of all jobs) with id > `after_id`, by id.

        Callers page with the last id returned, each batch in its own short transaction, so an
        audit never holds a transaction open while it re-hashes blobs.
        """
        assert limit >= 1, f"{limit=}"
        query = select(Artifact).order_by(Artifact.id).limit(limit)
        if job_id is not None:
            query = query.where(Artifact.job_id == job_id)
        if after_id is not None:
            query = query.where(Artifact.id > after_id)
        return [_artifact_record(a) for a in self.session.scalars(query)]

    def iter_artifacts(self, *, job_id: str | None = None, batch_rows: int = 500) -> Iterator[ArtifactRecord]:
        """Every artifact of one job (or of all jobs), by id, read `batch_rows` at a time."""
        after: str | None = None
        while batch := self.artifact_batch(job_id=job_id, after_id=after, limit=batch_rows):
            yield from batch
            after = batch[-1].id

    def artifacts_of(self, job_id: str) -> list[ArtifactRecord]:
        """A job's artifacts, oldest first."""
        rows = self.session.scalars(
            select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.created_at, Artifact.kind, Artifact.key)
        )
        return [_artifact_record(a) for a in rows]

    # -- events ----------------------------------------------------------------------------

    def count_events(self) -> int:
        """How many events the log holds."""
        return int(self.session.scalar(select(func.count()).select_from(Event)) or 0)

    def events_by_id(self, event_ids: Collection[int]) -> list[EventRecord]:
        """The events with these ids, by id (ids not present are left out)."""
        if not event_ids:
            return []
        rows = self.session.scalars(select(Event).where(Event.id.in_(list(event_ids))).order_by(Event.id))
        return [_event_record(e) for e in rows]

    def event_before(self, event_id: int) -> EventRecord | None:
        """The event just before `event_id` in the log (the one it should chain to), or None."""
        row = self.session.scalars(select(Event).where(Event.id < event_id).order_by(Event.id.desc()).limit(1)).first()
        return _event_record(row) if row is not None else None

    def events_of(self, job_id: str) -> Iterator[EventRecord]:
        """Every event of a job, in log order, read in batches by id."""
        after = 0
        while True:
            rows = self.session.scalars(
                select(Event).where(Event.job_id == job_id, Event.id > after).order_by(Event.id).limit(1000)
            ).all()
            if not rows:
                return
            yield from (_event_record(e) for e in rows)
            after = rows[-1].id

"""The audit log: append-only events chained by SHA-256, and a verifier for the chain.

hash = sha256(prev_hash + canonical JSON of the event's fields), where the fields are
`at` (ISO 8601 UTC, microseconds), job_id, window_id, kind, actor and payload, and
canonical JSON has sorted keys and no whitespace. The first event's prev_hash is 64 zeros.

Appends are serialised so two writers cannot fork the chain: on PostgreSQL a
transaction-level advisory lock is held from reading the last hash until commit; on SQLite
every transaction already holds the database write lock (BEGIN IMMEDIATE, see storage.db).
Editing or deleting an event breaks a link that verify_chain() reports; deleting the newest
events cannot be detected from the chain alone (keep an external copy of the last hash).
"""
from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Sequence
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from storage.models import Event, utcnow

log = logging.getLogger(__name__)

GENESIS_HASH = "0" * 64
# Arbitrary 64-bit key for pg_advisory_xact_lock, "foley-ev" in ASCII.
_PG_EVENT_LOCK_KEY = 0x666F6C65792D6576


def _canonical_time(at: datetime) -> str:
    assert at.tzinfo is not None, f"naive event time: {at=}"
    return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def event_hash(
    prev_hash: str,
    *,
    at: datetime,
    job_id: str | None,
    window_id: str | None,
    kind: str,
    actor: str,
    payload: dict[str, Any],
) -> str:
    """The chain hash of one event given the hash of the event before it."""
    fields = {
        "at": _canonical_time(at),
        "job_id": job_id,
        "window_id": window_id,
        "kind": kind,
        "actor": actor,
        "payload": payload,
    }
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256((prev_hash + canonical).encode("utf-8")).hexdigest()


class EventRepo:
    """Every query on the `events` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def _lock_chain(self) -> None:
        if self.session.get_bind().dialect.name == "postgresql":
            self.session.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_EVENT_LOCK_KEY})

    def last_hash(self) -> str:
        """Hash of the newest event, or the genesis hash of an empty log."""
        last = self.session.scalar(select(Event.hash).order_by(Event.id.desc()).limit(1))
        return last if last is not None else GENESIS_HASH

    def append(
        self,
        kind: str,
        *,
        actor: str,
        job_id: str | None = None,
        window_id: str | None = None,
        payload: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Event:
        """Add an event at the end of the chain (flushed, so its id is set)."""
        at = (now or utcnow()).astimezone(timezone.utc)
        # Round-trip payload through JSON so what we hash is exactly what the database returns.
        body: dict[str, Any] = json.loads(json.dumps(payload or {}, allow_nan=False))
        self._lock_chain()
        prev = self.last_hash()
        digest = event_hash(prev, at=at, job_id=job_id, window_id=window_id, kind=kind, actor=actor, payload=body)
        event = Event(
            at=at, job_id=job_id, window_id=window_id, kind=kind, actor=actor, payload=body, prev_hash=prev, hash=digest
        )
        self.session.add(event)
        self.session.flush()
        log.debug("event %s %s job %s window %s", event.id, kind, job_id, window_id)
        return event

    def list_for_job(self, job_id: str, *, limit: int = 1000) -> Sequence[Event]:
        """A job's events, oldest first."""
        return self.session.scalars(
            select(Event).where(Event.job_id == job_id).order_by(Event.id).limit(limit)
        ).all()

    def verify_chain(self, *, batch_rows: int = 1000) -> list[int]:
        """Walk the whole log; return the ids of events whose link is broken (empty if intact).

        An event is broken when its stored hash does not match its fields, or its prev_hash is
        not the stored hash of the event before it (an event was edited or deleted).
        """
        broken: list[int] = []
        expected_prev = GENESIS_HASH
        rows = self.session.execute(
            select(
                Event.id, Event.at, Event.job_id, Event.window_id, Event.kind, Event.actor,
                Event.payload, Event.prev_hash, Event.hash,
            ).order_by(Event.id).execution_options(yield_per=batch_rows)
        )
        for row in rows:
            digest = event_hash(
                row.prev_hash, at=row.at, job_id=row.job_id, window_id=row.window_id,
                kind=row.kind, actor=row.actor, payload=row.payload,
            )
            if row.prev_hash != expected_prev or digest != row.hash:
                broken.append(row.id)
            expected_prev = row.hash
        if broken:
            log.warning("audit chain: %d broken links, first at event %s", len(broken), broken[0])
        return broken

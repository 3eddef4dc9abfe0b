"""Queries on artifacts: idempotent registration of blobs a job produced or consumed."""
from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exc, select
from sqlalchemy.orm import Session

from storage.errors import Conflict, NotFound
from storage.models import Artifact, ArtifactKind, utcnow

log = logging.getLogger(__name__)


class ArtifactRepo:
    """Every query on the `artifacts` table."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def find(self, job_id: str, kind: ArtifactKind, key: str) -> Artifact | None:
        """The artifact (job, kind, key), or None."""
        return self.session.scalars(
            select(Artifact)
            .where(Artifact.job_id == job_id, Artifact.kind == kind, Artifact.key == key)
            .execution_options(populate_existing=True)
        ).one_or_none()

    def get(self, job_id: str, kind: ArtifactKind, key: str) -> Artifact:
        """The artifact (job, kind, key); NotFound if absent."""
        artifact = self.find(job_id, kind, key)
        if artifact is None:
            raise NotFound(f"job {job_id} has no {kind.value} artifact {key}")
        return artifact

    def add(
        self,
        job_id: str,
        kind: ArtifactKind,
        key: str,
        *,
        uri: str,
        sha256: str,
        size_bytes: int,
        window_id: str | None = None,
        meta: dict[str, Any] | None = None,
        now: datetime | None = None,
    ) -> Artifact:
        """Register an artifact. Registering the same (job, kind, key, sha256) again returns the
        existing row; the same key with another sha256 raises Conflict."""
        existing = self.find(job_id, kind, key)
        if existing is None:
            artifact = Artifact(
                job_id=job_id,
                window_id=window_id,
                kind=kind,
                key=key,
                uri=uri,
                sha256=sha256,
                size_bytes=size_bytes,
                created_at=now or utcnow(),
                meta=dict(meta or {}),
            )
            try:
                with self.session.begin_nested():
                    self.session.add(artifact)
            except exc.IntegrityError:
                existing = self.find(job_id, kind, key)
                if existing is None:
                    raise
            else:
                return artifact
        if existing.sha256 != sha256:
            raise Conflict(
                f"job {job_id} already has {kind.value} artifact {key} with sha256 {existing.sha256[:12]}…, "
                f"not {sha256[:12]}…"
            )
        return existing

    def list_for_job(self, job_id: str, kind: ArtifactKind | None = None) -> Sequence[Artifact]:
        """A job's artifacts, oldest first, optionally one kind."""
        query = select(Artifact).where(Artifact.job_id == job_id).order_by(Artifact.created_at, Artifact.key)
        if kind is not None:
            query = query.where(Artifact.kind == kind)
        return self.session.scalars(query.execution_options(populate_existing=True)).all()

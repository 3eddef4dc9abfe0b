"""SQL schema of the farm: jobs, their windows, the artifacts they produce, and an audit log.

The status vocabulary lives here too, as StrEnums stored as short strings (with a CHECK
constraint), so the database and the code agree on every value.

Timestamps are always timezone-aware UTC in Python. `UTCDateTime` enforces that on the way in
and restores it on the way out (SQLite stores naive UTC text in one fixed format, so string
comparison in SQL orders correctly).
"""
from __future__ import annotations

import enum
import uuid
from datetime import datetime, timezone
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    DateTime,
    Dialect,
    Enum,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SHA256_HEX_LEN = 64
ID_HEX_LEN = 32


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def new_id() -> str:
    """A fresh 32-hex-digit id (uuid4)."""
    return uuid.uuid4().hex


class JobState(enum.StrEnum):
    """Life cycle of a job (the rules for moving between states live in render_farm)."""

    QUEUED = "queued"
    INGESTING = "ingesting"
    RENDERING = "rendering"
    ASSEMBLING = "assembling"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"
    PAUSED = "paused"


class WindowState(enum.StrEnum):
    """Life cycle of one render window."""

    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"


class Priority(enum.StrEnum):
    """Priority tier; each maps to its own GPU queue (episode work before the nightly catalog)."""

    EPISODE = "episode"
    CATALOG = "catalog"


class ArtifactKind(enum.StrEnum):
    """What a stored blob is to its job."""

    INPUT = "input"
    PROXY = "proxy"
    LATENTS = "latents"
    AUDIO = "audio"
    OUTPUT = "output"
    STEM = "stem"
    REPORT = "report"


def _enum_column(enum_cls: type[enum.Enum], name: str) -> Enum:
    """A str Enum stored as VARCHAR of its values, guarded by a named CHECK constraint."""
    return Enum(
        enum_cls,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=16,
        values_callable=lambda members: [m.value for m in members],
        validate_strings=True,
    )


class UTCDateTime(TypeDecorator[datetime]):
    """DateTime(timezone=True) that accepts only aware datetimes and always returns aware UTC."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        assert value.tzinfo is not None, f"naive datetime given to a UTC column: {value=}"
        value = value.astimezone(timezone.utc)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


class Base(DeclarativeBase):
    """Declarative base; its MetaData names every constraint and index predictably."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSON()}


class Job(Base):
    """One video submitted for rendering."""

    __tablename__ = "jobs"

    id: Mapped[str] = mapped_column(String(ID_HEX_LEN), primary_key=True, default=new_id)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    state: Mapped[JobState] = mapped_column(_enum_column(JobState, "job_state"), default=JobState.QUEUED)
    priority: Mapped[Priority] = mapped_column(_enum_column(Priority, "priority"), default=Priority.EPISODE)
    project: Mapped[str] = mapped_column(String(200))
    submitted_by: Mapped[str] = mapped_column(String(200))
    input_uri: Mapped[str] = mapped_column(Text)
    input_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX_LEN))
    params: Mapped[dict[str, Any]] = mapped_column(default=dict)
    seed: Mapped[int] = mapped_column(BigInteger)
    model_name: Mapped[str] = mapped_column(String(200))
    model_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX_LEN))
    windows_total: Mapped[int] = mapped_column(Integer, default=0)
    windows_done: Mapped[int] = mapped_column(Integer, default=0)
    output_uri: Mapped[str | None] = mapped_column(Text)
    error: Mapped[str | None] = mapped_column(Text)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    attempts: Mapped[int] = mapped_column(Integer, default=0)

    # Every index ends in (created_at, id): `foley history` lists newest first with a keyset
    # cursor on (created_at, id), so each filter reads one index range in order, no sort.
    __table_args__ = (
        Index(None, "created_at", "id"),
        Index(None, "project", "created_at", "id"),
        Index(None, "submitted_by", "created_at", "id"),
        Index(None, "model_name", "created_at", "id"),
        Index(None, "state", "created_at", "id"),
    )

    def __repr__(self) -> str:
        return f"Job(id={self.id!r}, state={self.state!r}, windows={self.windows_done}/{self.windows_total})"


class Window(Base):
    """One span [start_frame, end_frame) of latent frames of a job, rendered as a unit."""

    __tablename__ = "windows"

    id: Mapped[str] = mapped_column(String(ID_HEX_LEN), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(ID_HEX_LEN), ForeignKey("jobs.id", ondelete="CASCADE"))
    index: Mapped[int] = mapped_column(Integer)
    start_frame: Mapped[int] = mapped_column(Integer)
    end_frame: Mapped[int] = mapped_column(Integer)
    batch_index: Mapped[int] = mapped_column(Integer)
    # latent frames its batch is padded to (the plan's length bucket); NULL: the batch's longest window
    padded_frames: Mapped[int | None] = mapped_column(Integer)
    # picture frames (the proxy's 24 fps grid) the window may see, [shot_from, shot_to); frames
    # outside hold the nearest picture inside. Set where a join is a shot cut; NULL: unbounded
    shot_from: Mapped[int | None] = mapped_column(Integer)
    shot_to: Mapped[int | None] = mapped_column(Integer)
    state: Mapped[WindowState] = mapped_column(
        _enum_column(WindowState, "window_state"), default=WindowState.PENDING
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=3)
    lease_owner: Mapped[str | None] = mapped_column(String(200))
    lease_expires_at: Mapped[datetime | None] = mapped_column()
    worker_host: Mapped[str | None] = mapped_column(String(200))
    device: Mapped[str | None] = mapped_column(String(100))
    started_at: Mapped[datetime | None] = mapped_column()
    finished_at: Mapped[datetime | None] = mapped_column()
    result_key: Mapped[str | None] = mapped_column(Text)
    result_sha256: Mapped[str | None] = mapped_column(String(SHA256_HEX_LEN))
    error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (
        UniqueConstraint("job_id", "index"),
        Index(None, "job_id", "state"),
        Index(None, "job_id", "batch_index"),
        Index(None, "state", "lease_expires_at"),
    )

    def __repr__(self) -> str:
        return f"Window(id={self.id!r}, job_id={self.job_id!r}, index={self.index}, state={self.state!r})"


class Artifact(Base):
    """A blob a job produced or consumed, with where it lives and its checksum."""

    __tablename__ = "artifacts"

    id: Mapped[str] = mapped_column(String(ID_HEX_LEN), primary_key=True, default=new_id)
    job_id: Mapped[str] = mapped_column(String(ID_HEX_LEN), ForeignKey("jobs.id", ondelete="CASCADE"))
    window_id: Mapped[str | None] = mapped_column(
        String(ID_HEX_LEN), ForeignKey("windows.id", ondelete="SET NULL")
    )
    kind: Mapped[ArtifactKind] = mapped_column(_enum_column(ArtifactKind, "artifact_kind"))
    key: Mapped[str] = mapped_column(String(1024))
    uri: Mapped[str] = mapped_column(Text)
    sha256: Mapped[str] = mapped_column(String(SHA256_HEX_LEN))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict)

    __table_args__ = (
        UniqueConstraint("job_id", "kind", "key"),
        Index(None, "window_id"),
    )

    def __repr__(self) -> str:
        return f"Artifact(job_id={self.job_id!r}, kind={self.kind!r}, key={self.key!r})"


class Event(Base):
    """One entry of the append-only audit log, chained by SHA-256 to the entry before it.

    No foreign keys: the audit trail outlives the jobs and windows it mentions. On a migrated
    database, triggers refuse UPDATE and DELETE on this table (revision 0002).
    """

    __tablename__ = "events"

    id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True
    )
    at: Mapped[datetime] = mapped_column(default=utcnow)
    job_id: Mapped[str | None] = mapped_column(String(ID_HEX_LEN))
    window_id: Mapped[str | None] = mapped_column(String(ID_HEX_LEN))
    kind: Mapped[str] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]] = mapped_column(default=dict)
    prev_hash: Mapped[str] = mapped_column(String(SHA256_HEX_LEN))
    hash: Mapped[str] = mapped_column(String(SHA256_HEX_LEN))

    __table_args__ = (
        Index(None, "job_id", "id"),
        Index(None, "kind"),
    )

    def __repr__(self) -> str:
        return f"Event(id={self.id!r}, kind={self.kind!r}, job_id={self.job_id!r})"

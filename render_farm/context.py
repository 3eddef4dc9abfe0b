"""What every render step receives: settings, database sessions, the blob store, the executor,
a scratch directory and who is working. Built once per process at the entry point."""
from __future__ import annotations

import logging
import os
import resource
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol

from sqlalchemy.orm import Session, sessionmaker

from render_farm.config import CPU_INFERENCE, InferenceConfig, Settings
from schedulers.base import Executor
from storage.blobs import BlobStore, open_store
from storage.db import make_engine, make_sessionmaker, masked_url
from storage.errors import InvalidInput

log = logging.getLogger(__name__)


class ProgressSink(Protocol):
    def __call__(self, job_id: str, stage: str, done: int, total: int) -> None: ...


def peak_rss_mb() -> float:
    """High-water mark of this process's resident memory in MiB.

    Reads VmHWM (it belongs to the current program image), because ru_maxrss survives exec and
    would report the parent's size for a process started by a large parent."""
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@dataclass
class StepContext:
    settings: Settings
    sessions: sessionmaker[Session]
    store: BlobStore
    executor: Executor
    scratch_dir: Path
    worker: str = field(default_factory=worker_id)
    host: str = field(default_factory=socket.gethostname)
    device: str = "cpu"  # recorded on the windows this process claims
    inference: InferenceConfig = CPU_INFERENCE  # where the render network runs (resolved for this process)
    lease_s: float = 1800.0
    progress: ProgressSink | None = None
    stages: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # job → stage → wall_s, peak_rss_mb
    stage_parts: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)  # job → stage → part → s

    def record_stage(self, job_id: str, stage: str, wall_s: float) -> None:
        """Add wall time to a stage of a job (this process), with the process's peak RSS so far."""
        entry = self.stages.setdefault(job_id, {}).setdefault(stage, {"wall_s": 0.0, "peak_rss_mb": 0.0})
        entry["wall_s"] = round(entry["wall_s"] + wall_s, 4)
        entry["peak_rss_mb"] = round(peak_rss_mb(), 1)

    def record_part(self, job_id: str, stage: str, part: str, wall_s: float) -> None:
        """Add wall time to a part of a stage (e.g. render: frames, encode, dit), already counted in the stage."""
        parts = self.stage_parts.setdefault(job_id, {}).setdefault(stage, {})
        parts[part] = round(parts.get(part, 0.0) + wall_s, 4)

    def report_progress(self, job_id: str, stage: str, done: int, total: int) -> None:
        if self.progress is not None:
            self.progress(job_id, stage, done, total)


def open_database(settings: Settings, *, migrate_sqlite: bool = True) -> sessionmaker[Session]:
    """Engine + sessions for the configured database. The embedded SQLite database is created
    and migrated on first use; a shared database must be migrated with `foley db upgrade`."""
    import migrations  # local: alembic loads only when needed

    url = settings.database_url
    if url.startswith("sqlite") and migrate_sqlite:
        migrations.upgrade(url)
    else:
        at, head = migrations.current(url), migrations.head()
        if at != head:
            raise InvalidInput(
                f"database {masked_url(url)} is at schema revision {at or 'none'}, not {head}: run `foley db upgrade`"
            )
    return make_sessionmaker(make_engine(url))


def build_context(settings: Settings, executor: Executor, *, scratch_dir: Path | None = None,
                  progress: Callable[[str, str, int, int], None] | None = None) -> StepContext:
    sessions = open_database(settings)
    store = open_store(settings.store_url, s3_endpoint_url=settings.s3_endpoint_url)
    scratch = scratch_dir or settings.data_dir / "scratch"
    scratch.mkdir(parents=True, exist_ok=True)
    return StepContext(settings=settings, sessions=sessions, store=store, executor=executor,
                       scratch_dir=scratch, progress=progress)

"""Repositories: every SQL query of the farm, one class per table. They never commit.

Races (claiming a window, finishing the last window, claiming a job for ingest/assembly) are
decided by single conditional UPDATE statements checked by their row count, which is atomic on
both SQLite and PostgreSQL.
"""
from storage.repos.artifacts import ArtifactRepo
from storage.repos.events import GENESIS_HASH, EventRepo, event_hash
from storage.repos.jobs import JobRepo
from storage.repos.windows import NewWindow, WindowRepo

__all__ = [
    "GENESIS_HASH",
    "ArtifactRepo",
    "EventRepo",
    "JobRepo",
    "NewWindow",
    "WindowRepo",
    "event_hash",
]

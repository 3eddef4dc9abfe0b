"""Build render history directly with the repositories (no model needed), and tamper with it."""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import BlobStore
from storage.db import make_engine, unit_of_work
from storage.models import ArtifactKind, JobState
from storage.repos import ArtifactRepo, EventRepo, JobRepo, NewWindow, WindowRepo

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=timezone.utc)


@dataclass
class BuiltJob:
    id: str
    window_ids: list[str]
    keys: dict[str, str] = field(default_factory=dict)  # name → store key
    local_output: Path | None = None


def build_job(
    sessions: sessionmaker[Session],
    store: BlobStore,
    *,
    project: str = "ep101",
    user: str = "ann",
    model: str = "tiny",
    seed: int = 2,
    created_at: datetime = T0,
    num_windows: int = 2,
    local_dir: Path | None = None,
) -> BuiltJob:
    """A finished job: windows rendered on a host/device, latents and an output in `store`, an
    optional stem written in place under `local_dir`, and the events a render would log."""
    input_bytes = f"video of {project} {seed}".encode()
    with unit_of_work(sessions) as s:
        jobs, events = JobRepo(s), EventRepo(s)
        job = jobs.create(
            project=project, submitted_by=user, input_uri=f"file:///media/{project}/{seed}.mp4", seed=seed,
            model_name=model, params={"steps": 25, "cfg": 4.5, "prompt": "rain"},
            input_sha256=hashlib.sha256(input_bytes).hexdigest(),
            model_sha256=hashlib.sha256(model.encode()).hexdigest(), now=created_at,
        )
        events.append("job.submitted", actor=user, job_id=job.id, payload={"seed": seed}, now=created_at)
        jobs.transition(job.id, [JobState.QUEUED], JobState.INGESTING, now=created_at)
        jobs.transition(job.id, [JobState.INGESTING], JobState.RENDERING, now=created_at)
        jobs.set_windows_total(job.id, num_windows, now=created_at)
        window_ids = WindowRepo(s).create_many(
            job.id, [NewWindow(i, i * 100, i * 100 + 120, 0) for i in range(num_windows)]
        )
    built = BuiltJob(job.id, window_ids)
    for i, window_id in enumerate(window_ids):
        start = created_at + timedelta(seconds=10 + i)
        info = store.put(f"jobs/{job.id}/latents/{i:04d}.bin", f"latents {job.id} {i}".encode() * 10)
        built.keys[f"latents{i}"] = info.key
        with unit_of_work(sessions) as s:
            windows = WindowRepo(s)
            assert windows.claim(window_id, "w1", 60, start, worker_host="gpu-node-3", device="cuda:1")
            assert windows.complete(window_id, "w1", info.key, info.sha256, now=start + timedelta(seconds=2.5))
            ArtifactRepo(s).add(job.id, ArtifactKind.LATENTS, info.key, uri=store.uri(info.key), sha256=info.sha256,
                                size_bytes=info.size_bytes, window_id=window_id, now=start)
            EventRepo(s).append("window.done", actor="w1", job_id=job.id, window_id=window_id,
                                payload={"sha256": info.sha256})
            JobRepo(s).count_window_done_and_maybe_assemble(job.id)
    output = store.put(f"jobs/{job.id}/output.mka", f"stereo foley of {job.id}".encode() * 50)
    built.keys["output"] = output.key
    with unit_of_work(sessions) as s:
        ArtifactRepo(s).add(job.id, ArtifactKind.OUTPUT, output.key, uri=store.uri(output.key),
                            sha256=output.sha256, size_bytes=output.size_bytes)
        if local_dir is not None:
            local_dir.mkdir(parents=True, exist_ok=True)
            stem = local_dir / f"{job.id}.stem.wav"
            stem.write_bytes(f"stem of {job.id}".encode() * 20)
            data = stem.read_bytes()
            ArtifactRepo(s).add(job.id, ArtifactKind.STEM, stem.name, uri=stem.resolve().as_uri(),
                                sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data))
            built.local_output = stem
        JobRepo(s).set_output(job.id, store.uri(output.key))
        JobRepo(s).transition(job.id, [JobState.ASSEMBLING], JobState.DONE)
        EventRepo(s).append("job.done", actor="w2", job_id=job.id, payload={"output_sha256": output.sha256})
    return built


def disable_append_only(url: str) -> None:
    """Switch the events triggers off, as an attacker with database access could."""
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("ALTER TABLE events DISABLE TRIGGER ALL"))
            else:
                conn.execute(text("DROP TRIGGER events_refuse_update"))
                conn.execute(text("DROP TRIGGER events_refuse_delete"))
    finally:
        engine.dispose()


def tamper(url: str, sql: str, **params: object) -> int:
    """Run one statement behind the application's back (triggers off); its row count."""
    disable_append_only(url)
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            return conn.execute(text(sql), params).rowcount
    finally:
        engine.dispose()


def event_ids(sessions: sessionmaker[Session], job_id: str) -> list[int]:
    with unit_of_work(sessions) as s:
        return [e.id for e in EventRepo(s).list_for_job(job_id)]

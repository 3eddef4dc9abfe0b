"""Farm operations behind `foley submit/status/jobs/fetch/cancel/pause/resume/retry/catalog`.

Pause and cancel are job states in SQL; render steps check the job is `rendering` before each
batch, so they take effect between batches (one window when `--batch 1`). Resume and retry
re-send only the batches that still have unfinished windows.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Callable

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from render_farm.config import InferenceConfig, Settings
from render_farm.context import StepContext, build_context
from render_farm.hashing import sha256_file
from render_farm.inputs import store_key_of
from render_farm.models import model_for_spec
from render_farm.spec import RenderSpec
from render_farm.steps import STEP_ASSEMBLE, STEP_INGEST, STEP_RENDER
from render_farm.steps.keys import input_key
from render_farm.submit import create_job
from render_farm.worker_context import FACTORY, STEPS, context_options
from schedulers.base import StepCall
from schedulers.celery_executor import CeleryExecutor, gpu_queue
from storage.db import unit_of_work
from storage.errors import Conflict, IntegrityError, InvalidInput, NotFound
from storage.models import ArtifactKind, Job, JobState, Priority, Window, WindowState, utcnow
from storage.repos import ArtifactRepo, EventRepo, JobRepo, WindowRepo

log = logging.getLogger(__name__)

FINAL_STATES = frozenset({JobState.DONE, JobState.FAILED, JobState.CANCELLED})
VIDEO_SUFFIXES = frozenset({".mp4", ".mov", ".m4v", ".mkv", ".avi", ".webm", ".mxf"})
CATALOG_SYNC_STEP = "render_farm.farm_ops:catalog_sync_step"


# -- the app and a client context ----------------------------------------------------------------

def farm_app(settings: Settings, *, lease_s: float | None = None, device: str = "cpu",
             reaper_interval_s: float | None = None, stall_s: float | None = None,
             visibility_timeout_s: float | None = None, catalog_sync: dict[str, Any] | None = None,
             inference: InferenceConfig | None = None, local_retry_s: float | None = None) -> Any:
    """The Celery app for these settings (FOLEY_BROKER_URL must name a broker)."""
    from schedulers.celery_app import FarmConfig, make_app

    if not settings.broker_url:
        raise InvalidInput("FOLEY_BROKER_URL is not set: the farm needs a broker (`foley render` runs without one)")
    options = context_options(settings, device=device, inference=inference,
                              **({"lease_s": lease_s} if lease_s else {}))
    extra = {k: v for k, v in {"reaper_interval_s": reaper_interval_s, "stall_s": stall_s,
                               "visibility_timeout_s": visibility_timeout_s,
                               "local_retry_s": local_retry_s}.items() if v is not None}
    return make_app(FarmConfig(broker_url=settings.broker_url, context_factory=FACTORY, steps=STEPS,
                               context_options=options, catalog_sync=catalog_sync, **extra))


class _NoBroker:
    """The executor of a read-only client (status, jobs, fetch): those need no broker."""

    def submit(self, call: StepCall) -> None:
        raise InvalidInput(f"cannot send {call.step}: FOLEY_BROKER_URL is not set")


def client_context(settings: Settings, *, read_only: bool = False) -> StepContext:
    """A context for the CLI: the shared database and store, steps sent to the broker."""
    executor = _NoBroker() if read_only and not settings.broker_url else CeleryExecutor(farm_app(settings))
    return build_context(settings, executor)


# -- submitting ----------------------------------------------------------------------------------

def stage_input(ctx: StepContext, source: str) -> tuple[str, str]:
    """(input URI in the store, SHA-256) of a local file (uploaded under a content-addressed key)
    or of an s3:// object that already lies in the configured store."""
    if source.startswith("s3://"):
        key = store_key_of(ctx, source)
        if key is None:
            raise InvalidInput(f"{source}: not in the configured store {_store_root(ctx)}")
        return source, _recorded_sha256(ctx, key)
    path = Path(source.removeprefix("file://"))
    if not path.is_file():
        raise NotFound(f"{path}: no such file")
    sha = sha256_file(path)
    info = ctx.store.put_file(input_key(sha, path.name), path)
    return ctx.store.uri(info.key), sha


def _recorded_sha256(ctx: StepContext, key: str) -> str:
    """The SHA-256 the store recorded for an object. Objects put there by other tools carry none:
    re-hashing a whole catalog every night is what the recorded hash avoids, so they are refused."""
    try:
        return ctx.store.stat(key).sha256
    except IntegrityError as exc:
        raise InvalidInput(f"{ctx.store.uri(key)}: {exc}; upload it with `foley submit` (or with "
                           f"x-amz-meta-sha256 metadata)") from None


def submit_input(ctx: StepContext, input_uri: str, input_sha256: str, spec: RenderSpec, *, project: str,
                 priority: Priority, user: str | None = None) -> str:
    """Create the job (its ingest is sent to the cpu queue) and record the input's hash now, so
    catalog sync recognises it before ingest has run."""
    job_id = create_job(ctx, input_uri, spec, project=project, user=user, priority=priority)
    with unit_of_work(ctx.sessions) as s:
        s.execute(update(Job).where(Job.id == job_id, Job.input_sha256.is_(None)).values(input_sha256=input_sha256)
                  .execution_options(synchronize_session=False))
    return job_id


def find_rendered(s: Session, input_sha256: str, model_sha256: str, params: dict[str, Any]) -> Job | None:
    """A job for these exact bytes, weights and parameters that is done or on its way."""
    candidates = s.scalars(select(Job).where(
        Job.input_sha256 == input_sha256, Job.model_sha256 == model_sha256,
        Job.state.not_in([JobState.FAILED, JobState.CANCELLED])).order_by(Job.created_at)).all()
    return next((j for j in candidates if j.params == params), None)


@dataclass(frozen=True)
class SyncItem:
    source: str
    sha256: str
    job_id: str
    submitted: bool  # False: an existing job already renders these bytes with this model and params


def catalog_sync(ctx: StepContext, source: str, spec: RenderSpec, *, project: str,
                 priority: Priority = Priority.CATALOG, user: str | None = None) -> list[SyncItem]:
    """Submit every video under SOURCE (a directory or an s3:// prefix in the store) whose
    content is new for this model and these parameters."""
    model = model_for_spec(spec)
    params = model.resolve(spec).to_params()
    items: list[SyncItem] = []
    for name, sha, stage in _catalog_entries(ctx, source):
        with unit_of_work(ctx.sessions) as s:
            existing = find_rendered(s, sha, model.sha256, params)
            existing_id = existing.id if existing is not None else None
        if existing_id is not None:
            items.append(SyncItem(name, sha, existing_id, submitted=False))
            continue
        uri, sha = stage()
        job_id = submit_input(ctx, uri, sha, spec, project=project, priority=priority, user=user)
        items.append(SyncItem(name, sha, job_id, submitted=True))
    log.info("catalog %s: %d videos, %d submitted", source, len(items), sum(i.submitted for i in items))
    return items


def _catalog_entries(ctx: StepContext, source: str) -> list[tuple[str, str, Callable[[], tuple[str, str]]]]:
    """(name, sha256, stage) per video; `stage()` puts it in the store only when it is needed."""
    if source.startswith("s3://"):
        prefix = store_key_of(ctx, source.rstrip("/") + "/")
        if prefix is None:
            raise InvalidInput(f"{source}: not in the configured store {_store_root(ctx)}")
        keys = [k for k in ctx.store.list(prefix) if Path(k).suffix.lower() in VIDEO_SUFFIXES]
        out = []
        for key in keys:
            sha = _recorded_sha256(ctx, key)
            uri = ctx.store.uri(key)
            out.append((uri, sha, lambda uri=uri, sha=sha: (uri, sha)))
        return out
    root = Path(source)
    if not root.is_dir():
        raise NotFound(f"{root}: no such directory")
    files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
    return [(str(p), sha256_file(p), lambda p=p: stage_input(ctx, str(p))) for p in files]


def catalog_sync_step(ctx: StepContext, source: str, params: dict[str, Any], project: str = "catalog") -> None:
    """Beat's periodic catalog sync, run as a step on a cpu worker."""
    catalog_sync(ctx, source, RenderSpec.from_params(params), project=project, user="beat")


# -- status --------------------------------------------------------------------------------------

def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at is not None else None


def job_status(ctx: StepContext, job_id: str, *, presign_s: int = 3600) -> dict[str, Any]:
    with unit_of_work(ctx.sessions) as s:
        job = JobRepo(s).get(job_id)
        windows = WindowRepo(s).list_for_job(job_id)
        artifacts = [a for a in ArtifactRepo(s).list_for_job(job_id) if a.kind in (ArtifactKind.OUTPUT, ArtifactKind.STEM)]
        now = utcnow()
        started = [w.started_at for w in windows if w.started_at is not None]
        eta_s: float | None = None
        if job.state is JobState.DONE:
            eta_s = 0.0
        elif job.state is JobState.RENDERING and job.windows_done > 0 and started:
            elapsed = (now - min(started)).total_seconds()
            eta_s = round(elapsed / job.windows_done * (job.windows_total - job.windows_done), 1)
        main = next((a for a in artifacts if a.kind is ArtifactKind.OUTPUT), None)
        status: dict[str, Any] = {
            "id": job.id,
            "state": job.state.value,
            "priority": job.priority.value,
            "project": job.project,
            "submitted_by": job.submitted_by,
            "input_uri": job.input_uri,
            "input_sha256": job.input_sha256,
            "model": job.model_name,
            "model_sha256": job.model_sha256,
            "seed": job.seed,
            "windows_done": job.windows_done,
            "windows_total": job.windows_total,
            "windows_failed": sum(w.state is WindowState.FAILED for w in windows),
            "window_attempts": sum(w.attempts for w in windows),
            "created_at": _iso(job.created_at),
            "updated_at": _iso(job.updated_at),
            "error": job.error,
            "outputs": [{"kind": a.kind.value, "uri": a.uri, "sha256": a.sha256, "size_bytes": a.size_bytes}
                        for a in artifacts],
            "eta_s": eta_s,
            "presigned_url": None,
        }
        main_key = main.key if main is not None and main.uri.startswith(_store_root(ctx)) else None
        if main is not None and main_key is None:
            status["presigned_url"] = main.uri  # a local output: its path is the link
    if main_key is not None:
        status["presigned_url"] = ctx.store.presigned_url(main_key, expires_s=presign_s)
    return status


def list_jobs(ctx: StepContext, *, states: list[JobState] | None = None, project: str | None = None,
              limit: int = 100) -> list[dict[str, Any]]:
    with unit_of_work(ctx.sessions) as s:
        return [{"id": j.id, "state": j.state.value, "priority": j.priority.value, "project": j.project,
                 "windows_done": j.windows_done, "windows_total": j.windows_total, "created_at": _iso(j.created_at),
                 "input_uri": j.input_uri} for j in JobRepo(s).list(states=states, project=project, limit=limit)]


def wait_for(ctx: StepContext, job_id: str, *, timeout_s: float | None = None, poll_s: float = 1.0,
             on_change: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Poll until the job reaches a final state (or `timeout_s` passes); returns its last status."""
    deadline = None if timeout_s is None else time.monotonic() + timeout_s
    last: tuple[Any, ...] | None = None
    while True:
        status = job_status(ctx, job_id)
        key = (status["state"], status["windows_done"], status["windows_total"])
        if key != last and on_change is not None:
            on_change(status)
        last = key
        if JobState(status["state"]) in FINAL_STATES or (deadline is not None and time.monotonic() > deadline):
            return status
        time.sleep(poll_s)


def fetch_output(ctx: StepContext, job_id: str, dest: Path, *, overwrite: bool = False) -> dict[str, Any]:
    """Download the job's output to `dest`, verified against the SHA-256 recorded for it."""
    if dest.exists() and not overwrite:
        raise Conflict(f"{dest}: already exists (use --overwrite to replace it)")
    with unit_of_work(ctx.sessions) as s:
        job = JobRepo(s).get(job_id)
        if job.state is not JobState.DONE:
            raise Conflict(f"job {job_id} is {job.state.value}: no output to fetch yet")
        main = next((a for a in ArtifactRepo(s).list_for_job(job_id, ArtifactKind.OUTPUT)), None)
        if main is None:
            raise NotFound(f"job {job_id} recorded no output")
        key, sha, uri = main.key, main.sha256, main.uri
    if not uri.startswith(_store_root(ctx)):
        raise InvalidInput(f"job {job_id} wrote its output outside the store: {uri}")
    info = ctx.store.get_file(key, dest)  # verified against the object's own SHA-256 metadata
    if info.sha256 != sha:
        dest.unlink(missing_ok=True)
        raise IntegrityError(f"job {job_id}: fetched {key} has sha256 {info.sha256[:12]}…, recorded {sha[:12]}…")
    return {"path": str(dest), "sha256": info.sha256, "size_bytes": info.size_bytes}


# -- control: cancel, pause, resume, retry -------------------------------------------------------

def _store_root(ctx: StepContext) -> str:
    """The URI prefix of every object in the configured store (`s3://bucket/prefix/`)."""
    return ctx.store.uri("x")[:-1]


def _state_of(s: Session, job_id: str) -> JobState:
    return JobRepo(s).get(job_id).state


def cancel(ctx: StepContext, job_id: str) -> None:
    with unit_of_work(ctx.sessions) as s:
        active = [JobState.QUEUED, JobState.INGESTING, JobState.RENDERING, JobState.ASSEMBLING, JobState.PAUSED]
        if not JobRepo(s).transition(job_id, active, JobState.CANCELLED, error="cancelled"):
            raise Conflict(f"job {job_id} is {_state_of(s, job_id).value}: nothing to cancel")
        EventRepo(s).append("job.cancelled", job_id=job_id, actor=_actor())
    log.info("job %s cancelled", job_id)


def pause(ctx: StepContext, job_id: str) -> None:
    with unit_of_work(ctx.sessions) as s:
        if not JobRepo(s).transition(job_id, [JobState.RENDERING], JobState.PAUSED):
            raise Conflict(f"job {job_id} is {_state_of(s, job_id).value}: only a rendering job can be paused")
        EventRepo(s).append("job.paused", job_id=job_id, actor=_actor())
    log.info("job %s paused", job_id)


def resume(ctx: StepContext, job_id: str) -> list[StepCall]:
    """Paused → rendering; re-send only the batches with unfinished windows."""
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        if not jobs.transition(job_id, [JobState.PAUSED], JobState.RENDERING):
            raise Conflict(f"job {job_id} is {_state_of(s, job_id).value}, not paused")
        calls = _unfinished_work(s, jobs.get(job_id))
        EventRepo(s).append("job.resumed", job_id=job_id, actor=_actor(), payload={"batches": [list(c.args) for c in calls]})
    for call in calls:
        ctx.executor.submit(call)
    return calls


def retry(ctx: StepContext, job_id: str) -> list[StepCall]:
    """Failed → back to work: failed windows get fresh attempts; only unfinished work is re-sent."""
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        job = jobs.get(job_id)
        if job.state is not JobState.FAILED:
            raise Conflict(f"job {job_id} is {job.state.value}, not failed")
        reset = s.execute(update(Window).where(Window.job_id == job_id, Window.state == WindowState.FAILED)
                          .values(state=WindowState.PENDING, attempts=0, error=None, lease_owner=None,
                                  lease_expires_at=None).returning(Window.index)
                          .execution_options(synchronize_session=False)).scalars().all()
        windows = WindowRepo(s).list_for_job(job_id)
        if not windows:
            target = JobState.QUEUED
        elif all(w.state is WindowState.DONE for w in windows):
            target = JobState.ASSEMBLING
        else:
            target = JobState.RENDERING
        s.execute(update(Job).where(Job.id == job_id, Job.state == JobState.FAILED)
                  .values(state=target, error=None, lease_owner=None, lease_expires_at=None, updated_at=utcnow())
                  .execution_options(synchronize_session=False))
        if target is JobState.QUEUED:
            calls = [StepCall(STEP_INGEST, (job_id,), queue="cpu")]
        elif target is JobState.ASSEMBLING:
            calls = [StepCall(STEP_ASSEMBLE, (job_id,), queue="cpu")]
        else:
            jobs.recount_windows_done(job_id)
            calls = _unfinished_work(s, jobs.get(job_id))
        EventRepo(s).append("job.retried", job_id=job_id, actor=_actor(),
                            payload={"windows_reset": sorted(reset), "state": target.value,
                                     "calls": [[c.step, list(c.args)] for c in calls]})
    for call in calls:
        ctx.executor.submit(call)
    return calls


def _unfinished_work(s: Session, job: Job) -> list[StepCall]:
    """For a job now `rendering`: its batches with windows not done, or assembly if all are."""
    jobs = JobRepo(s)
    windows = WindowRepo(s).list_for_job(job.id)
    jobs.recount_windows_done(job.id)
    if windows and jobs.mark_rendering_finished(job.id):
        return [StepCall(STEP_ASSEMBLE, (job.id,), queue="cpu")]
    batches = sorted({w.batch_index for w in windows if w.state is not WindowState.DONE})
    return [StepCall(STEP_RENDER, (job.id, b), queue=gpu_queue(job.priority.value)) for b in batches]


def _actor() -> str:
    from render_farm.submit import current_user

    return current_user()

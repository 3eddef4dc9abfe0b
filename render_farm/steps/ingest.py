"""Ingest (CPU): hash and probe the input, make the proxy, find shot cuts, plan the windows
(and, where a join is a cut, which shot each side of it sees).

The plan (windows, which of them are batched together, and the length bucket each batch is
padded to) is written in one transaction, then one render step per batch is enqueued.
"""
from __future__ import annotations

import logging
import time

from render_farm.context import StepContext
from render_farm.inputs import materialize_input
from render_farm.media.frames import iter_frames
from render_farm.media.probe import probe
from render_farm.media.proxy import make_proxy_as
from render_farm.models import model_for_spec
from render_farm.spec import RenderSpec
from render_farm.steps import STEP_RENDER
from render_farm.steps.keys import proxy_key
from render_farm.timeline.buckets import length_buckets, plan_batches
from render_farm.timeline.latent_time import num_frames, seconds_to_nearest_frame
from render_farm.timeline.shots import cut_pictures_by_latent_frame, detect_cuts
from render_farm.timeline.windows import WindowSpec, plan_windows, shot_bounds
from schedulers.base import StepCall
from storage.db import unit_of_work
from storage.errors import FoleyError, TransientError
from storage.models import ArtifactKind, JobState, utcnow
from storage.repos import ArtifactRepo, EventRepo, JobRepo, WindowRepo
from storage.repos.windows import NewWindow

log = logging.getLogger(__name__)

SHOT_FPS = 24
SHOT_SIZE = (64, 36)


def gpu_queue(priority: str) -> str:
    return f"gpu-{priority}"


def ingest(ctx: StepContext, job_id: str) -> None:
    now = utcnow()
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        jobs.transition(job_id, [JobState.QUEUED], JobState.INGESTING, now=now)
        if not jobs.claim(job_id, state=JobState.INGESTING, owner=ctx.worker, lease_s=ctx.lease_s, now=now):
            log.info("job %s: ingest not claimable (state %s)", job_id, jobs.get(job_id).state.value)
            return
        job = jobs.get(job_id)
        spec = RenderSpec.from_params(job.params)
        input_uri, priority = job.input_uri, job.priority.value
        EventRepo(s).append("ingest.started", job_id=job_id, actor=ctx.worker, payload={"attempt": job.attempts})
    try:
        _ingest(ctx, job_id, input_uri, spec, priority)
    except TransientError:
        raise  # retried by the executor; the retry takes back the lease this process holds
    except FoleyError as exc:
        fail_job(ctx, job_id, f"ingest: {exc}")
        raise


def _ingest(ctx: StepContext, job_id: str, input_uri: str, spec: RenderSpec, priority: str) -> None:
    t0 = time.perf_counter()
    work = ctx.scratch_dir / job_id
    work.mkdir(parents=True, exist_ok=True)
    src, input_sha = materialize_input(ctx, input_uri, work)
    info = probe(src)
    model = model_for_spec(spec)
    rate = model.latent_rate_hz
    total = num_frames(info.duration_s, rate)
    ctx.report_progress(job_id, "proxy", 0, 1)
    proxy_path = work / "proxy.mp4"
    make_proxy_as(src, proxy_path, spec.proxy)
    proxy = ctx.store.put_file(proxy_key(input_sha, spec.proxy), proxy_path)
    ctx.report_progress(job_id, "shots", 0, 1)
    cut_frames = detect_cuts((f.rgb for f in iter_frames(proxy_path, SHOT_FPS, SHOT_SIZE)), SHOT_FPS)
    cut_pictures = cut_pictures_by_latent_frame(cut_frames, SHOT_FPS, rate)  # latent frame -> shot's first picture
    cuts = sorted(cut_pictures)
    wspec = WindowSpec(
        min_frames=max(1, seconds_to_nearest_frame(spec.window_min_s, rate)),
        max_frames=max(1, seconds_to_nearest_frame(spec.window_max_s, rate)),
        overlap_frames=max(1, seconds_to_nearest_frame(spec.overlap_s, rate)),
    )
    windows = plan_windows(total, cuts, wspec)
    buckets = length_buckets(wspec.min_frames, wspec.max_frames)
    batches = plan_batches([w.num_frames for w in windows], spec.batch_windows, buckets)
    batch_of = {i: b for b in batches for i in b.windows}
    shots = shot_bounds(windows, cut_pictures)
    planned = [NewWindow(w.index, w.start, w.end, batch_of[w.index].index, batch_of[w.index].padded_frames,
                         shot_from=lo, shot_to=hi)
               for w, (lo, hi) in zip(windows, shots)]
    n_batches = len(batches)
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        jobs.record_ingest(job_id, input_sha256=input_sha, model_sha256=model.sha256)
        ArtifactRepo(s).add(job_id, ArtifactKind.PROXY, key=proxy.key, uri=ctx.store.uri(proxy.key),
                            sha256=proxy.sha256, size_bytes=proxy.size_bytes, meta={"fps": 24})
        WindowRepo(s).create_many(job_id, planned)
        jobs.set_windows_total(job_id, len(planned))
        jobs.release(job_id, ctx.worker)
        if not jobs.transition(job_id, [JobState.INGESTING], JobState.RENDERING):
            return  # cancelled meanwhile
        EventRepo(s).append("ingest.done", job_id=job_id, actor=ctx.worker, payload={
            "input_sha256": input_sha, "duration_s": info.duration_s, "latent_frames": total,
            "cuts": cuts, "cut_pictures": sorted(cut_pictures.values()),
            "windows": [[w.start_frame, w.end_frame] for w in planned],
            "shots": [[w.shot_from, w.shot_to] for w in planned], "batches": n_batches,
            "batch_windows": [list(b.windows) for b in batches], "padded_frames": [b.padded_frames for b in batches],
            "wall_s": round(time.perf_counter() - t0, 3),
        })
    ctx.record_stage(job_id, "ingest", time.perf_counter() - t0)
    log.info("job %s: %d latent frames, %d cuts, %d windows in %d batches", job_id, total, len(cuts), len(planned), n_batches)
    for b in range(n_batches):
        ctx.executor.submit(StepCall(STEP_RENDER, (job_id, b), queue=gpu_queue(priority)))


def fail_job(ctx: StepContext, job_id: str, reason: str) -> None:
    """Mark a job failed with its reason (from any non-final state)."""
    with unit_of_work(ctx.sessions) as s:
        moved = JobRepo(s).transition(
            job_id,
            [JobState.QUEUED, JobState.INGESTING, JobState.RENDERING, JobState.ASSEMBLING, JobState.PAUSED],
            JobState.FAILED,
            error=reason,
        )
        if moved:
            EventRepo(s).append("job.failed", job_id=job_id, actor=ctx.worker, payload={"error": reason})
    log.info("job %s failed: %s", job_id, reason)  # the caller raises or reports it

"""Render one planned batch of windows (GPU queue): conditions from the proxy's frames, the
timeline noise of each window, the sampler, latents to the store under deterministic keys.
A window whose join with a neighbour is a shot cut sees only its own side's shot (its row's
`shot_from`/`shot_to`): frames across the cut hold the shot's edge picture.

The whole batch is always computed together, exactly as planned, and padded to the length the
plan recorded, even when some of its windows are already done (a retry after a crash): batch
composition and padding change floating-point sums, and the result must not depend on who
rendered what or how often. The network runs on the worker's placement (`ctx.inference`).
"""
from __future__ import annotations

import io
import logging
import math
import time
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from foley_model.motion import MOTION_LAG_S, grid_picks, pictures_before
from render_farm.context import StepContext
from render_farm.media.frames import iter_frames, num_output_frames
from render_farm.media.proxy_formats import proxy_format
from render_farm.models import WindowInput, model_for_spec
from render_farm.spec import RenderSpec
from render_farm.steps import STEP_ASSEMBLE
from render_farm.steps.keys import latents_key, proxy_key
from render_farm.timeline.latent_time import frame_to_seconds
from render_farm.timeline.noise import candidate_seed, timeline_noise
from schedulers.base import StepCall
from storage.db import unit_of_work
from storage.models import ArtifactKind, JobState, WindowState, utcnow
from storage.repos import ArtifactRepo, EventRepo, JobRepo, WindowRepo

log = logging.getLogger(__name__)

SYNC_FPS = 24


def latents_to_bytes(latents: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(latents, dtype=np.float32), allow_pickle=False)
    return buf.getvalue()


def latents_from_bytes(data: bytes) -> np.ndarray:
    return np.load(io.BytesIO(data), allow_pickle=False)


class PlannedWindow(NamedTuple):
    """One window of a planned batch, as the render step reads it from its row."""

    id: str
    index: int
    start: int  # latent frames [start, end)
    end: int
    shot_from: int | None = None  # picture frames [shot_from, shot_to) it may see (None: unbounded)
    shot_to: int | None = None


class WindowPictures(NamedTuple):
    """What a window's frame encoder reads (`window_pictures`)."""

    frames: np.ndarray  # (T, H, W, 3) uint8 on the 24 fps grid
    t0: Fraction  # time of frames[0]
    real: int  # leading frames that show real pictures (the rest: the hold past the video's end)
    before: np.ndarray | None  # (T, H, W, 3) uint8, the picture 1/24 s before each frame; None: the previous frame


def window_frames(proxy_path, start_s: Fraction, end_s: Fraction, size: tuple[int, int], video_end_s: float,
                  context: int = 0, shot: tuple[int | None, int | None] = (None, None), *,
                  with_real: bool = False) -> tuple[np.ndarray, Fraction] | tuple[np.ndarray, Fraction, int]:
    """Frames at 24 fps covering [start_s, end_s) plus `context` frames each side (the frame
    encoder looks at neighbours): (T, H, W, 3) uint8 and the time of frame 0.

    Frame k shows the picture at t0 + k/24 with t0 = floor(start_s·24)/24 − context/24 (not before
    0); past the end of the video the last picture is held, so every window gets all its frames.
    `shot` = (from, to) bounds the pictures on the proxy's 24 fps grid: a frame before `from`
    shows picture `from`, a frame at or after `to` shows picture `to − 1` (the window's side of a
    join at a shot cut sees one shot only, frozen across the cut).
    with_real: also return how many leading frames show real pictures, the rest being the hold past the
    video's end (at least 1: a window wholly past the end counts its held picture as real).
    """
    p = window_pictures(proxy_path, start_s, end_s, size, video_end_s, context, shot)
    return (p.frames, p.t0, p.real) if with_real else (p.frames, p.t0)


def _grid_span(start_s: Fraction, end_s: Fraction, video_end_s: float, context: int) -> tuple[int, int, Fraction]:
    """(k0, k1, stop): grid frames [k0, k1) of a window with its context, and where real pictures stop."""
    k0 = max(int(start_s * SYNC_FPS) - context, 0)  # floor
    k1 = -(-end_s.numerator * SYNC_FPS // end_s.denominator) + context  # ceil(end_s * 24)
    return k0, k1, min(Fraction(k1, SYNC_FPS), Fraction(video_end_s))


def _shot_bounds(shot: tuple[int | None, int | None], k0: int, n: int) -> tuple[int, int]:
    """(first, last) window-relative frames a `shot` = (from, to) on the 24 fps grid lets the window show."""
    lo, hi = shot
    first = 0 if lo is None else min(max(lo - k0, 0), n - 1)
    last = n - 1 if hi is None else min(max(hi - 1 - k0, 0), n - 1)
    assert first <= last, f"picture bounds {shot} leave no frame of [{k0}, {k0 + n})"
    return first, last


def window_pictures(proxy_path, start_s: Fraction, end_s: Fraction, size: tuple[int, int], video_end_s: float,
                    context: int = 0, shot: tuple[int | None, int | None] = (None, None),
                    proxy_fps: Fraction | int = SYNC_FPS) -> WindowPictures:
    """`window_frames` (with how many frames are real) from a proxy at `proxy_fps`.

    A 24 fps proxy gives the grid's frames and no reference pictures (the encoder measures motion against
    the previous frame). A proxy at the source's rate (`proxy_formats`, fps None) gives the same grid
    frames, picked as a 24 fps proxy picks them, and for each the picture 1/24 s before its own source
    time (`foley_model.motion.pictures_before`), so the encoder sees steady motion where the source is
    steady. Held frames (past the end, beyond the shot bounds) and the first frame of the window's shot
    show no motion."""
    k0, k1, stop = _grid_span(start_s, end_s, video_end_s, context)
    rate = Fraction(proxy_fps)
    if rate == SYNC_FPS:
        return _grid_proxy_pictures(proxy_path, k0, k1, stop, size, shot)
    return _source_proxy_pictures(proxy_path, rate, k0, k1, stop, size, shot)


def _grid_proxy_pictures(proxy_path, k0: int, k1: int, stop: Fraction, size: tuple[int, int],
                         shot: tuple[int | None, int | None]) -> WindowPictures:
    t0 = Fraction(k0, SYNC_FPS)
    frames = [f.rgb for f in iter_frames(proxy_path, SYNC_FPS, size, start_s=t0, end_s=stop)] if stop > t0 else []
    n_real = max(1, min(len(frames), k1 - k0))
    if not frames:
        # A window beyond the last decodable frame: hold the last picture of the video.
        tail = [f.rgb for f in iter_frames(proxy_path, SYNC_FPS, size, start_s=max(Fraction(0), stop - Fraction(1, SYNC_FPS)))]
        frames = tail[-1:] if tail else [np.zeros((size[1], size[0], 3), np.uint8)]
    while len(frames) < k1 - k0:
        frames.append(frames[-1])
    frames = frames[: k1 - k0]
    if shot != (None, None):
        first, last = _shot_bounds(shot, k0, len(frames))
        frames = [frames[min(max(i, first), last)] for i in range(len(frames))]
    return WindowPictures(np.stack(frames), t0, n_real, None)


def _source_proxy_pictures(proxy_path, rate: Fraction, k0: int, k1: int, stop: Fraction, size: tuple[int, int],
                           shot: tuple[int | None, int | None]) -> WindowPictures:
    n, t0 = k1 - k0, Fraction(k0, SYNC_FPS)
    n_real = num_output_frames(t0, stop, SYNC_FPS) if stop > t0 else 0
    # source frames from one motion lag (and a frame) before the first grid frame to the last real one
    j0 = max(math.floor((t0 - MOTION_LAG_S) * rate) - 1, 0)
    j1 = math.floor((t0 + Fraction(max(n_real, 1) - 1, SYNC_FPS)) * rate) + 1
    src_t0 = Fraction(j0) / rate
    src = [f.rgb for f in iter_frames(proxy_path, rate, size, start_s=src_t0, end_s=Fraction(j1) / rate)]
    if n_real == 0 or not src:
        # A window beyond the last decodable frame: hold the last picture of the video.
        tail = [f.rgb for f in iter_frames(proxy_path, rate, size, start_s=max(Fraction(0), stop - 1 / rate))]
        held = tail[-1] if tail else np.zeros((size[1], size[0], 3), np.uint8)
        frames = np.repeat(held[None], n, axis=0)
        return WindowPictures(frames, t0, 1, frames.copy())
    src_arr = np.stack(src)  # (Ns, H, W, 3)
    picks = grid_picks(src_t0, rate, len(src_arr), t0, Fraction(SYNC_FPS), n_real)  # (n_real,)
    shown = np.minimum(np.arange(n), n_real - 1)  # window frame -> real frame it shows (the hold past the end)
    first, last = _shot_bounds(shot, k0, n) if shot != (None, None) else (0, n - 1)
    shown = shown[np.clip(np.arange(n), first, last)]
    # frames showing their own real picture move; with a lower shot bound, not its first frame (the cut),
    # and no reference reaches back before that frame's picture
    from_frame = first if shot[0] is None else first + 1
    moving = np.zeros(n, dtype=bool)
    moving[from_frame:min(last, n_real - 1) + 1] = True
    floor = 0 if shot[0] is None else int(picks[min(first, n_real - 1)])
    frames = src_arr[picks[shown]]  # (n, H, W, 3)
    before = frames.copy()
    if moving.any():
        before[moving] = pictures_before(src_arr, rate, picks[shown[moving]],
                                         min_index=np.full(int(moving.sum()), floor))
    return WindowPictures(frames, t0, n_real, before)


def render_batch(ctx: StepContext, job_id: str, batch_index: int) -> None:
    t_start = time.perf_counter()
    now = utcnow()
    with unit_of_work(ctx.sessions) as s:
        job = JobRepo(s).get(job_id)
        if job.state is not JobState.RENDERING:
            log.info("job %s batch %d: job is %s, nothing to do", job_id, batch_index, job.state.value)
            return
        windows = list(WindowRepo(s).list_for_batch(job_id, batch_index))
        repo = WindowRepo(s)
        mine = [w.id for w in windows if repo.claim(w.id, ctx.worker, ctx.lease_s, now, worker_host=ctx.host, device=ctx.device)]
        spec = RenderSpec.from_params(job.params)
        seed, input_sha = job.seed, job.input_sha256
        plan = [PlannedWindow(w.id, w.index, w.start_frame, w.end_frame, w.shot_from, w.shot_to) for w in windows]
        padded = {w.padded_frames for w in windows}
    if not mine:
        log.info("job %s batch %d: every window is done or taken", job_id, batch_index)
        return
    assert len(padded) == 1, f"job {job_id} batch {batch_index}: windows disagree on the padded length {padded}"
    timings: dict[str, float] = {}
    try:
        latents = render_window_batch(ctx, job_id, spec, seed, input_sha, plan, padded_frames=padded.pop(),
                                      timings=timings)
    except Exception as exc:
        with unit_of_work(ctx.sessions) as s:
            states = [WindowRepo(s).fail(wid, ctx.worker, f"{type(exc).__name__}: {exc}") for wid in mine]
            EventRepo(s).append("batch.failed", job_id=job_id, actor=ctx.worker,
                                payload={"batch": batch_index, "error": str(exc)[:500]})
        if any(st is WindowState.FAILED for st in states):
            from render_farm.steps.ingest import fail_job

            fail_job(ctx, job_id, f"window batch {batch_index} failed after its last attempt: {exc}")
        raise
    last = False
    with unit_of_work(ctx.sessions) as s:
        repo, jobs, arts = WindowRepo(s), JobRepo(s), ArtifactRepo(s)
        for w, lat in zip(plan, latents):
            if w.id not in mine:
                continue
            info = ctx.store.put(latents_key(job_id, w.index), latents_to_bytes(lat))
            arts.add(job_id, ArtifactKind.LATENTS, key=info.key, uri=ctx.store.uri(info.key), sha256=info.sha256,
                     size_bytes=info.size_bytes, window_id=w.id, meta={"frames": [w.start, w.end]})
            if repo.complete(w.id, ctx.worker, info.key, info.sha256):
                last = jobs.count_window_done_and_maybe_assemble(job_id) or last
        wall = time.perf_counter() - t_start
        EventRepo(s).append("batch.done", job_id=job_id, actor=ctx.worker, payload={
            "batch": batch_index, "windows": [w.index for w in plan if w.id in mine], "host": ctx.host,
            "device": ctx.device, "engine": model_for_spec(spec).runtime(ctx.inference).describe(),
            "wall_s": round(wall, 3)})
        done, total = jobs.get(job_id).windows_done, jobs.get(job_id).windows_total
    ctx.record_stage(job_id, "render", time.perf_counter() - t_start)
    for part, seconds in timings.items():  # frames / encode / dit: parts of the render stage
        ctx.record_part(job_id, "render", part, seconds)
    ctx.report_progress(job_id, "render", done, total)
    if last:
        ctx.executor.submit(StepCall(STEP_ASSEMBLE, (job_id,), queue="cpu"))


def render_window_batch(ctx: StepContext, job_id: str, spec: RenderSpec, seed: int, input_sha: str | None,
                        plan: list[PlannedWindow], padded_frames: int | None = None,
                        timings: dict | None = None) -> list[np.ndarray]:
    """The planned batch's latents (+ stereo cues), one array per window, as `render_batch` stores them.

    padded_frames: the batch's recorded length bucket (None for plans made before buckets).
    timings: filled with seconds per part ("frames": proxy decode, "encode": conditions, "dit": sampler)."""
    model = model_for_spec(spec)
    t_frames = time.perf_counter()
    assert input_sha is not None, f"job {job_id} has no input hash: ingest did not finish"
    proxy = ctx.scratch_dir / "proxies" / f"{input_sha}-{spec.proxy}.mp4"
    if not proxy.exists():
        proxy.parent.mkdir(parents=True, exist_ok=True)
        ctx.store.get_file(proxy_key(input_sha, spec.proxy), proxy)
    from render_farm.media.probe import probe

    info = probe(proxy)
    video_end_s = info.duration_s
    proxy_fps = proxy_format(spec.proxy).fps or info.video.frame_rate  # None: a proxy at the source's rate
    rate = model.latent_rate_hz
    inputs, noises = [], []
    for w in plan:
        start_s, end_s = frame_to_seconds(w.start, rate), frame_to_seconds(w.end, rate)
        pics = window_pictures(proxy, start_s, end_s, model.frame_size, video_end_s, model.frame_context,
                               shot=(w.shot_from, w.shot_to), proxy_fps=proxy_fps)
        inputs.append(WindowInput(frames=pics.frames, frames_t0_s=float(pics.t0), start_s=float(start_s),
                                  num_latent_frames=w.end - w.start, start_frame=w.start, frames_real=pics.real,
                                  frames_before=pics.before))
        noises.append(np.stack([timeline_noise(candidate_seed(seed, k), w.start, w.end, model.latent_channels)
                                for k in range(spec.candidates or 1)]))  # (N, T, C)
    if timings is not None:
        timings["frames"] = time.perf_counter() - t_frames
    return model.render_latents(inputs, noises, spec, padded_frames=padded_frames, placement=ctx.inference,
                                timings=timings)

"""Assemble (CPU): stitch the windows' latents, decode in chunks (Mel-VAE → Mono2Stereo →
vocoder), master (48 kHz, EBU R128, true-peak ceiling), mux into a copy of the input, write stems.

Everything streams: latents one window at a time, audio through scratch files on disk, so
memory stays flat however long the video is.
"""
from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Iterator

import numpy as np

from render_farm.context import StepContext
from render_farm.hashing import sha256_file
from render_farm.inputs import local_path_of, materialize_input
from render_farm.media.mux import mux_audio
from render_farm.media.pcm import PcmFile
from render_farm.media.probe import probe
from render_farm.media.stems import write_stem
from render_farm.models import CHUNK_LATENT_FRAMES, model_for_spec
from render_farm.post.master import MasterSpec, MasterStats, master
from render_farm.spec import RenderSpec
from render_farm.steps.ingest import fail_job
from render_farm.steps.keys import output_key
from render_farm.steps.render import latents_from_bytes
from render_farm.timeline.chunked import run_chunked
from render_farm.timeline.stitch import StreamingStitcher
from render_farm.timeline.windows import Window
from storage.db import unit_of_work
from storage.errors import FoleyError, TransientError
from storage.models import ArtifactKind, JobState, utcnow
from storage.repos import ArtifactRepo, EventRepo, JobRepo, WindowRepo

log = logging.getLogger(__name__)

READ_CHUNK_S = 4  # seconds of audio per chunk when streaming scratch files


def assemble(ctx: StepContext, job_id: str) -> None:
    now = utcnow()
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        if not jobs.claim(job_id, state=JobState.ASSEMBLING, owner=ctx.worker, lease_s=ctx.lease_s, now=now):
            log.info("job %s: assembly not claimable (state %s)", job_id, jobs.get(job_id).state.value)
            return
        job = jobs.get(job_id)
        spec = RenderSpec.from_params(job.params)
        rows = WindowRepo(s).list_for_job(job_id)
        windows = [Window(w.index, w.start_frame, w.end_frame) for w in rows]
        keys = [w.result_key for w in rows]
        input_uri, output_target = job.input_uri, job.output_uri
        EventRepo(s).append("assemble.started", job_id=job_id, actor=ctx.worker, payload={"attempt": job.attempts})
    try:
        outputs = _assemble(ctx, job_id, spec, windows, keys, input_uri, output_target)
    except TransientError:
        raise  # retried by the executor; the retry takes back the lease this process holds
    except FoleyError as exc:
        fail_job(ctx, job_id, f"assemble: {exc}")
        raise
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        for out in outputs:
            ArtifactRepo(s).add(job_id, out["kind"], key=out["key"], uri=out["uri"], sha256=out["sha256"],
                                size_bytes=out["size_bytes"], meta=out.get("meta", {}))
        main = next(o for o in outputs if o["kind"] is ArtifactKind.OUTPUT)
        jobs.set_output(job_id, main["uri"])
        jobs.release(job_id, ctx.worker)
        jobs.transition(job_id, [JobState.ASSEMBLING], JobState.DONE)
        EventRepo(s).append("job.done", job_id=job_id, actor=ctx.worker, payload={
            "outputs": [{"kind": o["kind"].value, "uri": o["uri"], "sha256": o["sha256"]} for o in outputs]})
    ctx.report_progress(job_id, "done", 1, 1)


def _assemble(ctx: StepContext, job_id: str, spec: RenderSpec, windows: list[Window], keys: list[str | None],
              input_uri: str, output_target: str | None) -> list[dict]:
    t0 = time.perf_counter()
    work = ctx.scratch_dir / job_id
    work.mkdir(parents=True, exist_ok=True)
    model = model_for_spec(spec)
    src, input_sha = materialize_input(ctx, input_uri, work)
    info = probe(src)
    total = windows[-1].end

    def stitched() -> Iterator[np.ndarray]:
        stitcher = StreamingStitcher(windows, total)
        for i, key in enumerate(keys):
            assert key is not None, f"job {job_id}: window {i} has no result"
            yield stitcher.push(i, latents_from_bytes(ctx.store.get(key)))
            ctx.report_progress(job_id, "decode", i + 1, len(windows))
        stitcher.finish()

    # 1. latents → model-rate stereo audio, streamed to a scratch file, cut to the video's length.
    n_model = int(np.ceil(info.duration_s * model.sample_rate_hz))
    raw = work / "model_audio.f32"
    written = 0
    with open(raw, "wb") as f:
        for chunk in run_chunked(model.decode_stages(), stitched(), chunk_frames=CHUNK_LATENT_FRAMES):  # (n, 2)
            take = chunk[: max(n_model - written, 0)]
            f.write(np.ascontiguousarray(take, dtype=np.float32).tobytes())
            written += take.shape[0]
    ctx.record_stage(job_id, "decode", time.perf_counter() - t0)

    # 2. master to the delivery format, streamed to a second scratch file.
    t1 = time.perf_counter()
    stats = MasterStats()
    mspec = MasterSpec(out_rate_hz=spec.sample_rate_hz, target_lufs=spec.loudness_lufs, ceiling_dbtp=spec.true_peak_dbtp)
    n_out = int(round(info.duration_s * spec.sample_rate_hz))
    delivered = work / "delivery.f32"
    written = 0
    with open(delivered, "wb") as f:
        for chunk in master(lambda: _read_chunks(raw, model.sample_rate_hz), model.sample_rate_hz, 2, mspec, stats):
            take = chunk[:, : max(n_out - written, 0)]
            f.write(np.ascontiguousarray(take.T, dtype=np.float32).tobytes())
            written += take.shape[1]
    audio = PcmFile(delivered, channels=2)  # (2, n) on disk, read a block at a time: never mapped whole
    ctx.record_stage(job_id, "post", time.perf_counter() - t1)

    # 3. mux into a copy of the input, and stems.
    t2 = time.perf_counter()
    outputs = []
    target = local_path_of(output_target) if output_target else None
    name = Path(src.name if local_path_of(input_uri) else "output.mp4")
    out_path = target if target is not None else work / f"{name.stem}.foley{name.suffix or '.mp4'}"
    mux_audio(src, audio, out_path, title="foley")
    outputs.append(_publish(ctx, job_id, out_path, ArtifactKind.OUTPUT, local=target is not None,
                            meta={"duration_s": info.duration_s, "loudness_lufs": stats.output_lufs,
                                  "gain_db": stats.gain_db, "limiter_max_db": stats.max_gain_reduction_db}))
    if spec.stems != "none":
        stem_path = out_path.with_name(f"{out_path.stem}.stem.{spec.stems}")
        write_stem(stem_path, audio, spec.sample_rate_hz, spec.stems)
        outputs.append(_publish(ctx, job_id, stem_path, ArtifactKind.STEM, local=target is not None, meta={}))
    ctx.record_stage(job_id, "mux", time.perf_counter() - t2)
    for p in (raw, delivered):
        p.unlink(missing_ok=True)
    return outputs


def _read_chunks(path: Path, rate_hz: int) -> Iterator[np.ndarray]:
    """(2, n) float32 chunks of a scratch file of interleaved stereo samples."""
    frame_bytes = 8
    with open(path, "rb") as f:
        while data := f.read(READ_CHUNK_S * rate_hz * frame_bytes):
            yield np.frombuffer(data, dtype=np.float32).reshape(-1, 2).T


def _publish(ctx: StepContext, job_id: str, path: Path, kind: ArtifactKind, *, local: bool, meta: dict) -> dict:
    """Record a local output in place, or upload a farm output to the store."""
    if local:
        return {"kind": kind, "key": path.name, "uri": path.resolve().as_uri(), "sha256": sha256_file(path),
                "size_bytes": path.stat().st_size, "meta": meta}
    info = ctx.store.put_file(output_key(job_id, path.name), path)
    return {"kind": kind, "key": info.key, "uri": ctx.store.uri(info.key), "sha256": info.sha256,
            "size_bytes": info.size_bytes, "meta": meta}

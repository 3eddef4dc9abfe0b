"""The JSON render report: what was rendered from what, how, and what came out."""
from __future__ import annotations

import importlib.metadata
import platform
from typing import Any

from render_farm.context import StepContext
from render_farm.models import model_for_spec
from render_farm.spec import RenderSpec
from render_farm.timeline.latent_time import frame_to_seconds
from render_farm.timeline.windows import Window, joins
from storage.db import unit_of_work
from storage.models import ArtifactKind
from storage.repos import ArtifactRepo, JobRepo, WindowRepo


def software_versions() -> dict[str, str]:
    import av
    import numpy
    import torch

    import render_farm

    versions = {"python": platform.python_version(), "torch": torch.__version__, "numpy": numpy.__version__,
                "pyav": av.__version__, "foley": getattr(render_farm, "__version__", "0.1.0")}
    # The installed distribution's version, without importing it: importing DeepSpeed takes seconds
    # and prints accelerator warnings on stdout, where `foley submit` promises only job ids.
    try:
        versions["deepspeed"] = importlib.metadata.version("deepspeed")
    except importlib.metadata.PackageNotFoundError:
        versions["deepspeed"] = "not installed"
    return versions


def build_report(ctx: StepContext, job_id: str) -> dict[str, Any]:
    with unit_of_work(ctx.sessions) as s:
        job = JobRepo(s).get(job_id)
        rows = WindowRepo(s).list_for_job(job_id)
        artifacts = ArtifactRepo(s).list_for_job(job_id)
        spec = RenderSpec.from_params(job.params)
        model = model_for_spec(spec)
        rate = model.latent_rate_hz
        plan = [Window(w.index, w.start_frame, w.end_frame) for w in rows]

        def sec(frame: int) -> float:
            return round(float(frame_to_seconds(frame, rate)), 6)

        outputs = [a for a in artifacts if a.kind in (ArtifactKind.OUTPUT, ArtifactKind.STEM)]
        main = next((a for a in outputs if a.kind is ArtifactKind.OUTPUT), None)
        report: dict[str, Any] = {
            "job_id": job.id,
            "state": job.state.value,
            "error": job.error,
            "submitted_by": job.submitted_by,
            "project": job.project,
            "input": {"uri": job.input_uri, "sha256": job.input_sha256},
            "output": {"uri": main.uri, "sha256": main.sha256, "size_bytes": main.size_bytes} if main else None,
            "stems": [{"uri": a.uri, "sha256": a.sha256} for a in outputs if a.kind is ArtifactKind.STEM],
            "model": {"name": job.model_name, "checkpoint_sha256": job.model_sha256},
            "parameters": spec.to_params(),
            "seed": job.seed,
            "latent_rate_hz": float(rate),
            "windows": [{"index": w.index, "start_s": sec(w.start), "end_s": sec(w.end),
                         "start_frame": w.start, "end_frame": w.end,
                         "batch": r.batch_index, "padded_frames": r.padded_frames,
                         "shot_pictures": [r.shot_from, r.shot_to], "attempts": r.attempts,
                         "worker": r.worker_host, "device": r.device}
                        for w, r in zip(plan, rows)],
            "joins_s": [sec(j) for j in joins(plan)] if plan else [],
            "loudness": ({k: main.meta.get(k) for k in ("loudness_lufs", "gain_db", "limiter_max_db")} if main else None),
            "stages": ctx.stages.get(job_id, {}),
            "stage_parts": ctx.stage_parts.get(job_id, {}),
            "software": software_versions(),
        }
    return report

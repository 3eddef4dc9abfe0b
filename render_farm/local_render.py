"""`foley render` on one machine: the farm's own steps, run by the in-process executor."""
from __future__ import annotations

import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from render_farm.config import InferenceConfig, Settings
from render_farm.context import StepContext, build_context
from render_farm.errors import Conflict, FoleyError, InvalidInput, TransientError
from render_farm.media.containers import audio_target
from render_farm.media.probe import probe
from render_farm.report import build_report
from render_farm.spec import RenderSpec
from render_farm.submit import create_job, file_uri
from schedulers.inprocess import InProcessExecutor
from storage.db import unit_of_work
from storage.models import JobState
from storage.repos import JobRepo

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RenderRequest:
    input_path: Path
    output_path: Path


def plan_outputs(inputs: list[Path], output: Path | None, out_dir: Path | None, overwrite: bool) -> list[RenderRequest]:
    """Where each input's result goes; refuses clashes before anything runs."""
    if output is not None and len(inputs) != 1:
        raise InvalidInput("-o/--output takes one input; use --out-dir for several")
    if output is not None and out_dir is not None:
        raise InvalidInput("give -o/--output or --out-dir, not both")
    requests = []
    for path in inputs:
        if output is not None:
            dest = output
        else:
            folder = out_dir if out_dir is not None else path.parent
            dest = folder / f"{path.stem}.foley{path.suffix}"
        requests.append(RenderRequest(path, dest))
    seen: set[Path] = set()
    for r in requests:
        dest = r.output_path.resolve() if r.output_path.parent.exists() else r.output_path.absolute()
        if dest in seen:
            raise InvalidInput(f"{r.output_path}: two inputs would write the same output")
        seen.add(dest)
        if dest == r.input_path.resolve():
            raise InvalidInput(f"{r.output_path}: the output would overwrite its input")
        if r.output_path.exists() and not overwrite:
            raise Conflict(f"{r.output_path}: already exists (use --overwrite to replace it)")
        if r.output_path.exists() and r.output_path.is_dir():
            raise InvalidInput(f"{r.output_path}: is a directory")
        if not r.output_path.parent.exists():
            raise InvalidInput(f"{r.output_path.parent}: output directory does not exist")
        audio_target(r.output_path, None)  # a container that cannot hold the audio fails now
    return requests


class ProgressLine:
    """One updating stderr line per job: stage, windows done/total, ETA."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled and sys.stderr is not None
        self.started = time.monotonic()
        self.tty = bool(self.enabled and sys.stderr.isatty())
        self._last = ""

    def __call__(self, job_id: str, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        eta = ""
        if stage == "render" and 0 < done < total:
            eta = f", ETA {elapsed / done * (total - done):.0f}s"
        line = f"foley: {job_id[:8]} {stage} {done}/{total}{eta} ({elapsed:.0f}s)"
        if line == self._last:
            return
        self._last = line
        if self.tty:
            sys.stderr.write("\r\033[K" + line)
            sys.stderr.flush()
        elif stage != "decode" or done == total:
            sys.stderr.write(line + "\n")

    def close(self) -> None:
        if self.enabled and self.tty and self._last:
            sys.stderr.write("\n")


def render_files(settings: Settings, requests: list[RenderRequest], spec: RenderSpec, *,
                 quiet: bool = False, project: str = "local", user: str | None = None,
                 inference: InferenceConfig | None = None) -> list[dict[str, Any]]:
    """Render each request in-process; returns one report per job. Raises on the first failure.

    inference: where the render network runs (default: the CPU path; a CUDA request falls back to
    it, with one log line, where there is no GPU)."""
    for r in requests:
        info = probe(r.input_path)  # bad input fails here, before any job is recorded
        target, _ = audio_target(r.output_path, None)
        if target.max_audio_tracks is not None and len(info.audio_streams) + 1 > target.max_audio_tracks:
            raise InvalidInput(f"{r.output_path}: a {r.output_path.suffix} file holds {target.max_audio_tracks} audio "
                               f"track(s) and {r.input_path} already has {len(info.audio_streams)}")
    progress = ProgressLine(not quiet)
    holder: dict[str, StepContext] = {}
    executor = InProcessExecutor(lambda: holder["ctx"])
    ctx = build_context(settings, executor, progress=progress)
    if inference is not None:
        from render_farm.engine import resolve_inference

        ctx.inference = resolve_inference(inference)
        ctx.device = ctx.inference.describe()
    holder["ctx"] = ctx
    reports = []
    try:
        for r in requests:
            job_id = create_job(ctx, file_uri(r.input_path), spec, project=project, user=user,
                                output_uri=file_uri(r.output_path))
            try:
                executor.run_until_idle()
            except TransientError as exc:
                # A farm worker would retry the step later; here the render ends, so record why.
                _fail_quietly(ctx, job_id, str(exc))
                raise
            with unit_of_work(ctx.sessions) as s:
                job = JobRepo(s).get(job_id)
                state, error = job.state, job.error
            if state is not JobState.DONE:
                raise FoleyError(f"job {job_id} ended {state.value}: {error or 'no reason recorded'}")
            reports.append(build_report(ctx, job_id))
    finally:
        progress.close()
    return reports


def _fail_quietly(ctx: StepContext, job_id: str, reason: str) -> None:
    from render_farm.steps.ingest import fail_job

    try:
        fail_job(ctx, job_id, reason)
    except FoleyError as exc:  # the error being raised says more than this one
        log.warning("job %s: could not record its failure: %s", job_id, exc)


def write_report(path: Path, reports: list[dict[str, Any]]) -> None:
    data = reports[0] if len(reports) == 1 else {"jobs": reports}
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)

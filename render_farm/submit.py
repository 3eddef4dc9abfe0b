"""Creating jobs: one row per input with its spec, where its output goes, and a first event."""
from __future__ import annotations

import getpass
import logging
from pathlib import Path

from render_farm.context import StepContext
from render_farm.models import model_for_spec
from render_farm.provenance import job_provenance
from render_farm.spec import RenderSpec
from render_farm.steps import STEP_INGEST
from schedulers.base import StepCall
from storage.db import unit_of_work
from storage.models import Priority
from storage.repos import EventRepo, JobRepo

log = logging.getLogger(__name__)


def current_user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no user database entry (containers)
        return "unknown"


def create_job(ctx: StepContext, input_uri: str, spec: RenderSpec, *, project: str = "default",
               user: str | None = None, priority: Priority = Priority.EPISODE, output_uri: str | None = None) -> str:
    """Insert a queued job and enqueue its ingest; returns the job id."""
    model = model_for_spec(spec)
    spec = model.resolve(spec)
    user = user or current_user()
    # provenance (render_farm/provenance.py): computed before the transaction, it may hash the input
    provenance = job_provenance(ctx.store, input_uri, project=project, user=user,
                                model_name=model.name, model_sha256=model.sha256)
    with unit_of_work(ctx.sessions) as s:
        jobs = JobRepo(s)
        job = jobs.create(project=project, submitted_by=user, input_uri=input_uri, seed=spec.seed,
                          model_name=model.name, model_sha256=model.sha256, params=spec.to_params(), priority=priority)
        if output_uri is not None:
            jobs.set_output(job.id, output_uri)
        EventRepo(s).append("job.submitted", job_id=job.id, actor=job.submitted_by, payload={
            "input_uri": input_uri, "project": project, "priority": priority.value, "params": spec.to_params(),
            "model": model.name, "model_sha256": model.sha256, "output_uri": output_uri,
            "provenance": provenance})
        job_id = job.id
    ctx.executor.submit(StepCall(STEP_INGEST, (job_id,), queue="cpu"))
    log.info("job %s submitted for %s", job_id, input_uri)
    return job_id


def file_uri(path: Path) -> str:
    return path.resolve().as_uri()

"""The StepContext of one farm worker process, built by the Celery app on first use.

The Celery app (schedulers/) names this factory by string, `render_farm.worker_context:build`,
so schedulers never imports render_farm. Options are plain data the entry point wrote from its
Settings (`context_options`), so the worker reads no environment here.
"""
from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from render_farm.config import Settings
from render_farm.context import StepContext, build_context
from render_farm.steps import STEP_ASSEMBLE, STEP_INGEST, STEP_RENDER
from schedulers.base import Executor
from schedulers.reaper import StepNames

log = logging.getLogger(__name__)

FACTORY = "render_farm.worker_context:build"
STEPS = StepNames(ingest=STEP_INGEST, render=STEP_RENDER, assemble=STEP_ASSEMBLE)
DEFAULT_LEASE_S = 1800.0


def context_options(settings: Settings, *, lease_s: float = DEFAULT_LEASE_S, device: str = "cpu") -> dict[str, Any]:
    """What a worker process needs to rebuild its context (no secrets beyond the URLs themselves)."""
    return {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "broker_url": settings.broker_url,
        "store_url": settings.store_url,
        "s3_endpoint_url": settings.s3_endpoint_url,
        "lease_s": float(lease_s),
        "device": device,
    }


def settings_of(options: dict[str, Any]) -> Settings:
    return Settings(data_dir=Path(options["data_dir"]), database_url=options["database_url"],
                    broker_url=options.get("broker_url"), store_url=options["store_url"],
                    s3_endpoint_url=options.get("s3_endpoint_url"))


def build(executor: Executor, options: dict[str, Any]) -> StepContext:
    """One context per worker process: database pool, blob store, scratch space of its own."""
    settings = settings_of(options)
    scratch = settings.data_dir / "scratch" / f"worker-{os.getpid()}"
    ctx = build_context(settings, executor, scratch_dir=scratch)
    ctx.lease_s = float(options.get("lease_s", DEFAULT_LEASE_S))
    ctx.device = str(options.get("device", "cpu"))
    log.info("worker %s: context on %s, device %s, lease %.0f s", ctx.worker, settings.describe()["database_url"],
             ctx.device, ctx.lease_s)
    return ctx

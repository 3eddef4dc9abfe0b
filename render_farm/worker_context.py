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

from render_farm.config import InferenceConfig, Settings
from render_farm.context import StepContext, build_context
from render_farm.steps import STEP_ASSEMBLE, STEP_INGEST, STEP_RENDER
from schedulers.base import Executor
from schedulers.reaper import StepNames

log = logging.getLogger(__name__)

FACTORY = "render_farm.worker_context:build"
STEPS = StepNames(ingest=STEP_INGEST, render=STEP_RENDER, assemble=STEP_ASSEMBLE)
DEFAULT_LEASE_S = 1800.0


def context_options(settings: Settings, *, lease_s: float = DEFAULT_LEASE_S, device: str = "cpu",
                    inference: InferenceConfig | None = None) -> dict[str, Any]:
    """What a worker process needs to rebuild its context (no secrets beyond the URLs themselves).

    `inference` is the requested placement of the render network; each worker process resolves it
    itself when it builds its context (so CUDA is touched only there, never in a prefork parent)."""
    inference = inference or InferenceConfig(device=device if device.startswith("cuda") else "cpu", label=device)
    return {
        "data_dir": str(settings.data_dir),
        "database_url": settings.database_url,
        "broker_url": settings.broker_url,
        "store_url": settings.store_url,
        "s3_endpoint_url": settings.s3_endpoint_url,
        "lease_s": float(lease_s),
        "device": inference.label or inference.device,
        "inference": {"device": inference.device, "engine": inference.engine, "dtype": inference.dtype,
                      "label": inference.label, "cuda_graphs": inference.cuda_graphs},
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
    if options.get("inference"):
        from render_farm.engine import resolve_inference  # torch: only in the process that renders

        ctx.inference = resolve_inference(InferenceConfig(**options["inference"]))
        ctx.device = ctx.inference.describe()
    else:
        ctx.device = str(options.get("device", "cpu"))
    log.info("worker %s: context on %s, device %s, lease %.0f s", ctx.worker, settings.describe()["database_url"],
             ctx.device, ctx.lease_s)
    return ctx

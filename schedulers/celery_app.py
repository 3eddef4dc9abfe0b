"""The Celery app of the farm: one generic task that runs a step by name, a reaper task, beat.

Built from a FarmConfig at the entry point (nothing reads the environment here). Messages carry
a step name and plain ids only; the SQL database is the source of truth, so a message that is
delivered twice, or lost and re-sent by the reaper, does no harm.

    app = make_app(FarmConfig(broker_url="redis://…", context_factory="render_farm.worker_context:build",
                              context_options={...}, steps=StepNames(...)))

Reliability settings, and why:
- `acks_late` + `task_reject_on_worker_lost`: a message is acknowledged only after its step
  returns; a pool child that dies puts it back on the queue at once.
- `worker_prefetch_multiplier=1`: a worker holds no message beyond the one it runs, so work it
  has not started can go to another worker, and a GPU worker looks at `gpu-episode` again before
  each catalog batch.
- broker `visibility_timeout` above the longest step: Redis redelivers an unacknowledged message
  after it, so it must not fire while the step still runs. A whole worker killed (not just a
  pool child) is recovered sooner by the reaper, from the expired SQL leases.
- `queue_order_strategy="priority"`: the Redis transport polls the worker's queues in the order
  given (`gpu-episode` before `gpu-catalog`) instead of round robin.
- a step that raises TransientError (the database or the store went away) is first called again
  in the same process, with backoff, for up to `local_retry_s`; only then does Celery's retry
  (with backoff, up to `max_retries`) put it back on the broker. Why both: a Celery retry can be
  taken by any worker, but only the process that claimed a window or a job step holds its lease
  and can take it back (WindowRepo.claim), so a short outage is ridden out where the leases are
  instead of waiting for them to expire; a long one is left to the broker, the leases and the
  reaper.
"""
from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from celery import Celery, signals
from kombu import Queue

from schedulers.base import resolve_step
from schedulers.celery_executor import CeleryExecutor, QUEUES, STEP_TASK
from schedulers.reaper import StepNames, reap
from storage.errors import TransientError

log = logging.getLogger(__name__)

REAP_TASK = "foley.reap"
T = TypeVar("T")


@dataclass(frozen=True)
class FarmConfig:
    broker_url: str
    context_factory: str  # "module:function", called once per process as factory(executor, options)
    steps: StepNames
    context_options: dict[str, Any] = field(default_factory=dict)  # plain data handed to the factory
    visibility_timeout_s: float = 6 * 3600.0  # above the longest step (a big batch on a slow GPU)
    reaper_interval_s: float = 30.0
    stall_s: float = 600.0  # a job untouched this long with nothing queued or running gets its work re-sent
    local_retry_s: float = 60.0  # after a TransientError, call the step again in this process for this long
    max_retries: int = 8  # TransientError retries per message (Celery, after the local ones)
    retry_backoff_max_s: int = 120
    catalog_sync: dict[str, Any] | None = None  # beat only: {"step": "module:function", "interval_s": …, "kwargs": {…}}

    def __post_init__(self) -> None:
        assert self.visibility_timeout_s > 0 and self.reaper_interval_s > 0, (
            f"{self.visibility_timeout_s=} {self.reaper_interval_s=}"
        )


class _ProcessContext:
    """The StepContext of this process, built on first use (so never in a prefork parent)."""

    def __init__(self, app: Celery, config: FarmConfig) -> None:
        self._app, self._config = app, config
        self._ctx: Any = None
        self._lock = threading.Lock()

    def get(self) -> Any:
        with self._lock:
            if self._ctx is None:
                factory = resolve_step(self._config.context_factory)
                self._ctx = factory(CeleryExecutor(self._app), dict(self._config.context_options))
                log.info("worker context ready (%s)", getattr(self._ctx, "worker", "?"))
            return self._ctx

    def reset(self) -> None:
        with self._lock:
            self._ctx = None


def make_app(config: FarmConfig) -> Celery:
    app = Celery("foley")
    app.conf.update(
        broker_url=config.broker_url,
        broker_connection_retry_on_startup=True,
        broker_transport_options={
            "visibility_timeout": config.visibility_timeout_s,
            "queue_order_strategy": "priority",
        },
        result_backend=None,
        task_ignore_result=True,
        task_serializer="json",
        accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_default_queue="cpu",
        task_queues=[Queue(name, routing_key=name) for name in QUEUES],
        task_create_missing_queues=False,
        beat_schedule=_beat_schedule(config),
        timezone="UTC",
        enable_utc=True,
    )
    app.foley_config = config  # type: ignore[attr-defined]
    process = _ProcessContext(app, config)
    app.foley_context = process  # type: ignore[attr-defined]

    retry = dict(acks_late=True, reject_on_worker_lost=True, autoretry_for=(TransientError,),
                 retry_backoff=2, retry_backoff_max=config.retry_backoff_max_s, retry_jitter=True,
                 max_retries=config.max_retries)

    @app.task(name=STEP_TASK, ignore_result=True, **retry)
    def run_step(step: str, args: list[Any], kwargs: dict[str, Any] | None = None) -> None:
        """Run one step (`module:function`) on this process's context; ids in, nothing out."""
        log.info("step %s%s starting", step, tuple(args))
        func = resolve_step(step)
        retry_here(lambda: func(process.get(), *args, **(kwargs or {})), budget_s=config.local_retry_s,
                   what=f"step {step}{tuple(args)}")

    @app.task(name=REAP_TASK, ignore_result=True, **retry)
    def reap_task() -> dict[str, Any]:
        """Re-queue expired leases and re-send work whose message was lost."""
        ctx = process.get()
        report = reap(ctx.sessions, ctx.executor, config.steps, stall_s=config.stall_s,
                      queue_depth=CeleryExecutor(app).queue_depth)
        return report.as_dict()

    @signals.worker_process_shutdown.connect(weak=False)
    def _forget_context(**_: Any) -> None:
        process.reset()

    return app


def retry_here(fn: Callable[[], T], *, budget_s: float, what: str, first_delay_s: float = 0.5,
               max_delay_s: float = 8.0, sleep: Callable[[float], None] = time.sleep,
               clock: Callable[[], float] = time.monotonic) -> T:
    """fn(), called again in this process after each TransientError, waiting 0.5, 1, 2 … 8 s
    (jittered) between calls, until it returns or `budget_s` has passed since the first error;
    then the last error is raised (to Celery's retry). Other errors are raised at once. fn must be
    idempotent (steps are)."""
    deadline: float | None = None
    delay = first_delay_s
    while True:
        try:
            return fn()
        except TransientError as exc:
            now = clock()
            deadline = now + budget_s if deadline is None else deadline
            left = deadline - now
            if left <= 0:
                raise
            wait = min(delay * random.uniform(0.5, 1.0), left)
            log.warning("%s: %s: %s; calling it again in this process in %.1f s", what, type(exc).__name__, exc, wait)
            sleep(wait)
            delay = min(2 * delay, max_delay_s)


def _beat_schedule(config: FarmConfig) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {
        "reaper": {"task": REAP_TASK, "schedule": config.reaper_interval_s,
                   "options": {"queue": "cpu", "expires": config.reaper_interval_s}},  # stale ticks are dropped
    }
    if config.catalog_sync and config.catalog_sync.get("step"):
        interval_s = float(config.catalog_sync["interval_s"])
        schedule["catalog-sync"] = {  # an ordinary step message: any cpu worker runs it
            "task": STEP_TASK, "schedule": interval_s,
            "args": (config.catalog_sync["step"], [], dict(config.catalog_sync.get("kwargs", {}))),
            "options": {"queue": "cpu", "expires": interval_s}}
    return schedule

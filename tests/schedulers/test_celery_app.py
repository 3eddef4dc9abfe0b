"""The Celery app's settings and the executor's routing, without a broker."""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

from schedulers.base import StepCall
from schedulers.celery_app import REAP_TASK, FarmConfig, make_app, retry_here
from schedulers.celery_executor import QUEUES, STEP_TASK, CeleryExecutor, gpu_queue
from schedulers.reaper import StepNames
from storage.errors import InvalidInput, ServiceUnavailable, TransientError

CONFIG = FarmConfig(broker_url="redis://127.0.0.1:1/0", context_factory="m:build",
                    steps=StepNames("m:i", "m:r", "m:a"), reaper_interval_s=15, visibility_timeout_s=7200)


class FakeApp:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple] = []
        self.fail = fail
        self.conf = type("Conf", (), {"broker_url": "redis://:secret@host/0"})()

    def send_task(self, name, args, queue, routing_key):
        if self.fail:
            raise ConnectionRefusedError("refused")
        self.sent.append((name, args, queue))


def test_reliability_settings() -> None:
    app = make_app(CONFIG)
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost and conf.worker_prefetch_multiplier == 1
    assert conf.broker_transport_options == {"visibility_timeout": 7200, "queue_order_strategy": "priority"}
    assert [q.name for q in conf.task_queues] == list(QUEUES)
    assert conf.beat_schedule["reaper"]["task"] == REAP_TASK and conf.beat_schedule["reaper"]["schedule"] == 15
    task = app.tasks[STEP_TASK]
    assert task.acks_late and task.reject_on_worker_lost and TransientError in task.autoretry_for
    assert task.retry_backoff and task.max_retries == CONFIG.max_retries


class _Clock:
    """A fake clock that sleeping advances: retry_here's waits, without waiting."""

    def __init__(self) -> None:
        self.now, self.sleeps = 0.0, []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def test_a_transient_error_calls_the_step_again_in_this_process() -> None:
    clock, calls = _Clock(), []

    def step() -> str:
        calls.append(clock.now)
        if len(calls) < 4:
            raise ServiceUnavailable("cannot reach database at postgresql://farm:***@db/foley")
        return "done"

    assert retry_here(step, budget_s=60, what="step s", sleep=clock.sleep, clock=lambda: clock.now) == "done"
    assert len(calls) == 4 and len(clock.sleeps) == 3
    assert all(0.25 <= s <= 0.5 for s in clock.sleeps[:1]) and all(s <= 8 for s in clock.sleeps), clock.sleeps
    assert clock.sleeps[1] >= 0.5 and clock.sleeps[2] >= 1.0, "the waits grow"


def test_retries_here_stop_at_the_budget_and_other_errors_pass_at_once() -> None:
    clock, calls = _Clock(), []

    def down() -> None:
        calls.append(clock.now)
        raise TransientError("still down")

    with pytest.raises(TransientError, match="still down"):
        retry_here(down, budget_s=20, what="step s", sleep=clock.sleep, clock=lambda: clock.now)
    assert sum(clock.sleeps) == pytest.approx(20) and calls[-1] == pytest.approx(20), (calls, clock.sleeps)

    def broken() -> None:
        calls.append(clock.now)
        raise InvalidInput("no video stream")

    calls.clear()
    with pytest.raises(InvalidInput):
        retry_here(broken, budget_s=20, what="step s", sleep=clock.sleep, clock=lambda: clock.now)
    assert len(calls) == 1
    with pytest.raises(TransientError):  # no budget: straight to Celery's retry
        retry_here(down, budget_s=0, what="step s", sleep=clock.sleep, clock=lambda: clock.now)


def test_catalog_sync_is_scheduled_as_a_step() -> None:
    from dataclasses import replace

    app = make_app(replace(CONFIG, catalog_sync={"step": "m:sync", "interval_s": 3600, "kwargs": {"source": "/c"}}))
    entry = app.conf.beat_schedule["catalog-sync"]
    assert entry["task"] == STEP_TASK and entry["args"] == ("m:sync", [], {"source": "/c"})


def test_executor_routes_by_queue_and_sends_ids_only() -> None:
    app = FakeApp()
    CeleryExecutor(app).submit(StepCall("pkg.mod:fn", ("job", 3), queue="gpu-catalog"))
    assert app.sent == [(STEP_TASK, ("pkg.mod:fn", ["job", 3], {}), "gpu-catalog")]
    with pytest.raises(InvalidInput):
        CeleryExecutor(app).submit(StepCall("pkg.mod:fn", (), queue="gpu-urgent"))
    assert gpu_queue("episode") == "gpu-episode"


def test_broker_down_is_service_unavailable_without_the_password() -> None:
    with pytest.raises(ServiceUnavailable) as err:
        CeleryExecutor(FakeApp(fail=True)).submit(StepCall("m:f", ("j",)))
    assert "secret" not in str(err.value)


def test_schedulers_never_imports_render_farm() -> None:
    root = Path(__file__).resolve().parents[2] / "schedulers"
    for path in root.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(n.split(".")[0] == "render_farm" for n in names), f"{path.name} imports {names}"

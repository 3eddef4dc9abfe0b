"""Executor.submit over Celery: a StepCall becomes one `foley.step` message on its queue."""
from __future__ import annotations

import logging
from typing import Any

from schedulers.base import StepCall
from storage.errors import InvalidInput, ServiceUnavailable
from storage.urls import mask_url, short_reason

log = logging.getLogger(__name__)

STEP_TASK = "foley.step"
# Episode work overtakes the nightly catalog: GPU workers list gpu-episode first.
QUEUES: tuple[str, ...] = ("cpu", "gpu-episode", "gpu-catalog")


def gpu_queue(priority: str) -> str:
    """The GPU queue of a priority tier (`episode` → `gpu-episode`)."""
    queue = f"gpu-{priority}"
    if queue not in QUEUES:
        raise InvalidInput(f"no GPU queue for priority {priority!r}")
    return queue


class CeleryExecutor:
    """Sends step calls to the broker; the worker side runs them with `resolve_step`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def submit(self, call: StepCall) -> None:
        if call.queue not in QUEUES:
            raise InvalidInput(f"step {call.step}: unknown queue {call.queue!r} (one of {', '.join(QUEUES)})")
        try:
            self.app.send_task(STEP_TASK, args=(call.step, list(call.args), dict(call.kwargs)), queue=call.queue,
                               routing_key=call.queue)
        except Exception as exc:  # kombu/redis raise many types; all mean the broker is not there
            if isinstance(exc, InvalidInput):
                raise
            raise ServiceUnavailable(
                f"cannot send {call.step} to broker {mask_url(str(self.app.conf.broker_url))}: {short_reason(exc)}"
            ) from exc
        log.debug("sent %s%s to %s", call.step, call.args, call.queue)

    def queue_depth(self, queue: str) -> int:
        """Messages waiting in `queue` (not counting those a worker holds)."""
        from kombu.exceptions import ChannelError

        with self.app.connection_for_write() as conn:
            try:
                return int(conn.default_channel.queue_declare(queue=queue, passive=True).message_count)
            except ChannelError:  # Redis drops an empty list: no queue is an empty queue
                return 0

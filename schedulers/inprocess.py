"""The embedded executor: step calls run one after another in this process, in FIFO order.

Steps submitted while a step runs are queued and run after it, exactly as a broker would deliver
them, so the step code cannot tell the two executors apart.
"""
from __future__ import annotations

import logging
from collections import deque
from typing import Any, Callable

from schedulers.base import StepCall, resolve_step

log = logging.getLogger(__name__)


class InProcessExecutor:
    def __init__(self, context_factory: Callable[[], Any]) -> None:
        """`context_factory()` builds what every step receives as its first argument."""
        self._queue: deque[StepCall] = deque()
        self._context_factory = context_factory
        self._context: Any = None
        self.executed: list[StepCall] = []

    def submit(self, call: StepCall) -> None:
        log.debug("queued %s%s", call.step, call.args)
        self._queue.append(call)

    def run_until_idle(self) -> int:
        """Run queued steps (and those they enqueue) until none is left; returns how many ran."""
        if self._context is None:
            self._context = self._context_factory()
        count = 0
        while self._queue:
            call = self._queue.popleft()
            log.debug("running %s%s", call.step, call.args)
            resolve_step(call.step)(self._context, *call.args, **call.kwargs)
            self.executed.append(call)
            count += 1
        return count

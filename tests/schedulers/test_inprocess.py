"""The in-process executor runs steps by name, FIFO, including steps that steps enqueue."""
from __future__ import annotations

import pytest

from schedulers.base import StepCall, resolve_step
from schedulers.inprocess import InProcessExecutor

LOG: list[tuple[str, int]] = []


def first(ctx: InProcessExecutor, n: int) -> None:
    LOG.append(("first", n))
    for i in range(n):
        ctx.submit(StepCall(f"{__name__}:second", (i,)))


def second(ctx: InProcessExecutor, i: int) -> None:
    LOG.append(("second", i))


def test_steps_run_in_order_including_follow_ups() -> None:
    LOG.clear()
    holder: dict[str, InProcessExecutor] = {}
    ex = InProcessExecutor(lambda: holder["ex"])
    holder["ex"] = ex
    ex.submit(StepCall(f"{__name__}:first", (3,)))
    assert ex.run_until_idle() == 4
    assert LOG == [("first", 3), ("second", 0), ("second", 1), ("second", 2)]


def test_bad_step_names_are_refused() -> None:
    with pytest.raises(ValueError):
        resolve_step("no_colon")
    with pytest.raises(ModuleNotFoundError):
        resolve_step("no.such.module:f")

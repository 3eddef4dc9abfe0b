"""How steps run, not what they do. A step is named by `module:function` and takes plain ids,
so the same step runs in-process or on a Celery worker without this package importing it."""
from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol


@dataclass(frozen=True)
class StepCall:
    """One step invocation: `step` is `package.module:function`; args are JSON-able ids/values."""

    step: str
    args: tuple[Any, ...] = ()
    queue: str = "cpu"  # routing hint: cpu, gpu-episode, gpu-catalog
    kwargs: dict[str, Any] = field(default_factory=dict)


class Executor(Protocol):
    """Runs step calls. Steps enqueue follow-up steps through the same executor."""

    def submit(self, call: StepCall) -> None: ...


def resolve_step(step: str) -> Callable[..., Any]:
    """`package.module:function` → the function (imported by name, so no upward import)."""
    module_name, sep, func_name = step.partition(":")
    if not sep or not module_name or not func_name:
        raise ValueError(f"step name must be 'module:function', got {step!r}")
    return getattr(importlib.import_module(module_name), func_name)

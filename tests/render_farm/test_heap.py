"""pin_mmap_threshold(): the glibc allocator setting that keeps a render's memory flat in its length;
keep_freed_memory(): the one that keeps a training step from page-faulting through fresh memory."""
from __future__ import annotations

import os
import subprocess
import sys

CODE = "from render_farm.heap import pin_mmap_threshold; print(pin_mmap_threshold())"


def run(env: dict[str, str], code: str = CODE) -> str:
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_set_on_glibc_and_left_to_the_operator_when_configured() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    assert run(env) == "True"  # the project runs on Debian/Ubuntu (glibc)
    assert run({**env, "MALLOC_MMAP_THRESHOLD_": "262144"}) == "False"
    assert run({**env, "FOLEY_MALLOC_PIN": "0"}) == "False"


def test_training_keeps_freed_memory_unless_the_operator_set_malloc_himself():
    code = "from render_farm.heap import keep_freed_memory; print(keep_freed_memory())"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_") and k != "GLIBC_TUNABLES"}
    assert run(env, code) == ("True" if sys.platform == "linux" else "False")
    assert run({**env, "MALLOC_TRIM_THRESHOLD_": "1048576"}, code) == "False"


def test_the_cli_picks_the_policy_per_command(monkeypatch):
    import contextlib

    import render_farm.cli as cli
    calls = []
    monkeypatch.setattr(cli, "keep_freed_memory", lambda: calls.append("keep"))
    monkeypatch.setattr(cli, "pin_mmap_threshold", lambda: calls.append("pin"))
    for command in ("train", "eval", "render"):
        with contextlib.suppress(SystemExit):
            cli.main([command, "--help"])
    assert calls == ["keep", "pin"]

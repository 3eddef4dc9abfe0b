"""pin_mmap_threshold(): the glibc allocator setting that keeps a render's memory flat in its length."""
from __future__ import annotations

import os
import subprocess
import sys

CODE = "from render_farm.heap import pin_mmap_threshold; print(pin_mmap_threshold())"


def run(env: dict[str, str]) -> str:
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.strip()


def test_set_on_glibc_and_left_to_the_operator_when_configured() -> None:
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_MMAP_THRESHOLD_"}
    assert run(env) == "True"  # the project runs on Debian/Ubuntu (glibc)
    assert run({**env, "MALLOC_MMAP_THRESHOLD_": "262144"}) == "False"
    assert run({**env, "FOLEY_MALLOC_PIN": "0"}) == "False"

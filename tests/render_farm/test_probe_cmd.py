"""`foley probe`: a table, --json, and one line on stderr with a non-zero exit for bad input."""
from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.media_factory import make_video

# What the `foley` console script runs, in a fresh process like a user's shell would.
FOLEY = [sys.executable, "-c", "import sys; from render_farm.cli import main; main(sys.argv[1:])"]


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*FOLEY, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    return make_video(tmp_path_factory.mktemp("cli") / "clip.mkv", duration_s=1.0, audio=True, rotation_ccw_deg=90).path


def test_table(video):
    out = run("probe", video)
    assert out.returncode == 0, out.stderr
    assert "matroska" in out.stdout and "h264" in out.stdout and "dialogue" in out.stdout
    assert "shown 160x120" in out.stdout and "rotated 90" in out.stdout
    assert out.stderr == ""


def test_json(video):
    out = run("probe", video, "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["has_video"] is True
    main = data["streams"][data["video_index"]]
    assert main["video"]["display_width"] == 160 and main["video"]["rotation_ccw_deg"] == 90
    assert main["video"]["frame_rate"] == "24/1"


@pytest.mark.parametrize("kind,code", [("missing", 3), ("random", 2), ("empty", 2)])
def test_bad_input_is_one_line(tmp_path, kind, code):
    path = tmp_path / "bad.mp4"
    if kind == "random":
        path.write_bytes(os.urandom(4096))
    elif kind == "empty":
        path.write_bytes(b"")
    out = run("probe", str(path))
    assert out.returncode == code, (out.returncode, out.stderr)
    assert out.stdout == ""
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("foley: error: ") and "bad.mp4" in lines[0], out.stderr

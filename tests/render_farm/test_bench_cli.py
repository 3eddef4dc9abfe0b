"""`foley bench model` and `foley bench episode` run on the CPU and report what the GPU run reports."""
from __future__ import annotations

import json
import re

from click.testing import CliRunner

from render_farm.benchmarks.episode_bench import format_episode_bench
from render_farm.cli import cli


def test_bench_model_prints_speed_counted_flops_peak_fraction_baseline_and_the_batch_check():
    res = CliRunner().invoke(cli, ["bench", "model", "--variant", "tiny", "--batch", "1,2", "--steps", "2"])
    assert res.exit_code == 0, res.output
    out = res.output
    assert re.search(r"FLOPs counted .*: \d+\.\d+ GFLOP per window-step", out), out
    assert re.search(r"matrix peak measured: \d+\.\d+ TFLOP/s \(fp32 1024\^3 matmul\)", out), out
    assert re.search(r"baseline \(eager fp32, one window per call\): .* audio-s per device-s, .* TFLOP/s "
                     r"\(\d+\.\d+% of peak\)", out), out
    assert "window 4 s = 125 latent frames padded to 128, 2 steps" in out
    row = r"^\s+(\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)\s+(\d+\.\d+)x\s+(\d+\.\d+)\s+(\d+\.\d+)%\s*(\S+)?\s*(ok|FAIL)?$"
    rows = {int(m.group(1)): m for m in re.finditer(row, out, re.M)}
    assert sorted(rows) == [1, 2], out
    assert float(rows[2].group(3)) > 0 and float(rows[2].group(5)) > 0  # audio-s per device-s, TFLOP/s
    assert rows[2].group(8) == "ok", out  # batched equals one-window within the fp32 tolerance
    assert re.search(r"engine vs eager baseline, one window: rel RMS \S+ \(tolerance 0.0001\)", out), out


def test_bench_episode_renders_a_synthetic_episode_end_to_end_with_stage_times():
    res = CliRunner().invoke(cli, ["bench", "episode", "--minutes", "0.05", "--workers", "1", "--batch", "2",
                                   "--json"])
    assert res.exit_code == 0, res.output
    r = json.loads(res.stdout[res.stdout.index("{"):])
    assert r["video_s"] == 3.0 and r["wall_s"] > 0 and r["realtime_factor"] > 0 and r["windows"] >= 1
    assert {"ingest", "render", "decode", "post", "mux"} <= set(r["stages"])
    assert set(r["stage_parts"]["render"]) == {"frames", "encode", "dit"}
    assert r["placement"] == "cpu eager fp32" and r["gpu_busy_fraction"] is None
    text = format_episode_bench(r)
    assert "GPU busy fraction: n/a" in text and "render.dit" in text

"""`foley worker --gpus`: one process per GPU, the model placed on its GPU, the CPU path (with one
log line) where there is no GPU; the supervising parent never initialises CUDA."""
from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from render_farm.cli import cli
from render_farm.config import InferenceConfig, Settings
from render_farm.worker_context import build, context_options
from schedulers.inprocess import InProcessExecutor
from storage.errors import InvalidInput

ROOT = Path(__file__).resolve().parents[2]

SUPERVISE = r"""
import json, subprocess, sys
import render_farm.cli.farm_cmd as farm_cmd
started = []
class FakeChild:
    def __init__(self, cmd, env):
        started.append({"cmd": cmd, "gpu": env["CUDA_VISIBLE_DEVICES"]})
        self.pid = 1000 + len(started)
    def wait(self):
        return 0
    def poll(self):
        return 0
farm_cmd.subprocess.Popen = FakeChild
code = farm_cmd._supervise_gpus(["0", "3"], ["gpu-episode", "gpu-catalog"], 1800.0, 600.0, 21600.0, "INFO",
                                "deepspeed", "bf16", 15.0)
torch = sys.modules.get("torch")
cuda = bool(torch is not None and torch.cuda.is_initialized())
print(json.dumps({"code": code, "started": started, "cuda_initialised": cuda}))
"""


def test_the_supervisor_starts_one_solo_process_per_gpu_and_never_initialises_cuda():
    out = subprocess.run([sys.executable, "-c", SUPERVISE], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["code"] == 0 and result["cuda_initialised"] is False
    assert [c["gpu"] for c in result["started"]] == ["0", "3"]
    for child, gpu in zip(result["started"], ["0", "3"]):
        cmd = " ".join(child["cmd"])
        assert "-m render_farm worker" in cmd and "-c 1 --pool solo" in cmd
        assert f"--device cuda:0 --device-label cuda:{gpu} --engine deepspeed --dtype bf16" in cmd
        assert "-Q gpu-episode,gpu-catalog" in cmd
        assert "--retry-window-s 15.0" in cmd


def test_a_gpu_process_without_a_gpu_renders_on_the_cpu_after_one_log_line(tmp_path, caplog, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    caplog.set_level(logging.INFO, logger="render_farm.engine")
    options = context_options(Settings(data_dir=tmp_path), device="cuda:3",
                              inference=InferenceConfig(device="cuda:0", engine="deepspeed", dtype="bf16",
                                                        label="cuda:3"))
    assert json.loads(json.dumps(options)) == options  # plain data, as the Celery app hands it over
    ctx = build(InProcessExecutor(lambda: None), options)
    assert ctx.inference == InferenceConfig(device="cpu", engine="eager", dtype="fp32", label="cpu",
                                            cuda_graphs=False)
    assert ctx.device == "cpu"  # what its windows record
    lines = [r.getMessage() for r in caplog.records if r.name == "render_farm.engine"]
    assert len(lines) == 1 and "cuda:3" in lines[0] and "CPU" in lines[0], lines


def test_a_gpu_worker_is_one_process():
    res = CliRunner().invoke(cli, ["worker", "--device", "cuda:0", "--concurrency", "2"])
    assert isinstance(res.exception, InvalidInput) and "one process" in str(res.exception)
    res = CliRunner().invoke(cli, ["worker", "--gpus", "0,x"])
    assert isinstance(res.exception, InvalidInput) and "--gpus" in str(res.exception)


@pytest.mark.gpu
def test_a_gpu_process_places_the_model_on_its_gpu_once(tmp_path):
    from render_farm.models import load_model

    options = context_options(Settings(data_dir=tmp_path), inference=InferenceConfig(device="cuda:0", label="cuda:0"))
    ctx = build(InProcessExecutor(lambda: None), options)
    assert ctx.inference.on_cuda and ctx.inference.dtype == "bf16"
    handle = load_model("tiny")
    rt = handle.runtime(ctx.inference)
    assert rt.device.type == "cuda" and next(rt.model.dit.parameters()).is_cuda
    assert handle.runtime(ctx.inference) is rt  # placed once per process
    assert not next(handle.model.parameters()).is_cuda  # the CPU copy stays for assembly


def test_the_worker_retry_window_reaches_the_farm_config_and_is_checked(tmp_path):
    from render_farm.cli.farm_cmd import worker
    from render_farm.farm_ops import farm_app

    settings = Settings(data_dir=tmp_path, broker_url="redis://127.0.0.1:1/0")
    assert farm_app(settings, local_retry_s=5.0).foley_config.local_retry_s == 5.0
    assert farm_app(settings).foley_config.local_retry_s == 60.0  # the default
    for bad in ("-1", "1e9"):
        result = CliRunner().invoke(worker, ["--retry-window-s", bad])
        assert result.exit_code != 0 and "--retry-window-s" in str(result.exception), result.output

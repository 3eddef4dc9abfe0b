"""Inference engines: selection, fallback with exactly one log line, DeepSpeed's CPU path."""
from __future__ import annotations

import copy
import logging
import sys

import pytest
import torch

from foley_model.configs import get_config
from foley_model.mmdit import MMDiT
from render_farm.config import InferenceConfig
from render_farm.engine import CompileEngine, DeepSpeedEngine, EagerEngine, resolve_inference, select_engine

ENGINE_LOGGER = "render_farm.engine"


@pytest.fixture(scope="module")
def dit() -> MMDiT:
    torch.manual_seed(0)
    net = MMDiT(get_config("tiny").dit, 8).eval()
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    return net


def _inputs(B: int = 2, T: int = 32, Lv: int = 8, Lt: int = 3, D: int = 128):
    g = torch.Generator().manual_seed(1)
    args = (torch.arange(T).expand(B, T) < torch.tensor([[T], [T - 5]])[:B],  # latent mask, one window padded
            torch.randn(B, T, D, generator=g), torch.randn(B, Lv, D, generator=g), torch.ones(B, Lv, dtype=torch.bool),
            (torch.arange(Lv).float() * 3.9).expand(B, Lv), torch.randn(B, Lt, D, generator=g),
            torch.ones(B, Lt, dtype=torch.bool), torch.randn(B, D, generator=g))
    return torch.randn(B, T, 8, generator=g), torch.rand(B, generator=g), args


def _engine_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == ENGINE_LOGGER]


def test_eager_engine_is_the_module_itself(dit):
    x, t, args = _inputs()
    engine = select_engine("eager", copy.deepcopy(dit), "cpu")
    with torch.inference_mode():
        assert torch.equal(engine.bind(args)(x, t), dit(x, t, *args))
    assert type(engine) is EagerEngine and engine.describe() == "eager fp32"


def test_deepspeed_cpu_init_inference_or_its_fallback(dit, caplog):
    """With DeepSpeed installed: its CPU inference engine, fp32 equal to eager and bf16 within bf16
    tolerance. Without it: eager, and exactly one line saying why."""
    try:
        import deepspeed  # noqa: F401
        installed = True
    except Exception:  # noqa: BLE001 - a broken install falls back like a missing one
        installed = False
    x, t, args = _inputs()
    with torch.inference_mode():
        ref = dit(x, t, *args)
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    engine = select_engine("deepspeed", copy.deepcopy(dit), "cpu", torch.float32)
    with torch.inference_mode():
        out = engine.bind(args)(x, t)
    if installed:
        assert isinstance(engine, DeepSpeedEngine) and engine.describe() == "deepspeed fp32"
        assert not engine.cuda_graphs and _engine_lines(caplog) == []
        assert torch.equal(out, ref)  # the wrapper without graphs runs the same kernels
        low = select_engine("deepspeed", copy.deepcopy(dit), "cpu", torch.bfloat16)
        with torch.inference_mode():
            out16 = low.bind(args)(x, t)
        assert isinstance(low, DeepSpeedEngine) and next(low.module.parameters()).dtype == torch.bfloat16
        assert out16.dtype == torch.float32  # the sampler integrates in fp32
        assert float((out16 - ref).norm() / ref.norm()) < 2e-2
    else:
        assert type(engine) is EagerEngine and torch.equal(out, ref)
        lines = _engine_lines(caplog)
        assert len(lines) == 1 and "deepspeed" in lines[0] and "eager" in lines[0], lines


def test_deepspeed_not_installed_falls_back_with_one_line(dit, caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "deepspeed", None)  # `import deepspeed` raises ImportError
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    engine = select_engine("deepspeed", copy.deepcopy(dit), "cpu")
    x, t, args = _inputs()
    with torch.inference_mode():
        assert torch.equal(engine.bind(args)(x, t), dit(x, t, *args))
    lines = _engine_lines(caplog)
    assert type(engine) is EagerEngine
    assert len(lines) == 1 and "deepspeed is not installed" in lines[0] and "using eager" in lines[0], lines


def test_a_failing_compile_falls_back_to_eager_once(dit, caplog, monkeypatch):
    def broken_compile(module, **kwargs):
        def run(*args):
            raise RuntimeError("inductor: no C++ compiler\nlong trace")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    engine = select_engine("compile", copy.deepcopy(dit), "cpu")
    assert isinstance(engine, CompileEngine) and engine.name == "compile"
    x, t, args = _inputs()
    fn = engine.bind(args)
    with torch.inference_mode():
        outs = [fn(x, t) for _ in range(3)]
        ref = dit(x, t, *args)
    assert all(torch.equal(o, ref) for o in outs)
    lines = _engine_lines(caplog)
    assert engine.name == "eager"
    assert len(lines) == 1 and "compile" in lines[0] and "no C++ compiler" in lines[0], lines


def test_a_cuda_placement_without_a_gpu_becomes_the_cpu_path_with_one_line(caplog, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    got = resolve_inference(InferenceConfig(device="cuda:0", engine="deepspeed", dtype="bf16", label="cuda:3"))
    assert (got.device, got.engine, got.dtype, got.label) == ("cpu", "eager", "fp32", "cpu")
    lines = _engine_lines(caplog)
    assert len(lines) == 1 and "cuda:3" in lines[0] and "CPU" in lines[0], lines


def test_the_cpu_path_is_plain_fp32_torch(caplog):
    caplog.set_level(logging.INFO, logger=ENGINE_LOGGER)
    assert resolve_inference(InferenceConfig()).describe() == "cpu" and _engine_lines(caplog) == []
    got = resolve_inference(InferenceConfig(device="cpu", engine="compile", dtype="bf16"))
    assert (got.engine, got.dtype) == ("eager", "fp32")
    assert len(_engine_lines(caplog)) == 1


@pytest.mark.gpu
def test_deepspeed_cuda_graphs_one_per_shape_replay_equals_eager(dit):
    import deepspeed  # noqa: F401 - a GPU machine has the '.[gpu]' extra: its absence is a failure here

    dev = torch.device("cuda")
    eager = select_engine("eager", copy.deepcopy(dit), dev, torch.bfloat16)
    engine = select_engine("deepspeed", copy.deepcopy(dit), dev, torch.bfloat16)
    assert isinstance(engine, DeepSpeedEngine) and engine.cuda_graphs
    with torch.inference_mode():
        for B, T in [(2, 32), (2, 48), (2, 32), (1, 32)]:
            x, t, args = (v.to(dev) if torch.is_tensor(v) else tuple(a.to(dev) for a in v) for v in _inputs(B, T))
            a, b = engine.bind(args)(x, t), engine.bind(args)(x * 0.5, t)
            ref = eager.bind(args)(x, t)
            assert float((a - ref).norm() / ref.norm()) < 1e-2
            assert not torch.equal(a, b)  # outputs are copies, not the graph's static buffer
    assert engine.captured_shapes == 3

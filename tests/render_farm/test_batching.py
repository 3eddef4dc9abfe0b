"""Window batches padded to length buckets: padding and batching never change a window's result
beyond float rounding, a bucket fixes the batch's shape, conditions are encoded once per window
and CFG runs as one batched pass."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from foley_model.configs import get_config
from foley_model.model import FoleyModel
from render_farm.config import InferenceConfig
from render_farm.models import ModelHandle, WindowInput
from render_farm.spec import RenderSpec
from render_farm.timeline.buckets import bucket_for, length_buckets

SPEC = RenderSpec(steps=2, cfg_scale=3.0, negative_prompt="engine hum")
RATE = 31.25  # tiny: latent frames per second
BUCKETS = length_buckets(30, 45)  # windows of 30..45 latent frames → (16, 32, 48)


@pytest.fixture(scope="module")
def handle() -> ModelHandle:
    torch.manual_seed(0)
    model = FoleyModel(get_config("tiny")).eval()
    with torch.no_grad():
        for p in model.parameters():
            if not p.any():
                p.normal_(0.0, 0.05)
    return ModelHandle("tiny-random", "0" * 64, model)


def _window(handle: ModelHandle, start: int, n: int, seed: int) -> tuple[WindowInput, np.ndarray]:
    rng = np.random.default_rng(seed)
    ctx = handle.frame_context
    k0 = max(int(start / RATE * 24) - ctx, 0)
    k1 = int(np.ceil((start + n) / RATE * 24)) + ctx
    frames = rng.integers(0, 256, (k1 - k0, 54, 96, 3), dtype=np.uint8)
    noise = rng.standard_normal((n, handle.latent_channels)).astype(np.float32)
    return WindowInput(frames, k0 / 24, start / RATE, n, start), noise


def _render(handle, windows, padded=None, placement=None):
    inputs, noises = zip(*windows)
    return handle.render_latents(list(inputs), list(noises), SPEC, padded_frames=padded, placement=placement)


def test_padding_to_a_bucket_keeps_every_real_frame(handle):
    w = _window(handle, 37, 41, seed=1)
    bucket = bucket_for(41, BUCKETS)
    assert bucket == 48
    (plain,), (padded,) = _render(handle, [w]), _render(handle, [w], padded=bucket)
    assert plain.shape == padded.shape == (41, handle.result_channels)
    np.testing.assert_allclose(padded, plain, rtol=0, atol=1e-4)
    assert np.abs(plain).max() > 0.1  # real signal, not zeros


def test_a_batch_renders_each_window_as_it_renders_alone(handle):
    windows = [_window(handle, 0, 45, seed=2), _window(handle, 40, 33, seed=3), _window(handle, 70, 38, seed=4)]
    batch = _render(handle, windows, padded=48)
    for w, got in zip(windows, batch):
        (alone,) = _render(handle, [w], padded=48)
        assert got.shape == alone.shape == (w[0].num_latent_frames, handle.result_channels)
        np.testing.assert_allclose(got, alone, rtol=0, atol=1e-4)
    # the same batch, same plan: the same bytes
    assert all(np.array_equal(a, b) for a, b in zip(batch, _render(handle, windows, padded=48)))


def test_a_bucket_fixes_the_batch_shape_conditions_once_cfg_in_one_pass(handle, monkeypatch):
    model = handle.model
    dit_calls: list[tuple] = []
    encoder_calls: list[int] = []
    dit_forward, encoder_forward = model.dit.forward, model.frame_encoder.forward

    def spy_dit(x, t, *args):
        dit_calls.append(tuple(tuple(a.shape) for a in (x, t, *args)))
        return dit_forward(x, t, *args)

    def spy_encoder(x, before=None):
        encoder_calls.append(x.shape[0])
        return encoder_forward(x, before)

    monkeypatch.setattr(model.dit, "forward", spy_dit)
    monkeypatch.setattr(model.frame_encoder, "forward", spy_encoder)
    shapes = []
    for lengths in ([45, 33], [31, 40]):  # different windows, the same bucket
        dit_calls.clear(), encoder_calls.clear()
        _render(handle, [_window(handle, 10 * i, n, seed=i) for i, n in enumerate(lengths)], padded=48)
        assert encoder_calls == [2]  # the conditions of the batch: encoded once, not per step
        assert len(dit_calls) == SPEC.steps  # one network pass per step ...
        assert {c[0][0] for c in dit_calls} == {4}  # ... over conditional + unconditional (2 × 2 windows)
        assert len(set(dit_calls)) == 1
        shapes.append(dit_calls[0])
    assert shapes[0] == shapes[1]  # one CUDA graph serves the whole bucket
    assert shapes[0][0] == (4, 48, handle.latent_channels)


def test_the_cpu_path_ignores_a_placement_it_cannot_honour(handle):
    cpu = InferenceConfig(device="cpu", engine="eager", dtype="fp32", label="cpu")
    rt = handle.runtime(cpu)
    assert rt.model is handle.model and rt.engine is None and rt.describe() == "cpu eager fp32"


@pytest.mark.gpu
def test_deepspeed_bf16_on_cuda_matches_the_cpu_path_within_bf16_tolerance(handle):
    from render_farm.engine import resolve_inference

    gpu = resolve_inference(InferenceConfig(device="cuda", engine="deepspeed", dtype="bf16"))
    assert gpu.on_cuda
    windows = [_window(handle, 0, 45, seed=2), _window(handle, 40, 33, seed=3), _window(handle, 70, 38, seed=4)]
    cpu = _render(handle, windows, padded=48)
    on_gpu = _render(handle, windows, padded=48, placement=gpu)
    alone = [_render(handle, [w], padded=48, placement=gpu)[0] for w in windows]
    assert "deepspeed bf16 cuda-graphs" in handle.runtime(gpu).describe()
    for c, g, a in zip(cpu, on_gpu, alone):
        ref = np.linalg.norm(c)
        assert np.linalg.norm(g - c) / ref < 3e-2  # bf16 network against the fp32 CPU path
        assert np.linalg.norm(g - a) / ref < 2e-2  # batched against alone, both bf16 on the GPU


def test_candidates_are_chosen_per_window_the_same_in_a_batch_as_alone(handle):
    windows = []
    for start, n, seed in ((0, 45, 5), (40, 33, 6)):
        w, noise = _window(handle, start, n, seed)
        extra = np.random.default_rng(seed + 100).standard_normal((2, n, handle.latent_channels)).astype(np.float32)
        windows.append((w, np.concatenate([noise[None], extra])))  # (3, n, C): three candidates
    batch = _render(handle, windows, padded=48)
    for (w, stack), got in zip(windows, batch):
        (alone,) = _render(handle, [(w, stack)], padded=48)
        np.testing.assert_allclose(got, alone, rtol=0, atol=1e-4)
        # the window's result is one of its candidates rendered on its own
        cands = [_render(handle, [(w, stack[k])], padded=48)[0] for k in range(3)]
        assert min(np.abs(got - c).max() for c in cands) <= 1e-4


def test_frames_past_the_video_end_are_read_as_the_spec_says(handle):
    """A window whose last frames stand past the video's end (`frames_real`): spec "clamp" (new jobs) encodes
    its real frames only, "hold" (jobs stored before) reads the held picture as before; a window with every
    frame real renders the same bytes either way."""
    from dataclasses import replace

    (w, noise), other = _window(handle, 37, 41, seed=5), _window(handle, 0, 41, seed=6)
    n_real = len(w.frames) - 10
    w.frames[n_real:] = w.frames[n_real - 1]  # what window_frames gives past the end: the last picture held
    ended = replace(w, frames_real=n_real)
    clamp, hold = replace(SPEC, past_end="clamp"), replace(SPEC, past_end="hold")

    def run(spec, windows):
        inputs, noises = zip(*windows)
        return handle.render_latents(list(inputs), list(noises), spec, padded_frames=48)

    (a_clamp, b_clamp), (a_hold, b_hold) = run(clamp, [(ended, noise), other]), run(hold, [(ended, noise), other])
    (a_legacy, _) = run(hold, [(w, noise), other])
    assert np.array_equal(a_hold, a_legacy)  # "hold" ignores frames_real: old jobs reproduce
    assert not np.allclose(a_clamp, a_hold, atol=1e-4)
    assert np.array_equal(b_clamp, b_hold)  # every frame real: untouched
    assert np.array_equal(run(clamp, [(w, noise), other])[0], a_legacy)  # no frames_real: nothing past the end

"""Picture augmentation (numpy + torch only): codec-like blockwise-DCT quantisation, blur, noise,
colour jitter.

The codec step works on 8x8 *source* pixel blocks, i.e. on ``8 * res / source_res`` pixel blocks
of whatever resolution it is applied at (the smaller of the render and the output size), so
artefacts shrink with the source resolution exactly as in a decoded, downscaled video: a 160p
source seen at 64x64 shows ~3-pixel blocks, a 1080p source none.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import torch

_RGB2YCC = ((0.299, 0.587, 0.114), (-0.168736, -0.331264, 0.5), (0.5, -0.418688, -0.081312))
_YCC2RGB = tuple(tuple(float(v) for v in row) for row in np.linalg.inv(np.array(_RGB2YCC)))


@dataclass(frozen=True)
class AugmentParams:
    """One clip's draw of augmentation settings (zeros and unit gains: identity)."""

    strength: float  # codec quantisation strength in [0, 1]
    noise_std: float
    blur: float  # 3-tap kernel side weight in [0, 0.3]
    gain: tuple[float, float, float]
    offset: tuple[float, float, float]


def sample_params(rng: np.random.Generator, style) -> AugmentParams:
    strength = float(rng.uniform(*style.artefact_strength_range)) if rng.random() < style.p_artefacts else 0.0
    noise_std = float(rng.uniform(*style.noise_std_range)) if rng.random() < 0.5 else 0.0
    blur = float(rng.uniform(0.1, 0.3)) if rng.random() < style.p_blur else 0.0
    j = style.colour_jitter
    gain = tuple(float(g) for g in 1 + rng.uniform(-j, j, 3)) if j > 0 else (1.0, 1.0, 1.0)
    offset = tuple(float(o) for o in rng.uniform(-j / 2, j / 2, 3)) if j > 0 else (0.0, 0.0, 0.0)
    return AugmentParams(strength, noise_std, blur, gain, offset)


@functools.lru_cache(maxsize=32)
def dct_matrix(n: int) -> torch.Tensor:
    """Orthonormal DCT-II matrix (n, n)."""
    k = np.arange(n)[:, None]
    i = np.arange(n)[None, :]
    m = np.cos(np.pi * (2 * i + 1) * k / (2 * n)) * math.sqrt(2 / n)
    m[0] /= math.sqrt(2)
    return torch.from_numpy(m.astype(np.float32))


def _mix3(x: np.ndarray, m) -> np.ndarray:
    """Per-pixel 3x3 colour transform without BLAS (elementwise)."""
    r, g, b = x[..., 0], x[..., 1], x[..., 2]
    return np.stack([m[i][0] * r + m[i][1] * g + m[i][2] * b for i in range(3)], axis=-1)


def codec(frames: np.ndarray, block_h: int, block_w: int, strength: float) -> np.ndarray:
    """JPEG/H.264-like: YCbCr, blockwise DCT (block_h x block_w), frequency-weighted quantisation, inverse."""
    block_h, block_w = max(1, block_h), max(1, block_w)
    if (block_h < 2 and block_w < 2) or strength <= 0:
        return frames
    n, h, w, _ = frames.shape
    hp, wp = -(-h // block_h) * block_h, -(-w // block_w) * block_w
    ycc = _mix3(frames, _RGB2YCC)
    if (hp, wp) != (h, w):
        ycc = np.pad(ycc, ((0, 0), (0, hp - h), (0, wp - w), (0, 0)), mode="edge")
    dh, dw = dct_matrix(block_h), dct_matrix(block_w)
    x = torch.from_numpy(np.ascontiguousarray(ycc.transpose(0, 3, 1, 2)))  # (n, 3, hp, wp)
    x = x.reshape(n, 3, hp // block_h, block_h, wp // block_w, block_w)
    c = torch.einsum("ki,ncyixj,lj->ncykxl", dh, x, dw)
    fy = torch.arange(block_h, dtype=torch.float32)[:, None] * 8 / block_h
    fx = torch.arange(block_w, dtype=torch.float32)[None, :] * 8 / block_w
    base = 0.012 + 0.10 * strength ** 1.5  # strength 1 ~ low-quality web video
    step = base * (1 + 0.6 * (fy + fx))  # coarser at high spatial frequencies
    step = torch.stack([step, 2 * step, 2 * step])[None, :, None, :, None, :]  # chroma quantised harder
    c = torch.round(c / step) * step
    x = torch.einsum("ki,ncykxl,lj->ncyixj", dh, c, dw).reshape(n, 3, hp, wp)[:, :, :h, :w]
    return _mix3(x.permute(0, 2, 3, 1).numpy(), _YCC2RGB)


def blur3(frames: np.ndarray, a: float) -> np.ndarray:
    """Separable [a, 1-2a, a] blur with edge replication."""
    if a <= 0:
        return frames
    p = np.pad(frames, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
    v = a * p[:, :-2] + (1 - 2 * a) * p[:, 1:-1] + a * p[:, 2:]
    return a * v[:, :, :-2] + (1 - 2 * a) * v[:, :, 1:-1] + a * v[:, :, 2:]


@functools.lru_cache(maxsize=1)
def _noise_bank() -> np.ndarray:
    """A fixed block of standard normal values; clips take random slices (cheap, deterministic)."""
    return np.random.default_rng(20260101).standard_normal(1 << 22, dtype=np.float32)


def to_uint8(frames: np.ndarray, params: AugmentParams, rng: np.random.Generator) -> np.ndarray:
    """Colour jitter, sensor-like Gaussian noise and quantisation to uint8, in place on ``frames``
    (float32 in [0, 1], owned by the caller and overwritten). torch kernels: ~2x numpy's here."""
    x = torch.from_numpy(np.ascontiguousarray(frames))
    x.mul_(torch.tensor(params.gain, dtype=torch.float32) * 255)
    x.add_(torch.tensor(params.offset, dtype=torch.float32) * 255 + 0.5)
    if params.noise_std > 0:
        bank = _noise_bank()
        size = x.numel()
        if size <= len(bank):
            start = int(rng.integers(0, len(bank) - size + 1))
            noise = torch.from_numpy(bank[start:start + size]).view(x.shape)
        else:
            noise = torch.from_numpy(rng.standard_normal(size=tuple(x.shape), dtype=np.float32))
        x.add_(noise, alpha=float(params.noise_std * 255))
    return x.clamp_(0, 255).to(torch.uint8).numpy()

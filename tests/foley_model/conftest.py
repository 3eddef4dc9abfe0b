"""Helpers for the model tests: small CPU models with every layer non-trivially initialised."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from foley_model.configs import get_config
from foley_model.data import _area_resize_uint8
from foley_model.model import FoleyModel
from foley_model.toyworld import GenStyle, clip_seed, make_clip


def randomize_(model: torch.nn.Module, std: float = 0.05) -> torch.nn.Module:
    """Give zero-initialised layers (adaLN, final, stereo out) random weights so tests see real signal."""
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            if p.abs().max() == 0:
                p.copy_(torch.randn(p.shape, generator=g) * std)
    return model


@pytest.fixture(scope="session")
def tiny_model() -> FoleyModel:
    torch.manual_seed(0)
    torch.set_num_threads(2)
    return randomize_(FoleyModel(get_config("tiny"))).eval()


def pool_items(n: int) -> list[dict]:
    """n training-style toy-world clips of 4 s as the trainer's clip pool holds them (frames at 32 px)."""
    out = []
    for i in range(n):
        c = make_clip(clip_seed(5, i), duration_s=4.0, fps=24.0, size=(64, 64), sample_rate_hz=16000,
                      style=GenStyle.train())
        out.append({"index": i, "frames": _area_resize_uint8(c.frames, 32), "audio": c.audio.astype(np.float16),
                    "caption": c.caption, "events": c.events})
    return out

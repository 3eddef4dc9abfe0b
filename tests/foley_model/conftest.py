"""Helpers for the model tests: small CPU models with every layer non-trivially initialised."""
from __future__ import annotations

import pytest
import torch

from foley_model.configs import get_config
from foley_model.model import FoleyModel


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

"""Rectified flow matching: x_t = t x1 + (1 - t) x0 (x0 noise, x1 data), target velocity x1 - x0.

`FlowMatching` is stateless: it receives the velocity function and the caller's noise x0 (the
render farm's timeline noise), so any window can be re-rendered bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

Velocity = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x (B, T, C), t (B,)) -> (B, T, C)
Observer = Callable[[int, torch.Tensor, torch.Tensor, torch.Tensor], None]  # (step, x, v, t) -> None


def predict_x1(x: torch.Tensor, v: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The clean data a straight flow from x (B, T, C) at time t (B,) with velocity v reaches at t = 1. At the
    last Euler step this IS the sampler's output, earlier it is its current estimate of it."""
    return x + (1 - t)[:, None, None] * v


def sample_t_logit_normal(n: int, generator: torch.Generator | None = None, mean: float = 0.0,
                          std: float = 1.0) -> torch.Tensor:
    return torch.sigmoid(mean + std * torch.randn(n, generator=generator))  # (n,)


def interpolate(x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return t[:, None, None] * x1 + (1 - t[:, None, None]) * x0  # (B, T, C)


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over real frames only; mask (B, T) bool."""
    m = mask[..., None].float()  # (B, T, 1)
    return ((pred - target) ** 2 * m).sum() / (m.sum() * pred.shape[-1]).clamp_min(1.0)


@dataclass(frozen=True)
class FlowMatching:
    steps: int = 10
    method: str = "euler"  # or "heun"

    def run_t0_to_t1(self, fn: Velocity, x0: torch.Tensor, steps: int | None = None, from_step: int = 0,
                     observe: Observer | None = None) -> torch.Tensor:
        """Integrate dx/dt = fn(x, t) from t = 0 (x0, caller's noise) to t = 1 (data).

        from_step k > 0: x0 is the state at grid point t = k / steps (a partly noised latent) and only the
        last steps - k steps run, on the same grid (SDEdit-style: the sampler's own final steps).
        observe(i, x, v, t): called at every step i with the state, its (first) velocity and its time,
        before the update (a study hook: the clean-data estimate of step i is `predict_x1(x, v, t)`)."""
        n = steps or self.steps
        assert n >= 1 and 0 <= from_step < n, f"{n=} {from_step=}"
        ts = torch.linspace(0.0, 1.0, n + 1, device=x0.device)
        x = x0
        for i in range(from_step, n):
            t0, t1 = ts[i].expand(x.shape[0]), ts[i + 1].expand(x.shape[0])
            v = fn(x, t0)  # (B, T, C)
            if observe is not None:
                observe(i, x, v, t0)
            if self.method == "heun" and i < n - 1:
                v = 0.5 * (v + fn(x + (ts[i + 1] - ts[i]) * v, t1))
            x = x + (ts[i + 1] - ts[i]) * v
        return x

    @staticmethod
    def cfg_velocity(fn_cond: Velocity, fn_uncond: Velocity, x: torch.Tensor, t: torch.Tensor,
                     scale: float) -> torch.Tensor:
        """Classifier-free guidance: v_u + scale (v_c - v_u). Scale 1 is the conditional velocity."""
        if scale == 1.0:
            return fn_cond(x, t)
        vc, vu = fn_cond(x, t), fn_uncond(x, t)
        return vu + scale * (vc - vu)

    @staticmethod
    def cfg_velocity_batched(fn_pair: Velocity, x: torch.Tensor, t: torch.Tensor, scale: float) -> torch.Tensor:
        """CFG in ONE forward pass: fn_pair gets x and t concatenated twice along the batch
        (first half conditional, second half unconditional) and returns both velocities."""
        v = fn_pair(torch.cat([x, x]), torch.cat([t, t]))  # (2B, T, C)
        vc, vu = v.chunk(2)
        return vu + scale * (vc - vu)

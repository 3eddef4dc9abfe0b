"""Mono2Stereo: mono mel + visual position cues -> per time-frequency pan p in [0, 1] -> stereo mel.

L = 2 p M, R = 2 (1 - p) M in linear mel magnitude (M the mel of the mono mix (L + R) / 2, exact for
gain-panned sources). Dilated non-causal 1-D convolutions over mel frames: a finite, exposed
receptive field, so chunked stereo equals whole stereo (`to_stereo_chunked`).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import AudioConfig, StereoConfig


class Mono2Stereo(nn.Module):
    def __init__(self, audio: AudioConfig, cfg: StereoConfig):
        super().__init__()
        self.audio, self.cfg = audio, cfg
        self.inp = nn.Conv1d(audio.n_mels + 2 * cfg.cue_columns, cfg.hidden, 1)
        self.convs = nn.ModuleList(nn.Conv1d(cfg.hidden, cfg.hidden, cfg.kernel, dilation=d,
                                             padding=d * (cfg.kernel // 2)) for d in cfg.dilations)
        self.out = nn.Conv1d(cfg.hidden, audio.n_mels, 1)
        nn.init.zeros_(self.out.weight), nn.init.zeros_(self.out.bias)

    @property
    def receptive_field(self) -> int:
        """Mel frames of context each side."""
        return sum(d * (self.cfg.kernel // 2) for d in self.cfg.dilations)

    def pan(self, mono: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        """mono normalised log-mel (B, M, T), cues (B, 2 * cols, T) at mel frames -> pan (B, M, T) in (0, 1)."""
        h = self.inp(torch.cat([mono, cues], dim=1))  # (B, H, T)
        for conv in self.convs:
            h = h + conv(F.silu(h))  # (B, H, T)
        return torch.sigmoid(self.out(F.silu(h)))  # (B, M, T)

    def forward(self, mono: torch.Tensor, cues: torch.Tensor) -> torch.Tensor:
        """-> stereo normalised log-mel (B, 2, M, T)."""
        p = self.pan(mono, cues).clamp(1e-4, 1 - 1e-4)  # (B, M, T)
        s = self.audio.norm_std
        left = mono + torch.log(2 * p) / s  # (B, M, T)
        right = mono + torch.log(2 * (1 - p)) / s
        floor = (math.log(self.audio.log_floor) - self.audio.norm_mean) / s
        return torch.stack([left, right], dim=1).clamp_min(floor)  # (B, 2, M, T)

    def loss(self, mono: torch.Tensor, cues: torch.Tensor, left_lin: torch.Tensor, right_lin: torch.Tensor,
             mono_lin: torch.Tensor) -> torch.Tensor:
        """Energy-weighted squared error of the pan against p* = L / (L + R) (linear mel magnitudes)."""
        target = left_lin / (left_lin + right_lin).clamp_min(1e-6)  # (B, M, T)
        w = mono_lin / mono_lin.mean(dim=(1, 2), keepdim=True).clamp_min(1e-8)  # (B, M, T)
        return ((self.pan(mono, cues) - target) ** 2 * w).mean()

    def to_stereo_chunked(self, mono: torch.Tensor, cues: torch.Tensor, chunk_frames: int) -> torch.Tensor:
        T, rf = mono.shape[-1], self.receptive_field
        out = []
        for a in range(0, T, chunk_frames):
            b = min(T, a + chunk_frames)
            lo, hi = max(0, a - rf), min(T, b + rf)
            out.append(self(mono[..., lo:hi], cues[..., lo:hi])[..., a - lo:b - lo])
        return torch.cat(out, dim=-1)  # (B, 2, M, T)

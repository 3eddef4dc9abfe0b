"""Vocoders: mel -> waveform. Griffin-Lim (weight-free default) and a small Vocos-style network.

Both are local in time: output samples of mel frames [a, b) depend only on mel frames
[a - receptive_field, b + receptive_field), so long signals are synthesised in chunks that join
exactly (`synthesize_chunked`). Input: normalised log-mel (B, n_mels, T); output (B, T * hop).
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import AudioConfig, VocoderConfig
from .mel import MelSpectrogram


def _initial_phase(n_freqs: int, n_frames: int, frame_offset: int) -> torch.Tensor:
    """Deterministic pseudo-random phase (F, T) that depends only on (bin, absolute frame)."""
    f = torch.arange(n_freqs, dtype=torch.float64)[:, None]
    t = torch.arange(frame_offset, frame_offset + n_frames, dtype=torch.float64)[None, :]
    u = torch.frac(torch.sin(f * 12.9898 + t * 78.233) * 43758.5453)
    return (2 * math.pi * u).float()  # (F, T)


class GriffinLim(nn.Module):
    """Weight-free vocoder: pseudo-inverse mel -> magnitude, `iters` Griffin-Lim iterations."""

    def __init__(self, audio: AudioConfig, iters: int = 32):
        super().__init__()
        self.audio, self.iters = audio, iters
        self.mel = MelSpectrogram(audio)
        self.hop = audio.hop

    @property
    def receptive_field(self) -> int:
        """Mel frames of context needed on each side for chunked synthesis to equal whole synthesis."""
        span = self.audio.n_fft // self.audio.hop
        return self.iters * span + span

    def forward(self, norm_log_mel: torch.Tensor, frame_offset: int = 0) -> torch.Tensor:
        cfg, win = self.audio, self.mel.window
        mag = self.mel.to_magnitude(norm_log_mel)  # (B, F, T)
        T = mag.shape[-1]
        n = T * cfg.hop
        phase = _initial_phase(mag.shape[1], T, frame_offset).to(mag.device)  # (F, T)
        spec = torch.polar(mag, phase.expand_as(mag))  # (B, F, T)
        for _ in range(self.iters):
            wave = torch.istft(spec, cfg.n_fft, cfg.hop, window=win, center=True, length=n)  # (B, n)
            est = torch.stft(wave, cfg.n_fft, cfg.hop, window=win, center=True, return_complex=True)[..., :T]
            spec = mag * est / est.abs().clamp_min(1e-8)  # (B, F, T)
        return torch.istft(spec, cfg.n_fft, cfg.hop, window=win, center=True, length=n)  # (B, n)


class ConvNeXtBlock(nn.Module):
    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.dw = nn.Conv1d(dim, dim, kernel, padding=kernel // 2, groups=dim)
        self.norm = nn.LayerNorm(dim)  # per frame: no statistics across time
        self.pw1, self.pw2 = nn.Linear(dim, 3 * dim), nn.Linear(3 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T)
        h = self.dw(x).transpose(1, 2)  # (B, T, D)
        h = self.pw2(F.gelu(self.pw1(self.norm(h))))  # (B, T, D)
        return x + h.transpose(1, 2)  # (B, D, T)


class NeuralVocoder(nn.Module):
    """Vocos-style: ConvNeXt over mel frames -> log-magnitude and phase per STFT bin -> iSTFT."""

    def __init__(self, audio: AudioConfig, cfg: VocoderConfig):
        super().__init__()
        self.audio, self.cfg, self.hop = audio, cfg, audio.hop
        self.inp = nn.Conv1d(audio.n_mels, cfg.hidden, cfg.kernel, padding=cfg.kernel // 2)
        self.blocks = nn.Sequential(*[ConvNeXtBlock(cfg.hidden, cfg.kernel) for _ in range(cfg.blocks)])
        self.out = nn.Conv1d(cfg.hidden, 3 * audio.n_freqs, 1)
        self.register_buffer("window", torch.hann_window(audio.n_fft), persistent=False)

    @property
    def receptive_field(self) -> int:
        return (self.cfg.kernel // 2) * (1 + self.cfg.blocks) + self.audio.n_fft // self.audio.hop

    def forward(self, norm_log_mel: torch.Tensor, frame_offset: int = 0) -> torch.Tensor:
        T = norm_log_mel.shape[-1]
        h = self.blocks(self.inp(norm_log_mel))  # (B, H, T)
        logmag, c, s = self.out(h).chunk(3, dim=1)  # (B, F, T) each
        mag = torch.exp(logmag.clamp(max=8.0))  # (B, F, T)
        spec = torch.complex(mag * torch.cos(torch.atan2(s, c)), mag * torch.sin(torch.atan2(s, c)))  # (B, F, T)
        return torch.istft(spec, self.audio.n_fft, self.hop, window=self.window, center=True,
                           length=T * self.hop)  # (B, n)


def synthesize_chunked(vocoder: nn.Module, norm_log_mel: torch.Tensor, chunk_frames: int) -> torch.Tensor:
    """Synthesize (B, M, T) mel in chunks of `chunk_frames` with `receptive_field` context; equals whole."""
    T, hop, rf = norm_log_mel.shape[-1], vocoder.hop, vocoder.receptive_field
    out = []
    for a in range(0, T, chunk_frames):
        b = min(T, a + chunk_frames)
        lo, hi = max(0, a - rf), min(T, b + rf)
        wave = vocoder(norm_log_mel[..., lo:hi], frame_offset=lo)  # (B, (hi - lo) * hop)
        out.append(wave[..., (a - lo) * hop:(b - lo) * hop])
    return torch.cat(out, dim=-1)  # (B, T * hop)

"""Condition encoders: frames -> per-frame sync features and 8 fps semantic tokens; caption -> tokens.

`tiny`: a 3-layer CNN over 32x32 frames (each frame and its difference from the previous one), and a
hashed-word text encoder, trained jointly with the DiT. `pretrained` (kling): adapters (projections)
over features of CLIP/SigLIP-, Synchformer- and T5/CLAP-class encoders, computed elsewhere or by a
local TorchScript module (`load_feature_source`); nothing is downloaded.

Time: frame k of a window's frames is at `frames_start_s + k / fps`. Everything is resampled BY TIME
(`resample_by_time`) to the times the model needs (latent frames, 8 fps tokens, mel frames), so a
window starting at any absolute latent frame sees its picture at the true timestamps.
"""
from __future__ import annotations

import os
import re
import zlib
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import EncoderConfig
from .errors import CheckpointError


def frames_to_float(frames: torch.Tensor, size: int) -> torch.Tensor:
    """RGB frames (B, T, H, W, 3) uint8 (or float in [0, 1]) at any size -> (B, T, 3, size, size) in [0, 1]."""
    assert frames.dim() == 5 and frames.shape[-1] == 3, f"{frames.shape=} (want (B, T, H, W, 3))"
    B, T, H, W, _ = frames.shape
    x = frames.float() / 255.0 if frames.dtype == torch.uint8 else frames.float()
    x = x.reshape(B * T, H, W, 3).permute(0, 3, 1, 2)  # (BT, 3, H, W)
    if (H, W) != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")  # (BT, 3, S, S)
    return x.reshape(B, T, 3, size, size)


def resample_by_time(feats: torch.Tensor, src_start_s: torch.Tensor, src_fps: float,
                     times_s: torch.Tensor) -> torch.Tensor:
    """Linear interpolation of (B, T, D) features with sample k at src_start_s + k / src_fps at times (B, N).

    Times outside the source range take the nearest end frame.
    """
    B, T, D = feats.shape
    u = ((times_s - src_start_s[:, None]) * src_fps).clamp(0, T - 1)  # (B, N) fractional index
    i0 = u.floor().long().clamp(0, T - 1)  # (B, N)
    i1 = (i0 + 1).clamp(max=T - 1)
    w = (u - i0.float()).unsqueeze(-1)  # (B, N, 1)
    g0 = feats.gather(1, i0.unsqueeze(-1).expand(B, -1, D))  # (B, N, D)
    g1 = feats.gather(1, i1.unsqueeze(-1).expand(B, -1, D))
    return g0 * (1 - w) + g1 * w  # (B, N, D)


class FrameCNN(nn.Module):
    """Per-frame features of each frame and its difference from the previous frame: (B, T, 3, S, S) -> (B, T, out)."""

    def __init__(self, cfg: EncoderConfig, out_dim: int):
        super().__init__()
        chans = (6,) + tuple(cfg.cnn_channels)
        self.convs = nn.ModuleList(nn.Conv2d(a, b, 3, stride=2, padding=1) for a, b in zip(chans[:-1], chans[1:]))
        side = cfg.frame_size // 2 ** len(cfg.cnn_channels)
        self.columns = side
        self.proj = nn.Linear(chans[-1] * side, out_dim)  # columns kept (horizontal position)
        self.proj_rows = nn.Linear(chans[-1] * side, out_dim)  # rows kept (vertical position: bounces)
        # temporal context over neighbouring frames (motion reversals, switching), +-4 frames
        self.temporal = nn.Sequential(nn.Conv1d(out_dim, out_dim, 5, padding=2), nn.SiLU(),
                                      nn.Conv1d(out_dim, out_dim, 5, padding=2))
        nn.init.zeros_(self.temporal[2].weight), nn.init.zeros_(self.temporal[2].bias)

    #: frames of context the features of one frame depend on, before and after it
    frame_context = 5

    def forward(self, x: torch.Tensor, before: torch.Tensor | None = None) -> torch.Tensor:
        """before: (B, T, 3, S, S) the picture 1/24 s before each frame (`foley_model.motion`); None: the
        previous frame (the first frame: itself)."""
        B, T = x.shape[:2]
        if before is None:
            diff = torch.cat([torch.zeros_like(x[:, :1]), x[:, 1:] - x[:, :-1]], dim=1)  # (B, T, 3, S, S)
        else:
            assert before.shape == x.shape, f"{before.shape=} {x.shape=}"
            diff = x - before  # (B, T, 3, S, S)
        h = torch.cat([x, diff * 4.0], dim=2).flatten(0, 1)  # (BT, 6, S, S)
        for conv in self.convs:
            h = F.silu(conv(h))  # (BT, C, S', S')
        f = self.proj(h.mean(dim=2).flatten(1)) + self.proj_rows(h.mean(dim=3).flatten(1))  # (BT, out)
        f = f.reshape(B, T, -1)  # (B, T, out)
        return f + self.temporal(f.transpose(1, 2)).transpose(1, 2)  # (B, T, out)


def hash_words(caption: str, vocab: int, max_tokens: int) -> list[int]:
    """Stable word ids in [1, vocab) (crc32 of the lower-cased word); 0 is padding."""
    words = re.findall(r"[a-z0-9']+", caption.lower())[:max_tokens]
    return [1 + zlib.crc32(w.encode()) % (vocab - 1) for w in words]


class HashedTextEncoder(nn.Module):
    """Hashed words -> embeddings + positions -> one self-attention layer. Empty caption -> learned empty token."""

    def __init__(self, cfg: EncoderConfig, dim: int):
        super().__init__()
        self.cfg = cfg
        self.embed = nn.Embedding(cfg.text_vocab, dim)
        self.pos = nn.Parameter(torch.zeros(cfg.max_text_tokens, dim))
        self.layer = nn.TransformerEncoderLayer(dim, 4, 2 * dim, dropout=0.0, batch_first=True, norm_first=True)
        self.empty = nn.Parameter(torch.randn(dim) * 0.02)

    def forward(self, captions: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """-> tokens (B, L, D) and mask (B, L) (True = real); at least one token per caption."""
        ids = [hash_words(c, self.cfg.text_vocab, self.cfg.max_text_tokens) for c in captions]
        L = max(1, max(len(i) for i in ids))
        dev = self.pos.device
        tok = torch.zeros(len(ids), L, dtype=torch.long, device=dev)
        mask = torch.zeros(len(ids), L, dtype=torch.bool, device=dev)
        for b, i in enumerate(ids):
            tok[b, :len(i)] = torch.tensor(i, dtype=torch.long)
            mask[b, :max(1, len(i))] = True
        h = self.embed(tok) + self.pos[:L]  # (B, L, D)
        h = self.layer(h, src_key_padding_mask=~mask)  # (B, L, D)
        empty = torch.tensor([len(i) == 0 for i in ids], device=dev)
        h[:, 0] = torch.where(empty[:, None], self.empty.expand(len(ids), -1), h[:, 0])
        return h, mask


class FeatureAdapter(nn.Module):
    """Projection from a pretrained feature dim to the model width (the part of a pretrained path we train)."""

    def __init__(self, in_dim: int, out_dim: int):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim), nn.SiLU(), nn.Linear(out_dim, out_dim))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        return self.net(feats)  # (B, T, out)


def load_feature_source(path: str | os.PathLike):
    """A local pretrained feature source: a TorchScript module (.pt/.ts) -> the module; a .safetensors
    file or a directory of them -> dict name -> tensor of precomputed features. Never downloads."""
    p = Path(path)
    if not p.exists():
        raise CheckpointError(f"pretrained feature source {str(p)!r} does not exist (nothing is downloaded)")
    if p.is_dir():
        from safetensors.torch import load_file
        out = {}
        for f in sorted(p.glob("*.safetensors")):
            out.update({f"{f.stem}/{k}": v for k, v in load_file(str(f)).items()})
        if not out:
            raise CheckpointError(f"no .safetensors feature files in {str(p)!r}")
        return out
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file
        return load_file(str(p))
    try:
        return torch.jit.load(str(p), map_location="cpu").eval()
    except Exception as exc:  # noqa: BLE001 - any load failure is a bad checkpoint path
        raise CheckpointError(f"cannot load TorchScript feature extractor {str(p)!r}: {exc}") from exc


def position_cues(frames01: torch.Tensor, columns: int) -> torch.Tensor:
    """Visual position cues per frame (B, T, 2 * columns): horizontal profile of frame change and of
    brightness relative to the frame mean. Input (B, T, 3, S, S) in [0, 1]."""
    gray = frames01.mean(dim=2)  # (B, T, S, S)
    diff = torch.cat([torch.zeros_like(gray[:, :1]), (gray[:, 1:] - gray[:, :-1]).abs()], dim=1)  # (B, T, S, S)
    motion = F.adaptive_avg_pool1d(diff.mean(dim=2).flatten(0, 1)[:, None], columns)  # (BT, 1, cols)
    bright = gray.mean(dim=2) - gray.mean(dim=(2, 3))[..., None]  # (B, T, S)
    bright = F.adaptive_avg_pool1d(bright.flatten(0, 1)[:, None], columns)  # (BT, 1, cols)
    B, T = gray.shape[:2]
    cues = torch.cat([torch.log1p(50.0 * motion), 4.0 * bright], dim=1)  # (BT, 2, cols)
    return cues.reshape(B, T, 2 * columns)

"""MMDiT velocity network: joint blocks (audio, visual, text in ONE attention; per-stream weights),
then audio-only blocks. Aligned RoPE: every stream's positions are in latent frames of one time axis
(seconds x latent rate), so a visual token at 8 fps and an audio latent at the same instant share a
position; text tokens get no rotation. Sync features (already resampled by time to the latent frames)
are added to each audio token's adaLN condition. Padding is handled by key masks only, so padding
never changes a real token's result.

`MMDiT.forward(x, t, ...)` IS the velocity function (conditions prepared once per window), which is
what a DeepSpeed inference engine / CUDA graph wraps on GPU workers. It computes in the dtype of
its weights (fp32, or bf16/fp16 on GPU workers) and takes and returns float32 tensors, so the
sampler integrates in fp32 whatever the network runs in; positions and RoPE angles stay fp32.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import DiTConfig


def sinusoidal(x: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """(B,) values -> (B, dim) sin/cos features."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, device=x.device, dtype=torch.float32) / half)
    ang = x.float()[:, None] * freqs[None]  # (B, half)
    return torch.cat([torch.cos(ang), torch.sin(ang)], dim=-1)  # (B, dim)


def rope_angles(pos: torch.Tensor, head_dim: int, base: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Positions (B, L) in latent frames -> cos, sin (B, 1, L, head_dim // 2)."""
    inv = base ** (-torch.arange(0, head_dim, 2, device=pos.device, dtype=torch.float32) / head_dim)  # (hd/2,)
    ang = pos.float()[:, None, :, None] * inv  # (B, 1, L, hd/2)
    return torch.cos(ang), torch.sin(ang)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    x1, x2 = x[..., 0::2], x[..., 1::2]  # (B, H, L, hd/2)
    out = torch.stack([x1 * cos - x2 * sin, x1 * sin + x2 * cos], dim=-1).flatten(-2)  # (B, H, L, hd), fp32 angles
    return out.to(x.dtype)  # back to the network dtype (a no-op in fp32)


class Mlp(nn.Module):
    def __init__(self, dim: int, ratio: float):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, int(dim * ratio)), nn.Linear(int(dim * ratio), dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(F.gelu(self.fc1(x), approximate="tanh"))


class StreamLayer(nn.Module):
    """One stream's weights in a block: adaLN (6 modulations), QKV with QK-RMSNorm, output, MLP."""

    def __init__(self, cfg: DiTConfig):
        super().__init__()
        D = cfg.width
        self.heads, self.head_dim = cfg.heads, cfg.head_dim
        self.ada = nn.Linear(D, 6 * D)
        nn.init.zeros_(self.ada.weight), nn.init.zeros_(self.ada.bias)
        self.norm1 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.norm2 = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.qkv, self.out = nn.Linear(D, 3 * D), nn.Linear(D, D)
        self.q_norm, self.k_norm = nn.RMSNorm(cfg.head_dim, eps=1e-6), nn.RMSNorm(cfg.head_dim, eps=1e-6)
        self.mlp = Mlp(D, cfg.mlp_ratio)

    def pre_attention(self, x: torch.Tensor, c: torch.Tensor, rope):
        """x (B, L, D), c (B, L or 1, D) -> q, k, v (B, H, L, hd) and the modulations."""
        mod = self.ada(F.silu(c)).chunk(6, dim=-1)  # 6 x (B, L|1, D)
        h = self.norm1(x) * (1 + mod[1]) + mod[0]  # (B, L, D)
        B, L, _ = x.shape
        q, k, v = self.qkv(h).reshape(B, L, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)  # (B, H, L, hd)
        q, k = self.q_norm(q), self.k_norm(k)
        if rope is not None:
            q, k = apply_rope(q, *rope), apply_rope(k, *rope)
        return q, k, v, mod

    def post_attention(self, x: torch.Tensor, attn: torch.Tensor, mod) -> torch.Tensor:
        """attn (B, H, L, hd) -> updated x (B, L, D)."""
        B, H, L, hd = attn.shape
        x = x + mod[2] * self.out(attn.transpose(1, 2).reshape(B, L, H * hd))  # (B, L, D)
        return x + mod[5] * self.mlp(self.norm2(x) * (1 + mod[4]) + mod[3])  # (B, L, D)


class JointBlock(nn.Module):
    """Streams attend jointly (one attention over the concatenation), each with its own weights."""

    def __init__(self, cfg: DiTConfig, n_streams: int):
        super().__init__()
        self.streams = nn.ModuleList(StreamLayer(cfg) for _ in range(n_streams))

    def forward(self, xs: list[torch.Tensor], cs: list[torch.Tensor], ropes: list, key_mask: torch.Tensor):
        parts = [s.pre_attention(x, c, r) for s, x, c, r in zip(self.streams, xs, cs, ropes)]
        q, k, v = (torch.cat([p[i] for p in parts], dim=2) for i in range(3))  # (B, H, sum L, hd)
        attn = F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask[:, None, None, :])  # (B, H, sum L, hd)
        out, start = [], 0
        for s, x, p in zip(self.streams, xs, parts):
            out.append(s.post_attention(x, attn[:, :, start:start + x.shape[1]], p[3]))
            start += x.shape[1]
        return out


class MMDiT(nn.Module):
    """Velocity of audio latents given prepared conditions (all tensors, see `FoleyModel.prepare_conditions`)."""

    def __init__(self, cfg: DiTConfig, latent_channels: int):
        super().__init__()
        self.cfg = cfg
        D = cfg.width
        self.x_in = nn.Linear(latent_channels, D)
        self.sync_tok = nn.Linear(D, D)  # sync features also added to the audio tokens (direct path)
        self.t_embed = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.joint = nn.ModuleList(JointBlock(cfg, 3) for _ in range(cfg.joint_blocks))
        self.audio = nn.ModuleList(JointBlock(cfg, 1) for _ in range(cfg.audio_blocks))
        self.final_norm = nn.LayerNorm(D, elementwise_affine=False, eps=1e-6)
        self.final_ada = nn.Linear(D, 2 * D)
        self.final = nn.Linear(D, latent_channels)
        for m in (self.final_ada, self.final):
            nn.init.zeros_(m.weight), nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, latent_mask: torch.Tensor, sync: torch.Tensor,
                visual: torch.Tensor, visual_mask: torch.Tensor, visual_pos: torch.Tensor,
                text: torch.Tensor, text_mask: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """x (B, T, C) noisy latents at flow time t (B,) -> velocity (B, T, C).

        latent_mask (B, T) bool; sync (B, T, D); visual (B, Lv, D) with mask (B, Lv) and positions
        (B, Lv) in latent frames from the window start; text (B, Lt, D) with mask (B, Lt);
        global_cond (B, D) (pooled text + pooled visual + duration/offset embedding).
        """
        B, T, _ = x.shape
        assert sync.shape[:2] == (B, T), f"{sync.shape=} {x.shape=}"
        out_dtype, dt = x.dtype, self.x_in.weight.dtype  # inputs/output dtype, network dtype (no-ops when equal)
        x, sync, visual, text, global_cond = (z.to(dt) for z in (x, sync, visual, text, global_cond))
        a = self.x_in(x) + self.sync_tok(sync)  # (B, T, D)
        c = global_cond + self.t_embed(sinusoidal(t * 1000.0, 256).to(dt))  # (B, D)
        c_audio = c[:, None] + sync  # (B, T, D)
        c_other = c[:, None]  # (B, 1, D)
        hd, base = self.cfg.head_dim, self.cfg.rope_base
        audio_pos = torch.arange(T, device=x.device, dtype=torch.float32).expand(B, T)  # (B, T)
        rope_a, rope_v = rope_angles(audio_pos, hd, base), rope_angles(visual_pos, hd, base)
        mask_all = torch.cat([latent_mask, visual_mask, text_mask], dim=1)  # (B, T + Lv + Lt)
        v, s = visual, text
        for blk in self.joint:
            a, v, s = blk([a, v, s], [c_audio, c_other, c_other], [rope_a, rope_v, None], mask_all)  # (B, *, D)
        for blk in self.audio:
            (a,) = blk([a], [c_audio], [rope_a], latent_mask)  # (B, T, D)
        shift, scale = self.final_ada(F.silu(c_audio)).chunk(2, dim=-1)  # (B, T, D) each
        return self.final(self.final_norm(a) * (1 + scale) + shift).to(out_dtype)  # (B, T, C)

"""Mel-VAE: 1-D convolutions over normalised log-mel frames, 2x time compression, KL-regularised.

Only non-causal convolutions with a finite receptive field and per-frame norms (no statistics across
time), so a long latent sequence can be decoded in chunks that join exactly (`decode_chunked`).
Latents are standardised with per-channel statistics measured after training (`latent_mean/std`),
so flow matching sees unit-scale data.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import AudioConfig, VAEConfig


class FrameNorm(nn.Module):
    """LayerNorm over channels of each frame (B, C, T): no statistics across time."""

    def __init__(self, dim: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.transpose(1, 2)).transpose(1, 2)


class ResBlock(nn.Module):
    def __init__(self, dim: int, kernel: int):
        super().__init__()
        self.n1, self.c1 = FrameNorm(dim), nn.Conv1d(dim, dim, kernel, padding=kernel // 2)
        self.n2, self.c2 = FrameNorm(dim), nn.Conv1d(dim, dim, kernel, padding=kernel // 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, D, T)
        h = self.c1(F.silu(self.n1(x)))  # (B, D, T)
        return x + self.c2(F.silu(self.n2(h)))  # (B, D, T)


class MelVAE(nn.Module):
    def __init__(self, audio: AudioConfig, cfg: VAEConfig):
        super().__init__()
        assert cfg.time_compression == 2, f"{cfg.time_compression=} (only 2x is implemented)"
        assert cfg.kernel % 2 == 1, f"{cfg.kernel=}"
        self.audio, self.cfg = audio, cfg
        D, k, C = cfg.hidden, cfg.kernel, cfg.latent_channels
        self.enc_in = nn.Conv1d(audio.n_mels, D, k, padding=k // 2)
        self.enc_hi = nn.Sequential(*[ResBlock(D, k) for _ in range(cfg.res_blocks)])
        self.down = nn.Conv1d(D, D, 4, stride=2, padding=1)
        self.enc_lo = nn.Sequential(*[ResBlock(D, k) for _ in range(cfg.res_blocks)])
        self.enc_out = nn.Conv1d(D, 2 * C, k, padding=k // 2)
        self.dec_in = nn.Conv1d(C, D, k, padding=k // 2)
        self.dec_lo = nn.Sequential(*[ResBlock(D, k) for _ in range(cfg.res_blocks)])
        self.up = nn.Conv1d(D, D, k, padding=k // 2)  # after nearest 2x upsampling
        self.dec_hi = nn.Sequential(*[ResBlock(D, k) for _ in range(cfg.res_blocks)])
        self.dec_out = nn.Conv1d(D, audio.n_mels, k, padding=k // 2)
        self.register_buffer("latent_mean", torch.zeros(C))
        self.register_buffer("latent_std", torch.ones(C))

    @property
    def receptive_field(self) -> int:
        """Latent frames of context each side so chunked decoding equals whole decoding."""
        r = self.cfg.kernel // 2
        lo = r * (1 + 2 * self.cfg.res_blocks)  # dec_in + dec_lo convs, at the latent rate
        hi = r * (2 + 2 * self.cfg.res_blocks)  # up + dec_hi + dec_out convs, at the mel rate
        return lo + (hi + 1) // 2 + 1

    def decoder_parameters(self) -> list[nn.Parameter]:
        """The decoder's weights (what `foley train --stage decoder` refines; the encoder stays fixed)."""
        return [p for mod in (self.dec_in, self.dec_lo, self.up, self.dec_hi, self.dec_out) for p in mod.parameters()]

    def encode(self, norm_log_mel: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, M, 2T) -> standardised posterior mean and log-variance, each (B, T, C)."""
        assert norm_log_mel.shape[-1] % 2 == 0, f"{norm_log_mel.shape=} (mel frames must be even)"
        h = self.enc_hi(self.enc_in(norm_log_mel))  # (B, D, 2T)
        h = self.enc_lo(self.down(F.silu(h)))  # (B, D, T)
        mean, logvar = self.enc_out(F.silu(h)).transpose(1, 2).chunk(2, dim=-1)  # (B, T, C) each
        return (mean - self.latent_mean) / self.latent_std, logvar.clamp(-20, 10)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Standardised latents (B, T, C) -> normalised log-mel (B, M, 2T)."""
        z = latents * self.latent_std + self.latent_mean  # (B, T, C)
        h = self.dec_lo(self.dec_in(z.transpose(1, 2)))  # (B, D, T)
        h = self.up(F.interpolate(F.silu(h), scale_factor=2, mode="nearest"))  # (B, D, 2T)
        return self.dec_out(F.silu(self.dec_hi(h)))  # (B, M, 2T)

    def decode_chunked(self, latents: torch.Tensor, chunk_frames: int) -> torch.Tensor:
        """Decode (B, T, C) in chunks of `chunk_frames` latent frames with context; equals `decode`."""
        T, rf, s = latents.shape[1], self.receptive_field, self.cfg.time_compression
        out = []
        for a in range(0, T, chunk_frames):
            b = min(T, a + chunk_frames)
            lo, hi = max(0, a - rf), min(T, b + rf)
            out.append(self.decode(latents[:, lo:hi])[..., (a - lo) * s:(b - lo) * s])
        return torch.cat(out, dim=-1)  # (B, M, 2T)

    def reconstruction_loss(self, rec: torch.Tensor, target: torch.Tensor,
                            sc_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
        """L1 + MSE + frame-difference L1 between a decoded and a target mel, each (B, M, T); and parts.

        sc_weight > 0 adds spectral convergence on the linear mel magnitude, ||S - S'||_F / ||S||_F per item.
        The log-domain terms weigh every bin alike, so a tone's one loud bin (a beep) counts for little
        against the quiet bins around it and decodes 20-30 dB too soft, its onset unheard (bench/RESULTS.md
        session 18); on the linear scale the loud bins dominate. Used by the decoder stage (TrainConfig)."""
        l1 = (rec - target).abs().mean()
        mse = ((rec - target) ** 2).mean()
        # frame-to-frame change: onsets are sharp rises that plain L1/MSE smear across the 2x compression
        flux = ((rec[..., 1:] - rec[..., :-1]) - (target[..., 1:] - target[..., :-1])).abs().mean()
        loss = l1 + mse + self.cfg.flux_weight * flux
        parts = {"l1": float(l1.detach()), "mse": float(mse.detach()), "flux": float(flux.detach())}
        if sc_weight > 0:
            a = self.audio
            mag, mag_rec = (torch.exp(x * a.norm_std + a.norm_mean).flatten(1) for x in (target, rec))
            sc = ((mag - mag_rec).norm(dim=1) / mag.norm(dim=1).clamp_min(1e-8)).mean()
            loss = loss + sc_weight * sc
            parts["sc"] = float(sc.detach())
        return loss, parts

    def loss(self, norm_log_mel: torch.Tensor, disc: "MelDiscriminator | None" = None,
             sc_weight: float = 0.0) -> tuple[torch.Tensor, dict]:
        """Reconstruction (L1 + MSE + frame-difference L1) + KL on raw (unstandardised) posterior, plus the
        adversarial and feature-matching terms when a discriminator is given; returns loss and parts
        (parts["reconstruction"] is the decoded mel, for the discriminator's own step)."""
        mean, logvar = self.encode(norm_log_mel)  # (B, T, C)
        z = mean + torch.randn_like(mean) * torch.exp(0.5 * logvar)
        rec = self.decode(z)  # (B, M, 2T)
        loss, parts = self.reconstruction_loss(rec, norm_log_mel, sc_weight)
        raw_mean = mean * self.latent_std + self.latent_mean
        kl = 0.5 * (raw_mean ** 2 + logvar.exp() - 1 - logvar).mean()
        loss = loss + self.cfg.kl_weight * kl
        parts["kl"] = float(kl.detach())
        if disc is not None:
            adv, fm = generator_adv_loss(disc, norm_log_mel, rec)
            loss = loss + self.cfg.adv_weight * adv + self.cfg.adv_feature_weight * fm
            parts.update(adv=float(adv.detach()), fm=float(fm.detach()))
        parts["reconstruction"] = rec
        return loss, parts


class MelDiscriminator(nn.Module):
    """Patch discriminator over normalised log-mel (B, M, T): 2-D convs over (mel bin, frame), so it
    judges local texture and transients, the detail an L1/MSE reconstruction smears. Hinge losses."""

    def __init__(self, n_mels: int, channels: tuple[int, ...] = (32, 64, 128)):
        super().__init__()
        chans = (1,) + tuple(channels)
        self.convs = nn.ModuleList(
            nn.utils.parametrizations.spectral_norm(nn.Conv2d(a, b, (3, 5), stride=(2, 1), padding=(1, 2)))
            for a, b in zip(chans[:-1], chans[1:]))
        self.out = nn.Conv2d(chans[-1], 1, 3, padding=1)

    def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """-> patch logits (B, 1, M', T) and the intermediate feature maps (for feature matching)."""
        h, feats = mel.unsqueeze(1), []  # (B, 1, M, T)
        for conv in self.convs:
            h = F.leaky_relu(conv(h), 0.2)  # (B, C, M / 2^k, T)
            feats.append(h)
        return self.out(h), feats


def discriminator_loss(disc: MelDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """Hinge loss for the discriminator (fake is detached)."""
    real_logits, _ = disc(real)
    fake_logits, _ = disc(fake.detach())
    return F.relu(1 - real_logits).mean() + F.relu(1 + fake_logits).mean()


def generator_adv_loss(disc: MelDiscriminator, real: torch.Tensor, fake: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The generator's hinge loss and the L1 feature-matching loss against the real mel's features."""
    fake_logits, fake_feats = disc(fake)
    with torch.no_grad():
        _, real_feats = disc(real)
    fm = sum((a - b).abs().mean() for a, b in zip(fake_feats, real_feats)) / len(fake_feats)
    return -fake_logits.mean(), fm

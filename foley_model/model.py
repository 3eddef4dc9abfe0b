"""FoleyModel: encoders + MMDiT + Mel-VAE + Mono2Stereo + vocoders, with the per-window inference API.

Render one window (B windows of possibly different lengths are padded into one batch):

    cond = model.prepare_conditions(frames, captions, start_s, duration_s, frames_start_s)
    lat = model.sample_latents(cond, noise)              # noise (B, T_lat, C) from the timeline
                                                          # (bind=engine.bind: DeepSpeed / compiled network)
    mono = model.decode_mel(lat)                          # (B, M, 2 T_lat); chunkable
    stereo = model.to_stereo(mono, cond.cues)             # (B, 2, M, 2 T_lat); chunkable
    wave = model.vocode(stereo)                           # (B, 2, 2 T_lat * hop); chunkable
"""
from __future__ import annotations

import math
from dataclasses import dataclass, fields, replace
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import CHOICES, ModelConfig
from .encoders import (FeatureAdapter, FrameCNN, HashedTextEncoder, frames_to_float, position_cues,
                       resample_by_time)
from .evaluation.onsets import detect_onsets
from .flow_matching import FlowMatching, Observer, Velocity
from .judge import PictureOnsetJudge, choose, peak_frames, plan_segments, segment_weights
from .mel import MelSpectrogram
from .mmdit import MMDiT, sinusoidal
from .shots import shot_starts
from .stereo import Mono2Stereo
from .vae import MelVAE
from .vocoder import GriffinLim, NeuralVocoder, synthesize_chunked


@dataclass
class Conditions:
    """Everything the velocity function needs for a batch of windows, computed once per window."""

    latent_mask: torch.Tensor  # (B, T) bool, True = real latent frame
    sync: torch.Tensor  # (B, T, D) sync features at the latent frames (added to adaLN)
    visual: torch.Tensor  # (B, Lv, D) semantic tokens at 8 fps
    visual_mask: torch.Tensor  # (B, Lv) bool
    visual_pos: torch.Tensor  # (B, Lv) positions in latent frames from the window start
    text: torch.Tensor  # (B, Lt, D)
    text_mask: torch.Tensor  # (B, Lt) bool
    pooled_visual: torch.Tensor  # (B, D)
    pooled_text: torch.Tensor  # (B, D)
    duration: torch.Tensor  # (B, D) embedding of (window duration, window start offset)
    cues: torch.Tensor  # (B, 2 * cols, 2T) stereo position cues at the mel frames
    onset_prob: torch.Tensor | None = None  # (B, 2T) the picture onset judge's probability per mel frame
    cue: torch.Tensor | None = None  # (B, T, D) the judge's onset cue, added to the sync path (`judge.cue`)

    def dit_args(self) -> tuple[torch.Tensor, ...]:
        glob = self.pooled_visual + self.pooled_text + self.duration  # (B, D)
        sync = self.sync if self.cue is None else self.sync + self.cue
        return (self.latent_mask, sync, self.visual, self.visual_mask, self.visual_pos,
                self.text, self.text_mask, glob)

    @property
    def batch(self) -> int:
        return self.latent_mask.shape[0]


def _pad_to(x: torch.Tensor, length: int, dim: int = 1) -> torch.Tensor:
    if x.shape[dim] == length:
        return x
    pad = [0, 0] * (x.dim() - dim - 1) + [0, length - x.shape[dim]]
    return F.pad(x, pad)


def cat_conditions(a: Conditions, b: Conditions) -> Conditions:
    """Concatenate two condition batches along the batch (text padded to a common length)."""
    lt = max(a.text.shape[1], b.text.shape[1])
    out = {}
    for f in fields(Conditions):
        xa, xb = getattr(a, f.name), getattr(b, f.name)
        if xa is None or xb is None:
            out[f.name] = None
            continue
        if f.name in ("text", "text_mask"):
            xa, xb = _pad_to(xa, lt), _pad_to(xb, lt)
        out[f.name] = torch.cat([xa, xb])
    return Conditions(**out)


def _as_tensor(x, batch: int, device) -> torch.Tensor:
    t = torch.as_tensor(x, dtype=torch.float64, device=device).reshape(-1)
    return t.expand(batch).clone() if t.numel() == 1 else t


class FoleyModel(nn.Module):
    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        D, enc = cfg.dit.width, cfg.encoders
        self.mel = MelSpectrogram(cfg.audio)
        self.vae = MelVAE(cfg.audio, cfg.vae)
        if enc.kind == "tiny":
            self.frame_encoder = FrameCNN(enc, D)
            self.sync_in, self.visual_in = nn.Linear(D, D), nn.Linear(D, D)
            self.text_encoder = HashedTextEncoder(enc, D)
            self.text_in = nn.Identity()
        elif enc.kind == "pretrained":
            self.sync_in = FeatureAdapter(enc.sync_dim, D)
            self.visual_in = FeatureAdapter(enc.semantic_dim, D)
            self.text_in = FeatureAdapter(enc.text_dim, D)
        else:
            raise ValueError(f"unknown encoder kind {enc.kind!r}")
        self.pool_visual, self.pool_text = nn.Linear(D, D), nn.Linear(D, D)
        self.duration_embed = nn.Sequential(nn.Linear(256, D), nn.SiLU(), nn.Linear(D, D))
        self.empty_sync = nn.Parameter(torch.zeros(D))
        self.empty_visual = nn.Parameter(torch.randn(D) * 0.02)
        self.empty_pooled_visual = nn.Parameter(torch.zeros(D))
        self.empty_text = nn.Parameter(torch.randn(D) * 0.02)  # pretrained text path; tiny has its own
        self.dit = MMDiT(cfg.dit, cfg.vae.latent_channels)
        self.stereo = Mono2Stereo(cfg.audio, cfg.stereo)
        self.neural_vocoder = NeuralVocoder(cfg.audio, cfg.vocoder)
        self.griffin_lim = GriffinLim(cfg.audio, cfg.vocoder.gl_iters)
        self.judge = PictureOnsetJudge(cfg.judge, D) if cfg.judge.hidden > 0 and enc.kind == "tiny" else None
        # the judge's probability at a latent frame's two mel frames -> a sync-path cue (last layer zero: a model
        # that has not learned the cue yet samples exactly as without it)
        self.cue_in = None
        if self.judge is not None and cfg.judge.cue:
            self.cue_in = nn.Sequential(nn.Linear(cfg.vae.time_compression, D), nn.SiLU(), nn.Linear(D, D))
            nn.init.zeros_(self.cue_in[2].weight), nn.init.zeros_(self.cue_in[2].bias)
        self.sampler = FlowMatching(cfg.sampling.steps, cfg.sampling.method)

    @property
    def device(self) -> torch.device:
        return self.empty_sync.device

    @property
    def frame_context(self) -> int:
        """Video frames (at 24 fps) a window's frames must reach beyond it on each side: the frame encoder's
        context, plus the judge's receptive field when its cue conditions the DiT (0: pretrained features)."""
        if self.cfg.encoders.kind != "tiny":
            return 0
        ctx = FrameCNN.frame_context
        if self.cue_in is not None:
            ctx += math.ceil(self.judge.context / self.cfg.audio.mel_rate_hz * self.cfg.encoders.sync_fps)
        return ctx

    # ---------------------------------------------------------------- conditions
    def encode_text(self, captions: Sequence[str], text_feats: torch.Tensor | None = None,
                    text_feats_mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """-> tokens (B, Lt, D), mask (B, Lt). Tiny: hashed words; pretrained: adapter over given features."""
        if self.cfg.encoders.kind == "tiny":
            return self.text_encoder(list(captions))
        B = len(captions)
        if text_feats is None:  # no caption features: the learned empty text condition
            return self.empty_text.expand(B, 1, -1), torch.ones(B, 1, dtype=torch.bool, device=self.device)
        mask = text_feats_mask if text_feats_mask is not None else torch.ones(text_feats.shape[:2], dtype=torch.bool,
                                                                                device=self.device)
        return self.text_in(text_feats), mask

    def encode_frames(self, x: torch.Tensor, shot_starts: Sequence[Sequence[int]] | None = None,
                      frames_valid: Sequence[int] | None = None, before: torch.Tensor | None = None) -> torch.Tensor:
        """Frame features (B, Tf, D) of the resized frames x (B, Tf, 3, S, S) in [0, 1], at 24 fps.

        With `encoders.shot_split`, an item whose frames cut to a new shot (`frame_cuts`) is encoded
        one shot at a time, each shot's edge frame held for `FrameCNN.frame_context` frames beyond
        it: frame differences and the temporal convolutions never look across a cut, so a cut does
        not look like a sudden motion (which the network sounds as a knock). Items without a cut
        are encoded as one batch, exactly as without splitting. `shot_starts`: the cuts per item
        when the caller has them (they must be what `frame_cuts(x)` gives).

        frames_valid: per item, how many leading frames are real pictures (the rest stand past the video's
        end). An item with fewer than Tf is encoded from its real frames alone and its last real frame's
        features stand for the rest, as a training clip's end looks (features clamped past the frames),
        instead of a picture held still, which reads as a sudden stop. None: every frame is real.

        before: (B, Tf, 3, S, S) the picture each frame's motion is measured against, 1/24 s before its own
        source time (`foley_model.motion.pictures_before`); None: the previous frame. The first frame of a
        shot is measured against itself either way."""
        if frames_valid is not None:
            return self._clamp_past_end(x, shot_starts, frames_valid, before)
        feats = self.frame_encoder(x, before)  # (B, Tf, D)
        if not self.cfg.encoders.shot_split:
            return feats
        ctx = FrameCNN.frame_context
        found = frame_cuts(x, self.cfg.encoders.sync_fps) if shot_starts is None else shot_starts
        assert len(found) == x.shape[0], f"{len(found)} shot lists for {x.shape[0]} items"
        for b, starts in enumerate(found):
            if not starts:
                continue
            bounds = [0, *starts, x.shape[1]]
            parts = []
            for a, e in zip(bounds[:-1], bounds[1:]):
                seg = x[b:b + 1, a:e]
                held = torch.cat([seg[:, :1].expand(1, ctx, *seg.shape[2:]), seg,
                                  seg[:, -1:].expand(1, ctx, *seg.shape[2:])], dim=1)
                ref = None
                if before is not None:  # held copies and the shot's first frame: no motion
                    ref = torch.cat([seg[:, :1].expand(1, ctx + 1, *seg.shape[2:]), before[b:b + 1, a + 1:e],
                                     seg[:, -1:].expand(1, ctx, *seg.shape[2:])], dim=1)
                parts.append(self.frame_encoder(held, ref)[:, ctx:ctx + (e - a)])
            feats = torch.cat([feats[:b], torch.cat(parts, dim=1), feats[b + 1:]], dim=0)
        return feats

    def _clamp_past_end(self, x: torch.Tensor, shot_starts: Sequence[Sequence[int]] | None,
                        frames_valid: Sequence[int], before: torch.Tensor | None = None) -> torch.Tensor:
        """`encode_frames` with the items that have frames past the end re-encoded from their real frames."""
        B, Tf = x.shape[:2]
        assert len(frames_valid) == B and all(v >= 1 for v in frames_valid), f"{frames_valid=}"
        found = frame_cuts(x, self.cfg.encoders.sync_fps) if shot_starts is None else shot_starts
        feats = self.encode_frames(x, found, before=before)  # (B, Tf, D): items with every frame real keep these
        short = [b for b in range(B) if frames_valid[b] < Tf]
        if not short:
            return feats
        feats = feats.clone()
        for b in short:
            v = int(frames_valid[b])
            ref = None if before is None else before[b:b + 1, :v]
            real = self.encode_frames(x[b:b + 1, :v], [[c for c in found[b] if c < v]], before=ref)  # (1, v, D)
            feats[b, :v] = real[0]
            feats[b, v:] = real[0, -1]
        return feats

    def prepare_conditions(self, frames: torch.Tensor | None, captions: Sequence[str], start_s, duration_s,
                           frames_start_s=None, num_latent_frames: int | None = None,
                           sync_feats: torch.Tensor | None = None, semantic_feats: torch.Tensor | None = None,
                           text_feats: torch.Tensor | None = None, num_visual_tokens: int | None = None,
                           shot_starts: Sequence[Sequence[int]] | None = None, cue: bool = True,
                           frames_valid: Sequence[int] | None = None,
                           frames_before: torch.Tensor | None = None) -> Conditions:
        """Encode a batch of windows once.

        frames: (B, Tf, H, W, 3) RGB uint8 (or float in [0, 1]) at 24 fps, any size; frame k of item b
        is at ``frames_start_s[b] + k / 24`` (absolute seconds; default: start_s) and the frames must
        cover the window, starting at least `frame_encoder.frame_context` (5) frames before it and
        ending as many after it (frame differences and temporal convolutions look at neighbours). start_s / duration_s: (B,) window start (absolute, = start latent frame /
        latent rate) and length in seconds. Windows shorter than the batch's longest are padded:
        latent_mask marks the real frames. Pretrained variants take features instead of frames:
        sync_feats (B, Tf, sync_dim) at 24 fps, semantic_feats (B, Tf8, semantic_dim) at 8 fps, both
        starting at frames_start_s, and text_feats (B, Lt, text_dim). num_latent_frames / num_visual_tokens:
        pad to these lengths (a length bucket, so a batch has a fixed shape) instead of the longest window's.
        shot_starts: per item, the frames where a new shot starts, when the caller already knows them
        (as `frame_cuts` finds them; default: found here). cue False: no judge cue, and the judge does not run
        (the DiT stage withholds the cue from every item). frames_valid: per item, how many leading frames
        are real pictures, the rest standing past the video's end (`encode_frames`; default: all).
        frames_before: like frames, the picture 1/24 s before each frame's own source time, when the caller
        has the source's frames (`foley_model.motion.pictures_before`; default: the previous frame).
        """
        cfg, enc, dev = self.cfg, self.cfg.encoders, self.device
        B = len(captions)
        start = _as_tensor(start_s, B, dev)
        dur = _as_tensor(duration_s, B, dev)
        f0 = start if frames_start_s is None else _as_tensor(frames_start_s, B, dev)
        lat_n = torch.tensor([cfg.latent_frames(float(d)) for d in dur], device=dev)  # (B,)
        T = int(num_latent_frames or int(lat_n.max()))
        assert T >= int(lat_n.max()), f"{T=} < {lat_n.max()=}"
        rate = cfg.latent_rate_hz
        j = torch.arange(T, device=dev, dtype=torch.float64)
        latent_mask = j[None] < lat_n[:, None]  # (B, T)
        lat_times = start[:, None] + j[None] / rate  # (B, T) absolute seconds
        Lv_min = max(1, int(torch.ceil(dur.max() * enc.semantic_fps - 1e-6)))
        Lv = int(num_visual_tokens or Lv_min)
        assert Lv >= Lv_min, f"{Lv=} < {Lv_min=}"
        k = torch.arange(Lv, device=dev, dtype=torch.float64)
        tok_rel = (k + 0.5) / enc.semantic_fps  # (Lv,) token centres from the window start
        visual_mask = tok_rel[None] - 0.5 / enc.semantic_fps < dur[:, None]  # (B, Lv)
        mel_times = start[:, None] + torch.arange(2 * T, device=dev, dtype=torch.float64)[None] / cfg.audio.mel_rate_hz

        rel = lambda t: (t - f0[:, None]).float()  # noqa: E731 - times relative to the first frame
        zero = torch.zeros(B, device=dev)
        if enc.kind == "tiny":
            x = frames_to_float(frames.to(dev), enc.frame_size)  # (B, Tf, 3, S, S)
            ref = None if frames_before is None else frames_to_float(frames_before.to(dev), enc.frame_size)
            feats = self.encode_frames(x, shot_starts, frames_valid, ref)  # (B, Tf, D)
            sync = self.sync_in(resample_by_time(feats, zero, enc.sync_fps, rel(lat_times)))  # (B, T, D)
            offs = torch.tensor([-1.0, 0.0, 1.0], device=dev, dtype=torch.float64) / enc.sync_fps
            tok_t = start[:, None, None] + tok_rel[None, :, None] + offs  # (B, Lv, 3)
            sem = resample_by_time(feats, zero, enc.sync_fps, rel(tok_t.flatten(1)))  # (B, 3 Lv, D)
            visual = self.visual_in(sem.reshape(B, Lv, 3, -1).mean(2))  # (B, Lv, D)
            cues = resample_by_time(position_cues(x, cfg.stereo.cue_columns), zero, enc.sync_fps,
                                    rel(mel_times)).transpose(1, 2)  # (B, 2 cols, 2T)
            onset_prob = cue_feat = None
            if self.cue_in is not None and cue:
                onset_prob = self.picture_onsets(feats, start - f0, 2 * T)  # (B, 2T)
                cue_feat = self.cue_in(onset_prob.reshape(B, T, cfg.vae.time_compression))  # (B, T, D)
            elif self.cue_in is None and self.judge is not None and not self.training:  # only sampling reads it (the judge stage calls it)
                onset_prob = torch.sigmoid(self.judge(self.judge_features(feats, rel(mel_times))))  # (B, 2T)
        else:
            assert sync_feats is not None and semantic_feats is not None, "pretrained variant needs features"
            sync = self.sync_in(resample_by_time(sync_feats.to(dev).float(), zero, enc.sync_fps, rel(lat_times)))
            tok_t = start[:, None] + tok_rel[None]  # (B, Lv)
            visual = self.visual_in(resample_by_time(semantic_feats.to(dev).float(), zero - 0.5 / enc.semantic_fps,
                                                     enc.semantic_fps, rel(tok_t)))  # (B, Lv, D)
            cues = torch.zeros(B, 2 * cfg.stereo.cue_columns, 2 * T, device=dev)
            onset_prob = cue_feat = None
        text, text_mask = self.encode_text(captions, text_feats)  # (B, Lt, D), (B, Lt)
        vm = visual_mask[..., None].float()
        pooled_visual = self.pool_visual((visual * vm).sum(1) / vm.sum(1).clamp_min(1))  # (B, D)
        tm = text_mask[..., None].float()
        pooled_text = self.pool_text((text * tm).sum(1) / tm.sum(1).clamp_min(1))  # (B, D)
        dur_feat = torch.cat([sinusoidal(dur * 10.0, 128), sinusoidal(start * 10.0, 128)], dim=-1)  # (B, 256)
        return Conditions(
            latent_mask=latent_mask, sync=sync, visual=visual, visual_mask=visual_mask,
            visual_pos=(tok_rel * rate).float().expand(B, Lv), text=text, text_mask=text_mask,
            pooled_visual=pooled_visual, pooled_text=pooled_text, duration=self.duration_embed(dur_feat), cues=cues,
            onset_prob=onset_prob, cue=cue_feat)

    @torch.no_grad()
    def picture_onsets(self, feats: torch.Tensor, start_s: torch.Tensor, num_mel: int) -> torch.Tensor:
        """The judge's onset probability (B, num_mel) at the mel frames from `start_s` (B,) (seconds after the
        first frame of `feats` (B, Tf, D) at 24 fps), always in eval mode and without gradients (the judge and
        the features it reads are frozen once it is trained). The judge reads `context` mel frames beyond both
        ends, so a window's probability does not depend on how it is padded or where it is cut."""
        was = self.judge.training
        self.judge.eval()
        try:
            ctx = self.judge.context
            k = torch.arange(-ctx, num_mel + ctx, device=feats.device, dtype=torch.float64)
            times = (start_s.double()[:, None] + k[None] / self.cfg.audio.mel_rate_hz).float()  # (B, Tm + 2 ctx)
            return torch.sigmoid(self.judge(self.judge_features(feats.float(), times)))[:, ctx:ctx + num_mel]
        finally:
            self.judge.train(was)

    def judge_features(self, feats: torch.Tensor, times_s: torch.Tensor) -> torch.Tensor:
        """The judge's input: frame features (B, Tf, D) at 24 fps from the first frame, read at times (B, Tm)."""
        zero = torch.zeros(feats.shape[0], device=feats.device)
        return resample_by_time(feats, zero, self.cfg.encoders.sync_fps, times_s)

    def drop(self, cond: Conditions, drop_visual: torch.Tensor, drop_sync: torch.Tensor,
             drop_cue: torch.Tensor | None = None) -> Conditions:
        """Replace the semantic-visual and/or sync paths of chosen items (B,) bool by the learned empties; the
        judge's cue goes with the sync path, or alone (drop_cue)."""
        dv, ds = drop_visual.to(self.device)[:, None, None], drop_sync.to(self.device)[:, None, None]
        cue = cond.cue
        if cue is not None:
            dc = ds if drop_cue is None else ds | drop_cue.to(self.device)[:, None, None]
            cue = torch.where(dc, torch.zeros_like(cue), cue)
        return replace(
            cond, cue=cue,
            visual=torch.where(dv, self.empty_visual.expand_as(cond.visual), cond.visual),
            pooled_visual=torch.where(dv[:, 0], self.empty_pooled_visual.expand_as(cond.pooled_visual),
                                      cond.pooled_visual),
            sync=torch.where(ds, self.empty_sync.expand_as(cond.sync), cond.sync))

    def unconditional(self, cond: Conditions, negative_prompt: Sequence[str] | None = None,
                      negative_text_feats: torch.Tensor | None = None) -> Conditions:
        """The CFG branch: video paths empty, text = the negative prompt (default: empty caption)."""
        B = cond.batch
        ones = torch.ones(B, dtype=torch.bool, device=self.device)
        out = self.drop(cond, ones, ones)
        prompts = list(negative_prompt) if negative_prompt is not None else [""] * B
        text, text_mask = self.encode_text(prompts, negative_text_feats)
        tm = text_mask[..., None].float()
        return replace(out, text=text, text_mask=text_mask,
                       pooled_text=self.pool_text((text * tm).sum(1) / tm.sum(1).clamp_min(1)))

    # ---------------------------------------------------------------- generation
    def velocity(self, x: torch.Tensor, t: torch.Tensor, cond: Conditions) -> torch.Tensor:
        """(B, T, C) latents at flow time t (B,) -> velocity (B, T, C)."""
        return self.dit(x, t, *cond.dit_args())

    def bind_velocity(self, cond: Conditions,
                      bind: Callable[[tuple[torch.Tensor, ...]], Velocity] | None = None) -> Velocity:
        """The velocity function (x, t) -> v of these conditions; their tensors are prepared ONCE here.

        bind: an inference engine's `bind` (DeepSpeed, torch.compile, ...) that wraps the network
        around the prepared condition tensors; default: this model's DiT, eagerly."""
        args = cond.dit_args()
        if bind is not None:
            return bind(args)
        return lambda x, t: self.dit(x, t, *args)

    @torch.no_grad()
    def sample_latents(self, cond: Conditions, noise: torch.Tensor, steps: int | None = None,
                       cfg_scale: float | None = None, negative_prompt: Sequence[str] | None = None,
                       method: str | None = None,
                       bind: Callable[[tuple[torch.Tensor, ...]], Velocity] | None = None,
                       from_step: int = 0, observe: Observer | None = None) -> torch.Tensor:
        """Integrate from the caller's noise (B, T, C) (timeline noise) to standardised latents (B, T, C).

        Padded frames (latent_mask False) come back as zeros; real frames do not depend on padding.
        CFG runs as ONE forward pass per step over the conditional and unconditional halves of a 2B
        batch. bind: see `bind_velocity` (the engine the network runs in; default eager). from_step k > 0:
        `noise` is instead a latent noised to flow time k / steps, and only the remaining steps run.
        observe: the sampler's per-step hook, given the guided velocity (`FlowMatching.run_t0_to_t1`).
        """
        assert noise.shape[:2] == cond.latent_mask.shape, f"{noise.shape=} {cond.latent_mask.shape=}"
        scale = self.cfg.sampling.cfg_scale if cfg_scale is None else float(cfg_scale)
        sampler = FlowMatching(steps or self.cfg.sampling.steps, method or self.cfg.sampling.method)
        noise = noise.to(self.device, torch.float32)
        if scale == 1.0:
            fn = self.bind_velocity(cond, bind)
        else:
            pair = self.bind_velocity(cat_conditions(cond, self.unconditional(cond, negative_prompt)), bind)
            fn = lambda x, t: FlowMatching.cfg_velocity_batched(pair, x, t, scale)  # noqa: E731
        x = sampler.run_t0_to_t1(fn, noise, from_step=from_step, observe=observe)
        return x * cond.latent_mask[..., None]  # (B, T, C)

    @torch.no_grad()
    def sample_candidates(self, cond: Conditions, noises: torch.Tensor, steps: int | None = None,
                          cfg_scale: float | None = None, negative_prompt: Sequence[str] | None = None,
                          method: str | None = None,
                          bind: Callable[[tuple[torch.Tensor, ...]], Velocity] | None = None,
                          choose_per: str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Sample N candidates per window from noises (N, B, T, C) in ONE batch and keep, per window, the one
        the picture onset judge prefers (`foley_model.judge`): -> latents (B, T, C), chosen index (B,).

        With one candidate, or without a judge (the conditions carry no onset_prob), this is
        `sample_latents` on noises[0]. Candidate 0 wins ties. choose_per "segment" (default: the config's
        `sampling.choose_per`, "window") blends a candidate per stretch of the window (`compose_candidates`)
        and returns, per window, the candidate that covers most of it."""
        N, B, T, C = noises.shape
        assert (B, T) == tuple(cond.latent_mask.shape), f"{noises.shape=} {cond.latent_mask.shape=}"
        if N == 1 or cond.onset_prob is None:
            lat = self.sample_latents(cond, noises[0], steps, cfg_scale, negative_prompt, method, bind)
            return lat, torch.zeros(B, dtype=torch.long)
        choose_per = choose_per or self.cfg.sampling.choose_per
        assert choose_per in CHOICES, f"{choose_per=}"
        lat = self.sample_each(cond, noises, steps, cfg_scale, negative_prompt, method, bind)
        if choose_per == "segment":
            return self.compose_candidates(lat, cond)
        chosen = self.choose_candidates(lat, cond)
        return lat[chosen, torch.arange(B, device=lat.device)], chosen.cpu()

    @torch.no_grad()
    def sample_each(self, cond: Conditions, noises: torch.Tensor, steps: int | None = None,
                    cfg_scale: float | None = None, negative_prompt: Sequence[str] | None = None,
                    method: str | None = None,
                    bind: Callable[[tuple[torch.Tensor, ...]], Velocity] | None = None,
                    observe: Observer | None = None) -> torch.Tensor:
        """Every candidate, none chosen: noises (N, B, T, C) -> latents (N, B, T, C), sampled in ONE batch
        (observe: `sample_latents`'; it sees candidate-major tensors, (N * B, T, C))."""
        N, B, T, C = noises.shape
        rep = cond
        for _ in range(N - 1):
            rep = cat_conditions(rep, cond)  # candidate-major: [k=0: b0..bB-1, k=1: ...]
        neg = list(negative_prompt) * N if negative_prompt is not None else None
        lat = self.sample_latents(rep, noises.reshape(N * B, T, C), steps, cfg_scale, neg, method, bind,
                                  observe=observe)
        return lat.reshape(N, B, T, C)

    @torch.no_grad()
    def choose_candidates(self, latents: torch.Tensor, cond: Conditions) -> torch.Tensor:
        """latents (N, B, T, C) -> (B,) index of the candidate whose onsets agree best with the picture's.

        A candidate's onsets are `detect_onsets` on its mono mel through Griffin-Lim (the weight-free
        vocoder, whatever the delivery vocoder is), over the window's real frames only."""
        out = torch.zeros(latents.shape[1], dtype=torch.long)
        for b, (onsets, picture, _) in enumerate(self._candidate_onsets(latents, cond)):
            out[b] = choose(onsets, picture, self.cfg.judge)
        return out

    @torch.no_grad()
    def compose_candidates(self, latents: torch.Tensor, cond: Conditions) -> tuple[torch.Tensor, torch.Tensor]:
        """latents (N, B, T, C) -> (B, T, C) blended per stretch of each window (`judge.plan_segments`), and
        (B,) the candidate that covers most of each window's frames."""
        N, B, T, C = latents.shape
        jc, rate = self.cfg.judge, self.cfg.latent_rate_hz
        out, main = torch.zeros(B, T, C, dtype=latents.dtype, device=latents.device), torch.zeros(B, dtype=torch.long)
        for b, (onsets, picture, real) in enumerate(self._candidate_onsets(latents, cond)):
            segments = plan_segments(onsets, picture, jc)
            w = torch.from_numpy(segment_weights(segments, N, T, rate, jc.segment_fade_frames))  # (N, T)
            out[b] = (w.to(latents)[..., None] * latents[:, b]).sum(0)  # (T, C)
            main[b] = int(w[:, :real].sum(1).argmax())
        return out * cond.latent_mask[..., None], main

    @torch.no_grad()
    def _candidate_onsets(self, latents: torch.Tensor, cond: Conditions) -> list[tuple[list, np.ndarray, int]]:
        """Per window: (each candidate's onsets, the picture's onsets, real latent frames), in seconds."""
        N, B, T, C = latents.shape
        jc, sr, mel_rate = self.cfg.judge, self.cfg.audio.sample_rate_hz, self.cfg.audio.mel_rate_hz
        wave = self.vocode(self.decode_mel(latents.reshape(N * B, T, C)), "griffin_lim")
        wave = wave.reshape(N, B, -1).float().cpu().numpy()
        prob = cond.onset_prob.float().cpu().numpy()  # (B, 2T)
        real = cond.latent_mask.sum(1).cpu().tolist()
        out = []
        for b in range(B):
            n_mel = 2 * int(real[b])
            picture = peak_frames(prob[b, :n_mel], jc.threshold, jc.min_gap_frames) / mel_rate
            n = int(real[b]) * self.cfg.samples_per_latent
            out.append(([detect_onsets(wave[k, b, :n], sr) for k in range(N)], picture, int(real[b])))
        return out

    # ---------------------------------------------------------------- decoding
    @torch.no_grad()
    def decode_mel(self, latents: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """Standardised latents (B, T, C) -> mono normalised log-mel (B, M, 2T). Context: vae.receptive_field."""
        latents = latents.to(self.device, torch.float32)
        return self.vae.decode(latents) if chunk_frames is None else self.vae.decode_chunked(latents, chunk_frames)

    @torch.no_grad()
    def to_stereo(self, mono_mel: torch.Tensor, cues: torch.Tensor, chunk_frames: int | None = None) -> torch.Tensor:
        """(B, M, Tm) + cues (B, 2 cols, Tm) -> stereo (B, 2, M, Tm). Context: stereo.receptive_field."""
        if chunk_frames is None:
            return self.stereo(mono_mel, cues)
        return self.stereo.to_stereo_chunked(mono_mel, cues, chunk_frames)

    def vocoder(self, kind: str | None = None) -> nn.Module:
        kind = kind or self.cfg.vocoder.default
        return {"griffin_lim": self.griffin_lim, "neural": self.neural_vocoder}[kind]

    @torch.no_grad()
    def vocode(self, mel: torch.Tensor, kind: str | None = None, chunk_frames: int | None = None,
               frame_offset: int = 0) -> torch.Tensor:
        """(B, [2,] M, Tm) normalised log-mel -> (B, [2,] Tm * hop) waveform. Context: vocoder(kind).receptive_field.

        frame_offset: absolute mel frame of mel[..., 0] (Griffin-Lim's initial phase depends on it, so
        a chunk rendered alone equals the same frames rendered as part of a longer signal)."""
        voc = self.vocoder(kind)
        lead = mel.shape[:-2]
        flat = mel.reshape(-1, *mel.shape[-2:]).to(self.device)  # (B', M, Tm)
        if chunk_frames is None:
            wave = voc(flat, frame_offset=frame_offset)
        else:
            assert frame_offset == 0, "chunked synthesis counts frames from 0"
            wave = synthesize_chunked(voc, flat, chunk_frames)
        return wave.reshape(*lead, -1)

    @torch.no_grad()
    def render_window(self, frames: torch.Tensor, captions: Sequence[str], start_s, duration_s, noise: torch.Tensor,
                      frames_start_s=None, steps: int | None = None, cfg_scale: float | None = None,
                      negative_prompt: Sequence[str] | None = None, vocoder: str | None = None) -> torch.Tensor:
        """Convenience: one batch of windows -> stereo waveform (B, 2, n) at the model rate (padding zeroed)."""
        cond = self.prepare_conditions(frames, captions, start_s, duration_s, frames_start_s,
                                       num_latent_frames=noise.shape[1])
        lat = self.sample_latents(cond, noise, steps, cfg_scale, negative_prompt)
        wave = self.vocode(self.to_stereo(self.decode_mel(lat), cond.cues), vocoder)  # (B, 2, n)
        keep = cond.latent_mask.repeat_interleave(self.cfg.samples_per_latent, dim=1)  # (B, n)
        return wave * keep[:, None]

    def sample_rate_hz(self) -> int:
        return self.cfg.audio.sample_rate_hz


def frame_cuts(x: torch.Tensor, fps: float = 24.0) -> list[list[int]]:
    """For each item of frames x (B, Tf, 3, S, S) in [0, 1] (the frame encoder's input), the indices
    of the frames where a new shot starts (`foley_model.shots.shot_starts` on the resized frames:
    cheap, and a cut changes most of the picture at any size)."""
    arr = (x.detach().float() * 255.0).round().clamp(0, 255).to(torch.uint8).permute(0, 1, 3, 4, 2).cpu().numpy()
    return [shot_starts(item, fps) for item in arr]

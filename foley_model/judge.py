"""The picture onset judge: where the picture says a sound starts, and reranking sampled candidates by it.

A small dilated 1-D conv net over the frame encoder's per-frame features, resampled to the mel frames,
gives the probability that an impact or a beep starts at each mel frame. Trained on ground truth with
the frame encoder frozen (`foley train --stage judge`), it reads onsets from the picture better than the
generated audio places them (held-out F1 0.91 from the picture alone, against 0.82 for one sample): the
DiT's conditional distribution is right on average, but one draw adds or drops a knock now and then.

So `FoleyModel.sample_candidates` samples a few candidates from independent noises in one batch and
keeps, per window, the one whose onsets (`detect_onsets` on its Griffin-Lim mono audio) agree best
with the judge's peaks (`candidate_score`). All of this is deterministic given the noises.

One candidate rarely gets every sound of a busy window right, so with `choose_per="segment"` (opt-in:
`SamplingConfig.choose_per`, `foley render --choose-per segment`) the window is cut between the picture's
onsets, each stretch takes the candidate that agrees best there (`plan_segments`), and the latents
cross-fade over a few frames at each join (`segment_weights`).

The judge's probability is also a cue the DiT is conditioned on (`JudgeConfig.cue`, `FoleyModel.cue_in`,
learned in the `cue` training stage): the picture's onsets steer the sampling itself, not only the choice
among samples.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .configs import JudgeConfig
from .evaluation.matching import match_onsets


class PictureOnsetJudge(nn.Module):
    """Frame features at the mel frames (B, Tm, D) -> onset logits (B, Tm). Receptive field ±`context` frames."""

    def __init__(self, cfg: JudgeConfig, width: int):
        super().__init__()
        self.cfg = cfg
        H, k = cfg.hidden, cfg.kernel
        self.inp = nn.Conv1d(width, H, 1)
        self.blocks = nn.ModuleList([nn.Conv1d(H, H, k, padding=(k // 2) * d, dilation=d) for d in cfg.dilations])
        self.drop = nn.Dropout(cfg.dropout)
        self.out = nn.Conv1d(H, 1, 1)

    @property
    def context(self) -> int:
        return sum((self.cfg.kernel // 2) * d for d in self.cfg.dilations)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        h = self.drop(self.inp(feats.transpose(1, 2)))  # (B, H, Tm)
        for conv in self.blocks:
            h = h + self.drop(conv(F.silu(h)))
        return self.out(F.silu(h))[:, 0]

    def loss(self, feats: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """Weighted BCE against soft targets (B, Tm) in [0, 1] (onsets are rare: positives weigh `pos_weight`)."""
        pw = torch.tensor(self.cfg.pos_weight, device=feats.device)
        per = F.binary_cross_entropy_with_logits(self(feats), target, pos_weight=pw, reduction="none")
        if mask is None:
            return per.mean()
        m = mask.float()
        return (per * m).sum() / m.sum().clamp_min(1.0)


def onset_targets(onsets_s: Sequence[Sequence[float]], times_s: torch.Tensor, rate_hz: float,
                  sigma_frames: float) -> torch.Tensor:
    """Soft targets (B, Tm): at each time the largest Gaussian bump (sigma in frames of `rate_hz`) of the item's onsets."""
    out = torch.zeros_like(times_s, dtype=torch.float32)
    for b, ons in enumerate(onsets_s):
        if len(ons):
            o = torch.as_tensor(np.asarray(ons, dtype=np.float32))[:, None]  # (K, 1)
            d = (times_s[b].float()[None] - o) * rate_hz / sigma_frames  # (K, Tm)
            out[b] = torch.exp(-0.5 * d * d).amax(0)
    return out


def peak_frames(prob: np.ndarray, threshold: float, min_gap: int) -> np.ndarray:
    """Sorted frame indices of local maxima >= threshold, strongest first kept when closer than min_gap."""
    p = np.asarray(prob, dtype=np.float64)
    if len(p) < 3:
        return np.zeros(0, dtype=np.int64)
    i = np.arange(1, len(p) - 1)
    cand = i[(p[1:-1] >= threshold) & (p[1:-1] >= p[:-2]) & (p[1:-1] > p[2:])]
    kept: list[int] = []
    for k in cand[np.argsort(-p[cand], kind="stable")]:
        if all(abs(int(k) - o) >= min_gap for o in kept):
            kept.append(int(k))
    return np.array(sorted(kept), dtype=np.int64)


def candidate_score(onsets_s: Sequence[float], picture_s: Sequence[float], cfg: JudgeConfig) -> float:
    """Agreement of a candidate's onsets with the picture's: matched - extra_weight * extra - missed
    - offset_weight * (summed |distance| of the matched pairs) / tolerance."""
    pairs = match_onsets(onsets_s, picture_s, cfg.tolerance_s)
    m = len(pairs)
    score = m - cfg.extra_weight * (len(onsets_s) - m) - (len(picture_s) - m)
    if cfg.offset_weight and m:
        score -= cfg.offset_weight * sum(abs(onsets_s[i] - picture_s[j]) for i, j in pairs) / cfg.tolerance_s
    return float(score)


def choose(candidate_onsets: Sequence[Sequence[float]], picture_s: Sequence[float], cfg: JudgeConfig) -> int:
    """Index of the best-scoring candidate (the lowest index among equals, so candidate 0 wins ties)."""
    scores = [candidate_score(o, picture_s, cfg) for o in candidate_onsets]
    return int(np.argmax(scores))


def plan_segments(candidate_onsets: Sequence[Sequence[float]], picture_s: Sequence[float],
                  cfg: JudgeConfig) -> list[tuple[float, int]]:
    """Choose a candidate per stretch of the window instead of one for all of it: -> [(start_s, k)], the first at 0.

    The window is cut halfway between consecutive picture onsets at least `cfg.segment_gap_s` apart (so a
    cut lies at least half that from any sound the picture shows and a matched pair never straddles it).
    Each candidate gets `candidate_score` per segment on the onsets inside it; a dynamic programme keeps
    the best total less `cfg.segment_switch_cost` per change of candidate (lowest index among equals, so a
    huge cost gives `choose`'s answer). Pure."""
    n = len(candidate_onsets)
    pic = np.sort(np.asarray(picture_s, dtype=np.float64))
    cuts = [0.0] + [float(a + b) / 2 for a, b in zip(pic[:-1], pic[1:]) if b - a >= cfg.segment_gap_s]
    edges = [*cuts, np.inf]
    ons = [np.asarray(o, dtype=np.float64) for o in candidate_onsets]
    score = np.array([[candidate_score(o[(o >= a) & (o < b)].tolist(), pic[(pic >= a) & (pic < b)].tolist(), cfg)
                       for o in ons] for a, b in zip(edges[:-1], edges[1:])])  # (S, N)
    S, cost = len(cuts), cfg.segment_switch_cost
    best, back = score[0].copy(), np.zeros((S, n), dtype=np.int64)
    for s in range(1, S):
        stay = best  # (N,) ending segment s-1 on candidate k, staying on k
        j = int(np.argmax(best))  # the best one to switch from
        switch = best[j] - cost
        back[s] = np.where(stay >= switch, np.arange(n), j)
        best = np.maximum(stay, switch) + score[s]
    k = int(np.argmax(best))
    path = [k]
    for s in range(S - 1, 0, -1):
        k = int(back[s, k])
        path.append(k)
    path.reverse()
    merged: list[tuple[float, int]] = []
    for start, k in zip(cuts, path):
        if not merged or merged[-1][1] != k:
            merged.append((start, k))
    return merged


def segment_weights(segments: Sequence[tuple[float, int]], n_candidates: int, num_frames: int, rate_hz: float,
                    fade_frames: int) -> np.ndarray:
    """Per-frame blend weights (N, T) for `plan_segments`' choice at `rate_hz`: one-hot by segment, each join
    a linear crossfade over `fade_frames` frames centred on the cut. Every column sums to 1."""
    times = (np.arange(num_frames) + 0.5) / rate_hz
    starts = np.array([s for s, _ in segments])
    which = np.array([k for _, k in segments])[np.searchsorted(starts, times, side="right") - 1]
    w = np.zeros((n_candidates, num_frames))
    w[which, np.arange(num_frames)] = 1.0
    if fade_frames > 1 and len(segments) > 1:
        pad = fade_frames // 2
        padded = np.pad(w, ((0, 0), (pad, fade_frames - 1 - pad)), mode="edge")
        w = np.stack([np.convolve(r, np.ones(fade_frames) / fade_frames, mode="valid") for r in padded])
    return w

"""Seam audibility: spectral-flux peak at window joins over the same statistic at random places."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np

from .onsets import novelty


def _peak(nov: np.ndarray, hop_s: float, half: int, t: float) -> float:
    """Largest novelty within +-half hops of time t."""
    i = int(round(t / hop_s))
    return float(nov[max(0, i - half):i + half + 1].max())


def seam_ratio(audio: np.ndarray, sample_rate_hz: int, join_times_s: Sequence[float], rng_seed: int,
               window_s: float = 0.05, n_random: int = 64, min_distance_s: float = 0.5) -> float:
    """Mean over joins of the max novelty within +-window_s of the join, divided by the same at
    ``n_random`` random times at least ``min_distance_s`` from every join (1.0: joins can't be told
    apart; >> 1: audible seams). NaN when there are no joins or no room for random places.
    """
    nov, hop_s = novelty(audio, sample_rate_hz)
    dur = len(nov) * hop_s
    joins = np.asarray([t for t in join_times_s if 0 <= t <= dur], dtype=np.float64)
    if len(joins) == 0:
        return float("nan")
    half = max(1, int(round(window_s / hop_s)))
    peak = functools.partial(_peak, nov, hop_s, half)

    grid = np.arange(window_s, dur - window_s, hop_s)
    far = grid[np.all(np.abs(grid[:, None] - joins[None, :]) >= min_distance_s, axis=1)]
    if len(far) == 0:
        return float("nan")
    rng = np.random.default_rng(rng_seed)
    at_random = np.mean([peak(t) for t in rng.choice(far, size=n_random)])
    at_joins = np.mean([peak(t) for t in joins])
    if at_random <= 0:
        return 1.0 if at_joins <= 0 else float("inf")
    return float(at_joins / at_random)


def cut_flux_ratio(audios: Sequence[np.ndarray], sample_rate_hz: int, clips: Sequence, window_s: float = 0.05,
                   onset_guard_s: float = 0.15, cut_guard_s: float = 0.3) -> tuple[float, int]:
    """Does the audio sound a knock where the picture cuts? Mean novelty peak (within +-window_s)
    at the clips' shot cuts over the mean peak at every other place, pooled over clips; places
    within onset_guard_s of a ground-truth event onset are skipped (an event there is no knock),
    and reference places keep cut_guard_s from every cut. Ground truth scores ~1.6 (a new scene's
    ambience starts at the cut). -> (ratio, number of cuts compared); NaN with no cut.
    `clips`: toyworld clips (cuts_s, events, duration_s), one per audio (2, n) or (n,)."""
    at, ref = [], []
    for audio, clip in zip(audios, clips):
        nov, hop_s = novelty(audio, sample_rate_hz)
        half = max(1, int(round(window_s / hop_s)))
        onsets = np.asarray([e.onset_s for e in clip.events], dtype=np.float64)
        cuts = np.asarray(clip.cuts_s, dtype=np.float64)
        peak = functools.partial(_peak, nov, hop_s, half)

        def clear(t: float, pts: np.ndarray, d: float) -> bool:
            return len(pts) == 0 or bool(np.all(np.abs(pts - t) > d))

        at += [peak(c) for c in cuts if clear(c, onsets, onset_guard_s)]
        grid = np.arange(0.1, min(clip.duration_s, len(nov) * hop_s) - 0.1, hop_s)
        ref += [peak(t) for t in grid if clear(t, onsets, onset_guard_s) and clear(t, cuts, cut_guard_s)]
    if not at or not ref:
        return float("nan"), len(at)
    return float(np.mean(at) / np.mean(ref)), len(at)

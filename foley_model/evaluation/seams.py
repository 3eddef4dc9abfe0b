"""Seam audibility: spectral-flux peak at window joins over the same statistic at random places."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .onsets import novelty


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

    def peak(t: float) -> float:
        i = int(round(t / hop_s))
        return float(nov[max(0, i - half):i + half + 1].max())

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

"""One-to-one matching of detected to ground-truth onset times within a tolerance.

Optimal: the most pairs within the tolerance, and among those the smallest total distance. In one
dimension an optimal matching can be taken non-crossing, so a dynamic programme over the sorted
times finds it; it runs per cluster of times linked by gaps <= tolerance, so long clips stay cheap.
(Greedy nearest-first is not enough: a detection late by 80 ms would grab the *next* onset 20 ms
away and leave both onsets of a 100 ms pair half-matched.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def _match_cluster(d: list[tuple[float, int]], t: list[tuple[float, int]], tol: float) -> list[tuple[int, int]]:
    n, m = len(d), len(t)
    best = [[(0, 0.0)] * (m + 1) for _ in range(n + 1)]  # (pairs, -total distance)
    move = [[0] * (m + 1) for _ in range(n + 1)]  # 1 skip detection, 2 skip truth, 3 match
    for i in range(1, n + 1):
        move[i][0] = 1
        for j in range(1, m + 1):
            cand = [(best[i - 1][j], 1), (best[i][j - 1], 2)]
            dist = abs(d[i - 1][0] - t[j - 1][0])
            if dist <= tol + 1e-12:
                prev = best[i - 1][j - 1]
                cand.append(((prev[0] + 1, prev[1] - dist), 3))
            best[i][j], move[i][j] = max(cand, key=lambda c: c[0])
    for j in range(1, m + 1):
        move[0][j] = 2
    pairs, i, j = [], n, m
    while i > 0 and j > 0:
        mv = move[i][j]
        if mv == 3:
            pairs.append((d[i - 1][1], t[j - 1][1]))
            i, j = i - 1, j - 1
        elif mv == 1:
            i -= 1
        else:
            j -= 1
    return pairs


def match_onsets(detected: Sequence[float], truth: Sequence[float], tolerance_s: float) -> list[tuple[int, int]]:
    """Pairs (i_detected, j_truth) with |detected[i] - truth[j]| <= tolerance_s, one-to-one, optimal."""
    d = np.asarray(detected, dtype=np.float64)
    t = np.asarray(truth, dtype=np.float64)
    if len(d) == 0 or len(t) == 0:
        return []
    points = sorted([(float(v), 0, i) for i, v in enumerate(d)] + [(float(v), 1, j) for j, v in enumerate(t)])
    pairs: list[tuple[int, int]] = []
    cluster = [points[0]]
    for p in points[1:] + [(float("inf"), 0, -1)]:
        if p[0] - cluster[-1][0] > tolerance_s + 1e-12:
            ds = [(v, i) for v, kind, i in cluster if kind == 0]
            ts = [(v, j) for v, kind, j in cluster if kind == 1]
            if ds and ts:
                pairs += _match_cluster(ds, ts, tolerance_s)
            cluster = []
        cluster.append(p)
    return sorted(pairs, key=lambda p: p[1])


def f1(n_matched: int, n_detected: int, n_truth: int) -> float:
    """F1 = 2 TP / (2 TP + FP + FN); 1.0 when there is nothing to find and nothing found."""
    denom = n_detected + n_truth
    return 1.0 if denom == 0 else 2.0 * n_matched / denom

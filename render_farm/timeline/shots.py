"""Shot-cut detection on decoded frames, and cut frames → latent frames. Pure (frames come in).

Per frame: a 16×16 thumbnail (block means) and a 3 × 8-bin colour histogram. The difference
between consecutive frames is the mean of (a) the fraction of the 256 blocks whose colour moved
by more than a tenth of full scale in some channel and (b) half the L1 distance of the normalised
histograms (averaged over channels); both lie in [0, 1]. A cut changes most of the picture, so
(a) is near 1; motion or a changing caption touches few blocks. Frame k starts a new shot when
its difference is at least `min_score` and at least `threshold` × the median difference
of the surrounding frames (half a second each side, excluding k and its neighbours) — a local
adaptive threshold, so camera motion or noise that raises every difference does not fire. Cuts
closer than `min_shot_s` keep only the stronger one. Memory: one float per frame.
"""
from __future__ import annotations

import math
from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

from render_farm.errors import InvalidInput
from render_farm.timeline.latent_time import Number, exact, seconds_to_nearest_frame

_THUMB = 16
_BINS = 8
_BLOCK_CHANGE = 25.5  # a block "changed" when a channel mean moved by a tenth of full scale


def _signature(rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    assert rgb.ndim == 3 and rgb.shape[2] == 3, f"{rgb.shape=}"
    h, w = rgb.shape[:2]
    if h < _THUMB or w < _THUMB:
        raise InvalidInput(f"frames of {w}x{h} are too small for cut detection (need {_THUMB}x{_THUMB})")
    bh, bw = h // _THUMB, w // _THUMB
    crop = rgb[: bh * _THUMB, : bw * _THUMB].astype(np.float32)
    thumb = crop.reshape(_THUMB, bh, _THUMB, bw, 3).mean(axis=(1, 3))
    bins = (rgb.reshape(-1, 3) >> 5).astype(np.int64)  # 256 / 8 = 32 levels per bin
    hist = np.concatenate([np.bincount(bins[:, c], minlength=_BINS) for c in range(3)]).astype(np.float64)
    hist /= h * w
    return thumb, hist


def frame_differences(frames: Iterable[np.ndarray]) -> np.ndarray:
    """Difference of each frame to the previous one in [0, 1]; element 0 is 0. (num_frames,)."""
    out: list[float] = []
    prev: tuple[np.ndarray, np.ndarray] | None = None
    for rgb in frames:
        sig = _signature(np.asarray(rgb))
        if prev is None:
            out.append(0.0)
        else:
            changed = float((np.abs(sig[0] - prev[0]).max(axis=2) > _BLOCK_CHANGE).mean())
            hist = float(np.abs(sig[1] - prev[1]).sum()) / 6.0  # 3 histograms, each L1 <= 2
            out.append(0.5 * (changed + hist))
        prev = sig
    return np.asarray(out, dtype=np.float64)


def detect_cuts(
    frames: Iterable[np.ndarray],
    fps: Number,
    threshold: float = 4.0,
    min_score: float = 0.3,
    min_shot_s: float = 0.25,
) -> list[int]:
    """Indices of the frames (RGB uint8 H×W×3, at `fps`) where a new shot starts, ascending."""
    return cuts_from_differences(frame_differences(frames), fps, threshold, min_score, min_shot_s)


def cuts_from_differences(
    diffs: np.ndarray, fps: Number, threshold: float = 4.0, min_score: float = 0.3, min_shot_s: float = 0.25
) -> list[int]:
    """The cut rule of `detect_cuts` applied to precomputed frame differences."""
    rate = exact(fps)
    if rate <= 0:
        raise InvalidInput(f"cut detection needs a positive frame rate, got {fps!r}")
    if threshold <= 1.0 or min_score <= 0.0:
        raise InvalidInput(f"cut threshold must be > 1 and min_score > 0, got {threshold=} {min_score=}")
    reach = max(2, math.ceil(rate / 2))
    candidates = []
    for k in range(1, len(diffs)):
        d = diffs[k]
        if d < min_score:
            continue
        lo, hi = max(1, k - reach), min(len(diffs), k + reach + 1)
        local = np.concatenate([diffs[lo : max(lo, k - 1)], diffs[min(hi, k + 2) : hi]])
        baseline = float(np.median(local)) if local.size else 0.0
        if d >= threshold * baseline:
            candidates.append(k)
    min_gap = max(1, math.ceil(exact(min_shot_s) * rate))
    cuts: list[int] = []
    for k in candidates:
        if cuts and k - cuts[-1] < min_gap:
            if diffs[k] > diffs[cuts[-1]]:
                cuts[-1] = k
            continue
        cuts.append(k)
    return cuts


def cuts_to_latent_frames(cut_frames: Sequence[int], fps: Number, latent_rate_hz: Number) -> list[int]:
    """Latent frames nearest to the times (k / fps) at which the cut frames appear; sorted, unique."""
    rate = exact(fps)
    return sorted({seconds_to_nearest_frame(Fraction(k) / rate, latent_rate_hz) for k in cut_frames})

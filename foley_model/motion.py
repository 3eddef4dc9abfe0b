"""The picture a frame's motion is measured against, read from the source's own frames (pure numpy).

The tiny frame encoder sees each 24 fps frame and its difference from a picture 1/24 s earlier. With
only 24 fps frames at hand that picture is the previous frame. But a 24 fps frame is the source frame
on screen at the grid time (the last one shown), so a 30 fps source advances two frames at every 4th
grid frame, a 60 fps one 2 and 3 in turn: a box sliding at a steady speed jerks in the differences,
and the network sounds the jerk as a knock (bench/RESULTS.md, sessions 19-21).

With the source's frames at hand (a proxy at the source's rate), `pictures_before` gives each picked
frame the picture exactly 1/24 s before the picked frame's own time, a linear blend of the two source
frames around it. The differences then measure 1/24 s of motion at every frame: a steady move is
steady. On a 24 fps source it is the previous frame, so nothing changes there. The reference never
reaches back across a shot cut (found on the source frames, `shots.shot_starts`) nor past `min_index`:
the first picture of a shot has no motion, as the encoder's own shot split gives it.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .shots import shot_starts

#: the time step the frame encoder's differences were trained on: one frame of the 24 fps grid
MOTION_LAG_S = Fraction(1, 24)


def grid_picks(src_t0_s: Fraction, src_fps: Fraction, num_src: int, grid_t0_s: Fraction, grid_fps: Fraction,
               num_grid: int) -> np.ndarray:
    """Index into source frames (frame i at src_t0_s + i / src_fps) of the one on screen at each grid time
    grid_t0_s + k / grid_fps (the last frame at or before it), clamped to [0, num_src). Exact arithmetic."""
    assert num_src >= 1 and src_fps > 0 and grid_fps > 0, f"{num_src=} {src_fps=} {grid_fps=}"
    out = np.empty(num_grid, dtype=np.int64)
    for k in range(num_grid):
        u = (Fraction(grid_t0_s) + Fraction(k) / Fraction(grid_fps) - Fraction(src_t0_s)) * Fraction(src_fps)
        out[k] = min(max(math.floor(u), 0), num_src - 1)
    return out


def shot_floor(src: np.ndarray, src_fps: Fraction) -> np.ndarray:
    """Per source frame, the index of the first frame of its shot (cuts found on the frames themselves;
    frames too small for the detector are one shot)."""
    floor = np.zeros(len(src), dtype=np.int64)
    for c in shot_starts(src, src_fps):
        floor[c:] = c
    return floor


def pictures_before(src: np.ndarray, src_fps: Fraction, picks: np.ndarray,
                    min_index: np.ndarray | None = None, lag_s: Fraction = MOTION_LAG_S) -> np.ndarray:
    """For each picked source frame, the picture `lag_s` before its time: (T, H, W, 3) uint8.

    src (N, H, W, 3) uint8 at src_fps; picks (T,) indices into src. The reference time is blended linearly
    from the two source frames around it, never before the picked frame's shot (`shot_floor`), nor before
    `min_index` (T,) when given, nor before frame 0: a picked frame whose reference would fall there is
    measured against the earliest frame it may see (itself at the first frame of a shot: no motion)."""
    picks = np.asarray(picks, dtype=np.int64)
    assert src.ndim == 4 and src.dtype == np.uint8, f"{src.shape=} {src.dtype=}"
    assert picks.ndim == 1 and (len(picks) == 0 or (picks.min() >= 0 and picks.max() < len(src))), f"{picks=}"
    lo = shot_floor(src, src_fps)[picks]  # (T,)
    if min_index is not None:
        lo = np.maximum(lo, np.minimum(np.asarray(min_index, dtype=np.int64), picks))
    u = np.maximum(picks - float(Fraction(lag_s) * Fraction(src_fps)), lo)  # (T,) fractional source index
    a = np.floor(u).astype(np.int64)
    w = (u - a).astype(np.float32)[:, None, None, None]
    b = np.minimum(a + 1, picks)
    blend = src[a].astype(np.float32) * (1 - w) + src[b].astype(np.float32) * w
    return np.rint(blend).astype(np.uint8)

"""Crossfade window latents into one timeline sequence, whole or streaming. Pure.

Weights. Window i fades in with a raised cosine over its overlap with window i-1 and fades out
over its overlap with window i+1: over an overlap of m frames, the incoming window's weight at
position p is 0.5 - 0.5·cos(π(p + 0.5)/m) and the outgoing one's is one minus that. Each window's
raw weight (product of its fades, > 0 on every frame it covers) is divided by the sum of the raw
weights of all windows covering the frame, so weights sum to one on every frame, even where a
fallback plan lets three windows meet.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from render_farm.errors import InvalidInput
from render_farm.timeline.windows import Window


def _fade_in(m: int) -> np.ndarray:
    """Incoming raised-cosine weights over an overlap of m frames, strictly inside (0, 1)."""
    p = np.arange(m, dtype=np.float64)
    return 0.5 - 0.5 * np.cos(np.pi * (p + 0.5) / m)


def _check_plan(windows: Sequence[Window], total: int) -> None:
    if not windows:
        raise InvalidInput("stitch needs at least one window")
    if windows[0].start != 0 or windows[-1].end != total:
        raise InvalidInput(
            f"windows cover [{windows[0].start}, {windows[-1].end}), not the timeline [0, {total})"
        )
    for a, b in zip(windows[:-1], windows[1:]):
        if not (a.start < b.start <= a.end and a.end < b.end):
            raise InvalidInput(
                f"windows {a.index} [{a.start}, {a.end}) and {b.index} [{b.start}, {b.end}) "
                "are out of order or leave a gap"
            )


def _raw_weight(windows: Sequence[Window], i: int) -> np.ndarray:
    w = windows[i]
    weight = np.ones(w.num_frames, dtype=np.float64)
    if i > 0 and windows[i - 1].end > w.start:
        m = windows[i - 1].end - w.start
        weight[:m] *= _fade_in(m)
    if i + 1 < len(windows) and windows[i + 1].start < w.end:
        m = w.end - windows[i + 1].start
        weight[w.num_frames - m :] *= 1.0 - _fade_in(m)
    return weight


def window_weights(windows: Sequence[Window], i: int) -> np.ndarray:
    """Normalised crossfade weights of window i over its frames: (windows[i].num_frames,) float64."""
    w = windows[i]
    raw = _raw_weight(windows, i)
    total = raw.copy()
    for j in _neighbours(windows, i):
        other = windows[j]
        lo, hi = max(w.start, other.start), min(w.end, other.end)
        total[lo - w.start : hi - w.start] += _raw_weight(windows, j)[lo - other.start : hi - other.start]
    return raw / total


def _neighbours(windows: Sequence[Window], i: int) -> list[int]:
    """Indices of the other windows that share frames with window i (starts are increasing)."""
    w = windows[i]
    out = []
    j = i - 1
    while j >= 0 and windows[j].end > w.start:
        out.append(j)
        j -= 1
    j = i + 1
    while j < len(windows) and windows[j].start < w.end:
        out.append(j)
        j += 1
    return out


def crossfade_weights(windows: Sequence[Window], total: int) -> list[np.ndarray]:
    """Per-window weights (float64, one per window frame) that sum to one on every timeline frame."""
    _check_plan(windows, total)
    return [window_weights(windows, i) for i in range(len(windows))]


def stitch(windows: Sequence[Window], latents: Sequence[np.ndarray], total: int) -> np.ndarray:
    """Crossfade window latents (each (len, C)) into the timeline's (total, C) sequence."""
    stitcher = StreamingStitcher(windows, total)
    parts = [stitcher.push(i, latent) for i, latent in enumerate(latents)]
    stitcher.finish()
    return np.concatenate(parts, axis=0)


class StreamingStitcher:
    """Push window latents in plan order; each push returns the frames no later window touches.

    Memory: one window's latents plus its overlap with the next, whatever the video length.
    Output equals `stitch` bit for bit (same sums in the same order).
    """

    def __init__(self, windows: Sequence[Window], total: int) -> None:
        _check_plan(windows, total)
        self.windows = list(windows)
        self.total = total
        self.frames_done = 0  # timeline frames returned so far
        self._next = 0  # index of the next window to push
        self._pending: np.ndarray | None = None  # accumulated frames [frames_done, ...)

    def push(self, i: int, latent: np.ndarray) -> np.ndarray:
        """Add window i's latents ((len, C)); return the finished frames [frames_done, next start)."""
        if i != self._next:
            raise InvalidInput(f"window {i} pushed out of order: expected window {self._next}")
        w = self.windows[i]
        if latent.ndim != 2 or latent.shape[0] != w.num_frames:
            raise InvalidInput(
                f"window {i} [{w.start}, {w.end}) needs latents of shape ({w.num_frames}, C), got {latent.shape}"
            )
        weighted = latent * window_weights(self.windows, i)[:, None].astype(latent.dtype)
        if self._pending is None:
            self._pending = np.zeros((0, latent.shape[1]), dtype=latent.dtype)
        if latent.shape[1] != self._pending.shape[1]:
            raise InvalidInput(f"window {i} has {latent.shape[1]} channels, earlier ones {self._pending.shape[1]}")
        offset = w.start - self.frames_done
        grow = offset + w.num_frames - self._pending.shape[0]
        if grow > 0:
            self._pending = np.concatenate(
                [self._pending, np.zeros((grow, latent.shape[1]), dtype=latent.dtype)], axis=0
            )
        self._pending[offset : offset + w.num_frames] += weighted
        self._next += 1
        done_to = self.windows[self._next].start if self._next < len(self.windows) else self.total
        ready = done_to - self.frames_done
        out, self._pending = self._pending[:ready], self._pending[ready:]
        self.frames_done = done_to
        return out

    def finish(self) -> None:
        """Check every window was pushed."""
        if self._next != len(self.windows):
            raise InvalidInput(f"stitching stopped after {self._next} of {len(self.windows)} windows")

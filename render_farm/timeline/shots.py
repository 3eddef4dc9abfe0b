"""Shot-cut detection on decoded frames, and cut frames → latent frames. Pure (frames come in).

The detector itself lives in `foley_model.shots` (the tiny model's frame encoder splits its
features at the same cuts); this module turns its errors into the renderer's `InvalidInput` and
adds the mapping to latent frames.
"""
from __future__ import annotations

from fractions import Fraction
from typing import Iterable, Sequence

import numpy as np

from foley_model import shots as _shots
from render_farm.errors import InvalidInput
from render_farm.timeline.latent_time import Number, exact, seconds_to_nearest_frame


def frame_differences(frames: Iterable[np.ndarray]) -> np.ndarray:
    """Difference of each frame to the previous one in [0, 1]; element 0 is 0. (num_frames,)."""
    try:
        return _shots.frame_differences(frames)
    except _shots.ShotError as exc:
        raise InvalidInput(str(exc)) from None


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
    try:
        return _shots.cuts_from_differences(diffs, exact(fps), threshold, min_score, exact(min_shot_s))
    except _shots.ShotError as exc:
        raise InvalidInput(str(exc)) from None


def cut_pictures_by_latent_frame(cut_frames: Sequence[int], fps: Number, latent_rate_hz: Number) -> dict[int, int]:
    """Latent frame nearest to the time (k / fps) of each cut frame k -> the earliest such cut frame."""
    rate = exact(fps)
    out: dict[int, int] = {}
    for k in sorted(cut_frames):
        out.setdefault(seconds_to_nearest_frame(Fraction(k) / rate, latent_rate_hz), k)
    return out


def cuts_to_latent_frames(cut_frames: Sequence[int], fps: Number, latent_rate_hz: Number) -> list[int]:
    """Latent frames nearest to the times (k / fps) at which the cut frames appear; sorted, unique."""
    return sorted(cut_pictures_by_latent_frame(cut_frames, fps, latent_rate_hz))

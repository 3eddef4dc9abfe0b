"""Length buckets and window batches: the shape of every render batch is part of the plan. Pure.

A batch of windows is padded to one of a few bucket lengths (latent frames), so a GPU worker sees
a handful of shapes (one CUDA graph each) instead of one per window length. The network masks
padded frames, so padding changes a window's result only by float rounding; but rounding is
bytes, so which windows share a batch and the length they are padded to are decided here, once,
at planning time, and stored with the windows: every worker and every retry then does the same
arithmetic, whichever engine it runs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

BUCKET_COUNT = 3  # buckets over the planned window range [min_frames, max_frames]
BUCKET_MULTIPLE = 16  # every bucket is a multiple of this many latent frames


def round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def length_buckets(min_frames: int, max_frames: int, count: int = BUCKET_COUNT,
                   multiple: int = BUCKET_MULTIPLE) -> tuple[int, ...]:
    """Padded lengths for windows planned within [min_frames, max_frames], ascending.

    `count` evenly spaced multiples of `multiple` from min_frames up to the first one >= max_frames;
    below them (a video shorter than one window) `multiple` times powers of two.
    """
    assert 0 < min_frames <= max_frames and count >= 1 and multiple >= 1, f"{min_frames=} {max_frames=} {count=}"
    lo, hi = round_up(min_frames, multiple), round_up(max_frames, multiple)
    main = {hi} if count == 1 else {round_up(lo + (hi - lo) * i // (count - 1), multiple) for i in range(count)}
    small, b = set(), multiple
    while b < min_frames:
        small.add(b)
        b *= 2
    return tuple(sorted(small | main))


def bucket_for(num_frames: int, buckets: Sequence[int], multiple: int = BUCKET_MULTIPLE) -> int:
    """The smallest bucket that holds `num_frames` (past the largest: rounded up to `multiple`)."""
    assert num_frames > 0, f"{num_frames=}"
    return next((b for b in buckets if b >= num_frames), round_up(num_frames, multiple))


@dataclass(frozen=True)
class Batch:
    """Windows rendered together (indices, in timeline order), all padded to `padded_frames`."""

    index: int
    windows: tuple[int, ...]
    padded_frames: int


def plan_batches(lengths: Sequence[int], batch_windows: int, buckets: Sequence[int]) -> list[Batch]:
    """Group windows (lengths in latent frames, by window index) into batches. Pure.

    A batch holds at most `batch_windows` windows of the same length bucket, consecutive in the
    timeline among that bucket's windows; batches are numbered by their first window, so
    rendering follows the timeline.
    """
    assert batch_windows >= 1, f"{batch_windows=}"
    groups: dict[int, list[int]] = {}
    for i, n in enumerate(lengths):
        groups.setdefault(bucket_for(n, buckets), []).append(i)
    chunks = [(tuple(idx[k:k + batch_windows]), bucket) for bucket, idx in groups.items()
              for k in range(0, len(idx), batch_windows)]
    chunks.sort(key=lambda c: c[0][0])
    return [Batch(b, windows, padded) for b, (windows, padded) in enumerate(chunks)]

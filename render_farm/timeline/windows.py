"""Plan the render windows of a long video: overlapping, bounded, joins centred on shot cuts. Pure.

Geometry. Every overlap is exactly `overlap_frames` (O) long. Its *join* (centre frame) is
`next.start + O // 2`; a window runs from `join_before - O // 2` to `join_after - O // 2 + O`.
With virtual joins a_0 = O // 2 (so the first window starts at 0) and a_k = total + O // 2 - O (so
the last ends at total), a window's length is (a_{i+1} - a_i) + O. The constraint
`min_frames <= length <= max_frames` is therefore a constraint on join gaps,
`min_frames - O <= gap <= max_frames - O`, and planning is choosing join positions.

Choice of joins (deterministic). Shot cuts become joins, as many as possible: a dynamic
programme over the cuts picks the longest chain a_0 < c_1 < … < a_k in which every span between
consecutive anchors can be split into gaps within [gap_min, gap_max] (ties: the later
predecessor). Each span is then split into the fewest gaps (ceil(span / gap_max)), as equal as
integers allow, so windows away from cuts are as long and as equal as possible.

Fallback. When max_frames is so close to min_frames that no split of the span into exact-overlap
windows exists (e.g. min == max), the windows are min_frames long, evenly spread, and overlap by
at least O (some by more; with a large O three windows may share frames — `stitch` normalises
its weights, so that still sums to one). Cuts are not considered then.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass
from typing import Mapping, Sequence

from render_farm.errors import InvalidInput


@dataclass(frozen=True)
class WindowSpec:
    """Window lengths and overlap, in latent frames."""

    min_frames: int
    max_frames: int
    overlap_frames: int

    def __post_init__(self) -> None:
        for name in ("min_frames", "max_frames", "overlap_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidInput(f"WindowSpec.{name} must be an integer, got {value!r}")
        if self.min_frames <= 0:
            raise InvalidInput(f"WindowSpec.min_frames must be positive, got {self.min_frames}")
        if self.max_frames < self.min_frames:
            raise InvalidInput(
                f"WindowSpec.max_frames={self.max_frames} is below min_frames={self.min_frames}"
            )
        if self.overlap_frames < 0:
            raise InvalidInput(f"WindowSpec.overlap_frames must be >= 0, got {self.overlap_frames}")
        if 2 * self.overlap_frames > self.min_frames:
            raise InvalidInput(
                f"WindowSpec.overlap_frames={self.overlap_frames} is more than half of "
                f"min_frames={self.min_frames}: only neighbouring windows may overlap"
            )

    @property
    def gap_min(self) -> int:
        """Smallest distance between consecutive joins."""
        return self.min_frames - self.overlap_frames

    @property
    def gap_max(self) -> int:
        """Largest distance between consecutive joins."""
        return self.max_frames - self.overlap_frames


@dataclass(frozen=True)
class Window:
    """Latent frames [start, end) of the timeline, rendered as one piece."""

    index: int
    start: int
    end: int

    @property
    def num_frames(self) -> int:
        return self.end - self.start


def _splittable(span: int, spec: WindowSpec) -> bool:
    """Whether `span` frames of join distance split into gaps within [gap_min, gap_max]."""
    if span == 0:
        return True
    if span < 0:
        return False
    fewest = -(-span // spec.gap_max)
    return fewest * spec.gap_min <= span


def plan_windows(total: int, cuts: Sequence[int], spec: WindowSpec) -> list[Window]:
    """Cover [0, total) latent frames with overlapping windows; joins prefer shot cuts. Pure.

    Windows have lengths in [min_frames, max_frames] and neighbours overlap by exactly
    overlap_frames (at least, in the fallback described above). A timeline of at most max_frames
    is one window [0, total) — no seam at all, whatever the cuts.
    `cuts` are latent frames where a new shot starts (any order; out-of-range ones are ignored).
    """
    if isinstance(total, bool) or not isinstance(total, int) or total <= 0:
        raise InvalidInput(f"cannot plan windows over {total!r} latent frames (need a positive integer)")
    if total <= spec.max_frames:
        return [Window(0, 0, total)]
    half = spec.overlap_frames // 2
    first, last = half, total + half - spec.overlap_frames
    if not _splittable(last - first, spec):
        return _spread_min_windows(total, spec)
    anchors = [first, *sorted({int(c) for c in cuts if first < c < last}), last]
    chosen = _longest_cut_chain(anchors, spec)
    join_frames = [first]
    for a, b in zip(chosen[:-1], chosen[1:]):
        parts = -(-(b - a) // spec.gap_max)
        join_frames.extend(a + (i * (b - a)) // parts for i in range(1, parts + 1))
    return [
        Window(i, a - half, b - half + spec.overlap_frames)
        for i, (a, b) in enumerate(zip(join_frames[:-1], join_frames[1:]))
    ]


def _spread_min_windows(total: int, spec: WindowSpec) -> list[Window]:
    """Fallback when exact overlaps cannot fit (max_frames close to min_frames): windows of
    min_frames, evenly spread, overlapping by at least overlap_frames; cuts are not considered."""
    count = -(-(total - spec.overlap_frames) // spec.gap_max)
    span = total - spec.min_frames
    starts = [i * span // (count - 1) for i in range(count)]
    return [Window(i, s, s + spec.min_frames) for i, s in enumerate(starts)]


def _always_splittable_from(spec: WindowSpec) -> int | None:
    """Smallest span from which every larger span is splittable (None when gap_min == gap_max)."""
    if spec.gap_max == spec.gap_min:
        return None
    m0 = -(-(spec.gap_min - 1) // (spec.gap_max - spec.gap_min))
    return max(m0, 1) * spec.gap_min


def _longest_cut_chain(anchors: list[int], spec: WindowSpec) -> list[int]:
    """Longest chain from anchors[0] to anchors[-1] with splittable spans (first/last always in)."""
    n = len(anchors)
    threshold = _always_splittable_from(spec)
    best = [-1] * n  # most anchors on a chain from anchors[0] to anchors[j]; -1: unreachable
    prev = [-1] * n
    best[0] = 1
    prefix_best: list[tuple[int, int]] = [(1, 0)]  # (best, later index) max over anchors[0..j]
    for j in range(1, n):
        cand = (-1, -1)
        if threshold is not None:
            far = bisect.bisect_right(anchors, anchors[j] - threshold) - 1  # spans >= threshold
            if far >= 0:
                cand = prefix_best[far]
        else:
            far = -1
        for i in range(j - 1, far, -1):
            if best[i] > 0 and (best[i], i) > cand and _splittable(anchors[j] - anchors[i], spec):
                cand = (best[i], i)
        if cand[0] > 0:
            best[j], prev[j] = cand[0] + 1, cand[1]
        prefix_best.append(max(prefix_best[-1], (best[j], j)))
    assert best[-1] > 0, f"no chain over {anchors[0]}..{anchors[-1]} for {spec}"
    chain = [n - 1]
    while chain[-1] != 0:
        chain.append(prev[chain[-1]])
    return [anchors[i] for i in reversed(chain)]


def joins(windows: Sequence[Window]) -> list[int]:
    """Centre frame of each overlap between neighbours: (next.start + prev.end) // 2."""
    return [(b.start + a.end) // 2 for a, b in zip(windows[:-1], windows[1:])]


def shot_bounds(windows: Sequence[Window], cut_pictures: Mapping[int, int]) -> list[tuple[int | None, int | None]]:
    """For each window, the picture frames [from, to) it may see; None: no bound on that side. Pure.

    `cut_pictures` maps a cut's latent frame to the picture frame (of the proxy's frame grid) where
    the new shot starts. Where the join between two windows lies on a cut, the window before it
    sees only the old shot and the window after it only the new one: the model then renders no
    cut inside either window (a picture cut inside a window can sound like a knock) and the
    join's crossfade hands the sound from one shot to the next. Joins that are not cuts leave the
    pictures unbounded, and so does a cut inside a window (no join there to hand over).
    """
    bounds: list[list[int | None]] = [[None, None] for _ in windows]
    for i, join in enumerate(joins(windows)):
        if join in cut_pictures:
            bounds[i][1] = cut_pictures[join]
            bounds[i + 1][0] = cut_pictures[join]
    return [(lo, hi) for lo, hi in bounds]

"""plan_windows(): coverage, bounds, overlaps, determinism, and joins centred on shot cuts."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_farm.errors import InvalidInput
from render_farm.timeline.windows import Window, WindowSpec, joins, plan_windows, shot_bounds


@st.composite
def specs(draw) -> WindowSpec:
    overlap = draw(st.integers(0, 40))
    lo = draw(st.integers(max(1, 2 * overlap), 2 * overlap + 200))
    hi = draw(st.integers(lo, lo + 300))
    return WindowSpec(lo, hi, overlap)


def check_plan(windows: list[Window], total: int, spec: WindowSpec) -> None:
    assert windows[0].start == 0 and windows[-1].end == total, f"{windows=}"
    assert [w.index for w in windows] == list(range(len(windows)))
    if total < spec.min_frames:
        assert windows == [Window(0, 0, total)]
        return
    for w in windows:
        assert spec.min_frames <= w.num_frames <= spec.max_frames, f"{w=} {spec=}"
    for a, b in zip(windows[:-1], windows[1:]):
        assert a.start < b.start and a.end < b.end, f"{a=} {b=}"
        assert a.end - b.start >= spec.overlap_frames, f"{a=} {b=} {spec=}"  # covered, overlapping
    exact = all(a.end - b.start == spec.overlap_frames for a, b in zip(windows[:-1], windows[1:]))
    if exact:  # the normal plan (not the min == max style fallback): only neighbours share frames
        for a, c in zip(windows[:-2], windows[2:]):
            assert a.end <= c.start, f"{a=} {c=}"


@settings(max_examples=300, deadline=None)
@given(spec=specs(), total=st.integers(1, 5000), data=st.data())
def test_plan_covers_with_bounded_overlapping_windows(spec, total, data):
    cuts = data.draw(st.lists(st.integers(-10, total + 10), max_size=30))
    windows = plan_windows(total, cuts, spec)
    check_plan(windows, total, spec)
    assert plan_windows(total, list(reversed(cuts)), spec) == windows  # deterministic, order-free


@settings(max_examples=200, deadline=None)
@given(spec=specs(), data=st.data())
def test_cuts_in_reach_become_joins(spec, data):
    """Cuts spaced as joins can be (gaps within [min - O, max - O]) all become overlap centres."""
    half = spec.overlap_frames // 2
    gaps = data.draw(st.lists(st.integers(spec.gap_min, spec.gap_max), min_size=2, max_size=12))
    anchors = [half]
    for g in gaps:
        anchors.append(anchors[-1] + g)
    total = anchors[-1] - half + spec.overlap_frames
    cuts = anchors[1:-1]
    windows = plan_windows(total, cuts, spec)
    check_plan(windows, total, spec)
    if total > spec.max_frames:  # otherwise one window covers it all: no seam at all
        assert set(cuts) <= set(joins(windows)), f"{cuts=} {joins(windows)=}"
    else:
        assert len(windows) == 1


def test_single_cut_centres_the_seam():
    spec = WindowSpec(250, 470, 31)
    windows = plan_windows(800, [430], spec)
    assert joins(windows) == [430]
    a, b = windows
    assert (a.end + b.start) / 2 == pytest.approx(430, abs=0.5)
    assert a.end - b.start == 31


def test_without_cuts_windows_are_equal_and_long():
    spec = WindowSpec(250, 470, 31)
    windows = plan_windows(10_000, [], spec)
    lengths = [w.num_frames for w in windows]
    assert max(lengths) - min(lengths) <= 1, f"{lengths=}"
    assert len(windows) == -(-(10_000 - 31) // (470 - 31))  # fewest windows that fit


def test_cuts_too_close_keep_valid_windows():
    spec = WindowSpec(250, 470, 31)
    cuts = list(range(100, 3000, 37))
    windows = plan_windows(3000, cuts, spec)
    check_plan(windows, 3000, spec)
    assert len(set(joins(windows)) & set(cuts)) >= len(windows) - 2


def test_short_and_exact_fit():
    spec = WindowSpec(100, 200, 20)
    assert plan_windows(37, [10], spec) == [Window(0, 0, 37)]
    assert plan_windows(200, [], spec) == [Window(0, 0, 200)]
    assert plan_windows(201, [], spec)[0].start == 0


def test_fixed_length_windows_fall_back_to_spread():
    spec = WindowSpec(100, 100, 10)
    for total in (101, 150, 191, 1000, 1234):
        check_plan(plan_windows(total, [50, 300], spec), total, spec)


def test_latent_rate_example():
    """8–15 s windows overlapping 1 s at 31.25 Hz over a 10-minute video."""
    spec = WindowSpec(250, 469, 31)
    total = 18_750
    windows = plan_windows(total, [3125, 3200, 9000], spec)
    check_plan(windows, total, spec)
    chosen = set(joins(windows))
    assert 9000 in chosen and len(chosen & {3125, 3200}) == 1, f"{chosen=}"  # 75 frames apart: one of them


@pytest.mark.parametrize(
    "args",
    [(0, 10, 0), (-1, 10, 0), (10, 5, 0), (10, 20, -1), (10, 20, 10), (10, 20, 6), (10.0, 20, 1), (True, 20, 0)],
)
def test_spec_validation(args):
    with pytest.raises(InvalidInput):
        WindowSpec(*args)


def test_bad_total():
    with pytest.raises(InvalidInput):
        plan_windows(0, [], WindowSpec(10, 20, 2))


def test_shot_bounds_split_the_pictures_at_joins_that_are_cuts():
    """Each side of a join on a cut sees one shot; other joins and cuts inside windows bound nothing."""
    spec = WindowSpec(250, 469, 31)
    windows = plan_windows(2000, [600, 1400], spec)
    chosen = joins(windows)
    assert 600 in chosen and 1400 in chosen, f"{chosen=}"
    cut_pictures = {600: 461, 1400: 1075, 1990: 1528}  # latent frame -> picture frame (24 fps); 1990: no join
    bounds = shot_bounds(windows, cut_pictures)
    assert len(bounds) == len(windows)
    for i, (j, (a, b)) in enumerate(zip(chosen, zip(windows[:-1], windows[1:]))):
        if j in (600, 1400):
            assert bounds[i][1] == bounds[i + 1][0] == cut_pictures[j], f"{i=} {bounds=}"
        else:
            assert bounds[i][1] is None and bounds[i + 1][0] is None, f"{i=} {bounds=}"
    assert bounds[0][0] is None and bounds[-1][1] is None
    assert sum(lo is not None for lo, _ in bounds) == 2
    assert shot_bounds([Window(0, 0, 100)], {50: 38}) == [(None, None)]  # one window: no join to hand over

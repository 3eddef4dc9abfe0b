"""stitch(): weights sum to one, cut-and-stitch is the identity, streaming equals whole."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_farm.errors import InvalidInput
from render_farm.timeline.stitch import StreamingStitcher, crossfade_weights, stitch
from render_farm.timeline.windows import Window, WindowSpec, plan_windows


@st.composite
def plans(draw):
    overlap = draw(st.integers(0, 30))
    lo = draw(st.integers(max(1, 2 * overlap), 2 * overlap + 120))
    spec = WindowSpec(lo, lo + draw(st.integers(0, 150)), overlap)
    total = draw(st.integers(1, 2000))
    cuts = draw(st.lists(st.integers(0, total), max_size=8))
    return plan_windows(total, cuts, spec), total


@settings(max_examples=200, deadline=None)
@given(plan=plans())
def test_weights_sum_to_one(plan):
    windows, total = plan
    weights = crossfade_weights(windows, total)
    acc = np.zeros(total)
    for w, wt in zip(windows, weights):
        assert wt.shape == (w.num_frames,) and np.all(wt > 0) and np.all(wt <= 1 + 1e-12)
        acc[w.start : w.end] += wt
    np.testing.assert_allclose(acc, 1.0, atol=1e-12)


@settings(max_examples=100, deadline=None)
@given(plan=plans(), channels=st.integers(1, 6), seed=st.integers(0, 1000))
def test_cut_and_stitch_is_identity_and_streaming_matches(plan, channels, seed):
    windows, total = plan
    x = np.random.default_rng(seed).standard_normal((total, channels)).astype(np.float32)
    parts = [x[w.start : w.end] for w in windows]
    y = stitch(windows, parts, total)
    assert y.shape == x.shape and y.dtype == np.float32
    np.testing.assert_allclose(y, x, atol=1e-5)
    stitcher = StreamingStitcher(windows, total)
    pieces = [stitcher.push(i, p) for i, p in enumerate(parts)]
    stitcher.finish()
    assert np.array_equal(np.concatenate(pieces), y)


def test_streaming_keeps_memory_bounded():
    spec = WindowSpec(250, 470, 31)
    total = 50_000
    windows = plan_windows(total, [], spec)
    stitcher = StreamingStitcher(windows, total)
    done = 0
    for i, w in enumerate(windows):
        out = stitcher.push(i, np.ones((w.num_frames, 4), np.float32))
        assert stitcher._pending is not None and stitcher._pending.shape[0] <= spec.max_frames
        done += out.shape[0]
        np.testing.assert_allclose(out, 1.0, atol=1e-6)
    assert done == total


def test_crossfade_is_a_raised_cosine():
    windows = [Window(0, 0, 10), Window(1, 6, 16)]
    w0, w1 = crossfade_weights(windows, 16)
    assert np.all(w0[:6] == 1) and np.all(w1[4:] == 1)
    m = np.arange(4)
    np.testing.assert_allclose(w1[:4], 0.5 - 0.5 * np.cos(np.pi * (m + 0.5) / 4))
    assert np.all(np.diff(w0[6:]) < 0)


def test_three_way_overlap_still_sums_to_one():
    windows = plan_windows(25, [], WindowSpec(10, 10, 4))  # fallback: min-length windows
    total = 25
    acc = np.zeros(total)
    for w, wt in zip(windows, crossfade_weights(windows, total)):
        acc[w.start : w.end] += wt
    np.testing.assert_allclose(acc, 1.0, atol=1e-12)


def test_refusals():
    windows = [Window(0, 0, 10), Window(1, 8, 20)]
    with pytest.raises(InvalidInput):
        stitch(windows, [np.zeros((10, 2)), np.zeros((11, 2))], 20)
    with pytest.raises(InvalidInput):
        stitch([Window(0, 0, 10), Window(1, 12, 20)], [np.zeros((10, 2)), np.zeros((8, 2))], 20)
    with pytest.raises(InvalidInput):
        crossfade_weights(windows, 25)
    stitcher = StreamingStitcher(windows, 20)
    with pytest.raises(InvalidInput):
        stitcher.push(1, np.zeros((12, 2)))
    stitcher.push(0, np.zeros((10, 2)))
    with pytest.raises(InvalidInput):
        stitcher.finish()

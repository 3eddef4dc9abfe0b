"""timeline_noise(): any slice equals the same frames of the whole timeline, bit for bit."""
from __future__ import annotations

import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from render_farm.errors import InvalidInput
from render_farm.timeline.noise import candidate_seed, reference_row, timeline_noise
from render_farm.timeline.windows import WindowSpec, plan_windows


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**64 - 1),
    channels=st.integers(1, 24),
    start=st.integers(0, 300),
    length=st.integers(0, 120),
)
def test_slice_equals_whole(seed, channels, start, length):
    whole = timeline_noise(seed, 0, start + length + 5, channels)
    part = timeline_noise(seed, start, start + length, channels)
    assert part.shape == (length, channels) and part.dtype == np.float32
    assert np.array_equal(part, whole[start : start + length])


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32), total=st.integers(300, 1500), lo=st.integers(60, 150), data=st.data())
def test_any_planning_gives_the_same_noise(seed, total, lo, data):
    spec = WindowSpec(lo, lo + data.draw(st.integers(0, 200)), data.draw(st.integers(0, lo // 2)))
    cuts = data.draw(st.lists(st.integers(0, total), max_size=6))
    whole = timeline_noise(seed, 0, total, 8)
    for w in plan_windows(total, cuts, spec):
        assert np.array_equal(timeline_noise(seed, w.start, w.end, 8), whole[w.start : w.end]), f"{w=}"


def test_matches_the_documented_derivation():
    got = timeline_noise(12345, 997, 1003, 5)
    want = np.stack([reference_row(12345, f, 5) for f in range(997, 1003)])
    assert np.array_equal(got, want)
    # and the constants of the contract (first values pinned so a silent change is caught)
    np.testing.assert_allclose(
        timeline_noise(0, 0, 1, 3)[0],
        np.random.Generator(np.random.Philox(key=[0, 0x464F4C4559], counter=[0, 0, 0, 0])).standard_normal(3, dtype=np.float32),
    )


def test_statistics_and_independence():
    x = timeline_noise(7, 0, 4000, 16).astype(np.float64)
    assert abs(x.mean()) < 0.02 and abs(x.std() - 1) < 0.02, f"{x.mean()=} {x.std()=}"
    lag1 = np.corrcoef(x[:-1].ravel(), x[1:].ravel())[0, 1]
    assert abs(lag1) < 0.02, f"{lag1=}"  # neighbouring frames do not share bits
    assert not np.array_equal(timeline_noise(7, 0, 10, 4), timeline_noise(8, 0, 10, 4))


def test_fast_enough():
    t0 = time.perf_counter()
    timeline_noise(1, 0, 20_000, 40)
    elapsed = time.perf_counter() - t0
    assert elapsed < 0.6, f"{elapsed=}"


@pytest.mark.parametrize("args", [(-1, 0, 1, 1), (2**64, 0, 1, 1), (1, -1, 2, 1), (1, 5, 4, 1), (1, 0, 1, 0)])
def test_refuses_bad_arguments(args):
    with pytest.raises(InvalidInput):
        timeline_noise(*args)


def test_candidate_zero_keeps_the_job_noise_and_each_candidate_has_its_own() -> None:
    assert candidate_seed(2**64 - 1, 0) == 2**64 - 1
    seeds = [candidate_seed(42, k) for k in range(6)]
    assert seeds[0] == 42 and len(set(seeds)) == 6 and seeds == [candidate_seed(42, k) for k in range(6)]
    assert all(0 <= s < 2**64 for s in seeds)
    assert candidate_seed(43, 1) != seeds[1]
    a, b = timeline_noise(seeds[1], 0, 50, 8), timeline_noise(seeds[2], 0, 50, 8)
    assert abs(np.corrcoef(a.ravel(), b.ravel())[0, 1]) < 0.1
    # a candidate's noise is still timeline noise: any slice equals the whole's frames
    assert np.array_equal(timeline_noise(seeds[3], 10, 30, 8), timeline_noise(seeds[3], 0, 40, 8)[10:30])
    with pytest.raises(InvalidInput):
        candidate_seed(1, -1)

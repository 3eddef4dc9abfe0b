"""Length buckets and batch planning: pure, property-tested."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from render_farm.timeline.buckets import BUCKET_MULTIPLE, bucket_for, length_buckets, plan_batches

window_ranges = st.integers(1, 600).flatmap(lambda lo: st.tuples(st.just(lo), st.integers(lo, lo + 400)))


def test_the_tiny_models_window_range_gets_three_buckets():
    # tiny: windows of 3..4 s at 31.25 Hz = 94..125 latent frames
    assert length_buckets(94, 125) == (16, 32, 64, 96, 112, 128)
    assert [bucket_for(n, length_buckets(94, 125)) for n in (1, 40, 94, 96, 97, 112, 113, 125)] == \
        [16, 64, 96, 96, 112, 112, 128, 128]


@given(window_ranges, st.integers(1, 5))
def test_buckets_are_few_ascending_multiples_that_hold_every_planned_length(rng, count):
    lo, hi = rng
    buckets = length_buckets(lo, hi, count=count)
    assert list(buckets) == sorted(set(buckets))
    assert all(b % BUCKET_MULTIPLE == 0 for b in buckets)
    assert buckets[-1] >= hi
    assert len([b for b in buckets if b >= lo]) <= count  # the window range uses at most `count` shapes
    step = hi - lo if count == 1 else -(-(hi - lo) // (count - 1))
    for n in {1, lo // 2 + 1, lo, (lo + hi) // 2, hi}:
        b = bucket_for(n, buckets)
        assert b in buckets and b >= n
        if n >= lo:  # planned windows: at most one bucket step of padding
            assert b - n < step + BUCKET_MULTIPLE
        else:  # a video shorter than one window: about double, or the shortest window's bucket
            assert b < 2 * n + BUCKET_MULTIPLE or b == bucket_for(lo, buckets)


@given(st.lists(st.integers(1, 200), min_size=1, max_size=60), st.integers(1, 8), window_ranges)
def test_plan_batches_partitions_windows_into_buckets_in_timeline_order(lengths, batch_windows, rng):
    buckets = length_buckets(*rng)
    batches = plan_batches(lengths, batch_windows, buckets)
    assert plan_batches(lengths, batch_windows, buckets) == batches  # deterministic
    assert sorted(i for b in batches for i in b.windows) == list(range(len(lengths)))
    assert [b.index for b in batches] == list(range(len(batches)))
    assert [b.windows[0] for b in batches] == sorted(b.windows[0] for b in batches)
    for b in batches:
        assert 1 <= len(b.windows) <= batch_windows
        assert list(b.windows) == sorted(b.windows)
        assert {bucket_for(lengths[i], buckets) for i in b.windows} == {b.padded_frames}
    # at most one partial batch per bucket
    partial = [b.padded_frames for b in batches if len(b.windows) < batch_windows]
    assert len(partial) == len(set(partial))

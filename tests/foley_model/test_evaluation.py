"""Judging metrics: they score ground truth near perfectly and fail shifted, silent or wrong audio."""

from __future__ import annotations


import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from foley_model.evaluation import (
    aggregate, classify_kind, detect_onsets, f1, match_onsets, score_clip, seam_ratio, side_of,
)
from foley_model.evaluation.onsets import _moving_median
from foley_model.toyworld import Event, GenStyle, stream_clips

SR = 16000


@pytest.fixture(scope="module")
def gt_clips():
    """30 training-style and 10 held-out-style clips (tiny pictures: only the sound matters here)."""
    held = GenStyle.heldout()
    return list(stream_clips(1000, 30, size=(8, 8))) + list(stream_clips(2000, 10, size=(8, 8), style=held))


@pytest.fixture(scope="module")
def gt_scores(gt_clips):
    return aggregate([score_clip(c.audio, c.sample_rate_hz, c.events) for c in gt_clips])


def test_ground_truth_audio_scores_near_perfect(gt_scores):
    s = gt_scores
    assert s["n_clips"] == 40 and s["n_events"] >= 100
    assert s["f1_50"] >= 0.95, s
    assert s["f1_100"] >= s["f1_50"]
    assert s["offset_ms"] <= 8.0, s
    assert s["kind_acc"] >= 0.95, s
    assert s["side_acc"] >= 0.9, s
    assert s["false_per_min"] <= 3.0, s


def test_delayed_audio_loses_f1_at_50ms_not_at_100ms(gt_clips, gt_scores):
    shift = int(0.08 * SR)
    scores = []
    for c in gt_clips[:20]:
        late = np.concatenate([np.zeros((2, shift), np.float32), c.audio[:, :-shift]], axis=1)
        scores.append(score_clip(late, SR, c.events))
    s = aggregate(scores)
    assert s["f1_50"] <= 0.2, s
    assert s["f1_100"] >= 0.85, s
    assert 70 <= s["offset_ms"] <= 90, s


def test_silence_scores_zero(gt_clips):
    scores = [score_clip(np.zeros_like(c.audio), SR, c.events) for c in gt_clips[:10]]
    s = aggregate(scores)
    assert s["n_events"] > 0 and s["f1_50"] == 0.0 and s["f1_100"] == 0.0 and s["false_per_min"] == 0.0
    assert np.isnan(s["kind_acc"]) and np.isnan(s["offset_ms"])


def test_quiet_ambience_alone_gives_no_onsets():
    rng = np.random.default_rng(0)
    spec = np.fft.rfft(rng.standard_normal((2, 4 * SR)))
    spec[:, 400 * 4:] = 0  # below ~400 Hz
    bed = np.fft.irfft(spec, 4 * SR)
    bed *= 0.01 / bed.std()
    assert len(detect_onsets(bed, SR)) == 0


def test_sounds_where_nothing_happens_count_as_false_onsets(gt_clips):
    """Ground-truth audio of one clip judged against another clip's events: many false onsets."""
    swapped = [score_clip(a.audio, SR, b.events) for a, b in zip(gt_clips[:10], gt_clips[1:11])]
    s = aggregate(swapped)
    assert s["false_per_min"] >= 20 and s["f1_50"] <= 0.3, s


def test_swapped_channels_fail_side(gt_clips, gt_scores):
    s = aggregate([score_clip(c.audio[::-1].copy(), SR, c.events) for c in gt_clips])
    assert s["side_acc"] <= 0.1 and s["f1_50"] == gt_scores["f1_50"], s


def test_kind_classifier_on_synthetic_sounds():
    t = np.arange(int(0.5 * SR)) / SR
    rng = np.random.default_rng(1)
    bed = 0.003 * rng.standard_normal(len(t))
    onset = 0.2
    after = np.clip(t - onset, 0, None)
    on = t >= onset
    tone = on * 0.2 * (np.sin(2 * np.pi * 700 * t) + 0.4 * np.sin(2 * np.pi * 1400 * t))
    knock = on * 0.5 * rng.standard_normal(len(t)) * np.exp(-after / 0.08)
    swell = on * 0.2 * rng.standard_normal(len(t)) * np.minimum(1, after / 0.3) ** 2
    assert classify_kind(bed + tone, SR, onset) == "beep"
    assert classify_kind(bed + knock, SR, onset) == "impact"
    assert classify_kind(bed + swell, SR, onset) == "slide"
    # a knock during a steady tone is still a knock, a tone during a knock's tail still a tone
    steady = 0.2 * np.sin(2 * np.pi * 500 * t)
    assert classify_kind(bed + steady + knock, SR, onset) == "impact"
    early_knock = 0.5 * rng.standard_normal(len(t)) * np.exp(-np.clip(t - 0.1, 0, None) / 0.05) * (t >= 0.1)
    assert classify_kind(bed + early_knock + tone, SR, onset) == "beep"


def test_side_of_reads_left_right_balance():
    t = np.arange(SR // 2) / SR
    rng = np.random.default_rng(2)
    knock = (t >= 0.2) * rng.standard_normal(len(t)) * np.exp(-np.clip(t - 0.2, 0, None) / 0.05)
    assert side_of(np.stack([0.2 * knock, 0.9 * knock]), SR, 0.2) == 1
    assert side_of(np.stack([0.9 * knock, 0.2 * knock]), SR, 0.2) == -1
    assert side_of(knock, SR, 0.2) == 0  # mono: no side


def test_detector_finds_isolated_knocks_precisely():
    rng = np.random.default_rng(3)
    audio = 0.002 * rng.standard_normal(3 * SR)
    truth = [0.31, 0.9, 1.4, 2.2, 2.35]
    for k, t0 in enumerate(truth):
        i = int(t0 * SR)
        n = int(0.1 * SR)
        audio[i:i + n] += (0.2 + 0.1 * k) * rng.standard_normal(n) * np.exp(-np.arange(n) / (0.03 * SR))
    det = detect_onsets(audio, SR)
    assert len(det) == len(truth)
    assert np.max(np.abs(det - np.asarray(truth))) <= 0.01


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=300), st.integers(1, 40))
@settings(max_examples=60, deadline=None)
def test_moving_median_is_each_edge_extended_window_median(values, half):
    x = np.asarray(values)
    ref = np.median(np.lib.stride_tricks.sliding_window_view(np.pad(x, half, mode="edge"), 2 * half + 1), axis=1)
    assert np.array_equal(_moving_median(x, half), ref)  # exactly: an odd window's median is one of its values


def test_score_clip_counts_by_hand():
    events = (Event("impact", 1.0, 1.2, 0.5, 0.5, 0), Event("beep", 2.0, 2.5, -0.5, 0.2, 0),
              Event("slide", 3.0, 3.5, 0.0, 0.1, 0))
    audio = np.zeros((2, 4 * SR), np.float32)
    s = score_clip(audio, SR, events, detected_s=np.array([1.03, 2.08, 3.02, 3.6]))
    assert (s.n_truth, s.n_detected, s.matched_50, s.matched_100) == (2, 4, 1, 2)
    assert s.false_onsets == 1  # 3.02 sits on the slide's start (excused); 3.6 is far from every event
    s2 = score_clip(audio, SR, events, detected_s=np.array([0.5]))
    assert s2.false_onsets == 1 and s2.f1_50 == 0.0
    agg = aggregate([s, s2])
    assert agg["f1_100"] == pytest.approx(2 * 2 / (5 + 4))
    assert agg["offset_ms"] == pytest.approx((30 + 80) / 2)


def test_seam_ratio_separates_audible_joins_from_seamless_ones():
    rng = np.random.default_rng(4)
    n = 8 * SR
    steady = 0.1 * rng.standard_normal(n)
    joins = [2.0, 4.0, 6.0]
    assert 0.5 <= seam_ratio(steady, SR, joins, rng_seed=0) <= 1.6
    spliced = steady.copy()
    for j in joins:  # a level and colour jump at each join
        i = int(j * SR)
        spliced[i:] = np.roll(spliced[i:], 1000) * (2.0 if (joins.index(j) % 2 == 0) else 0.5)
    spliced[int(2 * SR):int(4 * SR)] += 0.3 * np.sin(2 * np.pi * 900 * np.arange(2 * SR) / SR)
    assert seam_ratio(spliced, SR, joins, rng_seed=0) >= 3.0
    assert np.isnan(seam_ratio(steady, SR, [], rng_seed=0))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.floats(0, 10), max_size=12), st.lists(st.floats(0, 10), max_size=12), st.floats(0.01, 0.3))
def test_matching_is_one_to_one_within_tolerance(det, truth, tol):
    pairs = match_onsets(det, truth, tol)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})
    assert all(abs(det[i] - truth[j]) <= tol + 1e-9 for i, j in pairs)
    # maximal: no unmatched detection is within tolerance of an unmatched truth
    free_d = set(range(len(det))) - {i for i, _ in pairs}
    free_t = set(range(len(truth))) - {j for _, j in pairs}
    assert not any(abs(det[i] - truth[j]) <= tol for i in free_d for j in free_t)
    # maximum: as many pairs as the brute-force optimum (small cases)
    if len(det) <= 5 and len(truth) <= 5:
        assert len(pairs) == _max_pairs(det, truth, tol)
    assert 0.0 <= f1(len(pairs), len(det), len(truth)) <= 1.0


def _max_pairs(det, truth, tol) -> int:
    if not det or not truth:
        return 0
    rest = _max_pairs(det[1:], truth, tol)  # leave det[0] unmatched, or match it to some truth
    for j, t in enumerate(truth):
        if abs(det[0] - t) <= tol:
            rest = max(rest, 1 + _max_pairs(det[1:], truth[:j] + truth[j + 1:], tol))
    return rest


def test_matching_prefers_nearest_and_most_pairs():
    assert match_onsets([1.00, 1.04], [1.03], 0.05) == [(1, 0)]
    # every detection 80 ms late: greedy nearest-first would pair 1.08 with 1.10 and lose a pair
    assert match_onsets([1.08, 1.18], [1.0, 1.1], 0.1) == [(0, 0), (1, 1)]
    assert f1(0, 0, 0) == 1.0 and f1(0, 3, 0) == 0.0

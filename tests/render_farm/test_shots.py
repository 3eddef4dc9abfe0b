"""detect_cuts(): finds the hard cuts of a generated video (±1 frame) and nothing else."""
from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from render_farm.errors import InvalidInput
from render_farm.media.frames import iter_frames
from render_farm.timeline.latent_time import LATENT_RATE_16K_HZ
from render_farm.timeline.shots import (cut_pictures_by_latent_frame, cuts_from_differences, cuts_to_latent_frames,
                                        detect_cuts, frame_differences)
from tests.media_factory import make_video


def frames_of(path, fps=24):
    return (f.rgb for f in iter_frames(path, fps, (64, 48)))


def test_finds_known_cuts(tmp_path):
    made = make_video(tmp_path / "cuts.mp4", duration_s=6.0, fps=24, cuts_s=[0.8, 2.0, 2.6, 4.5])
    found = detect_cuts(frames_of(made.path), 24)
    assert len(found) == len(made.cut_frames), f"{found=} {made.cut_frames=}"
    for got, want in zip(found, made.cut_frames):
        assert abs(got - want) <= 1, f"{found=} {made.cut_frames=}"


def test_cuts_on_a_vfr_video_at_8_fps(tmp_path):
    made = make_video(tmp_path / "cuts.mkv", duration_s=6.0, vfr=True, cuts_s=[1.5, 4.0])
    found = detect_cuts(frames_of(made.path, 8), 8)
    want = [made.frame_times_s[k] for k in made.cut_frames]  # cut times
    assert len(found) == 2 and all(abs(Fraction(f, 8) - t) <= Fraction(1, 8) for f, t in zip(found, want)), f"{found=} {want=}"


def test_no_false_cuts_on_motion(tmp_path):
    made = make_video(tmp_path / "calm.mp4", duration_s=5.0, fps=24)
    assert detect_cuts(frames_of(made.path), 24) == []


def test_noise_and_flicker_do_not_fire():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
    frames = [np.clip(base.astype(int) + rng.integers(-25, 25, base.shape), 0, 255).astype(np.uint8) for _ in range(60)]
    assert detect_cuts(frames, 24) == []


def test_adaptive_threshold_and_min_shot():
    diffs = np.full(100, 0.02)
    diffs[0] = 0.0
    diffs[30] = 0.5  # a clear cut
    diffs[60] = 0.25  # below min_score
    diffs[80], diffs[82] = 0.4, 0.6  # two within min_shot_s: keep the stronger
    assert cuts_from_differences(diffs, 24) == [30, 82]
    busy = np.full(100, 0.15)  # everything moves a lot: 0.5 is not 4× the local median
    busy[50] = 0.55
    assert cuts_from_differences(busy, 24) == []


def test_frame_differences_range():
    black = np.zeros((32, 32, 3), np.uint8)
    white = np.full((32, 32, 3), 255, np.uint8)
    d = frame_differences([black, black, white])
    assert d[0] == 0 and d[1] == 0 and d[2] == pytest.approx(1.0)


def test_cuts_to_latent_frames():
    # 24 fps frame 24 is at 1 s = latent frame 31.25 → 31; frame 12 at 0.5 s → 15.625 → 16
    assert cuts_to_latent_frames([24, 12, 24], 24, LATENT_RATE_16K_HZ) == [16, 31]
    assert cuts_to_latent_frames([], 24, LATENT_RATE_16K_HZ) == []
    # each latent frame keeps the earliest picture that maps to it (48 fps frames 24 and 25 both land on 16)
    assert cut_pictures_by_latent_frame([48, 25, 24], 48, LATENT_RATE_16K_HZ) == {16: 24, 31: 48}


def test_refusals():
    with pytest.raises(InvalidInput):
        detect_cuts([np.zeros((8, 8, 3), np.uint8)], 24)
    with pytest.raises(InvalidInput):
        cuts_from_differences(np.zeros(3), 0)
    with pytest.raises(InvalidInput):
        cuts_from_differences(np.zeros(3), 24, threshold=0.5)

"""Motion references from the source's own frames: grid picks, the picture 1/24 s before each picked
frame, never across a cut; and the frame encoder given the previous frames as references is the encoder
without them (a 24 fps source changes nothing)."""
from __future__ import annotations

import dataclasses
import math
from fractions import Fraction

import numpy as np
import torch

from foley_model.encoders import frames_to_float
from foley_model.model import frame_cuts
from foley_model.motion import grid_picks, pictures_before, shot_floor
from foley_model.toyworld import GenStyle, clip_seed, make_clip


def ramp(n: int, step: int = 10, size: tuple[int, int] = (20, 24), cut: int | None = None) -> np.ndarray:
    """Frames of a fixed random texture with a 4x4 patch whose value is step * index (a blend's value there
    says where in time it was read); from `cut` on, another texture (a shot cut)."""
    h, w = size
    rng = np.random.default_rng(7)
    a, b = (rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(2))
    out = np.stack([a if cut is None or i < cut else b for i in range(n)]).copy()
    out[:, :4, :4] = (np.arange(n) * step % 256).astype(np.uint8)[:, None, None, None]
    return out


def test_grid_picks_are_the_frame_on_screen_at_each_grid_time():
    for src_fps in (Fraction(30000, 1001), Fraction(25), Fraction(60), Fraction(24), Fraction(15)):
        src_t0, grid_t0 = Fraction(7, 30), Fraction(1, 3)
        got = grid_picks(src_t0, src_fps, 200, grid_t0, Fraction(24), 48)
        for k, j in enumerate(got):
            t = grid_t0 + Fraction(k, 24)
            assert src_t0 + j / src_fps <= t < src_t0 + (j + 1) / src_fps, f"{src_fps=} {k=} {j=}"
    # before the first source frame: the first; past the last: the last
    assert grid_picks(Fraction(1), Fraction(30), 5, Fraction(0), Fraction(24), 40).tolist()[:3] == [0, 0, 0]
    assert grid_picks(Fraction(0), Fraction(30), 5, Fraction(0), Fraction(24), 40)[-1] == 4


def test_at_24_fps_the_reference_is_the_previous_frame():
    rng = np.random.default_rng(1)
    src = rng.integers(0, 256, (30, 20, 24, 3), dtype=np.uint8)
    picks = np.arange(30)
    got = pictures_before(src, Fraction(24), picks)
    assert np.array_equal(got[1:], src[:-1]) and np.array_equal(got[0], src[0])


def test_the_reference_is_read_one_24th_of_a_second_back_by_time():
    src = ramp(40, step=5)  # values up to 195: no wrap
    for fps in (Fraction(30), Fraction(60), Fraction(30000, 1001), Fraction(50)):
        picks = grid_picks(Fraction(0), fps, 40, Fraction(0), Fraction(24), 12)
        got = pictures_before(src, fps, picks)
        lag = float(fps / 24)  # source frames in 1/24 s
        want = np.rint(np.maximum(picks - lag, 0) * 5)
        assert np.array_equal(got[:, 0, 0, 0], want.astype(np.uint8)), f"{fps=}"
        assert np.array_equal(got[:, 5:], src[picks][:, 5:])  # the still texture: no motion
        # a steady ramp reads as the same step at every frame past the start: no judder
        steps = src[picks][:, 0, 0, 0].astype(int) - got[:, 0, 0, 0].astype(int)
        first = int(math.ceil(lag))
        assert np.all(np.abs(steps[first:] - 5 * lag) <= 0.5 + 1e-9), f"{fps=} {steps=}"


def test_the_reference_never_reaches_back_across_a_cut_or_below_min_index():
    src = ramp(30, step=4, size=(32, 32), cut=12)
    assert shot_floor(src, Fraction(60)).tolist() == [0] * 12 + [12] * 18
    picks = np.array([10, 12, 13, 14, 20])
    got = pictures_before(src, Fraction(60), picks)  # 2.5 frames back
    assert np.array_equal(got[1], src[12]) and np.array_equal(got[2], src[12])  # clamped to the new shot
    assert np.array_equal(got[3], src[12])  # 14 - 2.5 = 11.5 -> clamped to 12
    assert np.array_equal(got[4], np.rint(0.5 * src[17].astype(float) + 0.5 * src[18]).astype(np.uint8))
    assert np.array_equal(got[0], np.rint(0.5 * src[7].astype(float) + 0.5 * src[8]).astype(np.uint8))
    floor = pictures_before(src, Fraction(60), picks, min_index=np.array([9, 9, 9, 9, 19]))
    assert np.array_equal(floor[0], src[9]) and np.array_equal(floor[4], src[19])
    # frames too small for the cut detector: one shot
    assert shot_floor(src[:, :8, :8], Fraction(60)).tolist() == [0] * 30


def test_the_encoder_with_previous_frames_as_references_is_the_encoder_without(tiny_model):
    """What a 24 fps source gives through a proxy at its own rate: features are unchanged, with and
    without a shot cut, and with frames past the end."""
    style = dataclasses.replace(GenStyle.heldout(), p_cut=1.0)
    clips = [make_clip(clip_seed(5151, i), duration_s=3.0, fps=24.0, size=(96, 54), sample_rate_hz=16000,
                       style=style) for i in range(4)]
    m = tiny_model
    x = frames_to_float(torch.from_numpy(np.stack([c.frames for c in clips])), m.cfg.encoders.frame_size)
    prev = torch.cat([x[:, :1], x[:, :-1]], dim=1)
    assert any(frame_cuts(x)), "the test needs a clip with a cut"
    with torch.no_grad():
        assert torch.equal(m.frame_encoder(x), m.frame_encoder(x, prev))
        assert torch.allclose(m.encode_frames(x), m.encode_frames(x, before=prev), atol=1e-6)
        valid = [x.shape[1], 40, 60, x.shape[1]]
        assert torch.allclose(m.encode_frames(x, frames_valid=valid),
                              m.encode_frames(x, frames_valid=valid, before=prev), atol=1e-6)
        # and a reference that differs does change the features
        assert not torch.allclose(m.frame_encoder(x), m.frame_encoder(x, x))

"""Seconds ↔ latent frames, exactly."""
from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given
from hypothesis import strategies as st

from render_farm.errors import InvalidInput
from render_farm.timeline.latent_time import (
    LATENT_RATE_16K_HZ,
    LATENT_RATE_44K_HZ,
    exact,
    frame_to_seconds,
    latent_rate_hz,
    num_frames,
    seconds_to_frame,
    seconds_to_nearest_frame,
)


def test_rates():
    assert latent_rate_hz(16_000, 256) == LATENT_RATE_16K_HZ == Fraction(125, 4)
    assert latent_rate_hz(44_100, 512) == LATENT_RATE_44K_HZ
    assert float(LATENT_RATE_44K_HZ) == pytest.approx(43.066, abs=1e-3)


def test_examples():
    assert num_frames(8, LATENT_RATE_16K_HZ) == 250
    assert num_frames(0.1, LATENT_RATE_16K_HZ) == 4  # 3.125 → 4
    assert seconds_to_frame(0.1, LATENT_RATE_16K_HZ) == 3
    assert seconds_to_nearest_frame(Fraction(1, 2), LATENT_RATE_16K_HZ) == 16  # 15.625
    assert frame_to_seconds(125, LATENT_RATE_16K_HZ) == 4
    assert exact(0.1) == Fraction(1, 10)


@given(frame=st.integers(0, 10**7), num=st.integers(1, 10**5), den=st.integers(1, 10**4))
def test_round_trip(frame, num, den):
    rate = Fraction(num, den)
    assert seconds_to_frame(frame_to_seconds(frame, rate), rate) == frame
    assert num_frames(frame_to_seconds(frame, rate), rate) == frame


def test_refusals():
    with pytest.raises(InvalidInput):
        num_frames(-1, 10)
    with pytest.raises(InvalidInput):
        exact(float("nan"))
    with pytest.raises(InvalidInput):
        exact("1")  # type: ignore[arg-type]

"""Seconds ↔ latent frames with exact rational arithmetic (never float seconds). Pure.

Latent frame j covers [j / rate, (j + 1) / rate) seconds of the timeline.
"""
from __future__ import annotations

import math
from fractions import Fraction

from render_farm.errors import InvalidInput

Number = int | float | Fraction

#: 16 kHz audio, hop 256, 2× VAE time compression: 31.25 latent frames per second.
LATENT_RATE_16K_HZ = Fraction(125, 4)
#: 44.1 kHz audio, hop 512, 2× compression (MMAudio's 44.1 kHz variant): ≈43.07 Hz.
LATENT_RATE_44K_HZ = Fraction(44_100, 1_024)


def exact(value: Number) -> Fraction:
    """A Fraction for a time or rate; floats go through their shortest repr (0.1 → 1/10)."""
    if isinstance(value, Fraction):
        return value
    if isinstance(value, int):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"not a finite number: {value!r}")
        return Fraction(repr(value))
    raise InvalidInput(f"not a number: {value!r}")


def latent_rate_hz(sample_rate_hz: int, hop_samples: int, time_compression: int = 2) -> Fraction:
    """Latent frames per second of a Mel-VAE: sample_rate / hop / compression, exactly."""
    assert sample_rate_hz > 0 and hop_samples > 0 and time_compression > 0, (
        f"{sample_rate_hz=} {hop_samples=} {time_compression=}"
    )
    return Fraction(sample_rate_hz, hop_samples * time_compression)


def seconds_to_frame(t_s: Number, rate_hz: Number) -> int:
    """The latent frame whose span contains time t_s (floor(t_s × rate))."""
    return math.floor(exact(t_s) * exact(rate_hz))


def seconds_to_nearest_frame(t_s: Number, rate_hz: Number) -> int:
    """The latent frame boundary nearest to t_s (halves round up)."""
    return math.floor(exact(t_s) * exact(rate_hz) + Fraction(1, 2))


def frame_to_seconds(frame: int, rate_hz: Number) -> Fraction:
    """Start time of latent frame `frame`, exactly."""
    return Fraction(frame) / exact(rate_hz)


def num_frames(duration_s: Number, rate_hz: Number) -> int:
    """Latent frames needed to cover duration_s: ceil(duration × rate)."""
    duration = exact(duration_s)
    if duration < 0:
        raise InvalidInput(f"negative duration: {duration_s!r} s")
    return math.ceil(duration * exact(rate_hz))

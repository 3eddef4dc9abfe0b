"""Post-processing: streamed resampling, loudness and limiting equal their whole-signal forms."""
from __future__ import annotations

import numpy as np
import pyloudnorm
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import signal

from render_farm.errors import InvalidInput
from render_farm.post.limiter import TruePeakLimiter, true_peak_dbtp
from render_farm.post.loudness import StreamingLoudnessMeter
from render_farm.post.master import MasterSpec, MasterStats, master
from render_farm.post.resample import StreamingResampler, resample_whole


def _chunks(x: np.ndarray, size: int):
    return [x[:, i : i + size] for i in range(0, x.shape[1], size)]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 20_000), chunk=st.integers(1, 7_000), rates=st.sampled_from([(16000, 48000), (44100, 48000), (48000, 16000)]))
def test_streamed_resampling_equals_whole(n: int, chunk: int, rates: tuple[int, int]) -> None:
    x = np.random.default_rng(n).standard_normal((2, n)).astype(np.float32)
    whole = resample_whole(x, *rates)
    rs = StreamingResampler(*rates, channels=2)
    parts = [rs.process(c) for c in _chunks(x, chunk)] + [rs.process(np.zeros((2, 0), np.float32), final=True)]
    streamed = np.concatenate(parts, axis=1)
    assert streamed.shape == whole.shape == (2, -(-n * rates[1] // rates[0])), f"{streamed.shape=} {whole.shape=}"
    np.testing.assert_allclose(streamed, whole, atol=1e-5)


def test_resampling_matches_scipy_and_keeps_a_tone() -> None:
    t = np.arange(16000) / 16000
    x = np.sin(2 * np.pi * 440 * t)[None].astype(np.float32)
    y = resample_whole(x, 16000, 48000)
    np.testing.assert_allclose(y, signal.resample_poly(x, 3, 1, axis=1), atol=1e-5)
    t48 = np.arange(48000) / 48000
    assert np.abs(y[0, 200:-200] - np.sin(2 * np.pi * 440 * t48[200:-200])).max() < 2e-3


@pytest.mark.parametrize("seconds", [0.45, 2.0, 13.7])
def test_streaming_meter_equals_pyloudnorm(seconds: float) -> None:
    rng = np.random.default_rng(3)
    n = int(48000 * seconds)
    x = rng.standard_normal((2, n)) * np.linspace(0.001, 0.3, n)  # quiet start exercises the gates
    reference = pyloudnorm.Meter(48000).integrated_loudness(x.T.copy())
    meter = StreamingLoudnessMeter(48000, 2)
    for c in _chunks(x, 5003):
        meter.feed(c)
    assert meter.integrated_lufs() == pytest.approx(reference, abs=1e-6)


def test_silence_has_no_loudness() -> None:
    meter = StreamingLoudnessMeter(48000, 2)
    meter.feed(np.zeros((2, 48000)))
    assert meter.integrated_lufs() == float("-inf")


def test_limiter_holds_the_ceiling_and_leaves_quiet_audio_alone() -> None:
    rng = np.random.default_rng(0)
    x = (rng.standard_normal((2, 96000)) * 0.05).astype(np.float32)
    x[:, 30000:30200] *= 40  # a burst far over full scale
    lim = TruePeakLimiter(48000, 2, ceiling_dbtp=-1.0, gain_db=3.0)
    y = np.concatenate([lim.process(c) for c in _chunks(x, 10000)] + [lim.process(np.zeros((2, 0)), final=True)], axis=1)
    assert y.shape == x.shape
    assert true_peak_dbtp(y) <= -1.0 + 0.05, true_peak_dbtp(y)
    gain = 10 ** (3 / 20)
    np.testing.assert_allclose(y[:, :20000], x[:, :20000] * gain, atol=1e-6)  # far from the burst: pure gain
    whole = TruePeakLimiter(48000, 2, ceiling_dbtp=-1.0, gain_db=3.0).process(x, final=True)
    np.testing.assert_allclose(y, whole, atol=1e-6)


def test_master_reaches_target_loudness_at_48k() -> None:
    rng = np.random.default_rng(5)
    x = (rng.standard_normal((2, 16000 * 8)) * 0.01).astype(np.float32)
    x[:, 40000:40400] += 0.8  # a transient the limiter must catch after the gain
    stats = MasterStats()
    out = np.concatenate(list(master(lambda: _chunks(x, 4000), 16000, 2, MasterSpec(target_lufs=-16.0), stats)), axis=1)
    assert out.shape == (2, 48000 * 8)
    assert stats.output_lufs == pytest.approx(-16.0, abs=1.0)
    assert true_peak_dbtp(out) <= -1.0 + 0.05
    assert pyloudnorm.Meter(48000).integrated_loudness(out.T.astype(np.float64)) == pytest.approx(stats.output_lufs, abs=1e-4)


@pytest.mark.parametrize("kwargs", [{"target_lufs": 3.0}, {"ceiling_dbtp": 2.0}, {"out_rate_hz": 10}])
def test_absurd_master_parameters_are_refused(kwargs: dict) -> None:
    with pytest.raises(InvalidInput):
        MasterSpec(**kwargs)

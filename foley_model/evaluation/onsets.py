"""Onset detection by spectral flux (numpy only), tuned on toy-world ground-truth audio.

Log-magnitude STFT (4 ms hop, 32 ms Hann window); "superflux" novelty: the rise of each bin over
the maximum of its neighbouring bins ``lag`` frames earlier, minus a small dead band, so noise
fluctuations (ambience, a slide's slowly swelling hiss) rise little while knocks and tone onsets
rise a lot; squared rises favour sudden jumps over slow swells. Peaks are picked above an
adaptive threshold (local median plus a margin scaled by the clip's loudest novelty) at least
``min_gap_s`` apart, and shifted by a constant calibrated so ground-truth onsets are hit on average.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import median_filter


@dataclass(frozen=True)
class OnsetParams:
    window_s: float = 0.032
    hop_s: float = 0.004
    lag_frames: int = 3
    time_max_frames: int = 3  # reference = max over this many frames ending lag_frames ago
    freq_max_bins: int = 2  # +-bins of the reference max filter (vibrato / noise tolerance)
    knee_db: float = 45.0  # log compression knee below the reference level
    ref_min_amplitude: float = 0.1  # reference level: the clip's loudest bin, at least this sine's
    dead_band_db: float = 0.0
    min_hz: float = 100.0
    median_s: float = 0.25  # +-window of the local median
    median_factor: float = 4.0  # threshold: this times the local median ...
    rel_threshold: float = 0.0  # ... plus this times the clip's max novelty ...
    abs_threshold: float = 400.0  # ... and at least this (dB^2 summed over bins): silence gives none
    min_gap_s: float = 0.05
    latency_s: float = 0.0  # subtracted from peak times (calibrated on ground truth)


DEFAULT = OnsetParams()


def _mono(audio: np.ndarray) -> np.ndarray:
    a = np.asarray(audio, dtype=np.float64)
    return a.mean(axis=0) if a.ndim == 2 else a


def stft_db(audio: np.ndarray, sample_rate_hz: int, p: OnsetParams = DEFAULT) -> tuple[np.ndarray, float, np.ndarray]:
    """(frames, bins) dB magnitude of the mono mix, the hop in seconds, and the bin frequencies.

    Frame i is centred at time i * hop.
    """
    x = _mono(audio)
    n_fft = 1 << int(round(np.log2(p.window_s * sample_rate_hz)))
    hop = max(1, int(round(p.hop_s * sample_rate_hz)))
    pad = np.pad(x, (n_fft // 2, n_fft // 2 + hop), mode="reflect")
    n_frames = 1 + len(x) // hop
    frames = np.lib.stride_tricks.sliding_window_view(pad, n_fft)[::hop][:n_frames]  # a view, no copy
    mag = np.abs(np.fft.rfft(frames * np.hanning(n_fft), axis=1))
    # compress relative to the clip's loudest bin, but never to less than a moderate sound's, so
    # a silent or ambience-only clip stays near zero; below the knee the scale is ~linear, so quiet
    # slow swells (a slide starting) rise little while sudden loud rises stay big
    ref = max(float(mag.max()), p.ref_min_amplitude * float(np.hanning(n_fft).sum()) / 2)
    knee = ref * 10 ** (-p.knee_db / 20)
    return 20 * np.log10(1 + mag / knee), hop / sample_rate_hz, np.fft.rfftfreq(n_fft, 1 / sample_rate_hz)


def novelty(audio: np.ndarray, sample_rate_hz: int, p: OnsetParams = DEFAULT) -> tuple[np.ndarray, float]:
    """Superflux novelty curve (one value per STFT frame) and its hop in seconds."""
    s, hop_s, freqs = stft_db(audio, sample_rate_hz, p)
    s = s[:, freqs >= p.min_hz]
    ref = s.copy()
    for k in range(1, p.freq_max_bins + 1):  # max filter across frequency (in place: no temporaries)
        np.maximum(ref[:, k:], s[:, :-k], out=ref[:, k:])
        np.maximum(ref[:, :-k], s[:, k:], out=ref[:, :-k])
    past = ref.copy()
    for m in range(1, p.time_max_frames):  # and across the few frames before: noise rarely beats that
        np.maximum(past[m:], ref[:-m], out=past[m:])
    rise = np.zeros_like(s)
    np.subtract(s[p.lag_frames:], past[:-p.lag_frames], out=rise[p.lag_frames:])
    rise -= p.dead_band_db
    np.maximum(rise, 0.0, out=rise)
    nov = np.square(rise, out=rise).sum(axis=1)
    nov[-(p.window_s / hop_s // 2 + 1).__int__():] = 0  # the clip's end is not an onset
    return nov, hop_s


def _moving_median(x: np.ndarray, half: int) -> np.ndarray:
    """Median over [i - half, i + half], the ends extended by their edge value (an odd window: the middle
    value itself, so scipy's filter gives exactly np.median of each window)."""
    return median_filter(np.asarray(x, dtype=np.float64), size=2 * half + 1, mode="nearest")


def detect_onsets(audio: np.ndarray, sample_rate_hz: int, params: OnsetParams = DEFAULT) -> np.ndarray:
    """Onset times in seconds (sorted) of a (C, n) or (n,) signal."""
    nov, hop_s = novelty(audio, sample_rate_hz, params)
    if len(nov) < 3 or not np.any(nov > 0):
        return np.zeros(0)
    med = _moving_median(nov, max(1, int(round(params.median_s / hop_s))))
    thr = np.maximum(params.median_factor * med + params.rel_threshold * nov.max(), params.abs_threshold)
    gap = max(1, int(round(params.min_gap_s / hop_s)))
    cand = np.flatnonzero((nov > thr) & (nov >= np.roll(nov, 1)) & (nov > np.roll(nov, -1)))
    picked: list[int] = []
    for i in cand[np.argsort(-nov[cand], kind="stable")]:  # strongest first, keep min gap
        if all(abs(i - j) >= gap for j in picked):
            picked.append(int(i))
    times = np.sort(np.asarray(picked, dtype=np.float64)) * hop_s - params.latency_s
    return np.maximum(times, 0.0)

"""Scoring generated audio against toy-world ground truth (TOYWORLD "How the model is judged").

Onsets: log-compressed mel-band spectral flux (level-independent: the compression floor is set by
the clip's own loud level), an adaptive median threshold, a minimum gap. Matching: optimal
one-to-one (Hungarian) to impact and beep onsets. Per matched onset, the kind (impact/beep) and the
side are read from the energy that appears after the onset. Detections that match nothing but lie
within 100 ms of a slide's onset are left out of precision and of false onsets (a slide starting
is something happening).
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.ndimage import maximum_filter1d, median_filter

N_FFT = 1024               # 21 ms frames
HOP = 240                  # 5 ms at 48 kHz
N_BANDS = 24               # mel-spaced, F_LO_HZ .. 16 kHz
F_LO_HZ = 150.0            # the ambience bed lies below
COMPRESS_DB = -35.0        # log(1 + P / floor), floor this far under the clip's own loud level
MAX_LAG = 6                # flux = rise of each band over its max in the past MAX_LAG frames (30 ms)
SMOOTH = 3                 # then smoothed over this many frames (Hann)
DELTA = 2.0                # an onset's flux exceeds RATIO x the local (1 s) median + DELTA
RATIO = 1.5
MIN_GAP_S = 0.04
LATENCY_S = -0.0015        # mean detector delay on ground truth (it fires 1.5 ms early), taken off
FLAT_MIN = 0.012           # new energy with a spectral flatness under this is a tone (beep)
CENTRE = 0.15              # |x| under this: no side judged
SCORED = ("impact", "beep")


def _frames(mono: np.ndarray, n_fft: int, hop: int) -> np.ndarray:
    n = max(1 + (len(mono) - n_fft) // hop, 0)
    idx = np.arange(n_fft)[None, :] + hop * np.arange(n)[:, None]
    return mono[idx] * np.hanning(n_fft)


def _band_matrix(sr: int) -> np.ndarray:
    """(N_BANDS, N_FFT//2+1) triangular bands, mel-spaced from F_LO_HZ to 16 kHz."""
    freqs = np.fft.rfftfreq(N_FFT, 1 / sr)
    mel = np.linspace(*(2595 * np.log10(1 + np.array([F_LO_HZ, 16000]) / 700)), N_BANDS + 2)
    edges = 700 * (10 ** (mel / 2595) - 1)
    lo, mid, hi = edges[:-2, None], edges[1:-1, None], edges[2:, None]
    return np.clip(np.minimum((freqs - lo) / (mid - lo), (hi - freqs) / (hi - mid)), 0, None)


def onset_strength(audio: np.ndarray, sr: int) -> tuple[np.ndarray, np.ndarray]:
    """(frame times in s, spectral flux) of (n, channels) audio."""
    mono = audio.mean(axis=1) if audio.ndim == 2 else audio
    spec = np.abs(np.fft.rfft(_frames(mono.astype(np.float64), N_FFT, HOP))) ** 2
    bands = spec @ _band_matrix(sr).T
    loud = np.percentile(bands.max(axis=1), 99) if len(bands) else 1.0
    logb = np.log1p(bands / (loud * 10 ** (COMPRESS_DB / 10) + 1e-20))
    pad = np.vstack([np.repeat(logb[:1], MAX_LAG, axis=0), logb])
    past = np.max([pad[MAX_LAG - lag: MAX_LAG - lag + len(logb)] for lag in range(1, MAX_LAG + 1)], axis=0)
    flux = np.maximum(logb - past, 0).sum(axis=1)
    kernel = np.hanning(SMOOTH + 2)[1:-1]
    flux = np.convolve(flux, kernel / kernel.sum(), mode="same")
    return (np.arange(len(flux)) * HOP + N_FFT / 2) / sr, flux


def detect_onsets(audio: np.ndarray, sr: int) -> np.ndarray:
    """Onset times in seconds."""
    times, flux = onset_strength(audio, sr)
    if len(flux) < 3:
        return np.zeros(0)
    local = median_filter(flux, size=int(1.0 / (HOP / sr)) | 1, mode="nearest")
    gap = max(int(MIN_GAP_S / (HOP / sr)), 1)
    peaks = (flux == maximum_filter1d(flux, 2 * gap + 1)) & (flux > RATIO * local + DELTA)
    out, last = [], -np.inf
    for i in np.flatnonzero(peaks):
        if times[i] - last >= MIN_GAP_S:
            out.append(times[i])
            last = times[i]
    return np.array(out) - LATENCY_S


def match(det: np.ndarray, ref: np.ndarray, tol_s: float) -> list[tuple[int, int]]:
    """Optimal one-to-one pairs (i_det, j_ref) within tol_s: most pairs first, then least total distance."""
    if len(det) == 0 or len(ref) == 0:
        return []
    dist = np.abs(det[:, None] - ref[None, :])
    cost = np.where(dist <= tol_s, dist, 1e6)
    rows, cols = linear_sum_assignment(cost)
    return [(int(i), int(j)) for i, j in zip(rows, cols) if dist[i, j] <= tol_s]


def _power(mono: np.ndarray, start: int, n: int) -> np.ndarray:
    """Power spectrum of mono[start:start+n] (zero outside), smoothed over 3 bins."""
    seg = mono[max(start, 0):max(start + n, 0)]
    seg = np.pad(seg, (0, n - len(seg)))
    return np.convolve(np.abs(np.fft.rfft(seg * np.hanning(n))) ** 2, np.ones(3) / 3, mode="same")


def flatness(mono: np.ndarray, sr: int, t_s: float) -> float:
    """Spectral flatness (150 Hz .. 8 kHz) of the energy that appears in the 40 ms after t_s over
    the 40 ms before it. A tone with a few harmonics ~1e-4, a knock (broadband) ~0.6."""
    n, s = int(0.04 * sr), int(t_s * sr)
    f = np.fft.rfftfreq(n, 1 / sr)
    new = np.maximum(_power(mono, s, n) - _power(mono, s - n - int(0.005 * sr), n), 0)[(f > 150) & (f < 8000)]
    if new.sum() <= 0:
        return 1.0
    new += 1e-4 * new.mean()
    return float(np.exp(np.log(new).mean()) / new.mean())


def side(audio: np.ndarray, sr: int, t_s: float) -> int:
    """+1 right, -1 left: the channel that gained more energy in the 40 ms after t_s over the 40 ms
    before it, gains taken per band (6 log bands, 100 Hz .. 20 kHz) so a steady sound elsewhere cancels."""
    n, s = int(0.04 * sr), int(t_s * sr)
    band = np.digitize(np.fft.rfftfreq(n, 1 / sr), np.geomspace(100, 20000, 7))
    gain = [np.maximum(np.bincount(band, _power(ch, s, n) - _power(ch, s - n - int(0.005 * sr), n)), 0).sum()
            for ch in audio.T]
    return 1 if gain[1] > gain[0] else -1


def _near(t_s: float, times: np.ndarray, tol_s: float = 0.1) -> bool:
    return bool(len(times)) and float(np.abs(times - t_s).min()) <= tol_s


def false_onsets(det: np.ndarray, ref: np.ndarray, slides: np.ndarray, pairs100: list[tuple[int, int]]) -> list[float]:
    """Detections that count as false: in no +-100 ms pair, and more than 100 ms from every scored onset
    (`ref`) and every slide onset."""
    matched = {i for i, _ in pairs100}
    return [float(t) for i, t in enumerate(det) if i not in matched and not _near(t, slides) and not _near(t, ref)]


def score_clip(audio: np.ndarray, sr: int, truth: dict) -> dict:
    """Counts for one clip (sum them over clips, then `metrics`). audio: (n, 2) float."""
    duration_s, mono = truth["duration_s"], audio.mean(axis=1)
    det = detect_onsets(audio, sr)
    det = det[det < duration_s]
    ev = [e for e in truth["events"] if e["kind"] in SCORED]
    ref = np.array([e["onset_s"] for e in ev])
    slides = np.array([e["onset_s"] for e in truth["events"] if e["kind"] not in SCORED])
    pairs50, pairs100 = match(det, ref, 0.05), match(det, ref, 0.10)
    matched = {i for i, _ in pairs100}
    unmatched = [t for i, t in enumerate(det) if i not in matched]
    excused = [t for t in unmatched if _near(t, slides)]            # a slide starting: neither hit nor false
    c = {"n_clips": 1, "duration_s": duration_s, "n_events": len(ref), "n_det": len(det) - len(excused),
         "tp50": len(pairs50), "tp100": len(pairs100), "abs_offset_s_sum": 0.0, "kind_ok": 0, "side_n": 0,
         "side_ok": 0, "n_false": len(false_onsets(det, ref, slides, pairs100)), "matches": []}
    for i, j in pairs100:
        e, t = ev[j], float(det[i])
        kind = "beep" if flatness(mono, sr, t) < FLAT_MIN else "impact"
        c["abs_offset_s_sum"] += abs(t - e["onset_s"])
        c["kind_ok"] += int(kind == e["kind"])
        if abs(e["x"]) >= CENTRE:
            c["side_n"] += 1
            c["side_ok"] += int(side(audio, sr, t) == np.sign(e["x"]))
        c["matches"].append({"onset_s": e["onset_s"], "det_s": round(t, 4), "kind": e["kind"], "heard": kind})
    return c


def total(counts: list[dict]) -> dict:
    """Micro-average: the sum of every count over clips."""
    return {k: sum(c[k] for c in counts) for k in counts[0] if k != "matches"} if counts else {}


def metrics(counts: list[dict] | dict) -> dict:
    """F1 at +-50 / +-100 ms, mean |offset| (ms, +-100 ms pairs), false onsets per minute, kind and side accuracy."""
    c = total(counts) if isinstance(counts, list) else counts
    if not c:
        return {}
    denom = c["n_det"] + c["n_events"]
    return {"f1_50": 2 * c["tp50"] / denom if denom else 1.0, "f1_100": 2 * c["tp100"] / denom if denom else 1.0,
            "offset_ms": 1000 * c["abs_offset_s_sum"] / c["tp100"] if c["tp100"] else float("nan"),
            "false_per_min": c["n_false"] / (c["duration_s"] / 60), "kind_acc": c["kind_ok"] / c["tp100"] if c["tp100"] else float("nan"),
            "side_acc": c["side_ok"] / c["side_n"] if c["side_n"] else float("nan"),
            "n_events": c["n_events"], "n_clips": c["n_clips"]}

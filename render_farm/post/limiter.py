"""True-peak measurement (4× oversampling, BS.1770-4 Annex 2) and a streaming look-ahead limiter."""
from __future__ import annotations

import numpy as np
from scipy import signal

OVERSAMPLE = 4
_MARGIN = 16  # input samples of context for the oversampling filter (its half length is 10)


def db_to_gain(db: float) -> float:
    return float(10.0 ** (db / 20.0))


def sample_true_peaks(x: np.ndarray) -> np.ndarray:
    """Per input sample, the largest |value| of the 4× oversampled signal in that sample's
    interval, over all channels (linked). x: (C, n) → (n,)."""
    if x.shape[1] == 0:
        return np.zeros(0)
    up = signal.resample_poly(x.astype(np.float64), OVERSAMPLE, 1, axis=1)  # (C, 4n)
    per = np.abs(up).reshape(x.shape[0], x.shape[1], OVERSAMPLE).max(axis=2)
    return np.maximum(per, np.abs(x)).max(axis=0)


def true_peak_dbtp(x: np.ndarray) -> float:
    """Whole-signal true peak in dBTP (for reports and tests)."""
    peak = float(sample_true_peaks(x).max(initial=0.0))
    return 20.0 * np.log10(peak) if peak > 0 else float("-inf")


class TruePeakLimiter:
    """Apply gain, then keep the true peak under `ceiling_dbtp`, streaming (C, n) chunks.

    Gain g[n] = release-smoothed (boxcar over L of the moving minimum over L of the needed gain),
    which never exceeds the gain a sample needs, so no sample passes the ceiling. Output has the
    same length as input and no added latency (the limiter reads ahead inside its buffer).
    """

    def __init__(self, rate_hz: int, channels: int, ceiling_dbtp: float = -1.0, gain_db: float = 0.0,
                 lookahead_ms: float = 5.0, release_ms: float = 80.0, safety_db: float = 0.1) -> None:
        self.channels = channels
        self.gain = db_to_gain(gain_db)
        self.ceiling = db_to_gain(ceiling_dbtp - safety_db)
        self.L = max(1, int(round(rate_hz * lookahead_ms / 1000)))
        self.release = 1.0 - np.exp(-1.0 / max(1.0, rate_hz * release_ms / 1000))
        self.ctx = 2 * self.L + _MARGIN  # future samples needed before emitting
        self._buf = np.zeros((channels, 0))
        self._buf_start = 0
        self._n_in = 0
        self._emitted = 0
        self._g_prev = 1.0
        self.gain_reduction_max_db = 0.0

    def _release(self, target: np.ndarray) -> np.ndarray:
        """g[n] = min(target[n], g[n-1] + (1 - g[n-1]) * release), vectorised.

        In d = 1 - g this is d[n] = max(e[n], c * d[n-1]) with e = 1 - target and c = 1 - release,
        so d[n] = max_k e[k] c^(n-k): a running maximum in the log domain.
        """
        if len(target) == 0:
            return target
        e = np.concatenate([[1.0 - self._g_prev], 1.0 - target])
        if not (e > 0).any():
            g = np.ones(len(target))
        else:
            log_c = np.log1p(-self.release)
            k = np.arange(len(e))
            with np.errstate(divide="ignore"):
                log_e = np.log(np.maximum(e, 0.0))
            log_d = k * log_c + np.maximum.accumulate(log_e - k * log_c)
            g = 1.0 - np.exp(log_d[1:])
        g = np.minimum(g, target)  # exact: never above the needed gain
        self._g_prev = float(g[-1])
        return g

    def process(self, chunk: np.ndarray, final: bool = False) -> np.ndarray:
        assert chunk.ndim == 2 and chunk.shape[0] == self.channels, f"{chunk.shape=}"
        self._buf = np.concatenate([self._buf, chunk.astype(np.float64) * self.gain], axis=1)
        self._n_in += chunk.shape[1]
        end = self._n_in if final else max(self._n_in - self.ctx, self._emitted)
        if end <= self._emitted:
            return np.zeros((self.channels, 0), dtype=np.float32)
        a, b = self._emitted, end
        # Needed gain r over [a - L, b + L], from true peaks over that span (+ filter margin).
        lo = max(a - self.L - _MARGIN, self._buf_start)
        hi = min(b + self.L + _MARGIN, self._n_in)
        seg = self._buf[:, lo - self._buf_start : hi - self._buf_start]
        peaks = sample_true_peaks(seg)
        r_full = np.ones(hi - lo)
        loud = peaks > self.ceiling
        r_full[loud] = self.ceiling / peaks[loud]
        # r over absolute [a - L, b + L]; outside the signal, no reduction is needed.
        span = np.ones(b - a + 2 * self.L)
        s_lo, s_hi = max(a - self.L, lo), min(b + self.L, hi)
        span[s_lo - (a - self.L) : s_hi - (a - self.L)] = r_full[s_lo - lo : s_hi - lo]
        # moving min over [k, k+L], then mean over k in [n-L, n]
        mins = np.lib.stride_tricks.sliding_window_view(span, self.L + 1).min(axis=1)  # index k-(a-L)
        box = np.lib.stride_tricks.sliding_window_view(mins, self.L + 1).mean(axis=1)  # n-a
        g = self._release(box[: b - a])
        out = self._buf[:, a - self._buf_start : b - self._buf_start] * g
        if len(g):
            self.gain_reduction_max_db = max(self.gain_reduction_max_db, -20.0 * float(np.log10(g.min())))
        self._emitted = b
        keep_from = max(b - self.L - _MARGIN, self._buf_start)
        self._buf = self._buf[:, keep_from - self._buf_start :]
        self._buf_start = keep_from
        return out.astype(np.float32)

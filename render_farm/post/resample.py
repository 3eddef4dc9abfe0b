"""Streaming polyphase resampling with fixed FIR taps: chunked output equals whole-signal output."""
from __future__ import annotations

from math import gcd

import numpy as np
from scipy import signal

from render_farm.errors import InvalidInput


def design_filter(up: int, down: int, half_len: int = 10) -> np.ndarray:
    """Kaiser-windowed low-pass FIR for rational resampling (scipy's resample_poly design)."""
    max_rate = max(up, down)
    f_c = 1.0 / max_rate
    n_taps = 2 * half_len * max_rate + 1
    taps = signal.firwin(n_taps, f_c, window=("kaiser", 5.0))
    return (taps * up).astype(np.float64)


class StreamingResampler:
    """Resample (C, n) float chunks from `in_rate_hz` to `out_rate_hz`.

    Output sample m sits at time m / out_rate and is the filtered value computed from the whole
    signal, so concatenated chunk outputs equal `resample_whole` up to float rounding, and the
    total length is ceil(n_in * up / down). Zero-phase: the filter delay is compensated.
    """

    def __init__(self, in_rate_hz: int, out_rate_hz: int, channels: int) -> None:
        if in_rate_hz <= 0 or out_rate_hz <= 0:
            raise InvalidInput(f"sample rates must be positive: {in_rate_hz=} {out_rate_hz=}")
        g = gcd(in_rate_hz, out_rate_hz)
        self.up, self.down = out_rate_hz // g, in_rate_hz // g
        self.channels = channels
        self.taps = design_filter(self.up, self.down)
        # Polyphase: output m = sum_k h[k] * xu[m*down + delay - k], xu = upsampled input.
        self.delay = (len(self.taps) - 1) // 2
        self._buf = np.zeros((channels, 0), dtype=np.float64)  # input samples still needed
        self._buf_start = 0  # absolute index of _buf[:, 0]
        self._n_in = 0
        self._n_out = 0

    def process(self, chunk: np.ndarray, final: bool = False) -> np.ndarray:
        assert chunk.ndim == 2 and chunk.shape[0] == self.channels, f"{chunk.shape=} {self.channels=}"
        self._buf = np.concatenate([self._buf, chunk.astype(np.float64)], axis=1)
        self._n_in += chunk.shape[1]
        if final:
            m_end = -(-self._n_in * self.up // self.down)
        else:
            # Output m needs inputs up to (m*down + delay) // up; keep only what is complete.
            m_end = max(((self._n_in - 1) * self.up - self.delay) // self.down + 1, self._n_out)
        out = self._vectorised(m_end)
        self._n_out = m_end
        # Drop inputs no future output needs.
        need_from = (self._n_out * self.down + self.delay - (len(self.taps) - 1)) // self.up - 1
        drop = min(max(need_from - self._buf_start, 0), self._buf.shape[1])
        if drop:
            self._buf = self._buf[:, drop:]
            self._buf_start += drop
        return out.astype(np.float32)

    def _vectorised(self, m_end: int) -> np.ndarray:
        """Outputs [n_out, m_end) by scipy's upfirdn over just the input span they depend on."""
        if m_end <= self._n_out:
            return np.zeros((self.channels, 0))
        first_pos = self._n_out * self.down + self.delay
        in_lo = max((first_pos - (len(self.taps) - 1)) // self.up, 0)
        in_lo = max(in_lo - 1, self._buf_start)
        seg = self._buf[:, in_lo - self._buf_start :]
        y = signal.upfirdn(self.taps, seg, up=self.up, down=1, axis=1)
        # y[k] is the filtered upsampled signal at upsampled position in_lo*up + k.
        positions = np.arange(self._n_out, m_end) * self.down + self.delay - in_lo * self.up
        out = np.zeros((self.channels, len(positions)))
        valid = positions < y.shape[1]
        out[:, valid] = y[:, positions[valid]]
        return out


def resample_whole(audio: np.ndarray, in_rate_hz: int, out_rate_hz: int) -> np.ndarray:
    """Reference: resample a whole (C, n) signal in one go."""
    r = StreamingResampler(in_rate_hz, out_rate_hz, audio.shape[0])
    return r.process(audio, final=True)

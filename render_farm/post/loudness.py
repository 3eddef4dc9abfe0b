"""EBU R128 / ITU-R BS.1770-4 integrated loudness, measured in a stream of chunks.

The K-weighting filters are pyloudnorm's own (`pyloudnorm.Meter._filters`), run with carried
filter state so chunks join exactly; the gating is BS.1770-4's (400 ms blocks, 75 % overlap,
−70 LUFS absolute and −10 LU relative gates). Tests check it against
`pyloudnorm.Meter.integrated_loudness` on whole signals.
"""
from __future__ import annotations

import numpy as np
import pyloudnorm
from scipy import signal

_CHANNEL_GAINS = (1.0, 1.0, 1.0, 1.41, 1.41)
ABSOLUTE_GATE_LUFS = -70.0


class StreamingLoudnessMeter:
    """Feed (C, n) chunks; `integrated_lufs()` at the end. Memory: a few hop sums per 100 ms."""

    def __init__(self, rate_hz: int, channels: int) -> None:
        assert channels <= len(_CHANNEL_GAINS), f"{channels=}"
        self.rate_hz = rate_hz
        self.channels = channels
        meter = pyloudnorm.Meter(rate_hz)  # K-weighting, 400 ms blocks, 75 % overlap
        self._stages = [(f.passband_gain, np.asarray(f.b, float), np.asarray(f.a, float)) for f in meter._filters.values()]
        self._zi = [np.zeros((channels, max(len(a), len(b)) - 1)) for _, b, a in self._stages]
        self.hop = int(round(rate_hz * 0.1))  # 100 ms: a gating block is four hops
        self._hop_sums: list[np.ndarray] = []  # per hop, per channel sum of squares
        self._partial = np.zeros(channels)
        self._partial_n = 0
        self.num_samples = 0

    def feed(self, chunk: np.ndarray) -> None:
        assert chunk.ndim == 2 and chunk.shape[0] == self.channels, f"{chunk.shape=}"
        x = chunk.astype(np.float64)
        for i, (gain, b, a) in enumerate(self._stages):
            x, self._zi[i] = signal.lfilter(b, a, x, axis=1, zi=self._zi[i])
            x = gain * x
        self.num_samples += x.shape[1]
        sq = x * x
        pos = 0
        while pos < sq.shape[1]:
            take = min(self.hop - self._partial_n, sq.shape[1] - pos)
            self._partial += sq[:, pos : pos + take].sum(axis=1)
            self._partial_n += take
            pos += take
            if self._partial_n == self.hop:
                self._hop_sums.append(self._partial)
                self._partial = np.zeros(self.channels)
                self._partial_n = 0

    def block_energies(self) -> np.ndarray:
        """Mean square per channel of each 400 ms gating block, (blocks, C)."""
        hops = list(self._hop_sums)
        if self._partial_n:
            hops.append(self._partial)
        duration_s = self.num_samples / self.rate_hz
        n_blocks = int(np.round((duration_s - 0.4) / 0.1)) + 1
        if n_blocks <= 0 or not hops:
            return np.zeros((0, self.channels))
        h = np.vstack(hops + [np.zeros(self.channels)] * 4)
        blocks = np.stack([h[j : j + 4].sum(axis=0) for j in range(n_blocks)])
        return blocks / (0.4 * self.rate_hz)

    def integrated_lufs(self) -> float:
        """Gated integrated loudness in LUFS; -inf for silence or a signal shorter than 400 ms."""
        z = self.block_energies()
        if len(z) == 0:
            return float("-inf")
        g = np.asarray(_CHANNEL_GAINS[: self.channels])
        with np.errstate(divide="ignore"):
            block_lufs = -0.691 + 10.0 * np.log10(z @ g)
        above_abs = block_lufs >= ABSOLUTE_GATE_LUFS
        if not above_abs.any():
            return float("-inf")
        relative_gate = -0.691 + 10.0 * np.log10(z[above_abs].mean(axis=0) @ g) - 10.0
        gated = (block_lufs > relative_gate) & (block_lufs > ABSOLUTE_GATE_LUFS)
        if not gated.any():
            return float("-inf")
        return float(-0.691 + 10.0 * np.log10(z[gated].mean(axis=0) @ g))

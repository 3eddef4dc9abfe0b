"""Mastering in two streamed passes: measure loudness at the delivery rate, then gain + true-peak
limit. The source is a callable returning a fresh iterator of (C, n) chunks, so a long track is
read twice from disk instead of held in memory."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

from render_farm.errors import InvalidInput
from render_farm.post.limiter import TruePeakLimiter
from render_farm.post.loudness import StreamingLoudnessMeter
from render_farm.post.resample import StreamingResampler

ChunkSource = Callable[[], Iterable[np.ndarray]]


@dataclass(frozen=True)
class MasterSpec:
    """Delivery format: sample rate, EBU R128 target and true-peak ceiling."""

    out_rate_hz: int = 48_000
    target_lufs: float | None = -23.0  # None: no loudness normalisation
    ceiling_dbtp: float = -1.0

    def __post_init__(self) -> None:
        if not 8_000 <= self.out_rate_hz <= 192_000:
            raise InvalidInput(f"delivery sample rate {self.out_rate_hz} Hz is outside 8000..192000")
        if self.target_lufs is not None and not -70.0 <= self.target_lufs <= -5.0:
            raise InvalidInput(f"loudness target {self.target_lufs} LUFS is outside -70..-5")
        if not -20.0 <= self.ceiling_dbtp <= 0.0:
            raise InvalidInput(f"true-peak ceiling {self.ceiling_dbtp} dBTP is outside -20..0")


@dataclass
class MasterStats:
    """What mastering measured and did (for the render report)."""

    input_lufs: float = float("-inf")
    gain_db: float = 0.0
    output_lufs: float = float("-inf")
    max_gain_reduction_db: float = 0.0
    num_samples: int = 0


def _resampled(source: ChunkSource, in_rate_hz: int, out_rate_hz: int, channels: int) -> Iterator[np.ndarray]:
    rs = StreamingResampler(in_rate_hz, out_rate_hz, channels)
    for chunk in source():
        out = rs.process(chunk)
        if out.shape[1]:
            yield out
    tail = rs.process(np.zeros((channels, 0), dtype=np.float32), final=True)
    if tail.shape[1]:
        yield tail


def measure_lufs(source: ChunkSource, in_rate_hz: int, out_rate_hz: int, channels: int) -> float:
    meter = StreamingLoudnessMeter(out_rate_hz, channels)
    for chunk in _resampled(source, in_rate_hz, out_rate_hz, channels):
        meter.feed(chunk)
    return meter.integrated_lufs()


def _limited(source: ChunkSource, in_rate_hz: int, channels: int, spec: MasterSpec, gain_db: float,
             stats: MasterStats | None) -> Iterator[np.ndarray]:
    limiter = TruePeakLimiter(spec.out_rate_hz, channels, spec.ceiling_dbtp, gain_db=gain_db)
    meter = StreamingLoudnessMeter(spec.out_rate_hz, channels)
    n = 0
    chunks = _resampled(source, in_rate_hz, spec.out_rate_hz, channels)
    for out in (limiter.process(c) for c in chunks):
        if out.shape[1]:
            meter.feed(out)
            n += out.shape[1]
            yield out
    out = limiter.process(np.zeros((channels, 0)), final=True)
    if out.shape[1]:
        meter.feed(out)
        n += out.shape[1]
        yield out
    if stats is not None:
        stats.gain_db = gain_db
        stats.output_lufs = meter.integrated_lufs()
        stats.max_gain_reduction_db = limiter.gain_reduction_max_db
        stats.num_samples = n


def master(source: ChunkSource, in_rate_hz: int, channels: int, spec: MasterSpec, stats: MasterStats,
           tolerance_lu: float = 0.3, max_passes: int = 4) -> Iterator[np.ndarray]:
    """Yield delivery-rate chunks; fills `stats` as it goes (complete once exhausted).

    Gain = target − measured loudness. When the limiter then pulls loudness below the target
    (dense, peaky material pushed up a lot), the gain is raised by the shortfall and measured
    again, a bounded number of times, before the delivered pass.
    """
    gain_db = 0.0
    if spec.target_lufs is not None:
        stats.input_lufs = measure_lufs(source, in_rate_hz, spec.out_rate_hz, channels)
        if np.isfinite(stats.input_lufs):
            gain_db = float(np.clip(spec.target_lufs - stats.input_lufs, -60.0, 60.0))
            for _ in range(max_passes - 1):
                trial = MasterStats()
                for _chunk in _limited(source, in_rate_hz, channels, spec, gain_db, trial):
                    pass
                if trial.max_gain_reduction_db < 0.01 or abs(trial.output_lufs - spec.target_lufs) <= tolerance_lu:
                    break
                gain_db = float(np.clip(gain_db + spec.target_lufs - trial.output_lufs, -60.0, 60.0))
    yield from _limited(source, in_rate_hz, channels, spec, gain_db, stats)

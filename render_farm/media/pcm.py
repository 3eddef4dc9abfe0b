"""Audio that muxing and stems read a block at a time: an in-memory array, or float32 samples in a
scratch file (so an episode-long track is never held in memory, nor mapped into it whole)."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Protocol, Union

import numpy as np

from render_farm.errors import InvalidInput

#: Samples per block when a whole source is scanned (validation): 4 s at 48 kHz.
SCAN_BLOCK_SAMPLES = 192_000


class BlockAudio(Protocol):
    """(channels, num_samples) audio readable in blocks."""

    @property
    def channels(self) -> int: ...

    @property
    def num_samples(self) -> int: ...

    def read(self, offset: int, count: int) -> np.ndarray:
        """Samples [offset, offset + count), cut at the end: (channels, m) floating point."""
        ...


@dataclass(frozen=True)
class PcmFile:
    """Interleaved float32 samples (frame after frame: ch0, ch1, …) in a file."""

    path: Path
    channels: int = 2

    def __post_init__(self) -> None:
        assert self.channels > 0, f"{self.channels=}"

    @property
    def num_samples(self) -> int:
        return os.path.getsize(self.path) // (4 * self.channels)

    def read(self, offset: int, count: int) -> np.ndarray:
        frame_bytes = 4 * self.channels
        with open(self.path, "rb") as f:
            f.seek(offset * frame_bytes)
            data = f.read(max(0, count) * frame_bytes)
        usable = len(data) - len(data) % frame_bytes
        return np.frombuffer(data[:usable], dtype=np.float32).reshape(-1, self.channels).T


@dataclass(frozen=True)
class ArrayAudio:
    """A (channels, n) floating-point array seen as block audio (blocks are views, in its dtype)."""

    array: np.ndarray

    @property
    def channels(self) -> int:
        return int(self.array.shape[0])

    @property
    def num_samples(self) -> int:
        return int(self.array.shape[1])

    def read(self, offset: int, count: int) -> np.ndarray:
        return self.array[:, offset : offset + max(0, count)]


AudioLike = Union[np.ndarray, PcmFile, ArrayAudio]


def as_block_audio(audio: AudioLike, where: str) -> BlockAudio:
    """Wrap an array (checked to be 2-D floating point) or pass a block source through."""
    if isinstance(audio, (PcmFile, ArrayAudio)):
        return audio
    a = np.asarray(audio)
    if a.ndim != 2:
        raise InvalidInput(f"{where}: audio must have shape (channels, n), got {a.shape}")
    if not np.issubdtype(a.dtype, np.floating):
        raise InvalidInput(f"{where}: audio must be floating point, got {a.dtype}")
    return ArrayAudio(a)


def blocks(audio: BlockAudio, block_samples: int = SCAN_BLOCK_SAMPLES) -> Iterator[np.ndarray]:
    """The whole source, block after block: (channels, m) arrays."""
    for offset in range(0, audio.num_samples, block_samples):
        yield audio.read(offset, block_samples)


def check_finite(audio: BlockAudio, where: str) -> None:
    """InvalidInput when any sample is NaN or infinite (scans block by block)."""
    for block in blocks(audio):
        if not np.all(np.isfinite(block)):
            raise InvalidInput(f"{where}: audio contains NaN or infinite samples")

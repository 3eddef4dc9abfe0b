"""Run a sequence-to-sequence stage over a long sequence in chunks that join exactly.

A stage maps input frames (T, ...) to output frames (T * factor, ...) and looks at most
`context` input frames to either side of each frame (its receptive field). Given that much real
context on each side of a chunk (or the true sequence border, which the stage pads itself exactly
as it would for the whole sequence), the chunk's outputs equal whole-sequence outputs. Pure.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Iterator

import numpy as np

StageFn = Callable[[np.ndarray, int], np.ndarray]  # (frames, absolute index of frames[0])


@dataclass(frozen=True)
class Stage:
    fn: StageFn  # (T, ...), start → (T * factor, ...); start lets a stage fetch side inputs by position
    context: int  # input frames of context needed on each side
    factor: int = 1  # output frames per input frame
    name: str = "stage"

    def __post_init__(self) -> None:
        assert self.context >= 0 and self.factor >= 1, f"{self.context=} {self.factor=}"


class StreamingStage:
    """Push input chunks in order; get output chunks as soon as their right context is in.

    Memory: the chunk being processed plus 2 × context frames, whatever the sequence length.
    """

    def __init__(self, stage: Stage, chunk_frames: int = 512) -> None:
        assert chunk_frames > 0, f"{chunk_frames=}"
        self.stage = stage
        self.chunk = chunk_frames
        self._buf: np.ndarray | None = None  # input frames [self._buf_start, ...)
        self._buf_start = 0
        self._n_in = 0
        self._done = 0  # input frames whose outputs have been emitted

    def _emit(self, end: int, final: bool) -> Iterator[np.ndarray]:
        st = self.stage
        while self._done < end:
            a = self._done
            b = min(a + self.chunk, end)
            lo = max(a - st.context, 0)
            hi = b + st.context if not final else min(b + st.context, self._n_in)
            assert self._buf is not None
            x = self._buf[lo - self._buf_start : hi - self._buf_start]
            y = st.fn(x, lo)
            assert y.shape[0] == x.shape[0] * st.factor, f"{st.name}: {x.shape=} {y.shape=} {st.factor=}"
            yield y[(a - lo) * st.factor : (b - lo) * st.factor]
            self._done = b
            keep = max(self._done - st.context, self._buf_start)
            self._buf = self._buf[keep - self._buf_start :]
            self._buf_start = keep

    def push(self, x: np.ndarray) -> Iterator[np.ndarray]:
        self._buf = x if self._buf is None else np.concatenate([self._buf, x], axis=0)
        self._n_in += x.shape[0]
        ready = self._n_in - self.stage.context  # frames with full right context
        full_chunks_end = self._done + max(ready - self._done, 0) // self.chunk * self.chunk
        yield from self._emit(full_chunks_end, final=False)

    def finish(self) -> Iterator[np.ndarray]:
        if self._buf is not None:
            yield from self._emit(self._n_in, final=True)


def run_chunked(stages: list[Stage], chunks: Iterable[np.ndarray], chunk_frames: int = 512) -> Iterator[np.ndarray]:
    """Cascade streaming stages: the output of each feeds the next. `chunk_frames` counts the first
    stage's input frames; later stages chunk the same span of time (scaled by earlier factors)."""
    streams, scale = [], 1
    for s in stages:
        streams.append(StreamingStage(s, chunk_frames * scale))
        scale *= s.factor

    def feed(level: int, x: np.ndarray) -> Iterator[np.ndarray]:
        if level == len(streams):
            yield x
            return
        for y in streams[level].push(x):
            yield from feed(level + 1, y)

    def drain(level: int) -> Iterator[np.ndarray]:
        if level == len(streams):
            return
        for y in streams[level].finish():
            yield from feed(level + 1, y)
        yield from drain(level + 1)

    for x in chunks:
        yield from feed(0, x)
    yield from drain(0)

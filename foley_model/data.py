"""Training data: a background process renders toy-world clips; the trainer samples from a replay pool.

The worker runs at low priority (nice) so the training process keeps the cores; clips are stored
small (frames area-resized to the model's frame size as uint8, audio as float16).
"""
from __future__ import annotations

import collections
import multiprocessing as mp
import os
import queue as queue_mod
import random
import threading
import time

import numpy as np

# (W, H) output sizes the worker renders at (the model area-resizes to its own frame size)
TRAIN_SIZES: tuple[tuple[int, int], ...] = ((64, 64), (96, 54), (64, 48), (48, 48), (112, 64), (80, 80))


def _area_resize_uint8(frames: np.ndarray, size: int) -> np.ndarray:
    import torch
    import torch.nn.functional as F
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()  # (T, 3, H, W)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="area")
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()  # (T, S, S, 3)


def worker_main(q, stop, seed: int, start_index: int, clip_s: float, frame_size: int, sample_rate_hz: int) -> None:
    """Render clips forever into ``q`` until ``stop`` is set."""
    try:
        os.nice(10)
    except OSError:
        pass
    import torch
    torch.set_num_threads(1)
    from .shots import shot_starts
    from .toyworld import JUDGED_KINDS, GenStyle, clip_seed, make_clip
    style = GenStyle.train()
    i = start_index
    while not stop.is_set():
        s = clip_seed(seed, i)
        size = TRAIN_SIZES[s % len(TRAIN_SIZES)]
        clip = make_clip(s, duration_s=clip_s, fps=24.0, size=size, sample_rate_hz=sample_rate_hz, style=style)
        frames = _area_resize_uint8(clip.frames, frame_size)
        # the frame encoder's shot cuts, found here (off the training loop) exactly as it would find them
        cuts = shot_starts(frames, 24.0)
        item = {"index": i, "frames": frames, "cuts": cuts, "audio": clip.audio.astype(np.float16),
                "caption": clip.caption,
                # ground truth the picture onset judge learns from (mirroring the frames keeps the times)
                "onsets": [e.onset_s for e in clip.events if e.kind in JUDGED_KINDS]}
        while not stop.is_set():
            try:
                q.put(item, timeout=0.5)
                break
            except queue_mod.Full:
                continue
        i += 1


class ClipPool:
    """Replay pool fed by a background worker process; `sample(n)` returns n stored clips."""

    def __init__(self, seed: int, start_index: int, clip_s: float, frame_size: int, sample_rate_hz: int,
                 capacity: int = 4000):
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        ctx = mp.get_context("spawn")
        self.q, self.stop = ctx.Queue(maxsize=64), ctx.Event()
        self.proc = ctx.Process(target=worker_main, daemon=True,
                                args=(self.q, self.stop, seed, start_index, clip_s, frame_size, sample_rate_hz))
        self.proc.start()
        # A reader thread keeps the pipe flowing: each clip is ~0.5 MB, more than a pipe buffer, so
        # polling the queue once per training step received about one clip per step (the worker sat
        # blocked mid-write) and the pool went stale. The thread waits in q.get with the GIL released.
        self._inbox: collections.deque = collections.deque()
        self._reader = threading.Thread(target=self._read_forever, name="clip-pool-reader", daemon=True)
        self._reader.start()
        self.items: list[dict] = []
        self.capacity, self.next_index = capacity, start_index
        self.rng = random.Random(seed)

    def _read_forever(self) -> None:
        while not self.stop.is_set():
            try:
                self._inbox.append(self.q.get(timeout=0.5))
            except queue_mod.Empty:
                continue
            except (EOFError, OSError):  # the worker went away; sample() reports it
                return

    def drain(self) -> None:
        while True:
            try:
                item = self._inbox.popleft()
            except IndexError:
                return
            self.next_index = item["index"] + 1
            if len(self.items) < self.capacity:
                self.items.append(item)
            else:
                self.items[self.rng.randrange(self.capacity)] = item

    def sample(self, n: int, min_items: int | None = None) -> list[dict]:
        need = max(n, min_items or n)
        while True:
            self.drain()
            if len(self.items) >= need:
                return [self.items[self.rng.randrange(len(self.items))] for _ in range(n)]
            if not self.proc.is_alive():
                raise RuntimeError(f"data worker died (exit code {self.proc.exitcode})")
            time.sleep(0.2)

    def close(self) -> None:
        self.stop.set()
        self._reader.join(timeout=2)
        self.proc.join(timeout=5)
        if self.proc.is_alive():
            self.proc.terminate()

"""Generator throughput: ``python -m foley_model.toyworld.bench [n_clips]`` prints clips per second.

Single process, the training setting by default (4 s, 24 fps, 64x64, 16 kHz, training style).
Run with ``taskset -c 0`` to pin it to one core.
"""

from __future__ import annotations

import sys
import time

from .clips import stream_clips


def clips_per_second(n: int = 100, seed: int = 0, cpu_time: bool = False, **make_clip_kwargs) -> float:
    """Clips per second over ``n`` clips of ``stream_clips(seed, n, **make_clip_kwargs)`` (after one
    warm-up), by wall clock or, with ``cpu_time``, by this process's CPU time (what a busy machine
    would give with a core to itself)."""
    clock = time.process_time if cpu_time else time.perf_counter
    next(stream_clips(seed + 1, 1, **make_clip_kwargs))  # warm caches (noise bank, DCT matrices)
    start = clock()
    for _ in stream_clips(seed, n, **make_clip_kwargs):
        pass
    return n / (clock() - start)


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 100
    wall, cpu = clips_per_second(n), clips_per_second(n, cpu_time=True)
    print(f"{wall:.1f} clips/s wall, {cpu:.1f} clips/s of CPU time (4 s, 24 fps, 64x64, 16 kHz, n={n})")


if __name__ == "__main__":
    main()

"""Media benchmarks: frame decode speed (master and proxy) and peak memory vs video length.

    .venv/bin/python bench/media_bench.py [--workdir DIR] [--long-minutes 10]

1. Decode speed: a 720p H.264 video (20 s, 24 fps) is generated, then decoded by `iter_frames`
   at 24 fps into 64×64 frames, from the master and from its 144p proxy (`make_proxy`).
2. Peak memory: 1-minute and 10-minute 320×240 H.264 videos are decoded end to end at 24 fps,
   64×64, each in a fresh subprocess that reports its RSS high-water mark
   (VmHWM from /proc/self/status; ru_maxrss would carry the parent's size across exec). Streaming decode means the two should be equal
   within 10 %.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from render_farm.media.frames import iter_frames  # noqa: E402
from render_farm.media.proxy import make_proxy  # noqa: E402
from tests.media_factory import make_video  # noqa: E402

_CHILD = """
import resource, sys, time
sys.path.insert(0, {root!r})
from render_farm.media.frames import iter_frames
t0 = time.perf_counter()
n = 0
for frame in iter_frames({path!r}, 24, (64, 64)):
    n += 1
elapsed = time.perf_counter() - t0
hwm = next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:'))  # KiB; ru_maxrss survives exec
print(n, elapsed, hwm)
"""


def decode_rate(path: str) -> tuple[int, float]:
    t0 = time.perf_counter()
    n = sum(1 for _ in iter_frames(path, 24, (64, 64)))
    return n, n / (time.perf_counter() - t0)


def peak_rss_kib(path: str) -> tuple[int, float, int]:
    out = subprocess.run(
        [sys.executable, "-c", _CHILD.format(root=ROOT, path=path)], capture_output=True, text=True, check=True
    )
    n, elapsed, rss = out.stdout.split()
    return int(n), float(elapsed), int(rss)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--workdir", default=None, help="where to write the generated videos (default: a temp dir)")
    parser.add_argument("--long-minutes", type=float, default=10.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(dir=args.workdir) as work:
        t0 = time.perf_counter()
        hd = make_video(os.path.join(work, "hd.mp4"), duration_s=20.0, fps=24, size=(1280, 720))
        proxy = make_proxy(hd.path, os.path.join(work, "hd_proxy.mp4"))
        made_s = time.perf_counter() - t0
        rows = []
        for label, path in (("720p master → 64×64", hd.path), (f"{proxy.width}×{proxy.height} proxy → 64×64", proxy.path)):
            n, fps = decode_rate(path)
            rows.append((label, n, f"{fps:,.0f} frames/s", f"{os.path.getsize(path) / 1e6:.2f} MB"))
        print(f"decode speed (iter_frames at 24 fps; generation + proxy took {made_s:.1f} s)")
        print(f"{'input':<28} {'frames':>7} {'speed':>18} {'file':>10}")
        for label, n, speed, size in rows:
            print(f"{label:<28} {n:>7} {speed:>18} {size:>10}")
        print()
        mem = []
        for minutes in (1.0, args.long_minutes):
            video = make_video(os.path.join(work, f"m{minutes:g}.mp4"), duration_s=60 * minutes, fps=24, size=(320, 240))
            n, elapsed, rss = peak_rss_kib(video.path)
            mem.append((minutes, n, elapsed, rss))
        print("peak memory of a full decode (fresh process each, 320×240 H.264 → 64×64 at 24 fps)")
        print(f"{'video':>8} {'frames':>7} {'decode s':>9} {'peak RSS':>11}")
        for minutes, n, elapsed, rss in mem:
            print(f"{minutes:>6g} m {n:>7} {elapsed:>9.1f} {rss / 1024:>8.1f} MiB")
        ratio = mem[1][3] / mem[0][3]
        print(f"long / short peak RSS = {ratio:.3f} ({'within' if abs(ratio - 1) <= 0.10 else 'OUTSIDE'} the 10 % goal)")


if __name__ == "__main__":
    main()

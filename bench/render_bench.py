"""End-to-end `foley render` benchmark on this machine (embedded default, in-process, CPU).

    .venv/bin/python bench/render_bench.py realtime [--seconds 60] [--size 1280x720] [--model tiny]
    .venv/bin/python bench/render_bench.py memory [--short-min 1] [--long-min 10] [--steps 1] [--size 256x144]
    (either with --no-pin: glibc's adaptive mmap threshold instead of render_farm/heap.py's pin)

realtime: generates a toy-world clip (H.264, the given size), renders it once and prints the
realtime factor (video seconds per wall second) with the per-stage breakdown from the report.
memory: renders a short and a long clip, each in a fresh process, and compares peak RSS (VmHWM of
the render process). The step count does not change memory (each step reuses the same buffers), so
it defaults to 1 Euler step to keep the 10-minute render short; --steps 25 measures the real thing.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from render_farm.toyvideo import write_toy_video  # noqa: E402


def render(video: Path, workdir: Path, model: str, extra: list[str] | None = None,
           pin: bool = True) -> tuple[float, dict, float]:
    """Run `foley render` in a fresh process; returns (wall seconds, report, peak RSS MiB).
    pin=False: glibc's adaptive mmap threshold instead of the pinned one (render_farm/heap.py)."""
    out, report = workdir / f"{video.stem}.out{video.suffix}", workdir / f"{video.stem}.report.json"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
    if not pin:
        env["FOLEY_MALLOC_PIN"] = "0"
    env["FOLEY_DATA_DIR"] = str(workdir / f"state-{video.stem}")
    code = (
        "import sys\n"
        "from render_farm.cli import main\n"
        "from render_farm.context import peak_rss_mb\n"
        "try:\n    main(sys.argv[1:])\n"
        "finally:\n"
        "    print('PEAK_RSS_MB', peak_rss_mb(), file=sys.stderr)\n"
    )
    args = ["render", str(video), "-o", str(out), "--report", str(report), "--quiet", "--overwrite", "--model", model]
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code, *args, *(extra or [])], env=env, capture_output=True, text=True,
                          cwd=ROOT)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"render failed: {proc.stderr.strip()}")
    peak = float(next(line.split()[1] for line in proc.stderr.splitlines() if line.startswith("PEAK_RSS_MB")))
    return wall, json.loads(report.read_text()), peak


def cmd_realtime(args: argparse.Namespace) -> None:
    w, h = (int(x) for x in args.size.split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        toy = write_toy_video(work / "clip.mp4", args.seconds, seed=11, size=(w, h), segment_s=15.0)
        gen = time.perf_counter() - t0
        extra = [] if args.candidates is None else ["--candidates", str(args.candidates)]
        wall, report, peak = render(toy.path, work, args.model, extra, pin=not args.no_pin)
    stages = report["stages"]
    print(f"machine: {platform.node()} {os.cpu_count()} cores, python {platform.python_version()}")
    print(f"clip: {args.seconds:.0f} s {w}x{h} H.264 (generated in {gen:.1f} s); windows: {len(report['windows'])}")
    print(f"wall (process incl. start-up and model load): {wall:.1f} s -> realtime factor {args.seconds / wall:.2f}x")
    total = sum(s["wall_s"] for s in stages.values())
    print(f"{'stage':<10}{'wall s':>9}{'share':>8}{'peak RSS MiB':>14}")
    for name, s in sorted(stages.items(), key=lambda kv: -kv[1]["wall_s"]):
        print(f"{name:<10}{s['wall_s']:>9.2f}{s['wall_s'] / total:>8.0%}{s['peak_rss_mb']:>14.0f}")
    print(f"slowest stage: {max(stages, key=lambda k: stages[k]['wall_s'])}; peak RSS {peak:.0f} MiB")


def cmd_memory(args: argparse.Namespace) -> None:
    w, h = (int(x) for x in args.size.split("x"))
    extra = ["--steps", str(args.steps)]
    rows = []
    print(f"machine: {platform.node()} {os.cpu_count()} cores; clips {w}x{h} H.264, {args.steps} step(s)", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        for minutes in (args.short_min, args.long_min):
            toy = write_toy_video(work / f"m{minutes:g}.mp4", minutes * 60, seed=5, size=(w, h), segment_s=20.0)
            wall, report, peak = render(toy.path, work, args.model, extra, pin=not args.no_pin)
            rows.append((minutes, wall, peak))
            stages = " ".join(f"{k} {v['peak_rss_mb']:.0f}" for k, v in report["stages"].items())
            print(f"{minutes:g} min: {len(report['windows'])} windows, wall {wall:.1f} s, "
                  f"realtime {minutes * 60 / wall:.2f}x, peak RSS {peak:.0f} MiB (after each stage, MiB: {stages})",
                  flush=True)
            toy.path.unlink()
    ratio = rows[1][2] / rows[0][2]
    print(f"peak RSS long/short: {ratio:.3f} (goal: within 15%, i.e. <= 1.15)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("realtime")
    p.add_argument("--seconds", type=float, default=60.0)
    p.add_argument("--size", default="1280x720")
    p.add_argument("--model", default="tiny")
    p.add_argument("--no-pin", action="store_true", help="glibc's adaptive mmap threshold (FOLEY_MALLOC_PIN=0)")
    p.add_argument("--candidates", type=int, default=None, help="Samples per window the judge picks from (default: the model's)")
    p.set_defaults(fn=cmd_realtime)
    p = sub.add_parser("memory")
    p.add_argument("--short-min", type=float, default=1.0)
    p.add_argument("--long-min", type=float, default=10.0)
    p.add_argument("--model", default="tiny")
    p.add_argument("--steps", type=int, default=1, help="Euler steps (memory does not depend on them)")
    p.add_argument("--size", default="256x144")
    p.add_argument("--no-pin", action="store_true", help="glibc's adaptive mmap threshold (FOLEY_MALLOC_PIN=0)")
    p.set_defaults(fn=cmd_memory)
    args = parser.parse_args()
    args.fn(args)


if __name__ == "__main__":
    main()

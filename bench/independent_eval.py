"""Judge the product like an outsider: clips from an independent toy-world generator, rendered
through the `foley render` CLI, scored against the generator's ground truth.

    .venv/bin/python bench/independent_eval.py --clips 40 --seed 1 --min-s 2 --max-s 30 \\
        --work /tmp/judge [--model tiny|CHECKPOINT_DIR] [--candidates K] [--control blank] [--keep]

Prints F1 +-50/+-100 ms, mean |offset|, false onsets per minute, kind and side accuracy for the
model (overall and by height, frame-rate and length bucket), for the ground-truth audio through
the same scorer (WAV and after an AAC round trip: the scorer's ceiling) and, with
`--control blank`, for the same clips rendered with no objects drawn (F1 should collapse; its
false onsets are sound where nothing happens). Per-clip counts go to WORK/scores.json.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judgeworld.audio import SAMPLE_RATE_HZ  # noqa: E402
from judgeworld.clip import write_clip  # noqa: E402
from judgeworld.media import aac_roundtrip, read_audio, read_wav  # noqa: E402
from judgeworld.score import metrics, score_clip  # noqa: E402
from judgeworld.world import random_clip  # noqa: E402

COLUMNS = ["f1_50", "f1_100", "offset_ms", "false_per_min", "kind_acc", "side_acc", "n_events", "n_clips"]
BUCKETS = {
    "height": [("<=240p", lambda t: t["height_px"] <= 240), ("360-480p", lambda t: 360 <= t["height_px"] <= 480),
               ("720-1080p", lambda t: t["height_px"] >= 720)],
    "fps": [("<26 fps", lambda t: t["fps_float"] < 26), ("29.97-30 fps", lambda t: 29.9 <= t["fps_float"] <= 30.01),
            (">=50 fps", lambda t: t["fps_float"] >= 50)],
    "length": [("<=5 s", lambda t: t["duration_s"] <= 5), ("5-15 s", lambda t: 5 < t["duration_s"] <= 15),
               (">15 s", lambda t: t["duration_s"] > 15)],
}


def render(foley: str, videos: list[Path], out_dir: Path, model: str, candidates: int | None, env: dict,
           proxy: str | None = None, cfg: float | None = None, choose_per: str | None = None) -> float:
    """One `foley render` call for all videos; returns its wall time in seconds."""
    out_dir.mkdir(parents=True, exist_ok=True)
    cmd = [foley, "render", *map(str, videos), "--out-dir", str(out_dir), "-q", "--stems", "none", "--overwrite",
           "--report", str(out_dir / "report.json")]
    cmd += ["--model", model]
    if candidates:
        cmd += ["--candidates", str(candidates)]
    if proxy:
        cmd += ["--proxy", proxy]
    if cfg is not None:
        cmd += ["--cfg", str(cfg)]
    if choose_per:
        cmd += ["--choose-per", choose_per]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True, env=env)
    return time.perf_counter() - t0


def row(label: str, counts: list[dict]) -> str:
    m = metrics(counts)
    cells = [f"{m[c]:.3f}" if c.startswith(("f1", "kind", "side")) else f"{m[c]:.2f}" if isinstance(m[c], float)
             else str(m[c]) for c in COLUMNS]
    return f"{label:<28}" + "".join(f"{c:>14}" for c in cells)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--min-s", type=float, default=2.0)
    ap.add_argument("--max-s", type=float, default=30.0)
    ap.add_argument("--work", type=Path, required=True)
    ap.add_argument("--model", default="tiny", help="passed to foley render: a registered name or a checkpoint dir")
    ap.add_argument("--candidates", type=int, default=None, help="passed to foley render (default: the model's)")
    ap.add_argument("--proxy", default=None, help="passed to foley render: a proxy format (default: the current one)")
    ap.add_argument("--cfg", type=float, default=None, help="passed to foley render: guidance scale (default: the model's)")
    ap.add_argument("--choose-per", default=None,
                    help="passed to foley render: how the judge picks among candidates (default: the current way)")
    ap.add_argument("--control", choices=["none", "blank"], default="none")
    ap.add_argument("--keep", action="store_true", help="keep the videos and renders under WORK")
    ap.add_argument("--rescore", action="store_true", help="score the renders a --keep run left in WORK again")
    ap.add_argument("--foley", default=str(Path(sys.executable).parent / "foley"))
    args = ap.parse_args()

    work = args.work.resolve()
    own_data = "FOLEY_DATA_DIR" not in os.environ          # else the caller's database and store are used
    env = {**os.environ, "FOLEY_DATA_DIR": os.environ.get("FOLEY_DATA_DIR", str(work / "foley-data"))}
    names = [f"clip{i:03d}" for i in range(args.clips)]
    t0 = time.perf_counter()
    clips = [random_clip(args.seed * 100_003 + i, args.min_s, args.max_s) for i in range(args.clips)]
    audio_s = sum(c.duration_s for c in clips)
    blanks, wall = args.control == "blank", {}
    if not args.rescore:
        videos = [write_clip(c, work / "clips", n) for c, n in zip(clips, names)]
        blank_videos = [write_clip(c, work / "blank", n, draw_objects=False, with_truth=False)
                        for c, n in zip(clips, names)] if blanks else []
        print(f"generated {len(clips)} clips, {audio_s:.1f} s of audio, in {time.perf_counter() - t0:.1f} s")
        wall["model"] = render(args.foley, videos, work / "out", args.model, args.candidates, env, args.proxy,
                               args.cfg, args.choose_per)
        print(f"foley render: {wall['model']:.1f} s wall for {audio_s:.1f} s of audio "
              f"({audio_s / wall['model']:.2f}x real time)")
        if blanks:
            wall["blank"] = render(args.foley, blank_videos, work / "out_blank", args.model, args.candidates, env,
                                   args.proxy, args.cfg, args.choose_per)
            print(f"foley render (blank control): {wall['blank']:.1f} s wall")

    per_clip = []
    for name in names:
        truth = json.loads((work / "clips" / f"{name}.json").read_text())
        gt, sr = read_wav(work / "clips" / f"{name}.wav")
        rec = {"name": name, **{k: truth[k] for k in ("seed", "width_px", "height_px", "fps_float", "duration_s", "caption")},
               "model": score_clip(read_audio(work / "out" / f"{name}.foley.mp4", SAMPLE_RATE_HZ), SAMPLE_RATE_HZ, truth),
               "truth_wav": score_clip(gt, sr, truth), "truth_aac": score_clip(aac_roundtrip(gt, sr), sr, truth)}
        if blanks:
            rec["blank"] = score_clip(read_audio(work / "out_blank" / f"{name}.foley.mp4", SAMPLE_RATE_HZ),
                                      SAMPLE_RATE_HZ, truth)
        per_clip.append(rec)

    print("\n" + f"{'':<28}" + "".join(f"{c:>14}" for c in COLUMNS))
    print(row("model", [r["model"] for r in per_clip]))
    for name, groups in BUCKETS.items():
        for label, test in groups:
            sel = [r["model"] for r in per_clip if test(r)]
            if sel:
                print(row(f"  {name} {label}", sel))
    print(row("ground truth (wav)", [r["truth_wav"] for r in per_clip]))
    print(row("ground truth (aac)", [r["truth_aac"] for r in per_clip]))
    if blanks:
        print(row("blank control", [r["blank"] for r in per_clip]))

    summary = {k: metrics([r[k] for r in per_clip]) for k in ("model", "truth_wav", "truth_aac", "blank") if k in per_clip[0]}
    (work / "scores.json").write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "wall_s": wall,
                                                  "audio_s": audio_s, "summary": summary, "clips": per_clip}, indent=1))
    print(f"\nper-clip scores: {work / 'scores.json'}")
    if not args.keep:
        for sub in ("clips", "blank", "out", "out_blank"):
            for f in (work / sub).glob("*.mp4") if (work / sub).exists() else []:
                f.unlink()
        if own_data:
            shutil.rmtree(work / "foley-data", ignore_errors=True)


if __name__ == "__main__":
    main()

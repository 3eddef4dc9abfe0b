"""Long-video quality of `foley render`: seams at window joins and sync on long vs short clips.

    .venv/bin/python bench/long_clip_eval.py [--minutes 3] [--short-clips 20] [--model tiny]

1. A toy-world video of --minutes (H.264, 256×144, scenes with cuts) is rendered through the
   whole pipeline (windows, timeline noise, crossfade, chunked decode, mastering). Seam ratio =
   spectral-flux peak at joins / the same at random places (1.0: a join cannot be told apart),
   for joins away from shot cuts (a cut legitimately changes the sound) and for all joins; the
   ground-truth audio at the same joins is the reference.
2. Sync metrics of the long render vs --short-clips single-window (4 s) clips of the same world,
   rendered the same way: the long clip should stay within 10 % of the short ones.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from foley_model.evaluation import aggregate, score_clip, seam_ratio  # noqa: E402
from render_farm.config import Settings  # noqa: E402
from render_farm.local_render import plan_outputs, render_files  # noqa: E402
from render_farm.media.stems import read_audio  # noqa: E402
from render_farm.spec import RenderSpec  # noqa: E402
from render_farm.toyvideo import write_toy_video  # noqa: E402

NEAR_CUT_S = 0.25


def render_one(video: Path, work: Path, model: str, seed: int) -> tuple[np.ndarray, int, dict]:
    out = work / f"{video.stem}.out.mp4"
    settings = Settings(data_dir=work / "state")
    reports = render_files(settings, plan_outputs([video], out, None, True), RenderSpec(model=model, seed=seed), quiet=True)
    stem = Path(reports[0]["stems"][0]["uri"].removeprefix("file://"))
    audio, sr = read_audio(stem)
    return audio, sr, reports[0]


def events_of(toy) -> list:
    return [SimpleNamespace(**e) for e in toy.events]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--short-clips", type=int, default=20)
    parser.add_argument("--model", default="tiny")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        t0 = time.perf_counter()
        toy = write_toy_video(work / "long.mp4", args.minutes * 60, seed=args.seed, size=(256, 144), segment_s=30.0,
                              audio_track=True)
        audio, sr, report = render_one(toy.path, work, args.model, args.seed)
        wall = time.perf_counter() - t0
        truth, truth_sr = read_audio(toy.path, sample_rate_hz=sr)
        joins = report["joins_s"]
        away = [j for j in joins if all(abs(j - c) > NEAR_CUT_S for c in toy.cuts_s)]
        long_scores = aggregate([score_clip(audio, sr, events_of(toy))])
        short = []
        for i in range(args.short_clips):
            clip = write_toy_video(work / f"s{i}.mp4", 4.0, seed=1000 + i, size=(256, 144), segment_s=4.0)
            a, r, rep = render_one(clip.path, work, args.model, args.seed)
            assert len(rep["windows"]) == 1, f"{len(rep['windows'])=}"
            short.append(score_clip(a, r, events_of(clip)))
        short_scores = aggregate(short)
    print(f"long clip: {args.minutes:g} min, {len(report['windows'])} windows, {len(joins)} joins "
          f"({len(away)} away from cuts), {len(toy.cuts_s)} cuts, {long_scores['n_events']} judged events; "
          f"wall {wall:.0f} s")
    print(f"seam ratio, joins away from cuts: render {seam_ratio(audio, sr, away, 0):.3f}   "
          f"ground truth {seam_ratio(truth, truth_sr, away, 0):.3f}   (goal <= 1.3)")
    print(f"seam ratio, all joins:            render {seam_ratio(audio, sr, joins, 0):.3f}   "
          f"ground truth {seam_ratio(truth, truth_sr, joins, 0):.3f}")
    print(f"{'metric':<14}{'long':>9}{'short (1 window)':>18}{'long/short':>12}")
    for key in ("f1_50", "f1_100", "offset_ms", "false_per_min", "kind_acc", "side_acc", "n_events"):
        lv, sv = long_scores[key], short_scores[key]
        ratio = lv / sv if isinstance(sv, float) and sv not in (0.0,) and np.isfinite(sv) else float("nan")
        print(f"{key:<14}{lv:>9.3f}{sv:>18.3f}{ratio:>12.3f}")


if __name__ == "__main__":
    main()

"""False onsets while a box slides, in our own toy world, by the source's frame rate.

    .venv/bin/python bench/slide_judder_eval.py --clips 40 --fps 24 29.97 59.94 [--checkpoint DIR] [--mode model]

The renderer reads the picture at 24 fps by picking the last source frame at each grid time, so a 30 fps
source advances two frames at every 4th grid frame and a moving box jerks there (a 24 fps source never
does). On the independent clips every false onset during a 30 fps box move lay at such a double step
(`independent_breakdown.py`'s last table). This renders the same held-out-style clips (4 s, 96x54, a
stream no training draws) once per source rate with the tiny model as `foley eval toyworld` does, and
counts, with our scorer's onset detector and +-100 ms matching, the false onsets (unmatched, farther
than 100 ms from every event onset) inside a slide and elsewhere, a minute of that time. `--mode upper`
scores the ground truth through the codec instead (how many the codec alone makes).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foley_model.checkpoint import load_checkpoint  # noqa: E402
from foley_model.eval_run import EVAL_STREAM_SEED, render_clips  # noqa: E402
from foley_model.evaluation.matching import match_onsets  # noqa: E402
from foley_model.evaluation.onsets import detect_onsets  # noqa: E402
from foley_model.evaluation.scoring import JUDGED, TOL_WIDE_S, false_onsets  # noqa: E402
from foley_model.toyworld import GenStyle, clip_seed, make_clip  # noqa: E402

STREAM = 7  # held-out stream EVAL_STREAM_SEED + 7: neither the card's (0) nor the validation's
BATCH = 10


def false_onsets_by_place(audio: np.ndarray, sr: int, events: list) -> tuple[int, int, float]:
    """(false onsets inside a slide, false onsets elsewhere, seconds of slide) for one clip's audio (2, n)."""
    det = detect_onsets(audio, sr)
    judged = [e for e in events if e.kind in JUDGED]
    matched = {i for i, _ in match_onsets(det, [e.onset_s for e in judged], TOL_WIDE_S)}
    duration = audio.shape[-1] / sr
    slides = [(e.onset_s, min(e.end_s, duration)) for e in events if e.kind == "slide"]
    inside = elsewhere = 0
    for t in false_onsets(det, events, matched):  # the scorer's rule, as `foley eval toyworld` counts them
        if any(a <= t < b for a, b in slides):
            inside += 1
        else:
            elsewhere += 1
    return inside, elsewhere, sum(b - a for a, b in slides)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--checkpoint", default=None, help="checkpoint directory (default: the shipped tiny)")
    ap.add_argument("--clips", type=int, default=40)
    ap.add_argument("--fps", type=float, nargs="+", default=[24.0, 30000 / 1001, 60000 / 1001])
    ap.add_argument("--mode", choices=("model", "upper"), default="model")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    if args.clips < 1 or any(not 1 <= f <= 240 for f in args.fps):
        raise SystemExit("slide_judder_eval: --clips must be at least 1 and every --fps within 1..240")
    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.checkpoint)
    sr = model.cfg.audio.sample_rate_hz
    print(f"{args.clips} clips of 4 s per rate, mode {args.mode}: false onsets inside a slide and elsewhere")
    for fps in args.fps:
        clips = [make_clip(clip_seed(EVAL_STREAM_SEED + STREAM, i), duration_s=4.0, fps=24.0, size=(96, 54),
                           sample_rate_hz=sr, style=GenStyle.heldout(), source_fps=fps) for i in range(args.clips)]
        inside = elsewhere = 0
        slide_s = total_s = 0.0
        for b in range(0, len(clips), BATCH):
            batch = clips[b:b + BATCH]
            for audio, clip in zip(render_clips(model, batch, args.mode), batch):
                i, e, s = false_onsets_by_place(audio, sr, clip.events)
                inside, elsewhere, slide_s, total_s = inside + i, elsewhere + e, slide_s + s, total_s + clip.duration_s
        rest_s = total_s - slide_s
        print(f"  source {fps:6.3f} fps  in slides {inside:3d} in {slide_s / 60:.2f} min "
              f"({inside / max(slide_s / 60, 1e-9):5.1f} a minute)  elsewhere {elsewhere:3d} in {rest_s / 60:.2f} min "
              f"({elsewhere / max(rest_s / 60, 1e-9):5.1f} a minute)", flush=True)


if __name__ == "__main__":
    main()

"""Latents for one 10 s window with the shipped tiny checkpoint: one sample vs the default reranked candidates.

    .venv/bin/python bench/sampling_bench.py [--seconds 10] [--threads 2] [--repeats 3] [--checkpoint DIR]
                                             [--candidates 1 4 5]

The issue's CPU goal: the tiny variant generates latents for 10 s of audio in <= 2 s on 2 cores at its
default step count. The default now samples `SamplingConfig.candidates` latents per window in one batch
and lets the picture onset judge keep one (their Griffin-Lim mono audio and onsets included), so both
are timed here side by side, in one run, on the same conditions (best of --repeats).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foley_model.checkpoint import load_checkpoint  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--checkpoint", default=None)
    ap.add_argument("--candidates", type=int, nargs="+", default=None,
                    help="candidate counts to time side by side (default: 1 and the model's default)")
    args = ap.parse_args()
    if args.candidates and not all(1 <= n <= 16 for n in args.candidates):
        ap.error("--candidates: each count must be 1..16")
    torch.set_num_threads(args.threads)
    model, card = load_checkpoint(args.checkpoint)
    cfg = model.cfg
    g = torch.Generator().manual_seed(0)
    n_frames = int(round((args.seconds + 0.5) * 24))
    frames = torch.randint(0, 255, (1, n_frames, 144, 256, 3), dtype=torch.uint8, generator=g)
    rows = []
    with torch.inference_mode():
        cond = model.prepare_conditions(frames, [""], [0.0], [args.seconds])
        T, C = cond.latent_mask.shape[1], cfg.vae.latent_channels
        for n in sorted(set(args.candidates or (1, cfg.sampling.candidates))):
            noises = torch.randn(n, 1, T, C, generator=g)
            model.sample_candidates(cond, noises, steps=1)  # warm-up
            best = min(_timed(lambda: model.sample_candidates(cond, noises)) for _ in range(args.repeats))
            rows.append((n, best))
        k = cfg.sampling.candidates
        split = None
        if k > 1 and cond.onset_prob is not None:  # where the default's time goes: sampling vs the judge's choice
            noises = torch.randn(k, 1, T, C, generator=g)
            lat = model.sample_each(cond, noises)
            sample = min(_timed(lambda: model.sample_each(cond, noises)) for _ in range(args.repeats))
            choose = min(_timed(lambda: model.choose_candidates(lat, cond)) for _ in range(args.repeats))
            split = (sample, choose)
    print(f"tiny checkpoint {card['sha256'][:12]}, {args.threads} threads, {args.seconds:g} s window "
          f"({T} latent frames), {cfg.sampling.steps} Euler steps, CFG {cfg.sampling.cfg_scale:g}")
    for n, s in rows:
        what = "one sample" if n == 1 else f"{n} candidates reranked by the picture onset judge"
        what += " (the default)" if n == cfg.sampling.candidates else ""
        print(f"  {what:<62} {s:6.3f} s   ({args.seconds / s:5.2f}x realtime)")
    if split:
        print(f"    of which: {k} candidates sampled in one batch {split[0]:.3f} s, the judge's choice (decode, "
              f"Griffin-Lim, onsets) {split[1]:.3f} s (best of {args.repeats} each)")


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


if __name__ == "__main__":
    main()

"""Are two checkpoints (or settings) different on the independent clips? A paired bootstrap over clips.

    .venv/bin/python bench/independent_compare.py BASE_WORK [BASE_WORK ...] -- NEW_WORK [NEW_WORK ...]

Each WORK is an `independent_eval.py` run directory (its scores.json). The two lists pair up in order
and must hold the same clips (the same seeds and clip arguments), so each clip is scored under both.
Prints pooled F1 within +-50 and +-100 ms, recall, precision and false onsets a minute for each side,
and for each difference (new - base) a 95 % interval from resampling the clips with replacement
(`--draws`). An interval that holds 0 means 40-clip runs cannot tell the two apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judgeworld.score import metrics as scorer_metrics  # noqa: E402

# the per-clip counts `judgeworld.score.score_clip` writes (all but its list of matches)
FIELDS = ("n_clips", "duration_s", "n_events", "n_det", "tp50", "tp100", "abs_offset_s_sum", "kind_ok", "side_n",
          "side_ok", "n_false")


def clip_counts(work_dirs: list[Path]) -> tuple[list[str], np.ndarray]:
    """(clip ids, counts (n_clips, len(FIELDS))) of the model's scores in these runs, in order."""
    names, rows = [], []
    for w in work_dirs:
        scores = json.loads((Path(w) / "scores.json").read_text())
        seed = scores.get("args", {}).get("seed")
        for clip in scores["clips"]:
            names.append(f"{seed}/{clip['name']}")
            rows.append([float(clip["model"][f]) for f in FIELDS])
    return names, np.array(rows, dtype=np.float64).reshape(-1, len(FIELDS))


def metrics(c: np.ndarray) -> dict[str, float]:
    """Pooled metrics of counts `c` (n_clips, FIELDS): the independent scorer's own summary over these clips
    (`judgeworld.score.metrics`), with recall and precision at +-50 ms beside its F1."""
    sums = dict(zip(FIELDS, c.sum(axis=0).tolist()))
    m = scorer_metrics(sums)
    return {"f1_50": m["f1_50"], "f1_100": m["f1_100"],
            "recall_50": sums["tp50"] / sums["n_events"] if sums["n_events"] else 1.0,
            "precision_50": sums["tp50"] / sums["n_det"] if sums["n_det"] else 1.0,
            "false_per_min": m["false_per_min"]}


def paired_bootstrap(base: np.ndarray, new: np.ndarray, draws: int = 5000,
                     seed: int = 0) -> dict[str, tuple[float, float, float]]:
    """For each metric: (new - base on all clips, 2.5th and 97.5th percentile over resampled clip sets)."""
    if base.shape != new.shape:
        raise ValueError(f"the runs hold different clips: {base.shape[0]} against {new.shape[0]}")
    rng = np.random.default_rng(seed)
    full = {k: metrics(new)[k] - v for k, v in metrics(base).items()}
    diffs: dict[str, list[float]] = {k: [] for k in full}
    n = base.shape[0]
    for _ in range(draws):
        idx = rng.integers(0, n, n)
        mb, mn = metrics(base[idx]), metrics(new[idx])
        for k in diffs:
            diffs[k].append(mn[k] - mb[k])
    return {k: (full[k], float(np.percentile(d, 2.5)), float(np.percentile(d, 97.5))) for k, d in diffs.items()}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if "--" not in argv:
        print("usage: independent_compare.py BASE_WORK [...] -- NEW_WORK [...] [--draws N]", file=sys.stderr)
        return 2
    cut = argv.index("--")
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("work", nargs="+", type=Path)
    ap.add_argument("--draws", type=int, default=5000)
    a = ap.parse_args(argv[:cut])
    b = ap.parse_args(argv[cut + 1:])
    if min(a.draws, b.draws) < 1:
        print(f"error: --draws {min(a.draws, b.draws)} must be at least 1", file=sys.stderr)
        return 2
    if len(a.work) != len(b.work):
        print(f"error: {len(a.work)} base runs against {len(b.work)} new runs", file=sys.stderr)
        return 2
    try:
        names_a, ca = clip_counts(a.work)
        names_b, cb = clip_counts(b.work)
    except (OSError, KeyError, ValueError) as exc:
        print(f"error: cannot read scores.json: {exc}", file=sys.stderr)
        return 1
    if names_a != names_b:
        print("error: the two sides hold different clips (seeds or clip arguments differ)", file=sys.stderr)
        return 1
    ma, mb = metrics(ca), metrics(cb)
    ev, dur = ca[:, FIELDS.index("n_events")].sum(), ca[:, FIELDS.index("duration_s")].sum()
    print(f"{len(names_a)} clips, {int(ev)} events, {dur / 60:.1f} minutes")
    print(f"{'metric':<15}{'base':>9}{'new':>9}{'new-base':>10}   95 % interval (paired bootstrap)")
    for k, (d, lo, hi) in paired_bootstrap(ca, cb, max(a.draws, b.draws)).items():
        fmt = "{:.2f}" if k == "false_per_min" else "{:.3f}"
        print(f"{k:<15}{fmt.format(ma[k]):>9}{fmt.format(mb[k]):>9}{d:>+10.3f}   [{lo:+.3f}, {hi:+.3f}]")
    return 0


if __name__ == "__main__":
    sys.exit(main())

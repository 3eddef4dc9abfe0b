"""Where the misses and false onsets of `independent_eval.py --keep` runs come from.

    .venv/bin/python bench/independent_breakdown.py WORK [WORK ...]

Re-detects onsets in each kept render (WORK/out/*.foley.mp4) with the independent scorer's detector
and matching (+-100 ms), then prints, summed over the WORK dirs:

- recall by kind; for impacts, by the height of the hop that ends in the contact, in pixels of the
  model's 32-row frames (speed x flight / 4; a ball's last hops are a fraction of a pixel), and by how
  near the next other event is (dense trains are where most misses are);
- false onsets (the scorer's: farther than 100 ms from every impact, beep and slide onset) by what
  lies near them: 100-250 ms from a scored event (an extra or misplaced knock), inside a slide, inside
  a lit lamp, at a cut, near a window join (the render report's joins_s), elsewhere;
- false onsets a minute and recall by distance to the nearest window join, to the clip's start and to
  its end, against the share of the clips' time at that distance (are the crossfaded joins, or a clip's
  edges, where onsets go wrong?);
- matched onsets' signed offset by the phase of the true onset on the 24 fps frame grid the renderer
  reads the picture on (a lamp lit between two grid frames is first seen at the next one: when the
  offset follows the phase, the grid, not the model, sets the timing);
- false onsets during a box's move, by the source's frame rate, and how many lie within half a frame of a
  judder frame (the renderer picks the last source frame at each 24 fps grid time, so a 30 fps source
  advances two frames at every 4th grid frame: a moving box jerks there), against the share of the
  move time that lies that near one (what chance alone would put there).
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter, defaultdict
from fractions import Fraction
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judgeworld.audio import SAMPLE_RATE_HZ  # noqa: E402
from judgeworld.media import read_audio  # noqa: E402
from judgeworld.score import SCORED, detect_onsets, false_onsets, match  # noqa: E402

ROWS = 32  # the tiny model's frames are 32 x 32


def hop_bucket(e: dict, events: list[dict]) -> str:
    """An impact's bucket by the hop before it (same ball, same scene): height in ROWS-row pixels."""
    before = [f for f in events if f["kind"] == "impact" and (f["scene"], f["object"]) == (e["scene"], e["object"])
              and f["onset_s"] < e["onset_s"]]
    if not before:
        return "first contact"
    px = e["speed"] * (e["onset_s"] - before[-1]["onset_s"]) / 4 * ROWS
    for edge in (0.5, 1, 2, 4):
        if px < edge:
            return f"hop < {edge:g} px"
    return "hop >= 4 px"


def false_cause(x: float, t: dict, ev: list[dict], joins: np.ndarray) -> str:
    ref = np.array([e["onset_s"] for e in ev])
    if len(ref) and np.abs(ref - x).min() <= 0.25:
        return "100-250 ms from an impact/beep"
    if any(e["kind"] == "slide" and e["onset_s"] < x < e["onset_s"] + e["duration_s"] + 0.15 for e in t["events"]):
        return "inside a slide (or just after)"
    if any(e["kind"] == "beep" and e["onset_s"] < x < e["off_s"] + 0.05 for e in ev):
        return "inside a lit lamp (or at its end)"
    if any(abs(x - c) < 0.15 for c in t["cuts_s"]):
        return "at a cut"
    if len(joins) and np.abs(joins - x).min() < 0.5:
        return "within 0.5 s of a window join"
    return "elsewhere"


DISTANCE_BINS_S = (0.0, 0.1, 0.25, 0.5, 1.0, np.inf)
ANCHORS = ("window join", "clip start", "clip end")


def distance_bin(x: float, anchors: np.ndarray) -> int:
    """Index of the DISTANCE_BINS_S bin of x's distance to the nearest anchor (the last bin without any)."""
    d = float(np.abs(anchors - x).min()) if len(anchors) else np.inf
    return min(int(np.searchsorted(DISTANCE_BINS_S, d, side="right")) - 1, len(DISTANCE_BINS_S) - 2)


FRAME_GRID_FPS = 24  # the renderer reads the picture at 24 fps (render_farm/steps/render.py SYNC_FPS)
PHASE_BINS_MS = (0, 7, 14, 21, 28, 35, 1000 / FRAME_GRID_FPS)


def judder_times(fps: Fraction, duration_s: float, grid_fps: int = FRAME_GRID_FPS) -> np.ndarray:
    """Times of the grid frames where the picked source frame advances by other than its usual step (a double
    step, or a repeated frame from a source slower than the grid)."""
    k = np.arange(int(np.ceil(duration_s * grid_fps)) + 1)
    picked = (k * fps.numerator) // (grid_fps * fps.denominator)  # last source frame at or before k / grid_fps
    step = np.diff(picked)
    if not len(step):
        return np.zeros(0)
    values, counts = np.unique(step, return_counts=True)
    return k[1:][step != values[counts.argmax()]] / grid_fps


def near(x: np.ndarray, times: np.ndarray, tol: float) -> np.ndarray:
    """For each of x, whether some of `times` lies within tol (none, where `times` is empty)."""
    return (np.abs(np.asarray(x)[:, None] - np.asarray(times)[None, :]) <= tol).any(axis=1)


def grid_phase_ms(onset_s: float, fps: int = FRAME_GRID_FPS) -> float:
    """How long after an onset the first frame of the renderer's frame grid comes (0 up to one frame, in ms):
    a lamp that lights at `onset_s` is first seen in that frame."""
    return 1000 * (np.ceil(onset_s * fps - 1e-9) / fps - onset_s)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, nargs="+", help="independent_eval.py --keep work directories")
    args = ap.parse_args()
    recall: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    causes: Counter = Counter()
    minutes = 0.0
    n_bins = len(DISTANCE_BINS_S) - 1
    by_dist = {a: {k: np.zeros(n_bins) for k in ("seconds", "false", "hit", "events")} for a in ANCHORS}
    phase: dict[str, list[tuple[float, float]]] = defaultdict(list)  # kind -> (grid phase ms, signed offset ms)
    # source fps -> [move seconds, false onsets in moves, of them near a judder frame, move seconds near one]
    moving: dict[float, list[float]] = defaultdict(lambda: [0.0, 0, 0, 0.0])
    for work in args.work:
        report = json.loads((work / "out" / "report.json").read_text())
        joins_of = {Path(j["input"]["uri"]).stem: np.array(j.get("joins_s") or []) for j in report["jobs"]}
        for tj in sorted((work / "clips").glob("clip*.json")):
            t = json.loads(tj.read_text())
            minutes += t["duration_s"] / 60
            joins = joins_of.get(tj.stem, np.zeros(0))
            anchors = dict(zip(ANCHORS, (joins, np.array([0.0]), np.array([t["duration_s"]]))))

            def count(what: str, x: float, n: float = 1.0) -> None:
                for a, at in anchors.items():
                    by_dist[a][what][distance_bin(x, at)] += n

            for x in np.arange(0.005, t["duration_s"], 0.01):  # the clip's time, 10 ms at a time
                count("seconds", x, 0.01)
            det = detect_onsets(read_audio(work / "out" / f"{tj.stem}.foley.mp4", SAMPLE_RATE_HZ), SAMPLE_RATE_HZ)
            det = det[det < t["duration_s"]]
            ev = [e for e in t["events"] if e["kind"] in SCORED]
            ref = np.array([e["onset_s"] for e in ev])
            slides = np.array([e["onset_s"] for e in t["events"] if e["kind"] not in SCORED])
            pairs = match(det, ref, 0.10)
            hit_ref = {j for _, j in pairs}
            for i, j in pairs:
                phase[ev[j]["kind"]].append((grid_phase_ms(ev[j]["onset_s"]), 1000 * (det[i] - ev[j]["onset_s"])))
            every = np.array([e["onset_s"] for e in t["events"]])
            for j, e in enumerate(ev):
                h = int(j in hit_ref)
                gaps = np.sort(np.abs(every - e["onset_s"]))
                gap = gaps[1] if len(gaps) > 1 else np.inf
                keys = [e["kind"], f"{e['kind']}, next other event " +
                        ("< 100 ms" if gap < 0.1 else "100-250 ms" if gap < 0.25 else ">= 250 ms")]
                if e["kind"] == "impact":
                    keys.append("impact, " + hop_bucket(e, t["events"]))
                for k in keys:
                    recall[k][0] += h
                    recall[k][1] += 1
                count("hit", e["onset_s"], h)
                count("events", e["onset_s"])
            falses = np.array(false_onsets(det, ref, slides, pairs))
            for x in falses:
                causes[false_cause(x, t, ev, joins)] += 1
                count("false", x)
            fps = Fraction(*t["fps"])
            judder = judder_times(fps, t["duration_s"])
            ends = np.array(sorted(t["cuts_s"]) + [t["duration_s"]])
            m = moving[round(float(fps), 2)]
            for e in t["events"]:
                if e["kind"] == "slide":  # the move, cut short by the scene's end (its sound stops there)
                    t1 = min(e["onset_s"] + e["duration_s"], ends[ends > e["onset_s"]].min())
                    grid = np.arange(e["onset_s"] + 0.0005, t1, 0.001)
                    inside = falses[(falses > e["onset_s"]) & (falses < t1)]
                    m[0] += len(grid) / 1000
                    m[1] += len(inside)
                    m[2] += int(near(inside, judder, 0.5 / FRAME_GRID_FPS).sum())
                    m[3] += near(grid, judder, 0.5 / FRAME_GRID_FPS).sum() / 1000
    print(f"{len(args.work)} run(s), {minutes:.1f} minutes of clips\n\nrecall within +-100 ms")
    for k in sorted(recall):
        h, n = recall[k]
        print(f"  {k:<40} {h:5d} / {n:<5d} {h / n:.3f}")
    total = sum(causes.values())
    print(f"\nfalse onsets: {total} ({total / minutes:.2f} a minute)")
    for k, n in causes.most_common():
        print(f"  {k:<40} {n:5d}  {n / minutes:.2f} a minute")
    for a in ANCHORS:
        print(f"\nby distance to the nearest {a}: share of the time, false onsets, recall within +-100 ms")
        d = by_dist[a]
        for i in range(n_bins):
            lo, hi = DISTANCE_BINS_S[i], DISTANCE_BINS_S[i + 1]
            span = f"{lo:g}-{hi:g} s" if np.isfinite(hi) else f">= {lo:g} s"
            sec, n_false, n_ev = d["seconds"][i], int(d["false"][i]), int(d["events"][i])
            per_min = n_false / (sec / 60) if sec else float("nan")
            rec = d["hit"][i] / n_ev if n_ev else float("nan")
            print(f"  {span:<12} time {sec / max(d['seconds'].sum(), 1e-9):6.1%}  false {n_false:4d} "
                  f"({per_min:.2f} a minute)  recall {rec:.3f} of {n_ev}")
    print(f"\nmatched onsets (+-100 ms) by how long after the onset the next frame of the {FRAME_GRID_FPS} fps "
          f"grid the renderer reads comes: mean signed offset (detected - true), mean |offset|")
    for kind in sorted(phase):
        ph, off = np.array(phase[kind]).T
        slope = np.polyfit(ph, off, 1)[0] if len(ph) > 2 else float("nan")
        print(f"  {kind}: {len(ph)} matched, offset against phase: slope {slope:.2f}, correlation "
              f"{np.corrcoef(ph, off)[0, 1] if len(ph) > 2 else float('nan'):.2f}")
        for lo, hi in zip(PHASE_BINS_MS[:-1], PHASE_BINS_MS[1:]):
            m = (ph >= lo) & (ph < hi)
            if m.any():
                print(f"    phase {lo:4.1f}-{hi:4.1f} ms  n {int(m.sum()):5d}  offset {off[m].mean():+6.1f} ms  "
                      f"|offset| {np.abs(off[m]).mean():5.1f} ms")
    print(f"\nfalse onsets during a box's move by source frame rate: within half a frame of a judder frame "
          f"(a double step of the {FRAME_GRID_FPS} fps picking) against the move time that near one")
    for fps in sorted(moving):
        sec, n, nj, secj = moving[fps]
        if sec:
            print(f"  {fps:6.2f} fps  moving {sec / 60:5.2f} min  false {n:4d} ({n / (sec / 60):5.1f} a minute)  "
                  f"near judder {nj:4d} ({nj / max(n, 1):.0%}; chance {secj / sec:.0%})")


if __name__ == "__main__":
    main()

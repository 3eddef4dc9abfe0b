"""The picture onset judge alone on independent toy-world clips, by where its frames come from.

    .venv/bin/python bench/independent_eval.py --clips 40 --seed 3 --work /tmp/judge --keep
    .venv/bin/python bench/picture_judge_eval.py /tmp/judge master p2-24fps-144p-crf12 p1-24fps-144p crf:18

Reads the clips a `--keep` run of `independent_eval.py` left in WORK/clips. For each frame source
(`master`: the clip itself; a proxy format name; `crf:N`: a 144p proxy at CRF N) it decodes frames at
24 fps and 96x54 as the renderer does, runs the shipped model's frame encoder and picture onset judge
over the whole clip, and scores the judge's peaks against the ground truth onsets of impacts and
beeps (the independent scorer's matching, +-50 ms). No audio is generated, so this isolates what the
picture path can see from what generation and decoding lose.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT.parent))

from judgeworld.score import match  # noqa: E402

from foley_model.checkpoint import load_checkpoint  # noqa: E402
from foley_model.encoders import frames_to_float  # noqa: E402
from foley_model.judge import peak_frames  # noqa: E402
from render_farm.media.frames import iter_frames  # noqa: E402
from render_farm.media.proxy import make_proxy, make_proxy_as  # noqa: E402
from render_farm.media.proxy_formats import PROXY_FORMATS  # noqa: E402

JUDGED = ("impact", "beep")


def frames_of(video: Path, source: str, scratch: Path) -> tuple[np.ndarray, int]:
    """(T, 54, 96, 3) uint8 frames at 24 fps from `source`, and the proxy's bytes (0 for the master)."""
    path = video
    if source in PROXY_FORMATS:
        path = make_proxy_as(video, scratch / "proxy.mp4", source).path
    elif source.startswith("crf:"):
        path = make_proxy(video, scratch / "proxy.mp4", 24, 144, crf=int(source[4:])).path
    elif source != "master":
        raise SystemExit(f"unknown frame source {source!r} (master, crf:N or one of {', '.join(PROXY_FORMATS)})")
    frames = np.stack([f.rgb for f in iter_frames(path, 24, (96, 54))])
    return frames, 0 if path == video else Path(path).stat().st_size


@torch.no_grad()
def judge_onsets(model, frames: np.ndarray, duration_s: float) -> np.ndarray:
    """Seconds of the judge's peaks over a whole clip."""
    x = frames_to_float(torch.from_numpy(frames)[None], model.cfg.encoders.frame_size)
    feats = model.encode_frames(x)  # (1, Tf, D), shots split as in a render
    rate = model.cfg.audio.mel_rate_hz
    times = (torch.arange(int(duration_s * rate), dtype=torch.float64)[None] / rate).float()
    prob = torch.sigmoid(model.judge(model.judge_features(feats, times)))[0].numpy()
    jc = model.cfg.judge
    return peak_frames(prob, jc.threshold, jc.min_gap_frames) / rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, help="an independent_eval.py --keep work directory")
    ap.add_argument("sources", nargs="+", help="master, a proxy format name, or crf:N")
    ap.add_argument("--model", default=None, help="checkpoint directory (default: the shipped tiny)")
    args = ap.parse_args()
    torch.set_num_threads(2)
    model, _ = load_checkpoint(args.model)
    model.eval()
    clips = sorted((args.work / "clips").glob("clip*.json"))
    if not clips or not clips[0].with_suffix(".mp4").exists():
        raise SystemExit(f"{args.work}/clips has no kept videos (run independent_eval.py with --keep)")
    tp = {s: {k: 0 for k in JUDGED} for s in args.sources}
    n_ref = {k: 0 for k in JUDGED}
    n_det, off, size = dict.fromkeys(args.sources, 0), dict.fromkeys(args.sources, 0.0), dict.fromkeys(args.sources, 0)
    with tempfile.TemporaryDirectory() as tmp:
        for j in clips:
            truth = json.loads(j.read_text())
            events = [e for e in truth["events"] if e["kind"] in JUDGED]
            ref = np.array([e["onset_s"] for e in events])
            for e in events:
                n_ref[e["kind"]] += 1
            for s in args.sources:
                frames, nbytes = frames_of(j.with_suffix(".mp4"), s, Path(tmp))
                det = judge_onsets(model, frames, truth["duration_s"])
                pairs = match(det, ref, 0.05)
                n_det[s] += len(det)
                size[s] += nbytes
                off[s] += sum(abs(det[a] - ref[b]) for a, b in pairs)
                for _, b in pairs:
                    tp[s][events[b]["kind"]] += 1
    total = sum(n_ref.values())
    print(f"{len(clips)} clips, {total} judged events ({n_ref['impact']} impacts, {n_ref['beep']} beeps)")
    print(f"{'frames from':<24}{'F1':>7}{'prec':>7}{'recall':>8}{'impacts':>9}{'beeps':>7}{'offset':>10}{'proxy MB':>10}")
    for s in args.sources:
        hits = sum(tp[s].values())
        p, r = hits / max(n_det[s], 1), hits / max(total, 1)
        f1 = 2 * p * r / max(p + r, 1e-9)
        print(f"{s:<24}{f1:7.3f}{p:7.3f}{r:8.3f}{tp[s]['impact'] / max(n_ref['impact'], 1):9.3f}"
              f"{tp[s]['beep'] / max(n_ref['beep'], 1):7.3f}{1000 * off[s] / max(hits, 1):8.1f} ms{size[s] / 1e6:10.1f}")


if __name__ == "__main__":
    main()

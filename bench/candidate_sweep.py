"""Replayable candidate study: sample K candidates per held-out clip once, then score any selection rule.

    .venv/bin/python bench/candidate_sweep.py collect --clips 150 --stream validation --k 8 --out runs/val.pkl
    .venv/bin/python bench/candidate_sweep.py replay runs/val.pkl [--n 4] [--threshold 0.7] [--extra 2.5] ...

Rules: the judge's threshold, extra_weight and offset_weight (`foley_model.judge.candidate_score`),
which onsets it compares (Griffin-Lim mono as shipped, the delivery audio, or an early choice's estimate
after N of the steps: collect --early N, replay --signal aN) and how many candidates;
--oracle adds the pick by ground truth, the headroom of n candidates.

`rejudge` swaps in the picture onset probability of another checkpoint's judge (the same DiT), so a
retrained judge is scored on the same candidates.

`collect` renders, for every clip and every candidate k < K (noise `clip_noise(seed, T, C, k)`, as
`foley eval toyworld` draws them), the delivery audio and scores it against ground truth
(`score_clip`), and keeps what the judge sees: the candidate's Griffin-Lim mono onsets and the
picture onset probability. `replay` then evaluates a selection rule over the first n candidates
without sampling again, so rules and thresholds are compared on the very same draws. With the
config's own rule, replay reproduces `foley eval toyworld --candidates n` (same noises, same choice).

--stream: `foley eval toyworld`'s streams (`eval_run.STREAMS`). Choose rules on validation, report on heldout.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import pickle
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from foley_model.checkpoint import load_checkpoint  # noqa: E402
from foley_model.configs import JudgeConfig  # noqa: E402
from foley_model.eval_run import STREAMS, clip_noise, held_out_clips  # noqa: E402
from foley_model.evaluation import aggregate, score_clip  # noqa: E402
from foley_model.evaluation.onsets import detect_onsets  # noqa: E402
from foley_model.evaluation.matching import f1, match_onsets  # noqa: E402
from foley_model.flow_matching import predict_x1  # noqa: E402
from foley_model.judge import choose, peak_frames  # noqa: E402


@torch.no_grad()
def collect(args) -> None:
    torch.set_num_threads(args.threads)
    model, card = load_checkpoint(args.checkpoint)
    cfg = model.cfg
    sr, stream = cfg.audio.sample_rate_hz, STREAMS[args.stream]
    records, t0 = [], time.perf_counter()
    for b0 in range(0, args.clips, args.batch):
        clips = held_out_clips(stream, b0, min(args.clips, b0 + args.batch), args.duration, sample_rate_hz=sr)
        B = len(clips)
        frames = torch.from_numpy(np.stack([c.frames for c in clips]))
        cond = model.prepare_conditions(frames, [c.caption for c in clips], [0.0] * B, [args.duration] * B)
        T, C = cond.latent_mask.shape[1], cfg.vae.latent_channels
        noises = torch.stack([torch.stack([clip_noise(c.seed, T, C, k) for c in clips]) for k in range(args.k)])
        est: dict[int, torch.Tensor] = {}

        def keep(i, x, v, t):  # the clean-latent estimate after i + 1 steps (an early choice's signal)
            if i + 1 in args.early:
                est[i + 1] = predict_x1(x, v, t) * cond.latent_mask.repeat(args.k, 1)[..., None]
        lat = model.sample_each(cond, noises, observe=keep)  # (K, B, T, C)
        mono = model.decode_mel(lat.reshape(args.k * B, T, C))
        # the Griffin-Lim mono audio each judge signal reads: the final latents' ("gl") and the estimates' ("aN")
        judged = {"gl": mono, **{f"a{a}": model.decode_mel(x) for a, x in est.items()}}
        gl = {name: model.vocode(m, "griffin_lim").reshape(args.k, B, -1).numpy() for name, m in judged.items()}
        cues = torch.cat([cond.cues] * args.k)
        wave = model.vocode(model.to_stereo(mono, cues)).reshape(args.k, B, 2, -1).numpy()
        n = int(round(args.duration * sr))
        prob = cond.onset_prob.float().numpy()
        for b, c in enumerate(clips):
            det = [detect_onsets(wave[k, b, :, :n], sr) for k in range(args.k)]
            records.append({
                "seed": c.seed,
                "prob": prob[b],
                "events": [(e.kind, e.onset_s, e.x) for e in c.events],
                **{f"{name}_onsets": [detect_onsets(w[k, b, :n], sr) for k in range(args.k)] for name, w in gl.items()},
                "out_onsets": det,  # on the delivery audio, as scored
                "scores": [score_clip(wave[k, b, :, :n], sr, c.events, d) for k, d in enumerate(det)],
            })
        print(f"{len(records)}/{args.clips} clips, {time.perf_counter() - t0:.0f} s", flush=True)
    meta = {"checkpoint": card["sha256"], "stream": stream, "k": args.k, "duration_s": args.duration,
            "mel_rate_hz": cfg.audio.mel_rate_hz, "judge": dataclasses.asdict(cfg.judge)}
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "wb") as f:
        pickle.dump({"meta": meta, "records": records}, f)
    print(f"wrote {args.out}")


@torch.no_grad()
def rejudge(args) -> None:
    """Swap in another checkpoint's judge: recompute the picture onset probability of every clip.

    Valid only when that checkpoint differs from the collected one in the judge alone (the candidates
    are then the same); checked tensor by tensor against the collected (shipped) checkpoint."""
    torch.set_num_threads(args.threads)
    with open(args.data, "rb") as f:
        data = pickle.load(f)
    meta, records = data["meta"], data["records"]
    model, card = load_checkpoint(args.checkpoint)
    shipped, shipped_card = load_checkpoint(None)
    if shipped_card["sha256"] != meta["checkpoint"]:
        raise SystemExit(f"{args.data} was collected with checkpoint {meta['checkpoint'][:12]}, not the shipped one")
    shipped = shipped.state_dict()
    changed = sorted({k.split(".")[0] for k, v in model.state_dict().items() if not torch.equal(v, shipped[k])})
    if changed not in ([], ["judge"]):
        raise SystemExit(f"{args.checkpoint} changes more than the judge: {changed}")
    for b0 in range(0, len(records), 10):
        batch = records[b0:b0 + 10]
        clips = held_out_clips(meta["stream"], b0, b0 + len(batch), meta["duration_s"],
                               sample_rate_hz=model.cfg.audio.sample_rate_hz)
        assert [c.seed for c in clips] == [r["seed"] for r in batch]
        frames = torch.from_numpy(np.stack([c.frames for c in clips]))
        cond = model.prepare_conditions(frames, [c.caption for c in clips], [0.0] * len(clips),
                                        [meta["duration_s"]] * len(clips))
        for r, p in zip(batch, cond.onset_prob.float().numpy()):
            r["prob"] = p
    meta = {**meta, "judge_checkpoint": card["sha256"], "judge": dataclasses.asdict(model.cfg.judge)}
    with open(args.out, "wb") as f:
        pickle.dump({"meta": meta, "records": records}, f)
    print(f"wrote {args.out}")


def replay(records: list, meta: dict, n: int, jc: JudgeConfig, signal: str = "gl", oracle: bool = False) -> dict:
    """Aggregate metrics when the judge (config jc) picks among each clip's first n candidates.

    signal: the onsets the judge compares, "gl" (Griffin-Lim mono, as shipped), "out" (the delivery
    audio) or "aN" (Griffin-Lim mono of the clean-latent estimate after N steps: a choice made before the
    last steps). oracle: pick by the ground-truth score instead (the headroom of n candidates)."""
    picked = []
    for r in records:
        if oracle:
            s = r["scores"][:n]  # matched - extra - missed at +-50 ms, false onsets twice more
            k = max(range(n), key=lambda i: (3 * s[i].matched_50 - s[i].n_detected - 2 * s[i].false_onsets, -i))
        elif n > 1:
            picture = peak_frames(r["prob"], jc.threshold, jc.min_gap_frames) / meta["mel_rate_hz"]
            k = choose([list(o) for o in r[f"{signal}_onsets"][:n]], list(picture), jc)
        else:
            k = 0
        picked.append(r["scores"][k])
    agg = aggregate(picked)
    return {k: v for k, v in agg.items() if not (isinstance(v, float) and math.isnan(v))}


def judge_alone(records: list, meta: dict, jc: JudgeConfig) -> dict:
    """The judge's peaks scored as if they were the generated onsets (F1 +-50 ms, offset, signed bias)."""
    m50 = n_det = n_truth = 0
    signed = []
    for r in records:
        truth = [t for kind, t, _ in r["events"] if kind in ("impact", "beep")]
        picture = peak_frames(r["prob"], jc.threshold, jc.min_gap_frames) / meta["mel_rate_hz"]
        pairs = match_onsets(picture, truth, 0.05)
        m50, n_det, n_truth = m50 + len(pairs), n_det + len(picture), n_truth + len(truth)
        signed += [picture[i] - truth[j] for i, j in pairs]
    s = np.asarray(signed) * 1000
    return {"f1_50": f1(m50, n_det, n_truth), "offset_ms": float(np.abs(s).mean()),
            "bias_ms": float(s.mean())}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("collect")
    c.add_argument("--clips", type=int, default=150)
    c.add_argument("--stream", choices=tuple(STREAMS), default="validation")
    c.add_argument("--k", type=int, default=8)
    c.add_argument("--batch", type=int, default=10)
    c.add_argument("--duration", type=float, default=4.0)
    c.add_argument("--threads", type=int, default=2)
    c.add_argument("--checkpoint", default=None)
    c.add_argument("--early", type=int, nargs="*", default=[],
                   help="also keep the Griffin-Lim onsets of each candidate's clean-latent estimate after these "
                        "many steps (replay --signal aN: the choice a judge would make that early)")
    c.add_argument("--out", required=True)
    j = sub.add_parser("rejudge")
    j.add_argument("data")
    j.add_argument("--checkpoint", required=True)
    j.add_argument("--threads", type=int, default=2)
    j.add_argument("--out", required=True)
    r = sub.add_parser("replay")
    r.add_argument("data")
    r.add_argument("--n", type=int, nargs="+", default=[1, 4])
    r.add_argument("--threshold", type=float, nargs="+", default=[None])
    r.add_argument("--extra", type=float, nargs="+", default=[None])
    r.add_argument("--offset-weight", type=float, nargs="+", default=[None])
    r.add_argument("--signal", nargs="+", default=["gl"],
                   help="gl (Griffin-Lim mono of the final latents, as shipped), out (the delivery audio), "
                        "aN (the estimate after N steps; collected with --early N)")
    r.add_argument("--oracle", action="store_true", help="also the ground-truth pick (headroom)")
    args = ap.parse_args()
    if args.cmd == "collect":
        return collect(args)
    if args.cmd == "rejudge":
        return rejudge(args)
    with open(args.data, "rb") as f:
        data = pickle.load(f)
    meta, records = data["meta"], data["records"]
    base = JudgeConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in meta["judge"].items()})
    missing = [sig for sig in args.signal if f"{sig}_onsets" not in records[0]]
    if missing:
        raise SystemExit(f"{args.data} holds no onsets for signal(s) {', '.join(missing)} (collect --early N for aN)")
    print(f"stream {meta['stream']}, {len(records)} clips, K={meta['k']}")
    for thr in args.threshold:
        j = judge_alone(records, meta, dataclasses.replace(base, threshold=thr or base.threshold))
        print(f"judge alone at {thr or base.threshold}: F1 {j['f1_50']:.3f}, offset {j['offset_ms']:.1f} ms, "
              f"bias {j['bias_ms']:+.1f} ms")
    print(f"{'n':>3} {'signal':>6} {'thr':>5} {'extra':>6} {'offw':>5} {'f1_50':>7} {'offset':>7} {'false/min':>9} "
          f"{'kind':>6} {'side':>6}")

    def row(n, sig, jc, ow, a):
        print(f"{n:>3} {sig:>6} {jc.threshold:>5.2f} {jc.extra_weight:>6.2f} {ow:>5.2f} {a['f1_50']:>7.3f} "
              f"{a['offset_ms']:>7.2f} {a['false_per_min']:>9.2f} {a['kind_acc']:>6.3f} {a['side_acc']:>6.3f}")
    for n in args.n:
        if args.oracle:
            row(n, "oracle", base, base.offset_weight, replay(records, meta, n, base, oracle=True))
        for sig in args.signal:
            for thr in args.threshold:
                for ex in args.extra:
                    for ow in args.offset_weight:
                        jc = dataclasses.replace(base, **{k: v for k, v in (("threshold", thr), ("extra_weight", ex),
                                                                            ("offset_weight", ow)) if v is not None})
                        row(n, sig, jc, jc.offset_weight, replay(records, meta, n, jc, sig))


if __name__ == "__main__":
    main()

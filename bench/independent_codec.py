"""What the codec keeps of the independent clips: the ceiling any latents reach through this decoder.

    .venv/bin/python bench/independent_codec.py WORK [WORK ...] [--model CHECKPOINT_DIR]

For every clip of `independent_eval.py --keep` runs (WORK/clips/clipNNN.{json,wav}), scored by the
independent scorer at its own 48 kHz (FFmpeg's resampler brings the model's 16 kHz up), summed over
the WORK dirs:

- truth: the generator's audio (the scorer's own ceiling);
- mel -> Griffin-Lim: the truth's mono log-mel, inverted (what the mel representation keeps);
- codec: that mel through the Mel-VAE (encode, decode), then Griffin-Lim: no latents can do better
  through this decoder;
- stored latents: the render's own latents (WORK/foley-data: the windows' store objects, stitched as
  assemble does) decoded the same way. With `--model` naming another checkpoint this is a paired look
  at a decoder change on the very latents the DiT sampled (the candidate choice stays the stored one).

The audio is mono (the side is not scored): the rows differ only in what the codec does to onsets.
Columns: F1 within +-50 / +-100 ms, mean offset, false onsets a minute, kind accuracy, and recall
within +-50 ms of impacts and of beeps.
"""
from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from judgeworld.audio import SAMPLE_RATE_HZ  # noqa: E402
from judgeworld.media import read_audio  # noqa: E402
from judgeworld.score import SCORED, detect_onsets, match, metrics, score_clip, total  # noqa: E402

ROWS = ("truth", "mel -> Griffin-Lim", "codec", "stored latents")


def upsample(mono: np.ndarray, rate_hz: int) -> np.ndarray:
    """(n,) float at rate_hz -> (n', 2) float32 at the scorer's rate, through FFmpeg's resampler (as the
    scorer's own reader resamples)."""
    rs = av.AudioResampler(format="fltp", layout="stereo", rate=SAMPLE_RATE_HZ)
    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(np.stack([mono, mono]).astype(np.float32)),
                                       format="fltp", layout="stereo")
    frame.sample_rate, frame.pts = rate_hz, 0
    out = [f.to_ndarray() for f in rs.resample(frame)] + [f.to_ndarray() for f in rs.resample(None)]
    return np.concatenate(out, axis=1).T if out else np.zeros((0, 2), np.float32)


def stored_latents(work: Path, channels: int) -> dict[str, np.ndarray]:
    """Clip stem -> its render's stitched latents (T, channels), from WORK/foley-data (empty without it)."""
    from render_farm.config import Settings
    from render_farm.steps.render import latents_from_bytes
    from render_farm.timeline.stitch import stitch
    from render_farm.timeline.windows import Window
    from storage.blobs import open_store
    from storage.db import make_engine, make_sessionmaker, unit_of_work
    from storage.repos import JobRepo, WindowRepo

    settings = Settings(data_dir=work / "foley-data")  # the layout `independent_eval.py` gave foley render
    if not settings.data_dir.is_dir():  # rendered with the caller's FOLEY_DATA_DIR, or not kept
        return {}
    engine = make_engine(settings.database_url)
    store, out = open_store(settings.store_url), {}
    try:
        with unit_of_work(make_sessionmaker(engine)) as s:
            for job in JobRepo(s).list(limit=100_000):  # newest first: a clip rendered twice keeps its last render
                rows = WindowRepo(s).list_for_job(job.id)
                if Path(job.input_uri).stem in out or not rows or any(w.result_key is None for w in rows):
                    continue
                windows = [Window(w.index, w.start_frame, w.end_frame) for w in rows]
                lats = [latents_from_bytes(store.get(w.result_key)) for w in rows]
                out[Path(job.input_uri).stem] = stitch(windows, lats, windows[-1].end)[:, :channels]
    finally:
        engine.dispose()
    return out


def codec_audio(model, wav: Path, latents: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """ROWS -> (n, 2) audio at the scorer's rate for one clip (its truth WAV, and its stored latents (T, C)
    when given), mono through Griffin-Lim for every row but the truth."""
    import torch

    sr = model.cfg.audio.sample_rate_hz

    def mono_audio(mel: torch.Tensor) -> np.ndarray:
        return upsample(model.vocode(mel)[0].numpy(), sr)

    x = read_audio(wav, sr)  # (n, 2) at the model's rate
    with torch.no_grad():
        mel = model.mel(torch.from_numpy(x.mean(axis=1)).float()[None])
        mel = mel[..., : mel.shape[-1] // 2 * 2]  # the VAE halves time: an even number of frames
        audio = {"truth": read_audio(wav, SAMPLE_RATE_HZ), "mel -> Griffin-Lim": mono_audio(mel),
                 "codec": mono_audio(model.decode_mel(model.vae.encode(mel)[0]))}
        if latents is not None:
            audio["stored latents"] = mono_audio(model.decode_mel(torch.from_numpy(latents).float()[None]))
    return audio


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("work", type=Path, nargs="+", help="independent_eval.py --keep work directories")
    ap.add_argument("--model", default=None, help="checkpoint directory (default: the shipped tiny)")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from foley_model.checkpoint import load_checkpoint

    torch.set_num_threads(args.threads)
    model, _ = load_checkpoint(args.model)
    channels = model.cfg.vae.latent_channels
    counts: dict[str, list[dict]] = defaultdict(list)
    recall: dict[tuple[str, str], list[int]] = defaultdict(lambda: [0, 0])

    for work in args.work:
        latents = stored_latents(work, channels)
        for tj in sorted((work / "clips").glob("clip*.json")):
            truth = json.loads(tj.read_text())
            audio = codec_audio(model, work / "clips" / f"{tj.stem}.wav", latents.get(tj.stem))
            events = [e for e in truth["events"] if e["kind"] in SCORED]
            ref = np.array([e["onset_s"] for e in events])
            n = int(round(truth["duration_s"] * SAMPLE_RATE_HZ))
            for row, a in audio.items():
                a = a[:n]
                counts[row].append(score_clip(a, SAMPLE_RATE_HZ, truth))
                det = detect_onsets(a, SAMPLE_RATE_HZ)
                hit = {j for _, j in match(det[det < truth["duration_s"]], ref, 0.05)}
                for j, e in enumerate(events):
                    recall[row, e["kind"]][0] += j in hit
                    recall[row, e["kind"]][1] += 1
    n_events = sum(c["n_events"] for c in counts["truth"])
    print(f"{len(args.work)} run(s), {len(counts['truth'])} clips, {n_events} events\n")
    print(f"{'':<20}{'F1±50':>8}{'F1±100':>8}{'offset':>10}{'false/min':>11}{'kind':>7}"
          f"{'impacts±50':>12}{'beeps±50':>10}")
    for row in ROWS:
        if not counts[row]:
            continue
        m = metrics(total(counts[row]))
        rec = {k: recall[row, k][0] / max(recall[row, k][1], 1) for k in SCORED}
        print(f"{row:<20}{m['f1_50']:8.3f}{m['f1_100']:8.3f}{m['offset_ms']:8.2f}ms{m['false_per_min']:11.2f}"
              f"{m['kind_acc']:7.3f}{rec['impact']:12.3f}{rec['beep']:10.3f}")


if __name__ == "__main__":
    main()

"""Real video files of the toy foley world (for `make demo`, tests and benchmarks).

A long video is made of consecutive toy-world clips (each a new scene, so every join is a cut),
rendered and encoded one segment at a time so memory does not grow with the duration.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, replace
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

from foley_model.toyworld import GENERATOR_VERSION, GenStyle, make_clip


@dataclass(frozen=True)
class ToyVideo:
    path: Path
    duration_s: float
    fps: float
    size: tuple[int, int]
    cuts_s: tuple[float, ...]
    events: tuple[dict, ...]  # ground truth: kind, onset_s, end_s, x
    captions: tuple[str, ...]

    def ground_truth_json(self) -> str:
        data = asdict(self)
        data["path"] = str(self.path)
        data["generator"] = GENERATOR_VERSION
        return json.dumps(data, indent=2)


def write_toy_video(path: Path, duration_s: float, seed: int = 0, size: tuple[int, int] = (256, 144),
                    fps: int = 24, segment_s: float = 15.0, style: GenStyle | None = None,
                    crf: int = 23, audio_track: bool = False) -> ToyVideo:
    """Write an H.264 MP4 of toy-world scenes; with `audio_track`, the ground-truth stereo sound
    is muxed as an AAC track (a 'production audio' track that renders must keep)."""
    if duration_s <= 0:
        raise ValueError(f"{duration_s=}")
    # The encoder adds real compression artefacts: no simulated ones on top.
    style = replace(style or GenStyle.heldout(), p_artefacts=0.0, noise_std_range=(0.0, 0.0), p_blur=0.0)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    n_total = max(1, math.ceil(duration_s * fps - 1e-6))
    cuts: list[float] = []
    events: list[dict] = []
    captions: list[str] = []
    with av.open(str(tmp), "w", format="mp4") as out:
        vs = out.add_stream("libx264", rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        vs.options = {"crf": str(crf), "preset": "veryfast", "threads": "1"}
        as_ = None
        if audio_track:
            as_ = out.add_stream("aac", rate=48000)
            as_.layout = "stereo"
        written = 0
        segment = 0
        audio_pts = 0
        while written < n_total:
            start_s = written / fps
            seg_frames = min(n_total - written, max(1, round(segment_s * fps)))
            seg_dur = seg_frames / fps
            clip = make_clip(seed * 1000 + segment, duration_s=seg_dur, fps=fps, size=size, sample_rate_hz=48000,
                             style=style, source_fps=float(fps))
            if segment:
                cuts.append(start_s)
            cuts.extend(start_s + c for c in clip.cuts_s)
            captions.append(clip.caption)
            for e in clip.events:
                events.append({"kind": e.kind, "onset_s": start_s + e.onset_s, "end_s": start_s + e.end_s, "x": e.x})
            for frame in clip.frames[:seg_frames]:
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
                vf.pts = written
                vf.time_base = Fraction(1, fps)
                for packet in vs.encode(vf):
                    out.mux(packet)
                written += 1
            if as_ is not None:
                n_samples = round(seg_dur * 48000)
                pcm = np.ascontiguousarray(clip.audio[:, :n_samples].astype(np.float32))
                af = av.AudioFrame.from_ndarray(pcm, format="fltp", layout="stereo")
                af.sample_rate = 48000
                af.pts = audio_pts
                af.time_base = Fraction(1, 48000)
                audio_pts += pcm.shape[1]
                for packet in as_.encode(af):
                    out.mux(packet)
            segment += 1
        for packet in vs.encode(None):
            out.mux(packet)
        if as_ is not None:
            for packet in as_.encode(None):
                out.mux(packet)
    os.replace(tmp, path)
    return ToyVideo(path, n_total / fps, float(fps), size, tuple(cuts), tuple(events), tuple(captions))


def _write_part(args: tuple[str, float, int, tuple[int, int], int]) -> int:
    path, duration_s, seed, size, fps = args
    video = write_toy_video(Path(path), duration_s, seed=seed, size=size, fps=fps, segment_s=20.0)
    return round(video.duration_s * fps)


def write_toy_episode(path: Path, duration_s: float, seed: int = 0, size: tuple[int, int] = (256, 144),
                      fps: int = 24, workers: int | None = None, part_s: float = 120.0) -> Path:
    """A long toy-world video for benchmarks, written as parts in parallel processes and joined by
    copying packets (no re-encode). Parts of `part_s` seconds, each its own scenes (every part
    join is a cut). No ground truth is kept; use `write_toy_video` where events matter."""
    import concurrent.futures
    import multiprocessing
    import tempfile

    path = Path(path)
    frames_total = max(1, math.ceil(duration_s * fps - 1e-6))
    part_frames = max(1, round(part_s * fps))
    counts = [min(part_frames, frames_total - k) for k in range(0, frames_total, part_frames)]
    workers = max(1, min(workers or os.cpu_count() or 1, len(counts)))
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        parts = [Path(tmp) / f"part{i:04d}.mp4" for i in range(len(counts))]
        jobs = [(str(p), n / fps, seed * 100_000 + i, size, fps) for i, (p, n) in enumerate(zip(parts, counts))]
        if workers == 1:
            written = [_write_part(j) for j in jobs]
        else:  # spawn: the caller may hold threads (torch) or a CUDA context that fork must not copy
            spawn = multiprocessing.get_context("spawn")
            with concurrent.futures.ProcessPoolExecutor(workers, mp_context=spawn) as pool:
                written = list(pool.map(_write_part, jobs))
        _join_mp4(parts, written, fps, path)
    return path


def _join_mp4(parts: list[Path], frames: list[int], fps: int, dst: Path) -> None:
    """Concatenate MP4 files with identical H.264 parameters (stream copy, timestamps shifted)."""
    tmp = dst.with_name(f".{dst.name}.tmp-{os.getpid()}")
    with av.open(str(parts[0])) as first, av.open(str(tmp), "w", format="mp4") as out:
        template = first.streams.video[0]
        ostream = out.add_stream_from_template(template)
        start = Fraction(0)  # seconds
        for part, n in zip(parts, frames):
            with av.open(str(part)) as inp:
                stream = inp.streams.video[0]
                if stream.codec_context.extradata != template.codec_context.extradata:
                    raise ValueError(f"{part}: H.264 parameters differ from the first part's")
                shift = int(start / stream.time_base)
                for packet in inp.demux(stream):
                    if packet.dts is None:  # the demuxer's end-of-stream marker
                        continue
                    packet.pts += shift
                    packet.dts += shift
                    packet.stream = ostream
                    out.mux(packet)
            start += Fraction(n, fps)
    os.replace(tmp, dst)

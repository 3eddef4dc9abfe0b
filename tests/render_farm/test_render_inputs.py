"""`foley render` on real videos of many kinds: containers and codecs, odd sizes, variable frame
rate, rotation, clips shorter than one window, existing audio. Each renders cleanly; the output
keeps the input's streams (video packets byte-identical, existing audio packets too) and adds a
stereo 48 kHz foley track whose length is the video's duration within one video frame.

Renders are tiny (one Euler step, small frames): what is checked is the media path, not the sound.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import av
import pytest

from render_farm.media.probe import probe
from render_farm.media.stems import read_audio
from tests.media_factory import VFR_DURATIONS_S, make_video

FOLEY = [sys.executable, "-m", "render_farm"]

# (name, make_video arguments, what the case is about); file stems are unique (stems are named by them)
CASES = [
    ("h264.mkv", dict(audio=True), "Matroska, H.264, existing AAC kept, FLAC foley"),
    ("vp9.webm", dict(), "WebM, VP9, Opus foley"),
    ("vp8.webm", dict(codec="libvpx"), "WebM, VP8"),
    ("h264.mov", dict(audio=True), "QuickTime, H.264, existing AAC kept"),
    ("mpeg4.avi", dict(audio=True), "AVI, MPEG-4 part 2, existing MP2 kept, PCM foley"),
    ("odd_vp9.webm", dict(size=(321, 241)), "odd frame size"),
    ("odd_mpeg4.mkv", dict(size=(321, 241), codec="mpeg4"), "odd frame size, MPEG-4 in Matroska"),
    ("vfr.mp4", dict(vfr=True, duration_s=2.5), "variable frame rate (irregular pts)"),
    ("vfr_ms.mkv", dict(vfr=True, duration_s=2.5, audio=True), "variable frame rate, millisecond timestamps"),
    ("rot90.mp4", dict(rotation_ccw_deg=90, size=(160, 96)), "display matrix: 90 degrees"),
    ("rot270.mov", dict(rotation_ccw_deg=270, size=(160, 96)), "display matrix: 270 degrees"),
    ("short.mp4", dict(duration_s=0.3, audio=True), "0.3 s: under one window, with audio"),
]


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple]:
    """Every case made, then rendered by one `foley render A B C … --out-dir` (one model load)."""
    src, out = tmp_path_factory.mktemp("inputs"), tmp_path_factory.mktemp("outputs")
    made = {name: make_video(src / name, **{"duration_s": 1.5, **kwargs}) for name, kwargs, _ in CASES}
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
    env["FOLEY_DATA_DIR"] = str(out / "state")
    report = out / "report.json"
    args = ["render", *(m.path for m in made.values()), "--out-dir", str(out), "--steps", "1", "--seed", "3",
            "--quiet", "--report", str(report)]
    proc = subprocess.run(FOLEY + args, capture_output=True, text=True, env=env, timeout=1800)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    jobs = json.loads(report.read_text())["jobs"]
    assert len(jobs) == len(CASES)
    by_input = {Path(j["input"]["uri"].removeprefix("file://")).name: j for j in jobs}
    return {name: (made[name], out / f"{Path(name).stem}.foley{Path(name).suffix}", by_input[name]) for name in made}


def packets_by_stream(path: str | Path, kind: str) -> list[list[bytes]]:
    with av.open(str(path)) as c:
        streams = [s for s in c.streams if s.type == kind]
        indices = [s.index for s in streams]
        if not indices:
            return []  # demux([]) would read every stream
        out: dict[int, list[bytes]] = {i: [] for i in indices}
        for p in c.demux(streams):
            if p.size:
                out[p.stream.index].append(bytes(p))
    return [out[i] for i in indices]


def declared_duration_s(path: str | Path) -> Fraction:
    """How long a player shows the input: its container's duration. (A VFR MP4 stores no display
    time for its last frame; the muxer guesses one, so this can differ from the factory's end.)"""
    with av.open(str(path)) as c:
        return Fraction(c.duration, av.time_base)


def frame_tolerance_s(vfr: bool) -> Fraction:
    """One video frame: the shortest frame of a VFR clip, else 1 / fps (made at 24 fps)."""
    return min(VFR_DURATIONS_S) if vfr else Fraction(1, 24)


@pytest.mark.slow
@pytest.mark.timeout(1800)  # the first case's setup renders all twelve (about a minute on an idle 2-core box)
@pytest.mark.parametrize("name,kwargs,about", CASES, ids=[c[0] for c in CASES])
def test_renders_cleanly(rendered, name: str, kwargs: dict, about: str) -> None:
    made, out, report = rendered[name]
    assert report["state"] == "done", about
    assert Path(report["output"]["uri"].removeprefix("file://")) == out, about
    if kwargs.get("duration_s", 1.5) < 1.0:
        assert len(report["windows"]) == 1 and report["joins_s"] == [], about

    # every input stream kept as it was: video packets byte-identical, existing audio too
    assert packets_by_stream(out, "video") == packets_by_stream(made.path, "video"), about
    src_audio = packets_by_stream(made.path, "audio")
    out_audio = packets_by_stream(out, "audio")
    assert len(out_audio) == len(src_audio) + 1, f"{about}: {len(out_audio)=}"
    assert out_audio[: len(src_audio)] == src_audio, f"{about}: existing audio changed"

    src_info, out_info = probe(made.path), probe(out)
    assert out_info.video.rotation_ccw_deg == src_info.video.rotation_ccw_deg, f"{about}: rotation lost"
    assert (out_info.video.display_width, out_info.video.display_height) == made.display_size, about
    foley = out_info.audio_streams[-1]
    assert foley.title == "foley", f"{about}: {out_info.audio_streams=}"

    # the new track: stereo 48 kHz, as long as the video within one video frame
    tolerance = frame_tolerance_s(kwargs.get("vfr", False))
    duration = declared_duration_s(made.path)
    assert abs(duration - made.duration_s) <= Fraction(1, 10), f"{about}: {float(duration)=}"  # the longest VFR frame
    audio, rate = read_audio(out, stream_index=foley.index)
    assert rate == 48_000 and audio.shape[0] == 2, f"{about}: {rate=} {audio.shape=}"
    assert abs(Fraction(audio.shape[1], rate) - duration) <= tolerance, (
        f"{about}: track {audio.shape[1] / rate:.4f} s, video {float(duration):.4f} s")
    stem = Path(report["stems"][0]["uri"].removeprefix("file://"))
    stem_audio, stem_rate = read_audio(stem)
    assert stem_rate == 48_000 and stem_audio.shape[0] == 2
    assert abs(Fraction(stem_audio.shape[1], stem_rate) - duration) <= tolerance, (
        f"{about}: stem {stem_audio.shape[1] / stem_rate:.4f} s, video {float(duration):.4f} s")

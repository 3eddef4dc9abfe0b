"""probe(): container facts for every container/codec we accept, and one clear error for bad input."""
from __future__ import annotations

import json
import os
from fractions import Fraction

import av
import numpy as np
import pytest

from render_farm.errors import InvalidInput, NotFound
from render_farm.media.probe import is_constant_spacing, probe
from render_farm.media.stems import write_stem
from tests.media_factory import make_video

# (file name, codec, expected codec name in the file, pix_fmt, size)
CASES = [
    ("h264.mp4", "libx264", "h264", None, (160, 120)),
    ("h264.mov", "libx264", "h264", None, (160, 120)),
    ("h264.mkv", "libx264", "h264", None, (160, 120)),
    ("vp9.mkv", "libvpx-vp9", "vp9", None, (160, 120)),
    ("vp9.webm", "libvpx-vp9", "vp9", None, (160, 120)),
    ("vp8.webm", "libvpx", "vp8", None, (160, 120)),
    ("mpeg4.avi", "mpeg4", "mpeg4", None, (160, 120)),
    ("mpeg2.mpg", "mpeg2video", "mpeg2video", None, (160, 120)),
    ("h264.ts", "libx264", "h264", None, (160, 120)),
    ("vp8.ogv", "libvpx", "vp8", None, (160, 120)),  # no theora encoder in the bundled FFmpeg
    ("flv1.flv", "flv", "flv", None, (160, 120)),
    ("odd444.mkv", "libx264", "h264", "yuv444p", (317, 241)),
    ("odd.webm", "libvpx-vp9", "vp9", None, (317, 241)),
]


def one_line_error(exc: BaseException, path: str) -> None:
    text = str(exc)
    assert "\n" not in text, f"{text=}"
    assert os.path.basename(path) in text, f"{text=} {path=}"


@pytest.mark.parametrize("name,codec,codec_name,pix_fmt,size", CASES, ids=[c[0] for c in CASES])
def test_probe_containers(tmp_path, name, codec, codec_name, pix_fmt, size):
    made = make_video(tmp_path / name, duration_s=1.5, fps=24, size=size, codec=codec, pix_fmt=pix_fmt, audio=True)
    info = probe(made.path)
    assert info.has_video
    v = info.video
    assert (v.width, v.height) == size and (v.display_width, v.display_height) == size, f"{v=}"
    assert v.frame_rate == 24, f"{v.frame_rate=}"
    assert v.constant_frame_rate, f"{v=}"
    assert v.rotation_ccw_deg == 0
    assert v.pixel_format == (pix_fmt or "yuv420p")
    assert abs(info.duration_s - 1.5) < 0.1, f"{info.duration_s=}"
    assert info.size_bytes == os.path.getsize(made.path)
    kinds = sorted(s.kind for s in info.streams)
    assert kinds == ["audio", "video"], f"{kinds=}"
    main = [s for s in info.streams if s.index == info.video_index][0]
    assert main.codec == codec_name, f"{main.codec=}"
    audio = info.audio_streams[0].audio
    assert audio is not None and audio.channels == 2 and audio.sample_rate_hz in (44_100, 48_000), f"{audio=}"
    as_json = json.loads(json.dumps(info.to_dict()))
    assert as_json["streams"][info.video_index]["video"]["frame_rate"] == "24/1"
    assert as_json["has_video"] is True


def test_probe_reads_audio_title(tmp_path):
    made = make_video(tmp_path / "t.mkv", duration_s=0.5, audio=True)
    assert probe(made.path).audio_streams[0].title == "dialogue"


def test_probe_vfr(tmp_path):
    made = make_video(tmp_path / "vfr.mp4", duration_s=3.0, vfr=True)
    v = probe(made.path).video
    assert not v.constant_frame_rate, f"{v=}"
    expected = Fraction(len(made.frame_times_s)) / made.duration_s
    assert abs(float(v.frame_rate) - float(expected)) < 0.5, f"{v.frame_rate=} {expected=}"


def test_probe_ntsc_rate_in_matroska_is_constant(tmp_path):
    made = make_video(tmp_path / "ntsc.mkv", duration_s=1.0, fps=Fraction(30000, 1001))
    v = probe(made.path).video
    assert v.constant_frame_rate, f"{v=}"  # 1 ms timestamps round 33.37 ms to 33/34
    assert abs(float(v.frame_rate) - 29.97) < 0.01, f"{v.frame_rate=}"


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_probe_rotation(tmp_path, rotation):
    made = make_video(tmp_path / f"rot{rotation}.mp4", duration_s=0.5, size=(160, 96), rotation_ccw_deg=rotation)
    v = probe(made.path).video
    assert v.rotation_ccw_deg == rotation, f"{v=}"
    assert (v.display_width, v.display_height) == (160, 96), f"{v=}"
    stored = (96, 160) if rotation in (90, 270) else (160, 96)
    assert (v.width, v.height) == stored, f"{v=}"


def test_probe_very_short_clip(tmp_path):
    made = make_video(tmp_path / "three.mp4", duration_s=3 / 24, fps=24)
    info = probe(made.path)
    assert len(made.frame_times_s) == 3
    assert abs(info.duration_s - 0.125) < 0.01, f"{info.duration_s=}"


def test_is_constant_spacing():
    assert is_constant_spacing([0, 512, 1024, 1536])
    assert is_constant_spacing([0, 42, 83, 125, 167])  # millisecond rounding of 1/24
    assert not is_constant_spacing([0, 20, 60, 90, 110, 170])
    assert is_constant_spacing([0, 1])


def test_missing_file(tmp_path):
    path = str(tmp_path / "nope.mp4")
    with pytest.raises(NotFound) as err:
        probe(path)
    one_line_error(err.value, path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.mp4"
    path.write_bytes(b"")
    with pytest.raises(InvalidInput, match="empty file") as err:
        probe(path)
    one_line_error(err.value, str(path))


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mp4"
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    with pytest.raises(InvalidInput) as err:
        probe(path)
    one_line_error(err.value, str(path))


def test_directory_is_invalid(tmp_path):
    with pytest.raises(InvalidInput, match="not a regular file"):
        probe(tmp_path)


def test_truncated_mp4(tmp_path):
    made = make_video(tmp_path / "whole.mp4", duration_s=2.0)
    data = open(made.path, "rb").read()
    cut = tmp_path / "half.mp4"
    cut.write_bytes(data[: len(data) // 2])  # the moov index sits at the end: it is gone
    with pytest.raises(InvalidInput) as err:
        probe(cut)
    one_line_error(err.value, str(cut))


def test_audio_only_file(tmp_path):
    path = write_stem(tmp_path / "speech.wav", np.zeros((2, 4800), np.float32), 48_000)
    with pytest.raises(InvalidInput, match="no video stream") as err:
        probe(path)
    one_line_error(err.value, path)


def test_zero_duration(tmp_path):
    path = str(tmp_path / "zero.mp4")
    with av.open(path, "w") as out:  # a video stream with no frames at all
        stream = out.add_stream("libx264", rate=24)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        out.start_encoding()
    assert os.path.getsize(path) > 0
    with pytest.raises(InvalidInput) as err:
        probe(path)
    one_line_error(err.value, path)

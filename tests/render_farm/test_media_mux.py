"""mux_audio(): a copy of the input with every packet kept and a new 48 kHz stereo foley track."""
from __future__ import annotations

import os

import av
import numpy as np
import pytest

from render_farm.errors import InvalidInput
from render_farm.media.mux import mux_audio
from render_farm.media.probe import probe
from render_farm.media.stems import read_audio, write_stem
from tests.media_factory import make_video

RATE = 48_000

# (source name, destination extension, expected codec, container keeps track titles, lossless)
CASES = [
    ("h264.mp4", ".mp4", "aac", True, False),
    ("h264.mov", ".mov", "aac", True, False),
    ("h264.mkv", ".mkv", "flac", True, True),
    ("vp9.webm", ".webm", "opus", True, False),
    ("mpeg4.avi", ".avi", "pcm_s16le", True, True),
    ("mpeg2.mpg", ".mpg", "mp2", False, False),
    ("h264.ts", ".ts", "mp2", False, False),
    ("vp8.ogv", ".ogv", "opus", True, False),
    ("flv1.flv", ".flv", "aac", False, False),  # FLV holds one audio track: source made without
    ("h264.mp4", ".mkv", "flac", True, True),  # another container than the source's
]


def tone(n: int) -> np.ndarray:
    t = np.arange(n) / RATE
    return np.stack([0.3 * np.sin(2 * np.pi * 330 * t), 0.2 * np.sin(2 * np.pi * 550 * t)]).astype(np.float32)


def packets(path: str, kind: str, which: int = 0) -> list[tuple[bytes, float | None]]:
    with av.open(path) as c:
        stream = [s for s in c.streams if s.type == kind][which]
        return [
            (bytes(p), None if p.pts is None else float(p.pts * p.time_base))
            for p in c.demux(stream)
            if p.size
        ]


@pytest.mark.parametrize("src_name,ext,codec,titled,lossless", CASES, ids=[f"{c[0]}->{c[1]}" for c in CASES])
def test_mux_keeps_streams_and_adds_foley(tmp_path, src_name, ext, codec, titled, lossless):
    made = make_video(tmp_path / src_name, duration_s=2.0, audio=ext != ".flv")
    audio = tone(2 * RATE)
    dst = str(tmp_path / f"out{ext}")
    result = mux_audio(made.path, audio, dst)
    info = probe(dst)
    src_info = probe(made.path)
    # every source stream is still there, then the new one
    assert len(info.streams) == len(src_info.streams) + 1, f"{info.streams=}"
    assert sorted(s.codec for s in info.streams if s.index != result.audio_stream_index) == sorted(
        s.codec for s in src_info.streams
    )
    # video packets byte-identical, with the same timestamps (up to a common shift by the muxer)
    src_video, out_video = packets(made.path, "video"), packets(dst, "video")
    assert [b for b, _ in src_video] == [b for b, _ in out_video]
    shift = out_video[0][1] - src_video[0][1]
    assert all(abs(b - a - shift) < 2e-3 for (_, a), (_, b) in zip(src_video, out_video)), f"{shift=}"
    assert abs(video_start_s(dst) - audio_start_s(dst, result.audio_stream_index)) < 0.03
    # the existing audio track is kept packet for packet
    if src_info.audio_streams:
        assert [b for b, _ in packets(made.path, "audio")] == [b for b, _ in packets(dst, "audio", 0)]
    new = info.streams[result.audio_stream_index]
    assert new.kind == "audio" and new.codec == codec, f"{new=}"
    assert new.audio is not None and new.audio.sample_rate_hz == RATE and new.audio.channels == 2, f"{new.audio=}"
    if titled:
        assert new.title == "foley", f"{new=}"
    decoded, rate = read_audio(dst, stream_index=result.audio_stream_index)
    assert rate == RATE and decoded.shape[0] == 2
    assert abs(decoded.shape[1] - audio.shape[1]) <= 2048, f"{decoded.shape=}"  # codec frame padding
    assert abs(info.duration_s - 2.0) < 0.1, f"{info.duration_s=}"
    if lossless:
        assert np.abs(decoded[:, : audio.shape[1]] - audio).max() < 1e-4
    else:  # lossy: the same tones, left and right kept apart
        assert [dominant_hz(decoded[c]) for c in (0, 1)] == [330, 550]


def dominant_hz(x: np.ndarray) -> int:
    spectrum = np.abs(np.fft.rfft(x[:RATE]))
    return int(round(np.argmax(spectrum) * RATE / RATE))  # 1 s of audio: bins are 1 Hz apart


def video_start_s(path: str) -> float:
    with av.open(path) as c:
        v = c.streams.video[0]
        return float(v.start_time * v.time_base)


def audio_start_s(path: str, index: int) -> float:
    with av.open(path) as c:
        a = c.streams[index]
        return float(a.start_time * a.time_base)


@pytest.mark.parametrize("ext", [".mp4", ".mkv", ".webm", ".ts"])
def test_mux_is_deterministic(tmp_path, ext):
    src = {".mp4": "a.mp4", ".mkv": "a.mkv", ".webm": "a.webm", ".ts": "a.ts"}[ext]
    made = make_video(tmp_path / src, duration_s=1.0, audio=True)
    audio = tone(RATE)
    one, two = str(tmp_path / f"one{ext}"), str(tmp_path / f"two{ext}")
    mux_audio(made.path, audio, one)
    mux_audio(made.path, audio, two)
    assert open(one, "rb").read() == open(two, "rb").read()


def test_new_track_starts_with_the_video(tmp_path):
    made = make_video(tmp_path / "a.ts", duration_s=1.0)  # B-frames: the video starts at 2 / 24 s
    dst = str(tmp_path / "o.ts")
    result = mux_audio(made.path, tone(RATE), dst)
    v0, a0 = video_start_s(dst), audio_start_s(dst, result.audio_stream_index)
    # mp2's 480-sample encoder delay is in the packets' timestamps: the decoded signal starts at v0
    assert v0 > 0.05 and abs(v0 - (a0 + 480 / RATE)) < 1e-3, f"{v0=} {a0=}"


def test_explicit_codec(tmp_path):
    made = make_video(tmp_path / "a.mkv", duration_s=1.0)
    result = mux_audio(made.path, tone(RATE), tmp_path / "o.mkv", codec="libopus", title="fx")
    new = probe(result.path).streams[result.audio_stream_index]
    assert new.codec == "opus" and new.title == "fx", f"{new=}"


@pytest.mark.parametrize(
    "dst,codec,match",
    [
        ("o.gif", None, "cannot hold an audio track"),
        ("o.h264", None, "cannot hold an audio track"),
        ("o.webm", "aac", "cannot take aac"),
        ("o.flv", "flac", "cannot take flac"),
        ("o.xyz", None, "unknown output container"),
        ("o.flv", None, "holds 1 audio track"),
    ],
)
def test_refuses_before_writing(tmp_path, dst, codec, match):
    made = make_video(tmp_path / "a.mp4", duration_s=0.5, audio=True)
    before = sorted(os.listdir(tmp_path))
    with pytest.raises(InvalidInput, match=match):
        mux_audio(made.path, tone(RATE), tmp_path / dst, codec=codec)
    assert sorted(os.listdir(tmp_path)) == before


def test_refuses_bad_audio(tmp_path):
    made = make_video(tmp_path / "a.mp4", duration_s=0.5)
    for bad in [np.zeros((1, 100), np.float32), np.zeros((2, 0), np.float32), np.full((2, 10), np.nan, np.float32)]:
        with pytest.raises(InvalidInput):
            mux_audio(made.path, bad, tmp_path / "o.mp4")
    with pytest.raises(InvalidInput, match="48000"):
        mux_audio(made.path, tone(100), tmp_path / "o.mp4", sample_rate_hz=44_100)
    with pytest.raises(InvalidInput, match="overwrite"):
        mux_audio(made.path, tone(100), made.path)
    assert sorted(os.listdir(tmp_path)) == ["a.mp4"]


def test_failure_leaves_no_partial_file(tmp_path):
    made = make_video(tmp_path / "a.mpg", duration_s=0.5)  # MPEG-2 video cannot go into WebM
    with pytest.raises(InvalidInput) as err:
        mux_audio(made.path, tone(RATE), tmp_path / "o.webm")
    assert "\n" not in str(err.value)
    assert sorted(os.listdir(tmp_path)) == ["a.mpg"]


def test_replaces_existing_destination_atomically(tmp_path):
    made = make_video(tmp_path / "a.mp4", duration_s=0.5)
    dst = tmp_path / "o.mp4"
    dst.write_bytes(b"old")
    mux_audio(made.path, tone(RATE // 2), dst)
    assert probe(dst).audio_streams[-1].title == "foley"
    assert sorted(os.listdir(tmp_path)) == ["a.mp4", "o.mp4"]


# ---- stems --------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,bits,tolerance", [("wav", 16, 2e-5), ("wav", 24, 1e-7), ("flac", 16, 2e-5), ("flac", 24, 1e-7)])
def test_stem_round_trip(tmp_path, fmt, bits, tolerance):
    audio = np.random.default_rng(3).uniform(-0.99, 0.99, (2, 10_001)).astype(np.float32)
    path = write_stem(tmp_path / f"s.{fmt}", audio, 44_100, fmt=fmt, bits=bits)
    back, rate = read_audio(path)
    assert rate == 44_100 and back.shape == audio.shape, f"{back.shape=}"
    assert np.abs(back - audio).max() < tolerance
    assert sorted(os.listdir(tmp_path)) == [f"s.{fmt}"]


def test_stem_mono_and_resampled_read(tmp_path):
    audio = tone(RATE)[:1]
    path = write_stem(tmp_path / "m.wav", audio, RATE, bits=16)
    back, rate = read_audio(path, sample_rate_hz=16_000)
    assert rate == 16_000 and back.shape[0] == 1 and abs(back.shape[1] - 16_000) <= 16, f"{back.shape=}"
    assert np.abs(back).max() > 0.25


def test_stem_refusals(tmp_path):
    with pytest.raises(InvalidInput):
        write_stem(tmp_path / "x.ogg", tone(10), RATE, fmt="ogg")
    with pytest.raises(InvalidInput):
        write_stem(tmp_path / "x.wav", np.zeros((3, 10), np.float32), RATE)
    with pytest.raises(InvalidInput, match="no audio stream"):
        read_audio(make_video(tmp_path / "v.mp4", duration_s=0.3).path)


def test_audio_from_a_scratch_file_gives_the_bytes_of_the_array(tmp_path):
    """Assembly hands mux and stems a PcmFile (read a block at a time): same output as the array."""
    from render_farm.media.pcm import PcmFile

    made = make_video(tmp_path / "a.mkv", duration_s=2.0, audio=True)
    audio = np.random.default_rng(5).uniform(-1.2, 1.2, (2, 2 * RATE + 77)).astype(np.float32)  # clipped
    raw = tmp_path / "audio.f32"
    raw.write_bytes(np.ascontiguousarray(audio.T).tobytes())
    pcm = PcmFile(raw, channels=2)
    assert pcm.num_samples == audio.shape[1] and np.array_equal(pcm.read(RATE, 10), audio[:, RATE : RATE + 10])
    for ext in (".mkv", ".mp4"):
        a, b = tmp_path / f"array{ext}", tmp_path / f"file{ext}"
        mux_audio(made.path, audio, a)
        mux_audio(made.path, pcm, b)
        assert a.read_bytes() == b.read_bytes(), ext
    write_stem(tmp_path / "array.wav", audio, RATE)
    write_stem(tmp_path / "file.wav", pcm, RATE)
    assert (tmp_path / "array.wav").read_bytes() == (tmp_path / "file.wav").read_bytes()
    raw.write_bytes(np.full((10, 2), np.nan, np.float32).tobytes())
    with pytest.raises(InvalidInput, match="NaN"):
        mux_audio(made.path, PcmFile(raw), tmp_path / "bad.mp4")
    assert not (tmp_path / "bad.mp4").exists()

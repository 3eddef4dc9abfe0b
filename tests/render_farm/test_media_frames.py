"""iter_frames(): frames at a requested rate by true timestamps, upright, seekable, exact counts."""
from __future__ import annotations

import math
import os
from fractions import Fraction

import numpy as np
import pytest

from render_farm.errors import InvalidInput, NotFound
from render_farm.media.frames import frames_for_ranges, iter_frames, num_output_frames, to_upright_rgb
from render_farm.media.probe import probe
from render_farm.media.proxy import make_proxy, make_proxy_as, proxy_size
from render_farm.media.proxy_formats import CURRENT_PROXY, LEGACY_PROXY, PROXY_FORMATS, proxy_format
from render_farm.steps.keys import proxy_key
from tests.media_factory import frame_number, make_video

CONTAINERS = [
    ("h264.mp4", None), ("h264.mov", None), ("h264.mkv", None), ("vp9.webm", None), ("mpeg4.avi", None),
    ("mpeg2.mpg", None), ("h264.ts", None), ("vp8.ogv", None), ("flv1.flv", None), ("odd.webm", (317, 241)),
]


def numbers(path, fps, size=(96, 72), **kw) -> list[int]:
    return [frame_number(f.rgb) for f in iter_frames(path, fps, size, **kw)]


def expected_numbers(made, fps, start=Fraction(0), count=None) -> list[int]:
    fps = Fraction(fps)
    count = math.ceil((made.duration_s - start) * fps) if count is None else count
    return [made.frame_on_screen(start + Fraction(k) / fps) % 256 for k in range(count)]


@pytest.mark.parametrize("name,size", CONTAINERS, ids=[c[0] for c in CONTAINERS])
def test_frames_by_time_in_every_container(tmp_path, name, size):
    made = make_video(tmp_path / name, duration_s=2.0, fps=24, size=size or (160, 120))
    end = made.duration_s
    for fps in (24, 8, 30):
        got = numbers(made.path, fps, end_s=end)
        assert got == expected_numbers(made, fps), f"{name} at {fps} fps: {got=}"
    start = Fraction(13, 10)  # a range: seek (where the format allows it), then decode forward
    got = numbers(made.path, 24, start_s=1.3, end_s=1.6)
    assert got == expected_numbers(made, 24, start=start, count=8), f"{name} range: {got=}"


def test_frame_fields_and_shape(tmp_path):
    made = make_video(tmp_path / "a.mp4", duration_s=1.0)
    frames = list(iter_frames(made.path, Fraction(12), (64, 40)))
    assert [f.index for f in frames] == list(range(12))
    assert [f.t_s for f in frames] == [Fraction(k, 12) for k in range(12)]
    assert all(f.rgb.shape == (40, 64, 3) and f.rgb.dtype == np.uint8 for f in frames)


def test_vfr_maps_by_timestamp(tmp_path):
    made = make_video(tmp_path / "vfr.mp4", duration_s=3.0, vfr=True)
    for fps in (24, 8):
        got = numbers(made.path, fps, end_s=made.duration_s)
        want = expected_numbers(made, fps)
        assert got == want, f"{fps=} {got=} {want=}"
    # by index a VFR video would give 0, 1, 2, ...: check the mapping is not that
    assert numbers(made.path, 24, end_s=1)[:8] != list(range(8))


def test_vfr_in_matroska_millisecond_timestamps(tmp_path):
    made = make_video(tmp_path / "vfr.mkv", duration_s=2.0, vfr=True)
    got = numbers(made.path, 24, end_s=made.duration_s)
    assert got == expected_numbers(made, 24), f"{got=}"


@pytest.mark.parametrize("rotation", [90, 180, 270])
def test_rotation_is_applied(tmp_path, rotation):
    made = make_video(tmp_path / f"r{rotation}.mp4", duration_s=1.0, size=(160, 96), rotation_ccw_deg=rotation)
    frames = list(iter_frames(made.path, 24, (80, 48)))
    assert all(f.rgb.shape == (48, 80, 3) for f in frames)
    assert [frame_number(f.rgb) for f in frames] == list(range(24))
    top = frames[0].rgb[: 48 // 8 // 2]  # frame 0: the top stripe is all black when upright
    assert top.mean() < 40, f"{rotation=} {top.mean()=}"


def test_frame_count_is_exact(tmp_path):
    made = make_video(tmp_path / "c.mp4", duration_s=2.0, fps=25)
    for fps, start, end in [(24, 0.3, 1.7), (Fraction(30000, 1001), 0.1, 1.9), (8, 0, 1.999), (7.5, 0.5, 0.5), (24, 1.0, 3.5)]:
        frames = list(iter_frames(made.path, fps, (32, 24), start_s=start, end_s=end))
        want = math.ceil((Fraction(repr(float(end))) - Fraction(repr(float(start)))) * Fraction(fps).limit_denominator(10**6))
        assert len(frames) == want == num_output_frames(start, end, fps), f"{fps=} {start=} {end=} {len(frames)=}"
    # past the end of the video, the last frame is held
    tail = numbers(made.path, 24, start_s=1.9, end_s=2.5)
    assert tail[-1] == 49 and len(tail) == 15, f"{tail=}"


def test_seeked_range_equals_full_decode(tmp_path):
    made = make_video(tmp_path / "long.mp4", duration_s=4.0, fps=30, gop_frames=30)
    full = list(iter_frames(made.path, 24, (48, 36)))
    start, end = Fraction(27, 10), Fraction(35, 10)
    part = list(iter_frames(made.path, 24, (48, 36), start_s=2.7, end_s=3.5))
    assert [f.t_s for f in part] == [start + Fraction(k, 24) for k in range(len(part))]
    assert len(part) == math.ceil((end - start) * 24)
    for f in part:
        k = (f.t_s * 24)  # 2.7 s is not on the 24 fps grid: compare with the frame on screen
        want = made.frame_on_screen(f.t_s)
        assert frame_number(f.rgb) == want, f"{f.t_s=} {k=}"
    # on the grid, pixels equal the full decode's
    grid = list(iter_frames(made.path, 24, (48, 36), start_s=2.5, end_s=3.0))
    for f in grid:
        assert np.array_equal(f.rgb, full[int(f.t_s * 24)].rgb), f"{f.t_s=}"


def test_bad_arguments_and_files(tmp_path):
    made = make_video(tmp_path / "a.mp4", duration_s=0.5)
    with pytest.raises(InvalidInput):
        list(iter_frames(made.path, 0, (32, 24)))
    with pytest.raises(InvalidInput):
        list(iter_frames(made.path, 24, (0, 24)))
    with pytest.raises(InvalidInput):
        list(iter_frames(made.path, 24, (32, 24), start_s=-1))
    with pytest.raises(InvalidInput):
        list(iter_frames(made.path, 24, (32, 24), start_s=0.4, end_s=0.2))
    with pytest.raises(NotFound):
        list(iter_frames(tmp_path / "missing.mp4", 24, (32, 24)))


def test_truncated_file_fails_clearly(tmp_path):
    made = make_video(tmp_path / "whole.mkv", duration_s=3.0)
    data = open(made.path, "rb").read()
    cut = tmp_path / "cut.mkv"
    cut.write_bytes(data[: len(data) // 2])
    got: list[int] = []
    with pytest.raises(InvalidInput, match="truncated") as err:
        for f in iter_frames(cut, 24, (64, 48)):
            got.append(frame_number(f.rgb))
    assert "\n" not in str(err.value)
    assert got and got == list(range(len(got))), f"{got=}"  # the good frames came first


def test_corrupt_data_fails_clearly(tmp_path):
    made = make_video(tmp_path / "src.mp4", duration_s=2.0)
    proxy = make_proxy(made.path, tmp_path / "fs.mp4")  # faststart: index first, then data
    data = bytearray(open(proxy.path, "rb").read())
    rng = np.random.default_rng(0)
    mid = len(data) // 2
    data[mid : mid + 2000] = rng.integers(0, 256, 2000, dtype=np.uint8).tobytes()
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    with pytest.raises(InvalidInput):
        list(iter_frames(bad, 24, (64, 48)))


def test_shared_scaler_gives_the_bytes_of_a_fresh_one(tmp_path):
    """iter_frames reuses one swscale context per stream; the pixels equal a fresh context's."""
    import av

    for rotation in (0, 90):
        made = make_video(tmp_path / f"s{rotation}.mp4", duration_s=1.0, size=(320, 240), rotation_ccw_deg=rotation or None)
        fast = [f.rgb for f in iter_frames(made.path, 24, (96, 54))]  # made at 24 fps: one output per frame
        with av.open(str(made.path)) as c:
            fresh = [to_upright_rgb(frame, (96, 54)) for frame in c.decode(c.streams.video[0])]
        assert len(fast) == len(fresh) == 24
        assert all(np.array_equal(a, b) for a, b in zip(fast, fresh)), f"{rotation=}"


def test_frames_for_ranges_equal_window_frames(tmp_path):
    """One decode for a batch of windows gives exactly what the render step's per-window decode
    gives: context frames, overlaps, a window running past the end and one wholly after it."""
    from render_farm.steps.render import window_frames

    made = make_video(tmp_path / "v.mp4", duration_s=2.95, fps=30, size=(320, 180))
    proxy = make_proxy(made.path, tmp_path / "proxy.mp4")
    end = probe(proxy.path).duration_s
    size, context = (96, 54), 2
    windows = [(Fraction(0), Fraction(1)), (Fraction(3, 4), Fraction(2)), (Fraction(15, 8), Fraction(13, 4)),
               (Fraction(31, 10), Fraction(4))]
    ranges = [(max(math.floor(a * 24) - context, 0), math.ceil(b * 24) + context) for a, b in windows]
    got = frames_for_ranges(proxy.path, 24, size, ranges, end_s=Fraction(end))
    for (a, b), (k0, k1), frames in zip(windows, ranges, got):
        want, t0 = window_frames(proxy.path, a, b, size, end, context)
        assert t0 == Fraction(k0, 24)
        assert frames.shape == want.shape == (k1 - k0, 54, 96, 3), f"{a=} {b=} {frames.shape=} {want.shape=}"
        assert np.array_equal(frames, want), f"window {a}-{b}"
        # with_real: the leading frames before the video's end are real, the rest hold the last picture
        same, t0r, n_real = window_frames(proxy.path, a, b, size, end, context, with_real=True)
        assert t0r == t0 and np.array_equal(same, want)
        assert n_real == max(1, min(k1 - k0, math.ceil(end * 24) - k0)), f"window {a}-{b}: {n_real=}"
        assert all(np.array_equal(f, want[n_real - 1]) for f in want[n_real:])
    assert frames_for_ranges(proxy.path, 24, size, []) == []
    with pytest.raises(InvalidInput):
        frames_for_ranges(proxy.path, 24, size, [(5, 5)])


def test_window_frames_hold_the_shot_edge_across_a_cut(tmp_path):
    """A window bounded to pictures [lo, hi) shows picture lo before lo and picture hi − 1 from hi on;
    inside the bounds it is the unbounded decode."""
    from render_farm.steps.render import window_frames

    made = make_video(tmp_path / "v.mp4", duration_s=2.0, fps=24, size=(320, 180))
    proxy = make_proxy(made.path, tmp_path / "proxy.mp4")
    end = probe(proxy.path).duration_s
    size, context = (96, 54), 2
    a, b = Fraction(1, 2), Fraction(3, 2)
    free, t0 = window_frames(proxy.path, a, b, size, end, context)
    k0 = int(t0 * 24)
    lo, hi = k0 + 5, k0 + 20
    for shot in ((lo, None), (None, hi), (lo, hi)):
        got, t0b = window_frames(proxy.path, a, b, size, end, context, shot=shot)
        assert t0b == t0 and got.shape == free.shape
        first = 0 if shot[0] is None else shot[0] - k0
        last = len(free) - 1 if shot[1] is None else shot[1] - 1 - k0
        for i in range(len(free)):
            assert np.array_equal(got[i], free[min(max(i, first), last)]), f"{shot=} frame {i}"
        assert frame_number(got[0]) == frame_number(free[first])
    # bounds outside the window's frames change nothing
    same, _ = window_frames(proxy.path, a, b, size, end, context, shot=(0, 10_000))
    assert np.array_equal(same, free)


# ---- proxies ------------------------------------------------------------------------------------


def test_proxy_size():
    assert proxy_size(1280, 720, 144) == (256, 144)
    assert proxy_size(720, 1280, 144) == (144, 256)
    assert proxy_size(317, 241, 144) == (190, 144)
    assert proxy_size(100, 60, 144) == (100, 60)  # never upscaled
    assert proxy_size(101, 61, 144) == (100, 60)  # even, not above the source


@pytest.mark.parametrize("kind", ["vfr", "rotated", "cfr30"])
def test_proxy_matches_source_at_24_and_8_fps(tmp_path, kind):
    kwargs = {"vfr": dict(vfr=True), "rotated": dict(rotation_ccw_deg=90), "cfr30": dict(fps=30)}[kind]
    made = make_video(tmp_path / f"{kind}.mp4", duration_s=3.0, size=(320, 240), **kwargs)
    proxy = make_proxy(made.path, tmp_path / "proxy.mp4", fps=24, short_side_px=144)
    assert (proxy.width, proxy.height) == (192, 144), f"{proxy=}"
    info = probe(proxy.path)
    assert info.video.constant_frame_rate and info.video.frame_rate == 24, f"{info.video=}"
    assert info.video.rotation_ccw_deg == 0
    assert proxy.num_frames == math.ceil(Fraction(repr(probe(made.path).duration_s)) * 24)
    for fps in (24, 8):
        src = list(iter_frames(made.path, fps, (64, 48), end_s=3))
        prx = list(iter_frames(proxy.path, fps, (64, 48), end_s=3))
        assert [f.t_s for f in src] == [f.t_s for f in prx]
        assert [frame_number(f.rgb) for f in src] == [frame_number(f.rgb) for f in prx], f"{kind} {fps=}"


def test_proxy_is_deterministic_and_atomic(tmp_path):
    made = make_video(tmp_path / "s.mkv", duration_s=1.5, vfr=True)
    a = make_proxy(made.path, tmp_path / "p1.mp4")
    b = make_proxy(made.path, tmp_path / "p2.mp4")
    assert open(a.path, "rb").read() == open(b.path, "rb").read()
    assert sorted(os.listdir(tmp_path)) == ["p1.mp4", "p2.mp4", "s.mkv"]
    with pytest.raises(InvalidInput):
        make_proxy(made.path, tmp_path / "p.mkv")


def test_proxy_formats_differ_in_fidelity_and_never_share_a_key(tmp_path):
    """The current format is closer to the master than the first one (its artefacts read as motion
    to the sync path), each named format is what make_proxy_as makes, and their store keys differ."""
    made = make_video(tmp_path / "m.mp4", duration_s=2.0, size=(320, 180), codec="libx264")
    old = make_proxy_as(made.path, tmp_path / "old.mp4", LEGACY_PROXY)
    new = make_proxy_as(made.path, tmp_path / "new.mp4", CURRENT_PROXY)
    f = proxy_format(LEGACY_PROXY)
    again = make_proxy(made.path, tmp_path / "again.mp4", f.fps, f.short_side_px, crf=f.crf)
    assert open(old.path, "rb").read() == open(again.path, "rb").read()

    def error(path):
        src = np.stack([x.rgb for x in iter_frames(made.path, 24, (96, 54))]).astype(np.float64)
        prx = np.stack([x.rgb for x in iter_frames(path, 24, (96, 54))]).astype(np.float64)
        return float(np.abs(src - prx).mean())

    assert error(new.path) < error(old.path), f"{error(new.path)=} {error(old.path)=}"
    assert os.path.getsize(new.path) > os.path.getsize(old.path)
    assert len({proxy_key("ab" * 32, name) for name in PROXY_FORMATS}) == len(PROXY_FORMATS)
    with pytest.raises(InvalidInput, match="crf"):
        make_proxy(made.path, tmp_path / "bad.mp4", crf=80)


def test_raw_h264_stream_without_headers(tmp_path):
    """No container: duration is measured from the packets, and ranges decode without seeking."""
    made = make_video(tmp_path / "raw.h264", duration_s=1.0, codec="libx264", container="h264")
    assert abs(probe(made.path).duration_s - 1.0) < 0.05
    assert numbers(made.path, 24) == list(range(24))
    assert numbers(made.path, 24, start_s=0.5) == list(range(12, 24))


def test_audio_longer_than_video_is_not_truncation(tmp_path):
    """A Matroska file whose audio runs 2 s past its video: frames hold, no truncation error."""
    from render_farm.media.mux import mux_audio

    made = make_video(tmp_path / "v.mkv", duration_s=1.0)
    longer = mux_audio(made.path, np.zeros((2, 3 * 48_000), np.float32), tmp_path / "long.mkv").path
    got = numbers(longer, 24)
    assert len(got) == 72 and got[:24] == list(range(24)) and set(got[24:]) == {23}, f"{got=}"

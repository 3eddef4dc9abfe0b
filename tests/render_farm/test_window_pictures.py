"""A proxy at the source's own rate: the same 24 fps pictures a 24 fps proxy gives, plus for each the
picture 1/24 s before its own source time; held pictures and a shot's first frame show no motion."""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from render_farm.errors import InvalidInput
from render_farm.media.frames import iter_frames
from render_farm.media.probe import probe
from render_farm.media.proxy import make_proxy, make_proxy_as, source_proxy_rate
from render_farm.media.proxy_formats import PROXY_FORMATS
from render_farm.steps.render import window_frames, window_pictures
from tests.media_factory import frame_number, make_video

SOURCE = next(f.name for f in PROXY_FORMATS.values() if f.fps is None)
SIZE = (96, 72)


def test_source_proxy_rate_keeps_the_source_rate_up_to_60_fps():
    assert source_proxy_rate(Fraction(30000, 1001)) == Fraction(30000, 1001)
    assert source_proxy_rate(Fraction(24)) == 24 and source_proxy_rate(Fraction(60)) == 60
    assert source_proxy_rate(Fraction(120)) == 60 and source_proxy_rate(Fraction(100)) == 50
    assert source_proxy_rate(Fraction(15)) == 15
    with pytest.raises(InvalidInput):
        source_proxy_rate(Fraction(0))


@pytest.mark.parametrize("fps,want", [(30, 30), (Fraction(60000, 1001), Fraction(60000, 1001)), (120, 60)])
def test_the_source_rate_proxy_keeps_the_source_frames(tmp_path, fps, want):
    made = make_video(tmp_path / "v.mp4", duration_s=1.0, fps=fps, size=(320, 180))
    proxy = make_proxy_as(made.path, tmp_path / "p.mp4", SOURCE)
    info = probe(proxy.path)
    assert proxy.fps == want and info.video.frame_rate == want and info.video.constant_frame_rate
    got = [frame_number(f.rgb) for f in iter_frames(proxy.path, want, SIZE)]
    assert got == [made.frame_on_screen(Fraction(k) / want) % 256 for k in range(proxy.num_frames)]


def test_source_rate_pictures_are_the_24_fps_picks_with_references_one_24th_back(tmp_path):
    made = make_video(tmp_path / "v.mp4", duration_s=3.0, fps=30, size=(320, 180))
    grid = make_proxy(made.path, tmp_path / "grid.mp4", fps=24)
    src = make_proxy_as(made.path, tmp_path / "src.mp4", SOURCE)
    end = probe(src.path).duration_s
    decoded = np.stack([f.rgb for f in iter_frames(src.path, 30, SIZE)])  # every proxy frame, in order
    for a, b in ((Fraction(0), Fraction(1)), (Fraction(3, 4), Fraction(2)), (Fraction(5, 2), Fraction(4))):
        want, t0, real = window_frames(grid.path, a, b, SIZE, end, 5, with_real=True)
        pics = window_pictures(src.path, a, b, SIZE, end, 5, proxy_fps=30)
        assert pics.t0 == t0 and pics.real == real and pics.frames.shape == want.shape == pics.before.shape
        assert [frame_number(f) for f in pics.frames] == [frame_number(f) for f in want], f"window {a}-{b}"
        for k in range(len(want)):
            if k >= real:  # the hold past the end: no motion
                assert np.array_equal(pics.before[k], pics.frames[k])
                continue
            j = math.floor((t0 + Fraction(k, 24)) * 30)  # the proxy frame picked
            assert np.array_equal(pics.frames[k], decoded[j])
            u = max(j - 1.25, 0.0)
            lo, w = math.floor(u), u - math.floor(u)
            blend = np.rint(decoded[lo].astype(np.float32) * (1 - w) + decoded[min(lo + 1, j)].astype(np.float32) * w)
            assert np.array_equal(pics.before[k], blend.astype(np.uint8)), f"window {a}-{b} frame {k}"


def test_a_24_fps_source_gets_the_24_fps_proxy_and_no_references(tmp_path):
    """At 24 fps the source's frames are the grid: the proxy is byte for byte the 24 fps one, and the
    encoder measures motion against the previous frame as it always did."""
    made = make_video(tmp_path / "v.mp4", duration_s=2.0, fps=24, size=(320, 180))
    src = make_proxy_as(made.path, tmp_path / "src.mp4", SOURCE)
    grid = make_proxy_as(made.path, tmp_path / "grid.mp4", "p2-24fps-144p-crf12")
    assert open(src.path, "rb").read() == open(grid.path, "rb").read()
    end = probe(src.path).duration_s
    pics = window_pictures(src.path, Fraction(1, 2), Fraction(3, 2), SIZE, end, 5, proxy_fps=src.fps)
    assert pics.before is None
    want, _ = window_frames(grid.path, Fraction(1, 2), Fraction(3, 2), SIZE, end, 5)
    assert np.array_equal(pics.frames, want)


def test_shot_bounds_hold_pictures_and_the_shots_first_frame_has_no_motion(tmp_path):
    made = make_video(tmp_path / "v.mp4", duration_s=2.0, fps=60, size=(320, 180))
    src = make_proxy_as(made.path, tmp_path / "src.mp4", SOURCE)
    end = probe(src.path).duration_s
    a, b = Fraction(1, 2), Fraction(3, 2)
    free = window_pictures(src.path, a, b, SIZE, end, 2, proxy_fps=60)
    k0 = int(free.t0 * 24)
    lo, hi = k0 + 5, k0 + 20
    got = window_pictures(src.path, a, b, SIZE, end, 2, shot=(lo, hi), proxy_fps=60)
    first, last = lo - k0, hi - 1 - k0
    for i in range(len(free.frames)):
        assert np.array_equal(got.frames[i], free.frames[min(max(i, first), last)]), f"frame {i}"
        if i <= first or i > last:
            assert np.array_equal(got.before[i], got.frames[i]), f"frame {i} should not move"
        elif i >= first + 3:  # 2.5 source frames back stays inside the shot from here on
            assert np.array_equal(got.before[i], free.before[i]), f"frame {i}"
    assert not np.array_equal(free.before[first], free.frames[first])  # unbounded, the same frame moves
    # a window wholly past the end holds the last picture, without motion
    past = window_pictures(src.path, Fraction(3), Fraction(4), SIZE, end, 2, proxy_fps=60)
    assert past.real == 1 and all(np.array_equal(f, past.frames[0]) for f in past.frames)
    assert np.array_equal(past.before, past.frames)

"""The independent toy-world generator and scorer (bench/judgeworld): fast, no model."""
from __future__ import annotations

from fractions import Fraction

import av
import numpy as np
import pytest

from bench.judgeworld import score
from bench.judgeworld.audio import SAMPLE_RATE_HZ, pan_gains, render_audio
from bench.judgeworld.clip import write_clip
from bench.judgeworld.draw import background, draw_object, floor_px, frames
from bench.judgeworld.media import aac_roundtrip, probe_video
from bench.judgeworld.world import Ball, Lamp, random_clip, truth

SR = SAMPLE_RATE_HZ


def _first(kind: str, seeds=range(100), **kw):
    """(clip, scene, object, event) of the first event of `kind` among clips of these seeds."""
    for seed in seeds:
        clip = random_clip(seed, **kw)
        for e in clip.events:
            if e["kind"] == kind:
                scene = clip.scenes[e["scene"]]
                return clip, scene, scene.objects[e["object"]], e
    raise AssertionError(f"no {kind} event")


def test_same_seed_same_clip_frames_and_audio():
    a, b = random_clip(11, 2, 5), random_clip(11, 2, 5)
    assert truth(a) == truth(b)
    assert truth(a) != truth(random_clip(12, 2, 5))
    fa, fb = frames(a), frames(b)
    for _ in range(5):
        assert np.array_equal(next(fa), next(fb))
    assert np.array_equal(render_audio(a), render_audio(b))


def test_ball_touches_the_floor_at_the_frame_nearest_each_contact():
    clip, scene, ball, _ = _first("impact", min_s=3, max_s=6, height_px=480)
    assert isinstance(ball, Ball)
    H, base = clip.height_px, background(scene, clip.width_px, clip.height_px)
    floor = floor_px(scene, H)
    contacts = [c for c in ball.contacts if c[0] < scene.t1_s][:4]
    for t_s, _x, speed in contacts:
        k = round(t_s * clip.fps)
        img = base.copy()
        draw_object(img, ball, scene, clip, k)
        x, h = ball.position(float(k / clip.fps))
        col = int(x * H)                                  # the column through the centre
        rgb = np.array(ball.color, float) - base[:, col]
        alpha = ((img[:, col] - base[:, col]) * rgb).sum(1) / np.maximum((rgb * rgb).sum(1), 1e-9)
        rows = np.flatnonzero(alpha > 0.01)
        bottom = rows[-1] + alpha[rows[-1]]               # the circle's lowest point in pixels
        slack = speed * abs(float(k / clip.fps) - t_s) * H   # the ball moves at most this between contact and frame
        assert abs(bottom - (floor - h * H)) < 0.5, f"{bottom=} {floor=} {h=}"
        assert -0.5 < floor - bottom <= slack + 1.5, f"{t_s=} {bottom=} {floor=} {slack=}"
        after = ball.position(float((k + 2) / clip.fps))[1]
        assert h <= ball.position(float((k - 2) / clip.fps))[1] and (h <= after or after == 0.0)   # the lowest point


def test_lamp_onset_frame_is_its_first_lit_frame():
    clip, scene, lamp, ev = _first("beep", min_s=3, max_s=6, height_px=240)
    assert isinstance(lamp, Lamp)
    k = ev["frame"]
    assert float(k / clip.fps) == ev["onset_s"]
    H = clip.height_px
    centre = (int(lamp.y * H), int(lamp.x * H))
    seen = []
    for frame in (k - 1, k):
        img = background(scene, clip.width_px, H)
        draw_object(img, lamp, scene, clip, frame)
        seen.append(tuple(np.round(img[centre]).astype(int)))
    assert seen == [lamp.off_color, lamp.on_color]


@pytest.mark.parametrize("seed", [3, 5, 8])
def test_ground_truth_audio_scores_perfectly(seed):
    clip = random_clip(seed, 2, 6)
    counts = score.score_clip(render_audio(clip), SR, truth(clip))
    m = score.metrics([counts])
    assert counts["n_events"] > 0
    assert (m["f1_50"], m["kind_acc"], counts["n_false"]) == (1.0, 1.0, 0), counts


def _knock(n: int, rng) -> np.ndarray:
    t = np.arange(n) / SR
    return 0.5 * rng.standard_normal(n) * np.exp(-t / 0.02)


def _synthetic() -> tuple[np.ndarray, dict]:
    """3 s: knocks at 0.5 s (left) and 1.2 s (right), a 600 Hz beep at 2.0 s (right), quiet noise."""
    rng = np.random.default_rng(0)
    audio = 0.002 * rng.standard_normal((3 * SR, 2))
    events = [("impact", 0.5, -0.8), ("impact", 1.2, 0.7), ("beep", 2.0, 0.6)]
    for kind, t, x in events:
        s = int(t * SR)
        n = int(0.15 * SR) if kind == "impact" else int(0.5 * SR)
        mono = _knock(n, rng) if kind == "impact" else 0.2 * np.sin(2 * np.pi * 600 * np.arange(n) / SR)
        mono[-240:] *= np.linspace(1, 0, 240)             # no click where the beep ends
        audio[s:s + n] += mono[:, None] * pan_gains(x)
    return audio, {"duration_s": 3.0, "events": [{"kind": k, "onset_s": t, "x": x} for k, t, x in events]}


def test_scorer_counts_a_shifted_and_an_extra_onset():
    audio, tr = _synthetic()
    c = score.score_clip(audio, SR, tr)
    assert (c["tp50"], c["n_det"], c["kind_ok"], c["side_ok"], c["n_false"]) == (3, 3, 3, 3, 0), c
    assert np.array_equal(score.detect_onsets(audio * 0.01, SR), score.detect_onsets(audio, SR))   # level-free

    late = {**tr, "events": [{**e, "onset_s": e["onset_s"] + 0.07} for e in tr["events"]]}
    m = score.metrics(score.score_clip(audio, SR, late))
    assert (m["f1_50"], m["f1_100"]) == (0.0, 1.0)
    assert m["offset_ms"] == pytest.approx(70, abs=4)

    extra = audio.copy()
    extra[int(2.7 * SR):int(2.85 * SR)] += _knock(int(0.15 * SR), np.random.default_rng(1))[:, None] * 0.7
    c = score.score_clip(extra, SR, tr)
    assert (c["tp50"], c["n_det"], c["n_false"]) == (3, 4, 1), c
    assert score.metrics([c])["f1_50"] == pytest.approx(6 / 7)


def test_aac_round_trip_keeps_timing_and_ground_truth_scores():
    clip = random_clip(5, 2, 6)
    gt = render_audio(clip)
    back = aac_roundtrip(gt, SR)
    assert back.shape == gt.shape
    lag = np.argmax(np.correlate(back[SR:SR + 4800, 0], gt[SR - 100:SR + 4900, 0], "valid"))
    assert abs(lag - 100) <= 2
    assert score.metrics([score.score_clip(back, SR, truth(clip))])["f1_50"] == 1.0


def test_mp4_has_the_requested_fps_size_and_frame_count(tmp_path):
    clip = random_clip(4, 2, 3, height_px=160, fps=Fraction(30000, 1001))
    video = write_clip(clip, tmp_path, "c")
    assert probe_video(video) == {"fps": Fraction(30000, 1001), "width_px": clip.width_px, "height_px": 160,
                                  "num_frames": clip.num_frames}
    with av.open(str(video)) as f:
        assert len(f.streams.audio) == 0 and f.streams.video[0].codec_context.name == "h264"
    assert (tmp_path / "c.json").exists() and (tmp_path / "c.wav").exists()

"""The toy world generator: determinism, picture/sound/ground-truth agreement, time resampling."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from foley_model.toyworld import GENERATOR_VERSION, Clip, GenStyle, clip_seed, make_clip, num_frames, stream_clips
from foley_model.toyworld.audio import render_audio
from foley_model.toyworld.world import Ball, Box, Lamp, sample_plan

FPS = 24.0


def _only(kind: str, **kw) -> GenStyle:
    """Clean single-kind style with square pixels and no ground fill, for tests that read pixels."""
    weights = {"impact": (1.0, 0.0, 0.0), "beep": (0.0, 1.0, 0.0), "slide": (0.0, 0.0, 1.0)}[kind]
    return dataclasses.replace(GenStyle.clean(), kind_weights=weights, aspects=(1.0,), p_ground_fill=0.0,
                               backgrounds=("flat",), source_height_range=(480, 480), **kw)


def _plan(seed: int, duration_s: float, style: GenStyle, source_fps: float | None = None):
    return sample_plan(np.random.default_rng([seed, 0]), duration_s, style, source_fps)


def _near(frame: np.ndarray, colour, tol: float = 6.0) -> np.ndarray:
    return np.abs(frame.astype(np.float64) - np.asarray(colour) * 255).max(axis=-1) <= tol


def test_clip_shapes_types_and_ground_truth_ranges():
    clip = make_clip(3)
    assert isinstance(clip, Clip) and GENERATOR_VERSION == "toyworld-2"
    assert clip.frames.shape == (96, 64, 64, 3) and clip.frames.dtype == np.uint8
    assert clip.audio.shape == (2, 64000) and clip.audio.dtype == np.float32
    assert np.abs(clip.audio).max() <= 0.95 + 1e-6
    assert clip.positions.shape == (96, GenStyle().max_objects)
    assert 23.976 <= clip.source_fps <= 60.0
    onsets = [e.onset_s for e in clip.events]
    assert onsets == sorted(onsets)
    for e in clip.events:
        assert e.kind in ("impact", "beep", "slide") and -1 <= e.x <= 1 and 0 <= e.onset_s <= e.end_s <= 4.0
    other = make_clip(3, duration_s=2.5, fps=30000 / 1001, size=(40, 24), sample_rate_hz=22050)
    assert other.frames.shape == (num_frames(2.5, 30000 / 1001), 24, 40, 3) == (75, 24, 40, 3)
    assert other.audio.shape == (2, round(2.5 * 22050))


def test_deterministic_by_seed_and_stream():
    a, b = make_clip(17), make_clip(17)
    assert np.array_equal(a.frames, b.frames) and np.array_equal(a.audio, b.audio)
    assert a.events == b.events and a.caption == b.caption and a.cuts_s == b.cuts_s
    c = make_clip(18)
    assert not np.array_equal(a.audio, c.audio)
    s1 = [clip.seed for clip in stream_clips(5, 4)]
    s2 = [clip.seed for clip in stream_clips(5, 4)]
    assert s1 == s2 == [clip_seed(5, i) for i in range(4)] and len(set(s1)) == 4
    assert clip_seed(6, 0) not in s1


def test_world_does_not_depend_on_output_format():
    """Events (and source fps) come from the seed only: output fps, size and sample rate don't move them."""
    a = make_clip(21)
    b = make_clip(21, fps=60.0, size=(32, 48), sample_rate_hz=44100)
    assert [(e.kind, e.onset_s, e.x) for e in a.events] == [(e.kind, e.onset_s, e.x) for e in b.events]
    assert a.source_fps == b.source_fps


def test_impact_onset_frame_shows_ball_touching_floor():
    style = _only("impact", max_objects=1)
    checked = 0
    for seed in range(40):
        plan = _plan(seed, 3.0, style, FPS)
        clip = make_clip(seed, duration_s=3.0, fps=FPS, size=(96, 96), style=style, source_fps=FPS)
        if not plan.scenes[0].objects:
            continue
        ball, bg = plan.scenes[0].objects[0], plan.scenes[0].background
        assert isinstance(ball, Ball)
        floor_row = bg.floor_v * 96
        bottom_rows = []
        for e in clip.events:
            k = round(e.onset_s * FPS)
            assert math.isclose(k / FPS, e.onset_s, abs_tol=1e-9), "onsets lie on the frame grid"
            rows = np.flatnonzero(_near(clip.frames[k], ball.colour).any(axis=1))
            assert len(rows), f"{seed=} ball not visible at onset frame {k}"
            bottom_rows.append(rows.max())
            # the ball's lowest fully-covered row sits right on the floor line
            assert floor_row - 2.0 <= rows.max() + 1 <= floor_row + 0.5, f"{seed=} {k=} {rows.max()=} {floor_row=}"
            # and two frames earlier it was still in the air (ballistic fall towards the contact)
            if k >= 2 and e.strength > 0.1:
                before = np.flatnonzero(_near(clip.frames[k - 2], ball.colour).any(axis=1))
                if len(before):
                    assert before.max() < rows.max(), f"{seed=} ball already down before onset"
            checked += 1
    assert checked >= 20


def test_beep_lamp_lit_from_onset_frame():
    style = _only("beep", max_objects=1)
    checked = 0
    for seed in range(30):
        plan = _plan(seed, 3.0, style, FPS)
        if not plan.scenes[0].objects:
            continue
        clip = make_clip(seed, duration_s=3.0, fps=FPS, size=(96, 96), style=style, source_fps=FPS)
        lamp = plan.scenes[0].objects[0]
        assert isinstance(lamp, Lamp)
        cy = int((lamp.v + lamp.size / 2) * 96)
        cx = int(lamp.u * 96)
        for e in clip.events:
            k = round(e.onset_s * FPS)
            assert _near(clip.frames[k, cy, cx], lamp.colour), f"{seed=} lamp not lit at onset frame"
            if k >= 1:
                assert _near(clip.frames[k - 1, cy, cx], lamp.off_colour), f"{seed=} lamp lit before onset"
            last = math.ceil(e.end_s * FPS - 1e-6) - 1  # last frame before it switches off
            assert _near(clip.frames[last, cy, cx], lamp.colour)
            checked += 1
    assert checked >= 20


def test_slide_box_starts_moving_at_onset_frame():
    style = _only("slide", max_objects=1)
    checked = 0
    for seed in range(30):
        clip = make_clip(seed, duration_s=3.0, fps=FPS, size=(96, 96), style=style, source_fps=FPS)
        for e in clip.events:
            k = round(e.onset_s * FPS)
            if k < 1 or k + 3 >= len(clip.frames):
                continue
            assert np.array_equal(clip.frames[k - 1], clip.frames[k]), f"{seed=} box moved before onset"
            assert not np.array_equal(clip.frames[k], clip.frames[k + 3]), f"{seed=} box still after onset"
            slot = list(clip.position_kinds[k]).index("slide")
            assert clip.positions[k, slot] == clip.positions[k - 1, slot] != clip.positions[k + 3, slot]
            assert math.isclose(clip.positions[k, slot], e.x, abs_tol=1e-6)
            checked += 1
    assert checked >= 15


def test_frame_rate_resampling_is_exact_in_time():
    """Output frame k at time k/fps shows the last source frame at or before it."""
    style = GenStyle.clean()
    for seed, src in ((4, 60.0), (5, 50.0), (6, 24000 / 1001)):
        at_source = make_clip(seed, duration_s=2.0, fps=src, size=(48, 48), style=style, source_fps=src)
        for fps in (24.0, 25.0, 30.0):
            out = make_clip(seed, duration_s=2.0, fps=fps, size=(48, 48), style=style, source_fps=src)
            for k in range(len(out.frames)):
                j = math.floor(k / fps * src + 1e-7)
                assert j / src <= k / fps + 1e-9 < (j + 1) / src
                assert np.array_equal(out.frames[k], at_source.frames[j]), f"{seed=} {fps=} {k=} {j=}"
            assert out.events == at_source.events


def test_cut_stops_old_scene_sounds():
    style = dataclasses.replace(GenStyle.train(), p_cut=1.0, kind_weights=(0.3, 0.5, 0.2))
    checked = 0
    for seed in range(20):
        plan = _plan(seed, 4.0, style)
        if len(plan.scenes) < 2 or not plan.scenes[0].objects:
            continue
        cut = plan.scenes[1].start_s
        silent_rest = tuple(dataclasses.replace(s, objects=(), ambience_level=0.0) for s in plan.scenes[1:])
        audio, events = render_audio(dataclasses.replace(plan, scenes=plan.scenes[:1] + silent_rest), 16000,
                                     np.random.default_rng(0))
        i = math.ceil(cut * 16000 - 1e-6)  # first sample at or after the cut
        assert np.abs(audio[:, :i]).max() > 1e-3  # the old scene was sounding
        assert np.abs(audio[:, i:]).max() == 0.0, f"{seed=} old sound leaks past the cut"
        assert all(e.end_s <= cut + 1e-9 for e in events if e.scene_index == 0)
        checked += 1
    assert checked >= 5
    clip = make_clip(1, style=style)
    assert clip.cuts_s and all(0 < c < clip.duration_s for c in clip.cuts_s)


def test_stereo_pan_follows_position():
    style = dataclasses.replace(_only("beep", max_objects=1), beep_on_range_s=(0.5, 0.6), max_blinks=1)
    checked = 0
    for seed in range(20):
        clip = make_clip(seed, duration_s=2.0, style=style)
        for e in clip.events:
            a, b = int(e.onset_s * 16000) + 400, int(e.end_s * 16000) - 800
            el, er = (clip.audio[:, a:b] ** 2).mean(axis=1)
            theta = (e.x + 1) * math.pi / 4
            assert math.isclose(er / (el + er), math.sin(theta) ** 2, abs_tol=0.05), f"{seed=} {e.x=}"
            checked += 1
    assert checked >= 10


def test_captions_and_styles():
    caps = [c.caption for c in stream_clips(2, 30, size=(8, 8))]
    assert "" in caps and any(caps)
    for cap in caps:
        words = {"a", "two", "three", "four", "ball", "balls", "bouncing", "lamp", "lamps", "blinking",
                 "box", "boxes", "sliding", "then", "an", "empty", "scene"}
        assert all(w in words for w in cap.replace(",", " ").split()), cap
    train, held = GenStyle.train(), GenStyle.heldout()
    assert train != held
    # training covers the held-out style's ranges (the outside judge is bench/judgeworld now)
    assert set(held.backgrounds) <= set(train.backgrounds) and set(held.aspects) <= set(train.aspects)
    for name in ("ball_radius_range", "gravity_range", "lamp_size_range", "box_width_range", "floor_v_range"):
        (tlo, thi), (hlo, hhi) = getattr(train, name), getattr(held, name)
        assert tlo <= hlo and hhi <= thi, name
    assert 0 < train.p_contacts_on_frames < 1 and held.p_contacts_on_frames == 1


def test_source_rates_can_mix_standard_rates_with_the_continuous_range():
    """With p_fps_choice < 1 a style draws one of its standard rates (whose 24 fps picking repeats a fixed
    judder) for about that share of its clips and any rate in the range for the rest; with 1 (the default)
    always a choice, and the shipped training style draws from the range alone."""
    standard = (24000 / 1001, 24.0, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0)
    mixed = dataclasses.replace(GenStyle.train(), source_fps_choices=standard, p_fps_choice=0.5)
    rng = np.random.default_rng(0)
    rates = [sample_plan(rng, 4.0, mixed).source_fps for _ in range(600)]
    assert abs(np.mean([r in standard for r in rates]) - 0.5) < 0.07
    assert all(mixed.source_fps_range[0] <= r <= mixed.source_fps_range[1] for r in rates)
    assert {30000 / 1001, 30.0, 60.0} <= set(rates)
    held = GenStyle.heldout()
    assert held.p_fps_choice == 1 and all(sample_plan(rng, 4.0, held).source_fps in held.source_fps_choices
                                          for _ in range(50))
    train = GenStyle.train()
    assert not train.source_fps_choices and not any(sample_plan(rng, 4.0, train).source_fps in standard
                                                    for _ in range(50))


def test_contacts_between_frames_follow_the_physics():
    """With p_contacts_on_frames 0 a ball's contacts fall where the physics puts them (mostly between
    frames); the ball touches the floor exactly then and is in the air on both sides."""
    style = dataclasses.replace(_only("impact", max_objects=1), p_contacts_on_frames=0.0)
    off_grid = checked = 0
    for seed in range(30):
        plan = _plan(seed, 3.0, style, FPS)
        if not plan.scenes[0].objects:
            continue
        ball, floor_v = plan.scenes[0].objects[0], plan.scenes[0].background.floor_v
        for c in ball.contacts_s:
            off_grid += abs(c * FPS - round(c * FPS)) > 1e-3
            _, v = ball.state(np.array([c - 0.02, c, c + 0.02]), floor_v)
            assert math.isclose(v[1], floor_v - ball.radius, abs_tol=1e-9), f"{seed=} {c=}"
            if c < ball.rest_s:
                assert v[0] < v[1] and v[2] < v[1], f"{seed=} {c=} not in the air around the contact"
            checked += 1
        clip = make_clip(seed, duration_s=3.0, fps=FPS, size=(32, 32), style=style, source_fps=FPS)
        assert [e.onset_s for e in clip.events if e.kind == "impact"] == list(ball.contacts_s)
    assert checked >= 20 and off_grid >= 0.8 * checked


def test_kinds_not_tied_to_colour_or_size():
    """Across many clips every kind shows up in many colours and sizes (no fixed look per kind)."""
    hues = {"impact": set(), "beep": set(), "slide": set()}
    for seed in range(40):
        plan = _plan(seed, 4.0, GenStyle.train())
        for scene in plan.scenes:
            for obj in scene.objects:
                kind = {Ball: "impact", Lamp: "beep", Box: "slide"}[type(obj)]
                hues[kind].add(tuple(int(c * 4) for c in obj.colour))
    assert all(len(v) >= 8 for v in hues.values()), {k: len(v) for k, v in hues.items()}


@pytest.mark.parametrize("size", [(320, 180), (1280, 720)])
def test_large_outputs(size):
    clip = make_clip(9, duration_s=0.5, size=size, style=GenStyle.heldout())
    assert clip.frames.shape == (12, size[1], size[0], 3)
    assert clip.frames.std() > 1.0  # a picture, not a blank


def test_long_clips_keep_cutting_to_new_scenes_with_events():
    clip = make_clip(12, duration_s=45.0, size=(8, 8))
    bounds = [0.0, *clip.cuts_s, 45.0]
    assert len(clip.cuts_s) >= 4 and max(b - a for a, b in zip(bounds, bounds[1:])) <= 10.0 + 1e-9
    assert len(clip.judged_events) >= 15
    n_scenes = len(bounds) - 1  # scenes may be empty (0 objects), but most have something going on
    assert len({e.scene_index for e in clip.events}) >= 0.6 * n_scenes


def test_area_resize_averages_areas():
    from foley_model.toyworld.render import area_resize

    rng = np.random.default_rng(0)
    x = rng.random((2, 12, 18, 3)).astype(np.float32)
    down = area_resize(x, 4, 6)  # integer factor 3: plain block means
    assert np.allclose(down, x.reshape(2, 4, 3, 6, 3, 3).mean(axis=(2, 4)), atol=1e-5)
    odd = area_resize(x, 5, 7)  # fractional: still a weighted average preserving the mean
    assert np.allclose(odd.mean(axis=(1, 2)), x.mean(axis=(1, 2)), atol=1e-4)
    assert odd.min() >= x.min() - 1e-6 and odd.max() <= x.max() + 1e-6


def test_codec_artefacts_grow_with_strength():
    from foley_model.toyworld.augment import codec

    rng = np.random.default_rng(1)
    x = np.clip(rng.random((1, 32, 32, 3)) * 0.3 + np.linspace(0, 0.6, 32)[None, :, None, None], 0, 1)
    x = x.astype(np.float32)
    assert codec(x, 8, 8, 0.0) is x and codec(x, 1, 1, 1.0) is x  # off, or blocks too small to see
    err = [np.abs(codec(x, 8, 8, s) - x).mean() for s in (0.1, 0.5, 1.0)]
    assert 0 < err[0] < err[1] < err[2] < 0.2, err


@given(st.floats(23.976, 60.0), st.floats(10.0, 120.0), st.integers(1, 400))
def test_source_indices_pick_last_source_frame_at_or_before(src, fps, n):
    from foley_model.toyworld.render import source_indices

    j = source_indices(n, fps, src)
    k = np.arange(n)
    assert np.all(j / src <= k / fps + 1e-9) and np.all((j + 1) / src > k / fps - 1e-9)


def test_ball_kicked_from_the_floor_sounds_only_when_it_lands():
    """p_kicked_from_floor: the ball rests on the floor, leaves it upwards at release without an event,
    and its first onset is its first landing."""
    style = dataclasses.replace(_only("impact", max_objects=1), p_kicked_from_floor=1.0)
    checked = 0
    for seed in range(20):
        plan = _plan(seed, 3.0, style, FPS)
        if not plan.scenes[0].objects:
            continue
        ball, floor_v = plan.scenes[0].objects[0], plan.scenes[0].background.floor_v
        release = ball.seg_t[0]
        _, v = ball.state(np.array([release - 0.05, release, release + 0.05]), floor_v)
        assert math.isclose(v[0], floor_v - ball.radius) and math.isclose(v[1], floor_v - ball.radius)
        assert v[2] < v[1], f"{seed=} the ball did not leave the floor"
        clip = make_clip(seed, duration_s=3.0, fps=FPS, size=(32, 32), style=style, source_fps=FPS)
        onsets = [e.onset_s for e in clip.events]
        assert all(t > release + 0.05 for t in onsets), f"{seed=} a sound at the kick"
        if ball.contacts_s:
            assert onsets[0] == ball.contacts_s[0]
        checked += 1
    assert checked >= 10

"""Clips of the toy world: `make_clip` (deterministic by seed) and `stream_clips`."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from . import augment as aug
from .audio import render_audio
from .render import area_resize, background_image, positions_at, render_scene, source_indices
from .world import Event, GenStyle, Plan, sample_plan

# 2: the training style widened (tall frames, slow gravity, contacts between frames, kicked balls);
# the held-out streams are unchanged
GENERATOR_VERSION = "toyworld-2"

_LARGE_PIXELS = 256 * 256  # above this output size: the fast large-output path
_CHUNK_VALUES = 8_000_000  # float values rendered, augmented and resized at a time (bounds memory)


@dataclass
class Clip:
    """One clip. ``frames`` (T, H, W, 3) uint8 RGB at ``fps``; ``audio`` (2, n) float32 in [-1, 1].

    ``positions`` (T, K) float32: horizontal position x in [-1, 1] of object slot k of the scene on
    screen at output frame t (slots in the scene's object order, K = style.max_objects; NaN where the
    scene has fewer objects). Slots are re-used by the next scene after a cut.
    ``position_kinds`` (T, K): the kind in each slot ('' where empty).
    """

    frames: np.ndarray
    fps: float
    audio: np.ndarray
    sample_rate_hz: int
    duration_s: float
    events: tuple[Event, ...]
    cuts_s: tuple[float, ...]
    caption: str
    seed: int
    positions: np.ndarray
    position_kinds: np.ndarray
    source_fps: float  # the rate the picture was rendered at before time resampling to `fps`
    source_size: tuple[int, int]  # nominal (W, H) of the simulated source video
    render_size: tuple[int, int]  # (W, H) actually rasterised before the area resize

    @property
    def judged_events(self) -> tuple[Event, ...]:
        """Impacts and beeps: the events whose onsets are judged."""
        return tuple(e for e in self.events if e.kind in ("impact", "beep"))


def num_frames(duration_s: float, fps: float) -> int:
    """Frames k = 0.. with time k / fps inside [0, duration_s)."""
    return max(1, math.ceil(duration_s * fps - 1e-6))


def make_clip(seed: int, duration_s: float = 4.0, fps: float = 24.0, size: tuple[int, int] = (64, 64),
              sample_rate_hz: int = 16000, style: GenStyle | None = None,
              source_fps: float | None = None) -> Clip:
    """Render one clip of the toy world; the same arguments always give the same clip.

    The world (scenes, objects, timing, source frame rate) depends only on (seed, duration_s,
    style, source_fps), not on the output fps, size or sample rate -- except that large outputs
    (over 256x256 pixels: test videos, which are themselves the source) use the output's aspect
    ratio instead of a random one from the style.
    """
    style = style or GenStyle.train()
    width, height = size
    if width * height > _LARGE_PIXELS:  # a test video: it *is* the source, so no squashed aspect
        style = dataclasses.replace(style, aspects=(width / height,))
    plan = sample_plan(np.random.default_rng([seed, 0]), duration_s, style, source_fps)
    audio, events = render_audio(plan, sample_rate_hz, np.random.default_rng([seed, 2]))

    frames, pos, kinds, (eff_w, eff_h), (src_w, src_h) = _render_video(
        plan, seed, duration_s, fps, width, height, style)
    return Clip(
        frames=frames, fps=float(fps), audio=audio, sample_rate_hz=int(sample_rate_hz),
        duration_s=float(duration_s), events=events, cuts_s=tuple(s.start_s for s in plan.scenes[1:]),
        caption=plan.caption, seed=int(seed), positions=pos, position_kinds=kinds,
        source_fps=plan.source_fps, source_size=(src_w, src_h),
        render_size=(eff_w, eff_h),
    )


def _render_video(plan: Plan, seed: int, duration_s: float, fps: float, width: int, height: int, style: GenStyle):
    """Frames (T, H, W, 3) uint8 at ``fps``, positions, kinds, render size and source size.

    Small outputs (training): rasterise each needed source frame at the output size (the analytic
    anti-aliasing is the area average a downscaler would give) or at the source size when that is
    smaller, run the codec at the smaller of the two on 8x8 source-pixel blocks, area-resize, blur,
    jitter, add noise. Large outputs (test videos, which get a real codec later): the background is
    made and degraded once per scene in uint8 and the objects are drawn into copies of it.
    """
    vrng = np.random.default_rng([seed, 1])
    src_h = plan.source_height
    src_w = round(src_h * plan.aspect)
    large = height * width > _LARGE_PIXELS
    os_h, os_w = (1.0, 1.0) if large else vrng.uniform(*style.render_oversample_range, size=2)
    eff_h = height if large else max(8, min(src_h, math.ceil(height * os_h)))
    eff_w = width if large else max(8, min(src_w, math.ceil(width * os_w)))
    params = aug.sample_params(vrng, style)
    codec_before = eff_h * eff_w < height * width  # codec at the smaller of render and output size
    codec_h, codec_w = (eff_h, eff_w) if codec_before else (height, width)
    block_h, block_w = round(8 * codec_h / src_h), round(8 * codec_w / src_w)

    n_out = num_frames(duration_s, fps)
    src_idx = source_indices(n_out, fps, plan.source_fps)
    uniq, inverse = np.unique(src_idx, return_inverse=True)
    times = uniq / plan.source_fps
    scene_of = np.searchsorted([s.start_s for s in plan.scenes], times + 1e-9, side="right") - 1

    frames = np.empty((n_out, height, width, 3), dtype=np.uint8)
    pos = np.full((len(uniq), style.max_objects), np.nan, dtype=np.float32)
    kinds = np.full((len(uniq), style.max_objects), "", dtype="<U6")
    gain, offset = np.asarray(params.gain, np.float32), np.asarray(params.offset, np.float32)
    jitter = lambda c: np.clip(c * gain + offset, 0, 1)  # noqa: E731
    chunk = max(1, _CHUNK_VALUES // (eff_h * eff_w * 3))

    def emit(sel: np.ndarray, pictures: np.ndarray) -> None:  # unique frames sel -> output frames
        o0, o1 = np.searchsorted(inverse, [sel[0], sel[-1] + 1])
        frames[o0:o1] = pictures[inverse[o0:o1] - sel[0]]

    for si, scene in enumerate(plan.scenes):
        idx = np.flatnonzero(scene_of == si)
        if len(idx) == 0:
            continue
        pos[idx] = positions_at(scene, times[idx], style.max_objects)
        for k, obj in enumerate(scene.objects[: style.max_objects]):
            kinds[idx, k] = {"Ball": "impact", "Lamp": "beep", "Box": "slide"}[type(obj).__name__]
        if large:
            bg = background_image(scene.background, height, width)[None]
            bg = aug.blur3(aug.codec(bg, block_h, block_w, params.strength), params.blur)
            bg = aug.to_uint8(bg, params, vrng)
            for c in range(0, len(idx), chunk):
                sel = idx[c:c + chunk]
                canvas = np.empty((len(sel), height, width, 3), np.uint8)
                canvas[:] = bg
                emit(sel, render_scene(scene, times[sel], height, width, plan.aspect, canvas, jitter))
            continue
        for c in range(0, len(idx), chunk):
            sel = idx[c:c + chunk]
            x = render_scene(scene, times[sel], eff_h, eff_w, plan.aspect)
            if codec_before:
                x = aug.codec(x, block_h, block_w, params.strength)
            x = area_resize(x, height, width)
            if not codec_before:
                x = aug.codec(x, block_h, block_w, params.strength)
            emit(sel, aug.to_uint8(aug.blur3(x, params.blur), params, vrng))
    return frames, pos[inverse], kinds[inverse], (eff_w, eff_h), (src_w, src_h)


def clip_seed(seed: int, index: int) -> int:
    """The seed of clip ``index`` of stream ``seed`` (a 63-bit hash of the pair)."""
    a, b = np.random.SeedSequence([seed, index]).generate_state(2)
    return int((int(a) << 31) ^ int(b)) & ((1 << 63) - 1)


def stream_clips(seed: int, n: int | None, **kwargs) -> Iterator[Clip]:
    """Clips ``make_clip(clip_seed(seed, i), **kwargs)`` for i = 0 .. n-1 (forever when n is None)."""
    for i in itertools.count() if n is None else range(n):
        yield make_clip(clip_seed(seed, i), **kwargs)

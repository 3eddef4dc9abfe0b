"""Frames of a clip drawn with numpy (uint8 RGB, shape (height_px, width_px, 3)).

Pixel column i covers [i, i+1) in pixel units; shapes are anti-aliased by their coverage.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from .world import Ball, Box, Clip, Lamp, Scene


def floor_px(scene: Scene, height_px: int) -> float:
    """The floor line's top edge (where a resting ball's bottom lies), in pixels from the top."""
    return scene.floor_y * height_px


def background(scene: Scene, width_px: int, height_px: int) -> np.ndarray:
    """Background, ground below the floor, and the floor line (uint8 RGB)."""
    bg = scene.background
    c0, c1 = np.array(bg.colors[0], float), np.array(bg.colors[1], float)
    if bg.style == "flat":
        img = np.broadcast_to(c0, (height_px, width_px, 3)).copy()
    elif bg.style == "gradient":
        u = np.linspace(0, 1, height_px)[:, None, None]
        img = np.broadcast_to(c0 + (c1 - c0) * u, (height_px, width_px, 3)).copy()
    else:                                    # smooth value noise plus a little grain
        rng = np.random.default_rng(bg.texture_seed)
        cells = rng.random((int(rng.integers(3, 12)), int(rng.integers(3, 12))))
        yi = np.linspace(0, cells.shape[0] - 1, height_px)
        xi = np.linspace(0, cells.shape[1] - 1, width_px)
        rows = np.array([np.interp(xi, np.arange(cells.shape[1]), r) for r in cells])
        u = np.array([np.interp(yi, np.arange(cells.shape[0]), col) for col in rows.T]).T
        u = np.clip(u + rng.normal(0, 0.04, u.shape), 0, 1)[:, :, None]
        img = c0 + (c1 - c0) * u
    top = floor_px(scene, height_px)
    row = int(np.floor(top))
    above = img[row].copy()
    img[row:] = bg.ground
    img[row:row + max(1, round(height_px / 180)) + 1] = bg.floor_line
    img[row] = (top - row) * above + (1 - (top - row)) * np.array(bg.floor_line, float)   # anti-aliased edge
    return np.clip(img + 0.5, 0, 255).astype(np.uint8)


def _blend(img: np.ndarray, y0: int, x0: int, alpha: np.ndarray, color) -> None:
    if alpha.size:
        view = img[y0:y0 + alpha.shape[0], x0:x0 + alpha.shape[1]]
        patch = view.astype(float)
        view[:] = np.clip(patch + alpha[:, :, None] * (np.array(color, float) - patch) + 0.5, 0, 255)


def _rect(img: np.ndarray, left: float, top: float, right: float, bottom: float, color) -> None:
    h, w = img.shape[:2]
    x0, x1 = max(int(np.floor(left)), 0), min(int(np.ceil(right)), w)
    y0, y1 = max(int(np.floor(top)), 0), min(int(np.ceil(bottom)), h)
    cx = np.clip(np.minimum(np.arange(x0, x1) + 1, right) - np.maximum(np.arange(x0, x1), left), 0, 1)
    cy = np.clip(np.minimum(np.arange(y0, y1) + 1, bottom) - np.maximum(np.arange(y0, y1), top), 0, 1)
    _blend(img, y0, x0, np.outer(cy, cx), color)


def _disc(img: np.ndarray, cx: float, cy: float, r: float, color) -> None:
    h, w = img.shape[:2]
    x0, x1 = max(int(cx - r) - 1, 0), min(int(cx + r) + 2, w)
    y0, y1 = max(int(cy - r) - 1, 0), min(int(cy + r) + 2, h)
    d = np.hypot(np.arange(y0, y1)[:, None] + 0.5 - cy, np.arange(x0, x1)[None, :] + 0.5 - cx)
    _blend(img, y0, x0, np.clip(r - d + 0.5, 0, 1), color)


def draw_object(img: np.ndarray, obj, scene: Scene, clip: Clip, frame: int) -> None:
    """Draw one object as it is at the time of `frame` (in place)."""
    H = clip.height_px
    t_s = float(frame / clip.fps)
    if isinstance(obj, Ball):
        x, h = obj.position(t_s)
        _disc(img, x * H, (scene.floor_y - h - obj.radius) * H, obj.radius * H, obj.color)
    elif isinstance(obj, Lamp):
        lit = any(a <= frame < b for a, b in obj.on_frames)
        s = obj.size * H / 2
        _rect(img, obj.x * H - s, obj.y * H - s, obj.x * H + s, obj.y * H + s, obj.on_color if lit else obj.off_color)
    elif isinstance(obj, Box):
        x, _ = obj.state(t_s)
        _rect(img, (x - obj.width / 2) * H, (scene.floor_y - obj.height) * H, (x + obj.width / 2) * H,
              scene.floor_y * H, obj.color)


def frames(clip: Clip, draw_objects: bool = True) -> Iterator[np.ndarray]:
    """Every frame of the clip in order; `draw_objects=False` gives the backgrounds only."""
    cache: dict[int, np.ndarray] = {}
    for i in range(clip.num_frames):
        scene = clip.scene_at(float(i / clip.fps))
        if scene.scene_id not in cache:
            cache = {scene.scene_id: background(scene, clip.width_px, clip.height_px)}
        img = cache[scene.scene_id].copy()
        if draw_objects:
            for obj in scene.objects:
                draw_object(img, obj, scene, clip, i)
        yield img

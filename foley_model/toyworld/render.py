"""Picture side of the toy world: rasterise source frames, resample by time, area-resize.

Anti-aliased shapes are drawn only inside each object's bounding box, so cost grows with the
objects' pixel area, not with the frame; the static background is made once per scene.
"""

from __future__ import annotations

import math

import numpy as np

from .world import Background, Ball, Box, Lamp, Scene


def source_indices(num_frames: int, fps: float, source_fps: float) -> np.ndarray:
    """Output frame k (time k/fps) shows the last source frame j with j/source_fps <= k/fps."""
    k = np.arange(num_frames, dtype=np.float64)
    return np.floor(k * source_fps / fps + 1e-7).astype(np.int64)


def _area_axis(x: np.ndarray, axis: int, n_out: int) -> np.ndarray:
    """Area-resample one axis with an integral image: out_k = mean of x over [k, k+1) * n_in / n_out."""
    n_in = x.shape[axis]
    x = np.moveaxis(x, axis, 0)
    c = np.empty((n_in + 1,) + x.shape[1:], dtype=np.float64)
    c[0] = 0
    np.cumsum(x, axis=0, dtype=np.float64, out=c[1:])
    edges = np.arange(n_out + 1, dtype=np.float64) * (n_in / n_out)
    i = np.minimum(edges.astype(np.int64), n_in - 1)
    f = (edges - i).reshape((-1,) + (1,) * (x.ndim - 1))
    s = c[i] + f * x[i]  # integral from 0 to each edge
    out = (s[1:] - s[:-1]) * (n_out / n_in)
    return np.moveaxis(out.astype(np.float32), 0, axis)


def area_resize(frames: np.ndarray, height: int, width: int) -> np.ndarray:
    """Area-average (N, H, W, C) float frames to (N, height, width, C).

    No BLAS: numpy's threaded GEMM stalls badly on a busy 2-core machine next to torch training.
    """
    _, h, w, _ = frames.shape
    if h != height:
        frames = _area_axis(frames, 1, height)
    if w != width:
        frames = _area_axis(frames, 2, width)
    return frames


def background_image(bg: Background, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float32 background with floor line and optional ground fill."""
    yy = (np.arange(height, dtype=np.float32)[:, None] + 0.5) / height
    xx = (np.arange(width, dtype=np.float32)[None, :] + 0.5) / width
    c1 = np.asarray(bg.colours[0], dtype=np.float32)
    c2 = np.asarray(bg.colours[-1], dtype=np.float32)
    if bg.kind == "flat":
        mix = np.zeros((height, width), np.float32)
    elif bg.kind == "gradient":
        mix = np.clip(0.5 + 0.7 * ((xx - 0.5) * math.cos(bg.param) + (yy - 0.5) * math.sin(bg.param)), 0, 1)
    elif bg.kind == "noise":
        trng = np.random.default_rng(int(bg.param * 1e6))
        coarse = trng.random((6, 8)).astype(np.float32)
        gy = np.clip(yy[:, 0] * 5, 0, 5 - 1e-6)
        gx = np.clip(xx[0] * 7, 0, 7 - 1e-6)
        iy, ix = gy.astype(int), gx.astype(int)
        fy, fx = (gy - iy)[:, None], (gx - ix)[None, :]
        a = coarse[iy][:, ix] * (1 - fx) + coarse[iy][:, ix + 1] * fx
        b = coarse[iy + 1][:, ix] * (1 - fx) + coarse[iy + 1][:, ix + 1] * fx
        mix = a * (1 - fy) + b * fy
        grain = np.random.default_rng(int(bg.param * 1e6) + 1).random((height, width)).astype(np.float32)
        mix = np.clip(mix + 0.15 * (grain - 0.5), 0, 1)
    elif bg.kind == "stripes":
        mix = (np.sin(2 * np.pi * bg.param * (xx + 0.3 * yy)) > 0).astype(np.float32) * np.ones_like(yy)
    elif bg.kind == "checker":
        mix = ((np.floor(xx * bg.param) + np.floor(yy * bg.param * 0.6)) % 2).astype(np.float32)
    elif bg.kind == "radial":
        mix = np.clip(np.sqrt((xx - 0.5) ** 2 + (yy - 0.45) ** 2) * 1.6, 0, 1)
    else:
        raise ValueError(f"unknown background kind {bg.kind!r}")
    img = c1 * (1 - mix[..., None]) + c2 * mix[..., None]
    img = np.broadcast_to(img, (height, width, 3)).astype(np.float32).copy()
    top = bg.floor_v * height
    thick = max(1.0, bg.floor_thickness * height)
    rows = np.arange(height, dtype=np.float32)
    if bg.ground_colour is not None:
        cov = np.clip(rows + 1 - (top + thick), 0, 1)[:, None, None]
        img += cov * (np.asarray(bg.ground_colour, np.float32) - img)
    line = np.clip(np.minimum(rows + 1, top + thick) - np.maximum(rows, top), 0, 1)[:, None, None]
    img += line * (np.asarray(bg.floor_colour, np.float32) - img)
    return img


def _composite(out: np.ndarray, y0: np.ndarray, x0: np.ndarray, alpha: np.ndarray, colour: np.ndarray) -> None:
    """Blend per-frame windows: out[n, y0[n]+i, x0[n]+j] towards colour[n] by alpha[n, i, j].

    ``out`` is float in [0, 1] or uint8 (then colours are still in [0, 1]).
    """
    n, sh, sw = alpha.shape
    nn = np.arange(n)[:, None, None]
    yy = y0[:, None, None] + np.arange(sh)[None, :, None]
    xx = x0[:, None, None] + np.arange(sw)[None, None, :]
    patch = out[nn, yy, xx]  # (n, sh, sw, 3)
    if out.dtype == np.uint8:
        p = patch.astype(np.float32) * np.float32(1 / 255)
        p += alpha[..., None] * (colour[:, None, None, :] - p)
        out[nn, yy, xx] = (p * 255 + 0.5).astype(np.uint8)
    else:
        out[nn, yy, xx] = patch + alpha[..., None] * (colour[:, None, None, :] - patch)


def _window(lo: np.ndarray, size: int, limit: int) -> np.ndarray:
    """Window starts covering [lo, lo + size) clamped inside [0, limit) (size <= limit)."""
    return np.clip(np.floor(lo).astype(np.int64), 0, limit - size)


def _span_cover(start: np.ndarray, lo: np.ndarray, hi: np.ndarray, size: int) -> np.ndarray:
    """(N, size) coverage of pixels start+k by the interval [lo, hi] (anti-aliased)."""
    px = start[:, None].astype(np.float32) + np.arange(size, dtype=np.float32)[None, :]
    return np.clip(np.minimum(px + 1, hi[:, None]) - np.maximum(px, lo[:, None]), 0, 1)


def _draw_rects(out, x_lo, x_hi, y_lo, y_hi, colour) -> None:
    _, h, w, _ = out.shape
    sw = min(w, int(math.ceil(np.max(x_hi - x_lo))) + 2)
    sh = min(h, int(math.ceil(np.max(y_hi - y_lo))) + 2)
    x0, y0 = _window(x_lo, sw, w), _window(y_lo, sh, h)
    alpha = _span_cover(y0, y_lo, y_hi, sh)[:, :, None] * _span_cover(x0, x_lo, x_hi, sw)[:, None, :]
    _composite(out, y0, x0, alpha, colour)


def _draw_discs(out, cx, cy, rx: float, ry: float, colour) -> None:
    """Anti-aliased ellipses (a circle in the picture, drawn on pixels that may not be square)."""
    _, h, w, _ = out.shape
    s_w, s_h = min(w, int(math.ceil(2 * rx)) + 3), min(h, int(math.ceil(2 * ry)) + 3)
    x0, y0 = _window(cx - rx - 1, s_w, w), _window(cy - ry - 1, s_h, h)
    dx = (x0[:, None] + np.arange(s_w, dtype=np.float32)[None, :] + 0.5 - cx[:, None]) / np.float32(rx)
    dy = (y0[:, None] + np.arange(s_h, dtype=np.float32)[None, :] + 0.5 - cy[:, None]) / np.float32(ry)
    d = np.sqrt(dy[:, :, None] ** 2 + dx[:, None, :] ** 2)  # 1 on the rim
    r_px = np.float32(math.sqrt(rx * ry))
    _composite(out, y0, x0, np.clip((1 - d) * r_px + 0.5, 0, 1), colour)


def render_scene(scene: Scene, times_s: np.ndarray, height: int, width: int, aspect: float,
                 canvas: np.ndarray | None = None, colour_fn=None) -> np.ndarray:
    """(N, H, W, 3) frames of one scene at the given source-frame times (vectorised over N).

    ``aspect`` is the picture's width / height; pixels need not be square (height * aspect != width).
    ``canvas``: frames already holding the background (float in [0, 1] or uint8), drawn into in
    place; default: a fresh float32 canvas with ``background_image``. ``colour_fn`` maps object
    colours (e.g. colour jitter) before drawing.
    """
    n = len(times_s)
    if canvas is None:
        out = np.empty((n, height, width, 3), dtype=np.float32)
        out[:] = background_image(scene.background, height, width)
    else:
        out = canvas
    colour_fn = colour_fn or (lambda c: c)
    floor_v = scene.background.floor_v
    kx = width / aspect  # pixels per frame-height unit, horizontally
    order = sorted(scene.objects, key=lambda o: {Box: 0, Lamp: 1, Ball: 2}[type(o)])
    for obj in order:
        colour = np.broadcast_to(colour_fn(np.asarray(obj.colour, np.float32)), (n, 3))
        if isinstance(obj, Box):
            cx = (obj.position(times_s) * width).astype(np.float32)
            half = np.float32(obj.width * kx / 2)
            y_lo = np.full(n, (floor_v - obj.height) * height, np.float32)
            _draw_rects(out, cx - half, cx + half, y_lo, np.full(n, floor_v * height, np.float32), colour)
        elif isinstance(obj, Lamp):
            lit = obj.lit(times_s)
            colour = np.where(lit[:, None], colour, colour_fn(np.asarray(obj.off_colour, np.float32))[None, :])
            cx = np.full(n, obj.u * width, np.float32)
            y_lo = np.full(n, obj.v * height, np.float32)
            _draw_rects(out, cx - obj.size * kx / 2, cx + obj.size * kx / 2, y_lo, y_lo + obj.size * height, colour)
        else:
            u, v = obj.state(times_s, floor_v)
            _draw_discs(out, (u * width).astype(np.float32), (v * height).astype(np.float32),
                        float(obj.radius * kx), float(obj.radius * height), colour)
    return out


def positions_at(scene: Scene, times_s: np.ndarray, max_objects: int) -> np.ndarray:
    """(N, max_objects) horizontal positions x in [-1, 1] of the scene's objects (NaN: no object)."""
    pos = np.full((len(times_s), max_objects), np.nan, dtype=np.float32)
    for k, obj in enumerate(scene.objects[:max_objects]):
        if isinstance(obj, Box):
            u = obj.position(times_s)
        elif isinstance(obj, Lamp):
            u = np.full(len(times_s), obj.u)
        else:
            u, _ = obj.state(times_s, scene.background.floor_v)
        pos[:, k] = 2 * u - 1
    return pos

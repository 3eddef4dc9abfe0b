"""Ground-truth stereo audio of a clip: every sound starts exactly at its event's onset.

Panning is equal-power from the object's x in [-1, 1] (-1: left). Each scene's sound is cut at
the scene's end (5 ms fade, so the cut itself makes no click).
"""
from __future__ import annotations

import math

import numpy as np
from scipy import signal

from .world import Ball, Box, Clip, Lamp, Scene

SAMPLE_RATE_HZ = 48000
FADE_S = 0.005


def pan_gains(x: np.ndarray | float) -> np.ndarray:
    """(..., 2) left/right gains, equal power; x = -1 hard left, +1 hard right."""
    theta = (np.clip(x, -1, 1) + 1) * math.pi / 4
    return np.stack([np.cos(theta), np.sin(theta)], axis=-1)


def _add(buf: np.ndarray, start: int, mono: np.ndarray, gains: np.ndarray) -> None:
    """Mix `mono` panned by `gains` ((2,) or (n, 2)) into buf from sample `start` (clipped to buf)."""
    end = min(start + len(mono), len(buf))
    if end > start:
        g = gains if gains.ndim == 1 else gains[: end - start]
        buf[start:end] += mono[: end - start, None] * g


def _knock(rng, ball: Ball, speed: float, sr: int) -> np.ndarray:
    """Broadband noise burst: 0.5 ms attack, exponential decay (-43 dB at decay_s); louder when faster."""
    n = int(ball.decay_s * 1.2 * sr)
    t = np.arange(n) / sr
    noise = signal.lfilter(*signal.butter(1, ball.cutoff_hz, fs=sr), rng.standard_normal(n))
    env = np.exp(-t / (ball.decay_s / 5)) * np.minimum(t / 0.0005, 1.0)
    gain = min(max(speed / 3.0, 0.08), 1.0) ** 0.8
    return 0.5 * gain * env * noise / (np.std(noise[: max(n // 4, 1)]) + 1e-9)


def _tone(lamp: Lamp, n: int, sr: int) -> np.ndarray:
    t = np.arange(n) / sr
    tone = sum(a * np.sin(2 * math.pi * (k + 1) * lamp.f0_hz * t) for k, a in enumerate(lamp.harmonics)
               if (k + 1) * lamp.f0_hz < sr / 2 - 1000)
    env = np.minimum(np.minimum(t / 0.002, 1.0), np.minimum((n - 1 - np.arange(n)) / (FADE_S * sr), 1.0))
    return lamp.level * env * tone / sum(lamp.harmonics)


def _scene_audio(clip: Clip, sc: Scene, sr: int) -> np.ndarray:
    s0, s1 = round(sc.t0_s * sr), round(sc.t1_s * sr)
    n = s1 - s0
    rng = np.random.default_rng([clip.seed, sc.scene_id])
    amb = signal.sosfilt(signal.butter(2, sc.ambience_cutoff_hz, output="sos", fs=sr), rng.standard_normal((n, 2)), axis=0)
    buf = sc.ambience_level * amb / (amb.std() + 1e-12)
    events = [e for e in clip.events if e["scene"] == sc.scene_id]
    for e in events:
        obj = sc.objects[e["object"]]
        start = round(e["onset_s"] * sr) - s0
        if isinstance(obj, Ball):
            _add(buf, start, _knock(rng, obj, e["speed"], sr), pan_gains(e["x"]))
        elif isinstance(obj, Lamp):
            length = round(min(e["off_s"], sc.t1_s) * sr) - s0 - start
            _add(buf, start, _tone(obj, length, sr), pan_gains(e["x"]))
        elif isinstance(obj, Box):
            t = e["onset_s"] + np.arange(round(e["duration_s"] * sr)) / sr
            xs, speeds = np.array([obj.state(u) for u in t[::48]]).T          # every ms, then held
            xs, speeds = np.repeat(xs, 48)[: len(t)], np.repeat(speeds, 48)[: len(t)]
            lo, hi = obj.band_hz / 2, min(obj.band_hz * 2, sr / 2 - 1000)
            noise = signal.sosfilt(signal.butter(2, [lo, hi], "bandpass", output="sos", fs=sr), rng.standard_normal(len(t)))
            env = obj.level * speeds / (speeds.max() + 1e-12)
            _add(buf, start, env * noise / (noise.std() + 1e-12), pan_gains(2 * xs / clip.aspect - 1))
    fade = min(round(FADE_S * sr), n)
    buf[n - fade:] *= np.linspace(1, 0, fade)[:, None]
    buf[:fade] *= np.linspace(0, 1, fade)[:, None]
    return buf


def render_audio(clip: Clip, sample_rate_hz: int = SAMPLE_RATE_HZ) -> np.ndarray:
    """(num_samples, 2) float32 in [-1, 1], num_samples = round(duration_s * sample_rate_hz)."""
    out = np.zeros((round(clip.duration_s * sample_rate_hz), 2))
    for sc in clip.scenes:
        s0 = round(sc.t0_s * sample_rate_hz)
        seg = _scene_audio(clip, sc, sample_rate_hz)
        out[s0:s0 + len(seg)] += seg[: len(out) - s0]
    return (0.9 * out / max(np.abs(out).max(), 1e-9)).astype(np.float32)

"""Sound side of the toy world: synthesise the stereo track and the ground-truth events of a plan.

Every source is panned with constant power by its horizontal position (x in [-1, 1], left
negative); a scene's sounds are gated off at the cut that ends it (3 ms fade, so the cut itself
makes no click).
"""

from __future__ import annotations

import math

import numpy as np

from .world import Ball, Box, Event, Lamp, Plan, Scene

_FADE_S = 0.003
_PEAK = 0.95
_BEEP_RELEASE_S = 0.025


def pan_gains(x: np.ndarray | float) -> tuple[np.ndarray, np.ndarray]:
    """Constant-power pan: x=-1 all left, x=+1 all right, gL^2 + gR^2 = 1."""
    theta = (np.clip(np.asarray(x, dtype=np.float64), -1, 1) + 1) * (np.pi / 4)
    return np.cos(theta), np.sin(theta)


def _shaped_noise(rng: np.random.Generator, n: int, sr: int, gain_fn, channels: int = 0,
                  f_max: float | None = None) -> np.ndarray:
    """Gaussian noise of length n with amplitude spectrum gain_fn(f), made in the frequency domain.

    A complex Gaussian spectrum is the spectrum of white noise, so shaping it and taking one
    inverse FFT (of a fast power-of-two length, then cropped) gives coloured noise directly.
    ``f_max`` leaves bins above it at zero (cheap low-frequency beds). ``channels`` > 0: that many.
    """
    shape = (channels,) if channels else ()
    if n <= 0:
        return np.zeros(shape + (0,))
    n_fft = 1 << (n - 1).bit_length()
    f = np.fft.rfftfreq(n_fft, 1.0 / sr)
    k = len(f) if f_max is None else min(len(f), int(np.searchsorted(f, f_max)) + 1)
    spec = np.zeros(shape + (len(f),), dtype=np.complex128)
    z = rng.standard_normal(shape + (k, 2), dtype=np.float32)
    spec[..., :k] = (z[..., 0] + 1j * z[..., 1]) * gain_fn(f[:k])
    return np.fft.irfft(spec, n_fft)[..., :n]


def _add(buf: np.ndarray, start: int, mono: np.ndarray, gl, gr) -> None:
    n = buf.shape[1]
    if start >= n or len(mono) == 0:
        return
    end = min(n, start + len(mono))
    seg = mono[: end - start]
    buf[0, start:end] += seg * (gl if np.isscalar(gl) else gl[: end - start])
    buf[1, start:end] += seg * (gr if np.isscalar(gr) else gr[: end - start])


def _impact(rng, ball: Ball, speed: float, sr: int) -> np.ndarray:
    n = int(min(5 * ball.decay_s, 0.8) * sr)
    noise = _shaped_noise(rng, n, sr, lambda f: (np.maximum(f, 80.0) / 1000.0) ** (-ball.tilt / 2)
                          / np.sqrt(1 + (f / ball.bright_hz) ** 4))
    t = np.arange(n) / sr
    env = np.exp(-t / ball.decay_s) * np.minimum(1.0, t / 0.001 + 1.0 / (0.001 * sr))
    burst = noise * env
    burst /= np.max(np.abs(burst)) + 1e-12
    amp = ball.level * min(1.5, max(0.12, speed / 2.5)) ** 0.8  # louder for faster impacts
    return burst * amp


def _tone(lamp: Lamp, a: float, b: float, sr: int) -> np.ndarray:
    n = max(1, int(round((b - a) * sr)))
    t = np.arange(n) / sr + a
    x = np.zeros(n)
    for h, amp in enumerate(lamp.harmonics):
        f = lamp.freq_hz * (h + 1)
        if f < 0.45 * sr:
            x += amp * np.sin(2 * np.pi * f * t + 0.7 * h)
    x /= sum(lamp.harmonics)
    k = np.arange(n) / sr
    # 2 ms attack; 25 ms raised-cosine release (an abrupt stop would splatter into a false onset)
    rel = np.clip((n / sr - k) / _BEEP_RELEASE_S, 0, 1)
    env = np.minimum(1.0, (k + 1.0 / sr) / 0.002) * (0.5 - 0.5 * np.cos(np.pi * rel))
    return lamp.level * x * env


def _slide(rng, box: Box, t1: float, sr: int) -> tuple[np.ndarray, np.ndarray]:
    end = min(box.start_s + box.duration_s, t1)
    n = max(0, int(round((end - box.start_s) * sr)))
    t = box.start_s + np.arange(n) / sr
    lo, hi = box.band_hz
    hi = min(hi, 0.45 * sr)
    lo = min(lo, 0.5 * hi)
    def band(f):  # 4th-order band-pass magnitude around sqrt(lo * hi)
        return 1.0 / np.sqrt(1 + ((f * f - lo * hi) / (np.maximum(f, 1.0) * (hi - lo))) ** 4)

    noise = _shaped_noise(rng, n, sr, band)
    noise /= np.sqrt(np.mean(noise ** 2)) + 1e-12
    speed = box.speed(t)
    vmax = 2 * abs(box.u1 - box.u0) / box.duration_s
    env = speed / max(vmax, 1e-9) * min(1.0, vmax / box.speed_ref) ** 0.5
    return box.level * 0.35 * noise * env, 2 * box.position(t) - 1


def _gate(k0: int, k1: int, sr: int, t0: float, t1: float, duration_s: float) -> np.ndarray:
    """Gain of samples k0..k1-1: 1 inside [t0, t1), short fades at an inner cut."""
    t = np.arange(k0, k1) / sr
    g = ((t >= t0) & (t < t1)).astype(np.float64)
    if t1 < duration_s - 1e-9:
        g *= np.clip((t1 - t) / _FADE_S, 0, 1)
    if t0 > 0:
        g *= np.clip((t - t0) / _FADE_S, 0, 1)
    return g


def _scene_audio(rng, scene: Scene, plan: Plan, sr: int, n: int) -> tuple[int, np.ndarray, list[Event], list[float]]:
    """The scene's sound as (first sample k0, (2, m) buffer of samples k0..k0+m-1), events, peaks."""
    k0, k1 = max(0, math.floor(scene.start_s * sr)), min(n, math.ceil(scene.end_s * sr) + 1)
    buf = np.zeros((2, k1 - k0))
    events, peaks = [], []
    si = plan.scenes.index(scene)
    i0, i1 = int(round(scene.start_s * sr)) - k0, min(n, int(round(scene.end_s * sr))) - k0
    fc = scene.ambience_cutoff_hz  # ambience: quiet low-frequency bed, decorrelated left / right
    bed = _shaped_noise(rng, i1 - i0, sr, lambda f: 1.0 / np.sqrt(1 + (f / fc) ** 4), channels=2, f_max=6 * fc)
    buf[:, i0:i1] += bed / (np.sqrt(np.mean(bed ** 2, axis=1, keepdims=True)) + 1e-12) * scene.ambience_level
    for obj in scene.objects:
        if isinstance(obj, Ball):
            for tc, sp in zip(obj.contacts_s, obj.contact_speeds):
                mono = _impact(rng, obj, sp, sr)
                u, _ = obj.state(np.array([tc]), scene.background.floor_v)
                x = float(2 * u[0] - 1)
                gl, gr = pan_gains(x)
                _add(buf, int(round(tc * sr)) - k0, mono, float(gl), float(gr))
                events.append(Event("impact", tc, min(tc + len(mono) / sr, scene.end_s), x, 0.0, si))
                peaks.append(float(np.max(np.abs(mono))))
        elif isinstance(obj, Lamp):
            x = 2 * obj.u - 1
            gl, gr = pan_gains(x)
            for a, b in zip(obj.on_s, obj.off_s):
                mono = _tone(obj, a, b, sr)
                _add(buf, int(round(a * sr)) - k0, mono, float(gl), float(gr))
                events.append(Event("beep", a, b, x, 0.0, si))
                peaks.append(float(np.max(np.abs(mono))))
        else:
            mono, xs = _slide(rng, obj, scene.end_s, sr)
            if len(mono) == 0:
                continue
            gl, gr = pan_gains(xs)
            _add(buf, int(round(obj.start_s * sr)) - k0, mono, gl, gr)
            events.append(Event("slide", obj.start_s, min(obj.start_s + obj.duration_s, scene.end_s),
                                float(2 * obj.u0 - 1), 0.0, si))
            peaks.append(float(np.max(np.abs(mono))))
    buf *= _gate(k0, k1, sr, scene.start_s, scene.end_s, plan.duration_s)
    return k0, buf, events, peaks


def render_audio(plan: Plan, sample_rate_hz: int, rng: np.random.Generator) -> tuple[np.ndarray, tuple[Event, ...]]:
    """(2, n) float32 stereo in [-1, 1] (peak <= 0.95) and the events sorted by onset."""
    n = int(round(plan.duration_s * sample_rate_hz))
    mix = np.zeros((2, n))
    events, peaks = [], []
    for scene in plan.scenes:
        k0, buf, ev, pk = _scene_audio(rng, scene, plan, sample_rate_hz, n)
        mix[:, k0:k0 + buf.shape[1]] += buf
        events += ev
        peaks += pk
    scale = min(1.0, _PEAK / (np.max(np.abs(mix)) + 1e-12))
    mix *= scale
    out = [Event(e.kind, e.onset_s, e.end_s, e.x, p * scale, e.scene_index) for e, p in zip(events, peaks)]
    out.sort(key=lambda e: (e.onset_s, e.kind))
    return mix.astype(np.float32), tuple(out)

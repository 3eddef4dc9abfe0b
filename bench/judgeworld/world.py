"""Random toy-world clips and their exact physics. Pure: everything follows from the seed.

Space is measured in frame heights (the frame is `aspect` wide and 1 tall, y grows downward);
time in seconds. A ball's height `h` is that of its lowest point above the floor.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

FPS_CHOICES = [Fraction(24000, 1001), Fraction(24), Fraction(25), Fraction(30000, 1001),
               Fraction(30), Fraction(50), Fraction(60000, 1001), Fraction(60)]
HEIGHTS_PX = [160, 240, 360, 480, 720, 1080]
ASPECTS = [16 / 9, 16 / 9, 4 / 3, 4 / 3, 1.0, 3 / 2, 2.35, 9 / 16]
MIN_SEP_S = 0.06      # onsets of different objects are kept this far apart, so each is resolvable
MIN_FLIGHT_S = 0.12   # a ball whose next hop would be shorter than this comes to rest
END_GUARD_S = 0.03    # no onset this close to the end of its scene
Color = tuple[int, int, int]


@dataclass
class Arc:
    """One piece of a ball's path: a parabola (g > 0) or a rest (all velocities 0)."""
    t0_s: float
    t1_s: float
    x0: float
    h0: float
    vx: float
    vh: float
    g: float


@dataclass
class Ball:
    radius: float
    color: Color
    arcs: list[Arc]
    contacts: list[tuple[float, float, float]]   # (t_s, x, impact speed in heights/s)
    decay_s: float                                # knock length (amplitude at -43 dB)
    cutoff_hz: float                              # knock colour (one-pole low-pass)
    kind: str = "impact"

    def position(self, t_s: float) -> tuple[float, float]:
        """(x, h) at time t_s; before the first arc / after the last, the end points."""
        arc = self.arcs[0] if t_s < self.arcs[0].t0_s else next(
            (a for a in self.arcs if t_s < a.t1_s), self.arcs[-1])
        tau = min(max(t_s - arc.t0_s, 0.0), arc.t1_s - arc.t0_s)
        return arc.x0 + arc.vx * tau, max(arc.h0 + arc.vh * tau - 0.5 * arc.g * tau * tau, 0.0)


@dataclass
class Lamp:
    x: float
    y: float
    size: float
    on_color: Color
    off_color: Color
    on_frames: list[tuple[int, int]]   # lit for frames on <= i < off
    f0_hz: float
    harmonics: list[float]             # amplitude of harmonic 1, 2, ...
    level: float
    kind: str = "beep"


@dataclass
class Box:
    width: float
    height: float
    color: Color
    x_rest: float                                   # centre before the first move
    moves: list[tuple[float, float, float, float]]  # (t0_s, duration_s, x_from, x_to)
    band_hz: float
    level: float
    kind: str = "slide"

    def state(self, t_s: float) -> tuple[float, float]:
        """(centre x, speed in heights/s); each move is a raised-cosine from rest to rest."""
        x = self.x_rest
        for t0, dur, xa, xb in self.moves:
            if t_s < t0:
                break
            u = min((t_s - t0) / dur, 1.0)
            x = xa + (xb - xa) * (1 - math.cos(math.pi * u)) / 2
            if u < 1.0:
                return x, abs(xb - xa) * math.pi / (2 * dur) * math.sin(math.pi * u)
        return x, 0.0


@dataclass
class Background:
    style: str            # flat | gradient | noise
    colors: list[Color]
    ground: Color
    floor_line: Color
    texture_seed: int


@dataclass
class Scene:
    scene_id: int
    t0_s: float
    t1_s: float
    floor_y: float        # from the top, in heights
    background: Background
    objects: list[Ball | Lamp | Box]
    ambience_level: float
    ambience_cutoff_hz: float


@dataclass
class Clip:
    seed: int
    fps: Fraction
    num_frames: int
    width_px: int
    height_px: int
    crf: int
    scenes: list[Scene]
    caption: str | None
    events: list[dict] = field(default_factory=list)

    @property
    def duration_s(self) -> float:
        return float(self.num_frames / self.fps)

    @property
    def aspect(self) -> float:
        return self.width_px / self.height_px

    def scene_at(self, t_s: float) -> Scene:
        return next((s for s in self.scenes if t_s < s.t1_s), self.scenes[-1])


def _color(rng: np.random.Generator, avoid: list[Color], min_dist: float = 110.0) -> Color:
    for _ in range(200):
        c = rng.integers(0, 256, 3)
        if all(np.linalg.norm(c - np.array(a)) >= min_dist for a in avoid):
            break
    return tuple(int(v) for v in c)


def _clashes(times: list[float], taken: list[float]) -> bool:
    return any(abs(t - u) < MIN_SEP_S for t in times for u in taken)


def _ball(rng: np.random.Generator, sc: Scene, aspect: float, g: float, taken: list[float],
          avoid: list[Color]) -> Ball:
    """A ball thrown or dropped, bouncing to rest, kicked up again after a pause, ... until the scene ends."""
    r = rng.uniform(0.025, 0.1)
    e = rng.uniform(0.45, 0.85)
    h_top = sc.floor_y - 2 * r - 0.02                       # highest start that stays on screen
    x, t = rng.uniform(r, aspect - r), sc.t0_s
    arcs: list[Arc] = []
    contacts: list[tuple[float, float, float]] = []
    in_air = rng.random() < 0.6
    while t < sc.t1_s:
        for _ in range(10):                                 # draw a launch whose contacts are free
            if in_air:
                h, vh, t_go = rng.uniform(0.2, 1.0) * h_top, rng.uniform(-0.5, 0.8), t
            else:
                h, t_go = 0.0, t + rng.uniform(0.3, 3.0)
                vh = rng.uniform(0.35, 0.95) * math.sqrt(2 * g * h_top)
            tau = (vh + math.sqrt(vh * vh + 2 * g * h)) / g
            pieces, hits, v, tc = [(t_go, tau, h, vh)], [t_go + tau], g * tau - vh, t_go + tau
            speeds = [v]
            while 2 * e * v / g >= MIN_FLIGHT_S:
                v *= e
                pieces.append((tc, 2 * v / g, 0.0, v))
                tc += 2 * v / g
                hits.append(tc)
                speeds.append(v)
            if not _clashes([c for c in hits if c < sc.t1_s], taken):
                break
        else:
            break
        span = tc - t_go
        x_end = float(np.clip(x + rng.uniform(-0.8, 0.8) * span, r, aspect - r))
        vx = (x_end - x) / span
        if t_go > t:
            arcs.append(Arc(t, t_go, x, 0.0, 0.0, 0.0, 0.0))
        for t0, dur, h0, vh0 in pieces:
            arcs.append(Arc(t0, t0 + dur, x + vx * (t0 - t_go), h0, vx, vh0, g))
        contacts += [(c, x + vx * (c - t_go), s) for c, s in zip(hits, speeds)]
        taken += [c for c in hits if c < sc.t1_s]
        x, t, in_air = x_end, tc, False
    arcs.append(Arc(t, math.inf, x, 0.0, 0.0, 0.0, 0.0))
    return Ball(r, _color(rng, avoid), arcs, contacts, rng.uniform(0.04, 0.2),
                float(np.exp(rng.uniform(np.log(1500), np.log(16000)))))


def _lamp(rng: np.random.Generator, sc: Scene, aspect: float, fps: Fraction, taken: list[float],
          avoid: list[Color]) -> Lamp:
    """A lamp that blinks (0.1-1.5 s on) until the scene ends; it switches on and off on frame times."""
    size = rng.uniform(0.05, 0.2)
    on = _color(rng, avoid)
    off = tuple(int(c * rng.uniform(0.1, 0.4)) for c in on)
    frames: list[tuple[int, int]] = []
    t = sc.t0_s + rng.uniform(0.1, 1.5)
    while True:
        k = math.ceil(t * fps)
        if float(k / fps) >= sc.t1_s - END_GUARD_S:
            break
        if _clashes([float(k / fps)], taken):
            t = float(k / fps) + rng.uniform(0.02, 0.3)
            continue
        k_off = max(k + 1, round((k / fps + Fraction(rng.uniform(0.1, 1.5))) * fps))
        frames.append((k, k_off))
        taken.append(float(k / fps))
        t = float(k_off / fps) + rng.uniform(0.25, 3.0)
    n_h = int(rng.integers(1, 5))
    return Lamp(rng.uniform(size / 2, aspect - size / 2), rng.uniform(size / 2 + 0.02, sc.floor_y - size / 2),
                size, on, off, frames, float(np.exp(rng.uniform(np.log(300), np.log(1500)))),
                [1.0] + [float(rng.uniform(0.1, 0.6) / k) for k in range(1, n_h)], rng.uniform(0.15, 0.35))


def _box(rng: np.random.Generator, sc: Scene, aspect: float, taken: list[float], avoid: list[Color]) -> Box:
    """A wide box on the floor that slides from rest to rest, pauses, slides again."""
    w = rng.uniform(0.12, min(0.45, 0.8 * aspect))
    x = x0 = rng.uniform(w / 2, aspect - w / 2)
    moves = []
    t = sc.t0_s + rng.uniform(0.2, 2.0)
    while t < sc.t1_s - END_GUARD_S:
        if _clashes([t], taken):
            t += rng.uniform(0.02, 0.3)
            continue
        to = rng.uniform(w / 2, aspect - w / 2)
        moves.append((t, rng.uniform(0.4, 2.5), x, to))
        taken.append(t)
        x = to
        t += moves[-1][1] + rng.uniform(0.4, 3.0)
    return Box(w, w * rng.uniform(0.2, 0.55), _color(rng, avoid), x0, moves,
               float(np.exp(rng.uniform(np.log(300), np.log(3000)))), rng.uniform(0.02, 0.06))


def _scene(rng: np.random.Generator, scene_id: int, t0_s: float, t1_s: float, clip: Clip,
           taken: list[float]) -> Scene:
    """Background, floor, gravity and 1-4 objects; `taken` holds the onsets already placed."""
    bg_colors = [_color(rng, []) for _ in range(2)]
    ground = _color(rng, [], 0)
    bg = Background(str(rng.choice(["flat", "gradient", "noise"])), bg_colors, ground,
                    _color(rng, [ground], 80), int(rng.integers(2**31)))
    sc = Scene(scene_id, t0_s, t1_s, rng.uniform(0.6, 0.92), bg, [],
               float(rng.uniform(0.002, 0.01)), float(rng.uniform(80, 300)))
    avoid = bg_colors + [ground, bg.floor_line]
    g = rng.uniform(1.5, 6.0)
    for kind in rng.choice(["impact", "beep", "slide"], size=int(rng.integers(1, 5)), p=[0.45, 0.35, 0.2]):
        if kind == "impact":
            obj = _ball(rng, sc, clip.aspect, g, taken, avoid)
        elif kind == "beep":
            obj = _lamp(rng, sc, clip.aspect, clip.fps, taken, avoid)
        else:
            obj = _box(rng, sc, clip.aspect, taken, avoid)
        sc.objects.append(obj)
    return sc


def _events(clip: Clip) -> list[dict]:
    """Ground-truth events sorted by onset: kind, onset_s, x in [-1, 1], scene, object, and per kind
    speed (impact), frame/off_s (beep) or duration_s (slide)."""
    def xn(x: float) -> float:
        return round(2 * x / clip.aspect - 1, 4)
    out = []
    for sc in clip.scenes:
        for i, o in enumerate(sc.objects):
            if o.kind == "impact":
                ev = [(t, x, {"speed": round(v, 4)}) for t, x, v in o.contacts]
            elif o.kind == "beep":
                ev = [(float(k / clip.fps), o.x, {"frame": k, "off_s": float(k2 / clip.fps)}) for k, k2 in o.on_frames]
            else:
                ev = [(t0, xa, {"duration_s": d}) for t0, d, xa, _ in o.moves]
            out += [dict(kind=o.kind, onset_s=t, x=xn(x), scene=sc.scene_id, object=i, **extra)
                    for t, x, extra in ev if sc.t0_s <= t < sc.t1_s - END_GUARD_S]
    return sorted(out, key=lambda e: e["onset_s"])


def _caption(clip: Clip, rng: np.random.Generator) -> str | None:
    if rng.random() < 0.3:
        return None
    words = {"impact": ("a ball bouncing", "balls bouncing"), "beep": ("a lamp blinking", "lamps blinking"),
             "slide": ("a box sliding", "boxes sliding")}
    numbers = {2: "two", 3: "three", 4: "four"}
    parts = []
    for sc in clip.scenes:
        kinds = [o.kind for o in sc.objects]
        parts.append(", ".join(words[k][0] if kinds.count(k) == 1 else f"{numbers[kinds.count(k)]} {words[k][1]}"
                               for k in dict.fromkeys(kinds)))
    return "; then ".join(parts)


def random_clip(seed: int, min_s: float = 2.0, max_s: float = 30.0, height_px: int | None = None,
                fps: Fraction | None = None, cut_prob: float = 0.35) -> Clip:
    """A random clip: size, frame rate, length (log-uniform in [min_s, max_s]), scenes and events."""
    rng = np.random.default_rng(seed)
    fps = fps or FPS_CHOICES[int(rng.integers(len(FPS_CHOICES)))]
    height_px = height_px or int(rng.choice(HEIGHTS_PX))
    width_px = min(max(2, 2 * round(height_px * float(rng.choice(ASPECTS)) / 2)), 1920)
    duration_s = float(np.exp(rng.uniform(np.log(min_s), np.log(max_s))))
    clip = Clip(seed, fps, max(2, round(duration_s * fps)), width_px, height_px, int(rng.integers(18, 33)), [], None)
    cut_frames = [0, clip.num_frames]
    if rng.random() < cut_prob and clip.duration_s > 3.0:
        n_cuts = 1 + int(rng.poisson(clip.duration_s / 20))
        cand = np.sort(rng.choice(np.arange(1, clip.num_frames), size=n_cuts, replace=False))
        for k in cand:                                       # scenes last at least 1 s
            if (k - cut_frames[-2]) / fps >= 1 and (clip.num_frames - k) / fps >= 1:
                cut_frames.insert(-1, int(k))
    taken: list[float] = []
    for i, (a, b) in enumerate(zip(cut_frames[:-1], cut_frames[1:])):
        clip.scenes.append(_scene(rng, i, float(a / fps), float(b / fps), clip, taken))
    clip.caption = _caption(clip, rng)
    clip.events = _events(clip)
    return clip


def truth(clip: Clip) -> dict:
    """The JSON ground truth of a clip."""
    return {"seed": clip.seed, "fps": [clip.fps.numerator, clip.fps.denominator], "fps_float": float(clip.fps),
            "width_px": clip.width_px, "height_px": clip.height_px, "num_frames": clip.num_frames,
            "duration_s": clip.duration_s, "crf": clip.crf, "caption": clip.caption,
            "cuts_s": [s.t0_s for s in clip.scenes[1:]], "events": clip.events}

"""Scene sampling for the toy foley world (TOYWORLD.md). Pure: an rng and a style in, a plan out.

Coordinates: ``u`` is horizontal in [0, 1] of the frame width (left to right), ``v`` is vertical
in [0, 1] of the frame height (top to bottom). Lengths of objects are in frame *heights* so that
circles stay circles at any aspect ratio. Stereo position is ``x = 2u - 1`` in [-1, 1].

Every time at which something starts or changes (release, floor contact, lamp on/off, slide start,
scene cut) lies on the *source* frame grid ``j / source_fps``: the ground-truth onset is "the frame
of floor contact / the frame it lights up / the frame it starts moving" exactly, and a video
decoded at any other rate shows it at the first output frame whose time reaches it. The exception
is a ball whose contacts `GenStyle.p_contacts_on_frames` puts between frames, as exact physics would.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

KINDS = ("impact", "beep", "slide")
JUDGED_KINDS = ("impact", "beep")


@dataclass(frozen=True)
class Event:
    """One ground-truth sound event. ``x`` is the horizontal position at onset (left negative)."""

    kind: str  # 'impact' | 'beep' | 'slide'
    onset_s: float
    end_s: float
    x: float
    strength: float  # peak linear amplitude of the event's own (mono, pre-pan) sound in the mix
    scene_index: int


@dataclass(frozen=True)
class GenStyle:
    """Ranges the generator samples from. Lengths in frame heights, speeds in heights per second."""

    source_fps_range: tuple[float, float] = (23.976, 60.0)
    source_fps_choices: tuple[float, ...] = ()  # non-empty: pick one of these instead of the range
    # with choices: the share of clips whose rate is one of them (the rest draw from the range; 1: all, and
    # no extra draw, so existing streams are unchanged). The standard rates' picking to 24 fps repeats a fixed
    # judder (30 -> 24: a double step every 4th frame) at which the shipped model knocks while a box moves;
    # session 19 fine-tuned the cue stage and the judge on half standard rates, to no effect; session 20
    # extended the DiT stage (frame encoder included) on them: the knocks stayed, independent precision
    # fell (bench/RESULTS.md)
    p_fps_choice: float = 1.0
    source_height_range: tuple[int, int] = (160, 1080)  # nominal source video height (resolution class)
    aspects: tuple[float, ...] = (16 / 9, 4 / 3, 1.0, 1.85, 2.39)  # width / height
    # render size / output size per axis for small outputs (analytic anti-aliasing already area-averages)
    render_oversample_range: tuple[float, float] = (1.0, 1.0)
    max_objects: int = 4
    kind_weights: tuple[float, float, float] = (0.45, 0.30, 0.25)  # impact, beep, slide
    backgrounds: tuple[str, ...] = ("flat", "gradient", "noise")
    p_close_colour: float = 0.3  # object colour drawn close to the background (but still visible)
    close_contrast_range: tuple[float, float] = (0.12, 0.25)  # RGB distance in [0, 1] units
    floor_v_range: tuple[float, float] = (0.62, 0.9)
    floor_thickness_range: tuple[float, float] = (0.006, 0.02)
    p_ground_fill: float = 0.5
    ball_radius_range: tuple[float, float] = (0.035, 0.09)
    gravity_range: tuple[float, float] = (3.0, 9.0)
    restitution_range: tuple[float, float] = (0.45, 0.8)
    throw_speed_range: tuple[float, float] = (0.0, 0.45)  # horizontal, heights / s
    p_thrown_up: float = 0.3
    p_enter_from_top: float = 0.25
    # a ball's contacts fall exactly on source frames (else wherever the physics puts them, between
    # frames: an outside generator's balls need not touch the floor in any frame)
    p_contacts_on_frames: float = 1.0
    # a ball that rests on the floor and is then kicked up (silent: only its landings sound)
    p_kicked_from_floor: float = 0.0
    lamp_size_range: tuple[float, float] = (0.05, 0.13)
    beep_on_range_s: tuple[float, float] = (0.1, 1.5)
    beep_off_range_s: tuple[float, float] = (0.2, 1.0)
    beep_freq_range_hz: tuple[float, float] = (300.0, 1500.0)
    max_blinks: int = 4
    box_width_range: tuple[float, float] = (0.18, 0.45)
    box_height_range: tuple[float, float] = (0.04, 0.10)
    slide_duration_range_s: tuple[float, float] = (0.5, 2.5)
    slide_band_hz: tuple[float, float] = (400.0, 3000.0)
    p_cut: float = 0.3
    cut_rate_per_s: float = 0.15  # extra cuts in a clip that has cuts
    min_scene_s: float = 1.0
    max_scene_s: float = 10.0  # clips longer than this are cut into scenes of (min_scene_s + 2 .. this)
    p_caption: float = 0.7
    min_onset_gap_s: float = 0.1  # between judged onsets (impacts, beeps) so the benchmark is well posed
    impact_level_range: tuple[float, float] = (0.3, 0.7)
    impact_decay_range_s: tuple[float, float] = (0.04, 0.2)
    beep_level_range: tuple[float, float] = (0.08, 0.25)
    slide_level_range: tuple[float, float] = (0.05, 0.18)
    ambience_level_range: tuple[float, float] = (0.002, 0.01)
    # augmentation (augment.py)
    p_artefacts: float = 0.8
    artefact_strength_range: tuple[float, float] = (0.0, 1.0)
    noise_std_range: tuple[float, float] = (0.0, 0.02)
    p_blur: float = 0.3
    colour_jitter: float = 0.08

    @staticmethod
    def train() -> GenStyle:
        """Wide enough for an outside judge (bench/judgeworld measured the gap): tall frames, slow
        gravity, big lamps, denser onsets, contacts between frames; it also covers `heldout()`'s ranges,
        so the held-out stream is no longer out of distribution."""
        return GenStyle(
            aspects=(16 / 9, 4 / 3, 1.0, 1.85, 2.39, 2.0, 3 / 2, 9 / 16, 3 / 4),
            backgrounds=("flat", "gradient", "noise", "stripes", "checker", "radial"),
            p_close_colour=0.35,
            close_contrast_range=(0.1, 0.25),
            floor_v_range=(0.55, 0.93),
            ball_radius_range=(0.025, 0.11),
            gravity_range=(1.5, 11.0),
            restitution_range=(0.4, 0.85),
            throw_speed_range=(0.0, 0.6),
            p_contacts_on_frames=0.5,
            p_kicked_from_floor=0.25,
            lamp_size_range=(0.04, 0.2),
            beep_off_range_s=(0.2, 1.5),
            max_blinks=6,
            box_width_range=(0.12, 0.55),
            box_height_range=(0.03, 0.15),
            slide_duration_range_s=(0.4, 3.0),
            min_onset_gap_s=0.06,
            artefact_strength_range=(0.0, 1.0),
        )

    @staticmethod
    def heldout() -> GenStyle:
        """The held-out streams' style. Until toyworld-2 its ranges lay outside `train()`'s; now `train()` covers them."""
        return GenStyle(
            source_fps_range=(23.976, 60.0),
            source_fps_choices=(24000 / 1001, 25.0, 30000 / 1001, 30.0, 50.0, 60000 / 1001, 60.0),
            aspects=(16 / 9, 4 / 3, 9 / 16, 2.0),
            backgrounds=("flat", "gradient", "noise", "stripes", "checker", "radial"),
            p_close_colour=0.4,
            close_contrast_range=(0.1, 0.2),
            floor_v_range=(0.55, 0.93),
            ball_radius_range=(0.025, 0.11),
            gravity_range=(2.5, 11.0),
            restitution_range=(0.4, 0.85),
            throw_speed_range=(0.0, 0.6),
            lamp_size_range=(0.04, 0.16),
            box_width_range=(0.15, 0.55),
            box_height_range=(0.035, 0.13),
            slide_duration_range_s=(0.4, 3.0),
            p_cut=0.4,
            p_caption=0.5,
            artefact_strength_range=(0.2, 1.0),
        )

    @staticmethod
    def clean() -> GenStyle:
        """No picture augmentation and no cuts: for tests that read pixels."""
        return GenStyle(p_artefacts=0.0, noise_std_range=(0.0, 0.0), p_blur=0.0, colour_jitter=0.0, p_cut=0.0)


@dataclass(frozen=True)
class Background:
    kind: str
    colours: tuple[tuple[float, float, float], ...]  # RGB in [0, 1]; 2 for gradient/stripes/...
    param: float  # direction (gradient) / frequency (stripes, checker) / texture seed
    floor_v: float
    floor_thickness: float
    floor_colour: tuple[float, float, float]
    ground_colour: tuple[float, float, float] | None  # fill below the floor line, or None


@dataclass(frozen=True)
class Ball:
    """A ball: static before release, then ballistic flights between floor contacts, then at rest."""

    radius: float  # heights
    colour: tuple[float, float, float]
    u0: float
    vx: tuple[float, ...]  # horizontal speed (widths / s) per flight segment
    seg_t: tuple[float, ...]  # start time of each flight segment (release, then each contact)
    seg_h: tuple[float, ...]  # centre height above rest at segment start (heights)
    seg_vy: tuple[float, ...]  # upward speed at segment start (heights / s)
    gravity: float
    contacts_s: tuple[float, ...]  # floor contacts inside the scene (judged onsets)
    rest_s: float  # time the ball comes to rest on the floor (inf: still bouncing at the scene's end)
    contact_speeds: tuple[float, ...]  # downward speed at each contact (heights / s)
    level: float
    decay_s: float
    tilt: float  # spectral tilt of the knock
    bright_hz: float  # low-pass corner of the knock

    def state(self, t: np.ndarray, floor_v: float) -> tuple[np.ndarray, np.ndarray]:
        """Centre (u, v) at times ``t`` (vectorised): static before release, flights, then at rest."""
        t = np.asarray(t, dtype=np.float64)
        seg_t = np.asarray(self.seg_t)
        i = np.searchsorted(seg_t, t, side="right") - 1  # -1: before release
        ic = np.clip(i, 0, len(seg_t) - 1)
        te = np.minimum(t, self.rest_s)  # motion freezes at rest
        dt = np.where(i >= 0, te - seg_t[ic], 0.0)
        h = np.asarray(self.seg_h)[ic] + np.asarray(self.seg_vy)[ic] * dt - 0.5 * self.gravity * dt * dt
        h = np.where(i >= 0, h, self.seg_h[0])
        h = np.where(t >= self.rest_s, 0.0, np.maximum(h, 0.0))
        u_start = np.concatenate([[self.u0], self.u0 + np.cumsum(np.asarray(self.vx[:-1]) * np.diff(seg_t))])
        u = np.where(i >= 0, u_start[ic] + np.asarray(self.vx)[ic] * dt, self.u0)
        return u, floor_v - self.radius - h


@dataclass(frozen=True)
class Lamp:
    size: float  # side, heights
    colour: tuple[float, float, float]  # lit colour
    off_colour: tuple[float, float, float]
    u: float
    v: float  # top edge
    on_s: tuple[float, ...]
    off_s: tuple[float, ...]
    freq_hz: float
    harmonics: tuple[float, ...]  # amplitude of harmonic 1, 2, ...
    level: float

    def lit(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        out = np.zeros(t.shape, dtype=bool)
        for a, b in zip(self.on_s, self.off_s):
            out |= (t >= a - 1e-9) & (t < b - 1e-9)
        return out


@dataclass(frozen=True)
class Box:
    width: float  # heights
    height: float  # heights
    colour: tuple[float, float, float]
    u0: float
    u1: float
    start_s: float
    duration_s: float
    band_hz: tuple[float, float]
    level: float
    speed_ref: float  # widths / s giving full level

    def position(self, t: np.ndarray) -> np.ndarray:
        """Centre u at times t: sin^2 speed profile, so speed rises slowly from zero."""
        t = np.asarray(t, dtype=np.float64)
        p = np.clip((t - self.start_s) / self.duration_s, 0.0, 1.0)
        frac = p - np.sin(2 * np.pi * p) / (2 * np.pi)  # integral of 2 sin^2(pi p)
        return self.u0 + (self.u1 - self.u0) * frac

    def speed(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        p = (t - self.start_s) / self.duration_s
        inside = (p >= 0) & (p <= 1)
        return np.where(inside, 2 * abs(self.u1 - self.u0) / self.duration_s * np.sin(np.pi * p) ** 2, 0.0)


@dataclass(frozen=True)
class Scene:
    start_s: float
    end_s: float
    background: Background
    objects: tuple[Ball | Lamp | Box, ...]
    ambience_level: float
    ambience_cutoff_hz: float


@dataclass(frozen=True)
class Plan:
    duration_s: float
    source_fps: float
    aspect: float  # width / height of the source picture
    source_height: int
    scenes: tuple[Scene, ...]
    caption: str


# ----------------------------------------------------------------------------------------- colours


def _rand_colour(rng: np.random.Generator) -> np.ndarray:
    h, s, v = rng.random(), rng.uniform(0.0, 1.0), rng.uniform(0.05, 1.0)
    i = int(h * 6) % 6
    f = h * 6 - int(h * 6)
    p, q, w = v * (1 - s), v * (1 - s * f), v * (1 - s * (1 - f))
    return np.array([(v, w, p), (q, v, p), (p, v, w), (p, q, v), (w, p, v), (v, p, q)][i])


def _contrasting(rng: np.random.Generator, refs: list[np.ndarray], style: GenStyle) -> tuple[float, float, float]:
    """A colour visibly different from every reference colour; sometimes deliberately close."""
    if rng.random() < style.p_close_colour:
        base = refs[int(rng.integers(len(refs)))]
        for _ in range(20):
            d = rng.normal(size=3)
            d /= np.linalg.norm(d) + 1e-9
            c = np.clip(base + d * rng.uniform(*style.close_contrast_range), 0, 1)
            if min(np.linalg.norm(c - r) for r in refs) >= style.close_contrast_range[0] * 0.9:
                return tuple(float(a) for a in c)
    best, best_d = None, -1.0
    for _ in range(30):
        c = _rand_colour(rng)
        d = min(np.linalg.norm(c - r) for r in refs)
        if d >= 0.35:
            return tuple(float(a) for a in c)
        if d > best_d:
            best, best_d = c, d
    return tuple(float(a) for a in best)


# --------------------------------------------------------------------------------------- sampling


def _grid(t: float, fps: float, mode: str = "round") -> float:
    """Snap a time to the source frame grid."""
    x = t * fps
    j = round(x) if mode == "round" else math.ceil(x - 1e-6)
    return j / fps


def _background(rng: np.random.Generator, style: GenStyle) -> Background:
    kind = style.backgrounds[int(rng.integers(len(style.backgrounds)))]
    c1 = _rand_colour(rng)
    if kind == "flat":
        cols = (c1,)
    else:
        c2 = np.clip(c1 + rng.normal(scale=0.25, size=3), 0, 1)
        cols = (c1, c2)
    param = float(rng.uniform(0, 2 * np.pi)) if kind in ("gradient", "noise") else float(rng.uniform(3, 12))
    floor_v = float(rng.uniform(*style.floor_v_range))
    refs = [np.asarray(c) for c in cols]
    floor_colour = _contrasting(rng, refs, dataclasses.replace(style, p_close_colour=0.0))
    ground = None
    if rng.random() < style.p_ground_fill:
        mixed = 0.5 * np.asarray(floor_colour) + 0.5 * refs[0] * rng.uniform(0.5, 1.0)
        ground = tuple(float(a) for a in np.clip(mixed, 0, 1))
    return Background(kind, tuple(tuple(float(a) for a in c) for c in cols), param, floor_v,
                      float(rng.uniform(*style.floor_thickness_range)), floor_colour, ground)


def _bg_refs(bg: Background) -> list[np.ndarray]:
    refs = [np.asarray(c) for c in bg.colours]
    if bg.ground_colour is not None:
        refs.append(np.asarray(bg.ground_colour))
    return refs


def _ok_gap(onsets: list[float], new: list[float], gap: float) -> bool:
    return all(abs(a - b) >= gap for a in new for b in onsets) and all(
        abs(a - b) >= gap for i, a in enumerate(new) for b in new[i + 1:])


def _sample_ball(rng, style, scene_t0, scene_t1, fps, bg, aspect) -> Ball:
    r = float(rng.uniform(*style.ball_radius_range))
    g = float(rng.uniform(*style.gravity_range))
    e = float(rng.uniform(*style.restitution_range))
    dt = 1.0 / fps
    t_rel = _grid(rng.uniform(scene_t0, max(scene_t0, scene_t1 - 0.4)), fps, "ceil")
    t_rel = max(t_rel, _grid(scene_t0, fps, "ceil"))
    top_h = bg.floor_v - 2 * r  # centre height above rest when the ball's top touches the frame's top
    # no draw at p = 0: the held-out streams' clips stay what they were
    if style.p_kicked_from_floor > 0 and rng.random() < style.p_kicked_from_floor:
        h0 = 0.0  # rests on the floor until release, then leaves it upwards without a sound
        vy0 = rng.uniform(0.3, 0.95) * math.sqrt(2 * g * max(top_h, 0.05))
    elif rng.random() < style.p_enter_from_top:
        h0 = bg.floor_v + rng.uniform(0.05, 0.3)  # starts (hidden) above the frame
        vy0 = -rng.uniform(0.0, 1.0)
    else:
        h0 = rng.uniform(0.1, max(0.12, top_h - 0.02))
        vy0 = rng.uniform(0.3, 1.5) if rng.random() < style.p_thrown_up else 0.0
    tau = (vy0 + math.sqrt(vy0 * vy0 + 2 * g * h0)) / g
    # no draw at p = 1: the held-out streams' clips stay what they were
    on_frames = style.p_contacts_on_frames >= 1.0 or rng.random() < style.p_contacts_on_frames
    if on_frames:
        tau = max(1, round(tau / dt)) * dt
        vy0 = (0.5 * g * tau * tau - h0) / tau  # adjust so the first contact falls exactly on a frame
    seg_t, seg_h, seg_vy = [t_rel], [h0], [vy0]
    contacts, speeds = [t_rel + tau], [g * tau - vy0]
    rest_s = math.inf
    while contacts[-1] < scene_t1:
        up = e * speeds[-1]
        flight = round(2 * up / g / dt) * dt if on_frames else 2 * up / g
        if flight < 0.13:  # bounces would merge: the ball settles here
            rest_s = contacts[-1]
            break
        up = 0.5 * g * flight  # on frames: flight time exactly n frames, the next contact is on a frame too
        seg_t.append(contacts[-1]); seg_h.append(0.0); seg_vy.append(up)
        contacts.append(contacts[-1] + flight); speeds.append(up)
    n_in = sum(1 for c in contacts if c < scene_t1 - 1e-9)
    seg_end = seg_t[1:] + [rest_s if rest_s < math.inf else scene_t1]
    # horizontal motion: a throw speed that decays at each bounce, kept inside the frame
    r_u = r / aspect
    u0 = float(rng.uniform(r_u + 0.02, 1 - r_u - 0.02))
    vx0 = float(rng.uniform(*style.throw_speed_range)) / aspect * (1 if rng.random() < 0.5 else -1)
    vx = [vx0 * 0.85 ** k for k in range(len(seg_t))]
    u_end = u0 + sum(v * (b - a) for v, a, b in zip(vx, seg_t, seg_end))
    lo, hi = r_u + 0.01, 1 - r_u - 0.01
    if not lo <= u_end <= hi:
        travel = u_end - u0
        room = (hi - u0) if travel > 0 else (u0 - lo)
        vx = [v * max(0.0, room) / abs(travel) for v in vx]
    return Ball(r, (0, 0, 0), u0, tuple(vx), tuple(seg_t), tuple(seg_h), tuple(seg_vy), g, tuple(contacts[:n_in]),
                rest_s, tuple(speeds[:n_in]), float(rng.uniform(*style.impact_level_range)),
                float(rng.uniform(*style.impact_decay_range_s)),
                float(rng.uniform(0.0, 1.2)), float(rng.uniform(2000, 7500)))


def _sample_lamp(rng, style, t0, t1, fps, bg, aspect) -> Lamp:
    s = float(rng.uniform(*style.lamp_size_range))
    u = float(rng.uniform(s / aspect / 2 + 0.02, 1 - s / aspect / 2 - 0.02))
    v = float(rng.uniform(0.04, max(0.05, bg.floor_v - s - 0.08)))
    on, off = [], []
    t = _grid(rng.uniform(t0, max(t0, t1 - 0.3)), fps, "ceil")
    t = max(t, _grid(t0, fps, "ceil"))
    for _ in range(int(rng.integers(1, style.max_blinks + 1))):
        if t >= t1 - 0.1:
            break
        d = max(1, round(rng.uniform(*style.beep_on_range_s) * fps)) / fps
        on.append(t)
        off.append(min(t + d, t1))
        t = t + d + max(1, round(rng.uniform(*style.beep_off_range_s) * fps)) / fps
    f0 = float(np.exp(rng.uniform(np.log(style.beep_freq_range_hz[0]), np.log(style.beep_freq_range_hz[1]))))
    n_h = int(rng.integers(1, 5))
    harm = tuple(float(rng.uniform(0.2, 0.7) ** k) for k in range(n_h))
    level = float(rng.uniform(*style.beep_level_range))
    return Lamp(s, (0, 0, 0), (0, 0, 0), u, v, tuple(on), tuple(off), f0, harm, level)


def _sample_box(rng, style, t0, t1, fps, bg, aspect) -> Box:
    h = float(rng.uniform(*style.box_height_range))
    w = float(max(rng.uniform(*style.box_width_range), 1.8 * h))
    w = min(w, 0.6 * aspect)
    w_u = w / aspect
    start = max(_grid(rng.uniform(t0, max(t0, t1 - 0.5)), fps, "ceil"), _grid(t0, fps, "ceil"))
    dur = max(2, round(rng.uniform(*style.slide_duration_range_s) * fps)) / fps
    lo, hi = w_u / 2 + 0.01, 1 - w_u / 2 - 0.01
    u0 = float(rng.uniform(lo, hi))
    for _ in range(10):
        u1 = float(rng.uniform(lo, hi))
        if abs(u1 - u0) > 0.15:
            break
    lo_hz = float(np.exp(rng.uniform(np.log(style.slide_band_hz[0]), np.log(style.slide_band_hz[1]))))
    band = (lo_hz, lo_hz * float(rng.uniform(1.5, 3.0)))
    return Box(w, h, (0, 0, 0), u0, u1, start, dur, band, float(rng.uniform(*style.slide_level_range)), 0.5)


def _judged_onsets(obj) -> list[float]:
    if isinstance(obj, Ball):
        return list(obj.contacts_s)
    if isinstance(obj, Lamp):
        return list(obj.on_s)
    return []


def _colourise(rng, obj, bg: Background, style: GenStyle):
    refs = _bg_refs(bg)
    if isinstance(obj, Lamp):
        lit = np.asarray(_contrasting(rng, refs, style))
        factors = [float(rng.uniform(0.2, 0.45)), 0.6, 0.1, 0.75]
        offs = [np.clip(lit * f, 0, 1) for f in factors]
        gaps = [min(np.linalg.norm(o - r) for r in refs) for o in offs]
        ok = [o for o, gp in zip(offs, gaps) if gp >= 0.08]  # keep the switched-off lamp visible
        off = ok[0] if ok else offs[int(np.argmax(gaps))]
        return dataclasses.replace(obj, colour=tuple(float(a) for a in lit), off_colour=tuple(float(a) for a in off))
    return dataclasses.replace(obj, colour=_contrasting(rng, refs, style))


_NUMBER = {1: "a", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
_PHRASE = {"impact": ("ball", "balls", "bouncing"), "beep": ("lamp", "lamps", "blinking"),
           "slide": ("box", "boxes", "sliding")}


def caption_for(scene_objects: list[tuple]) -> str:
    parts = []
    for kind in KINDS:
        n = sum(1 for o in scene_objects if _kind_of(o) == kind)
        if n:
            one, many, verb = _PHRASE[kind]
            parts.append(f"{_NUMBER.get(n, str(n))} {one if n == 1 else many} {verb}")
    return ", ".join(parts) if parts else "an empty scene"


def _kind_of(obj) -> str:
    return {Ball: "impact", Lamp: "beep", Box: "slide"}[type(obj)]


def sample_plan(rng: np.random.Generator, duration_s: float, style: GenStyle, source_fps: float | None = None) -> Plan:
    """Draw one clip's world: source rate, picture format, scenes (cuts), objects and their timing."""
    if source_fps is None:
        if style.source_fps_choices and (style.p_fps_choice >= 1.0 or rng.random() < style.p_fps_choice):
            source_fps = float(style.source_fps_choices[int(rng.integers(len(style.source_fps_choices)))])
        else:
            source_fps = float(rng.uniform(*style.source_fps_range))
    aspect = float(style.aspects[int(rng.integers(len(style.aspects)))])
    src_h = int(rng.integers(style.source_height_range[0], style.source_height_range[1] + 1))
    # cuts on the source frame grid, every scene at least min_scene_s long; long clips are a
    # sequence of scenes of at most max_scene_s (objects act once per scene, so this keeps events coming)
    cuts: list[float] = []
    if duration_s > style.max_scene_s:
        t = 0.0
        while True:
            t = _grid(t + rng.uniform(style.min_scene_s + 2.0, style.max_scene_s), source_fps)
            if t > duration_s - style.min_scene_s:
                break
            cuts.append(t)
    elif duration_s >= 2 * style.min_scene_s and rng.random() < style.p_cut:
        n_cuts = max(1, int(rng.poisson(style.cut_rate_per_s * duration_s)))
        for _ in range(n_cuts):
            for _ in range(10):
                c = _grid(rng.uniform(style.min_scene_s, duration_s - style.min_scene_s), source_fps)
                if all(abs(c - o) >= style.min_scene_s for o in cuts):
                    cuts.append(c)
                    break
        cuts.sort()
    bounds = [0.0] + cuts + [duration_s]
    scenes, onsets, phrases = [], [], []
    for si in range(len(bounds) - 1):
        t0, t1 = bounds[si], bounds[si + 1]
        bg = _background(rng, style)
        n_obj = int(rng.integers(0, style.max_objects + 1))
        objs: list = []
        for _ in range(n_obj):
            kind = KINDS[int(rng.choice(3, p=np.asarray(style.kind_weights) / sum(style.kind_weights)))]
            maker = {"impact": _sample_ball, "beep": _sample_lamp, "slide": _sample_box}[kind]
            for _attempt in range(8):
                obj = maker(rng, style, t0, t1, source_fps, bg, aspect)
                new = _judged_onsets(obj)
                if (kind == "slide" or new) and _ok_gap(onsets, new, style.min_onset_gap_s):
                    break
            else:
                continue
            onsets.extend(new)
            objs.append(_colourise(rng, obj, bg, style))
        scenes.append(Scene(t0, t1, bg, tuple(objs), float(rng.uniform(*style.ambience_level_range)),
                            float(rng.uniform(80, 400))))
        phrases.append(caption_for(objs))
    caption = phrases[0] if len(phrases) == 1 else ", then ".join(phrases)
    if rng.random() >= style.p_caption:
        caption = ""
    return Plan(duration_s, source_fps, aspect, src_h, tuple(scenes), caption)

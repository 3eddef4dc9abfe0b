"""The render job spec: every parameter that decides a render's bytes, validated once.

A spec is plain data; `to_params()` is what the job row stores and what the report shows, and
`from_params()` rebuilds it (a farm worker or `foley audit reproduce` renders from the row).
"""
from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace

from foley_model.configs import CHOICES
from render_farm.errors import InvalidInput
from render_farm.media.proxy_formats import CURRENT_PROXY, LEGACY_PROXY, PROXY_FORMATS

STEM_FORMATS = ("wav", "flac", "none")
MAX_SEED = 2**63 - 1
MAX_CANDIDATES = 16
CURRENT_CHOICE = "window"  # how the picture onset judge picks among candidates (`foley_model.configs.CHOICES`)
LEGACY_CHOICE = "window"  # what every job stored before the spec named the choice did
# What the frame encoder reads past the video's end (the last window's context): "hold" repeats the last
# picture, so a moving object looks frozen, a sudden stop the picture judge reads as an impact; "clamp"
# encodes the real frames only and lets the last one's features stand for the rest, as training sees a
# clip's end (bench/RESULTS.md session 17)
PAST_END_MODES = ("hold", "clamp")
CURRENT_PAST_END = "clamp"
LEGACY_PAST_END = "hold"  # what every job stored before the spec named it did
# the --past-end help of `foley render` and of the farm's submit / catalog sync
PAST_END_HELP = ("What the frame encoder reads past the video's end: clamp encodes the real frames only (as "
                 "training sees a clip's end); hold repeats the last picture, as jobs before session 17 did.")


@dataclass(frozen=True)
class RenderSpec:
    prompt: str = ""
    negative_prompt: str = ""
    seed: int = 0
    steps: int | None = None  # None: the model's default
    cfg_scale: float | None = None  # None: the model's default
    candidates: int | None = None  # samples per window the picture onset judge picks from; None: the model's default
    model: str = "tiny"  # a registered checkpoint name or a path to a checkpoint directory
    window_min_s: float | None = None  # None: the model's trained window range
    window_max_s: float | None = None
    overlap_s: float | None = None
    loudness_lufs: float | None = -23.0  # None: leave loudness as generated
    true_peak_dbtp: float = -1.0
    sample_rate_hz: int = 48_000
    stems: str = "wav"
    batch_windows: int = 4  # windows rendered together; part of the plan, so part of the result
    proxy: str = CURRENT_PROXY  # the proxy format the sync path reads (`media.proxy_formats`)
    choose_per: str = CURRENT_CHOICE  # one of foley_model.configs.CHOICES
    past_end: str = CURRENT_PAST_END  # one of PAST_END_MODES

    def __post_init__(self) -> None:
        def bad(msg: str) -> InvalidInput:
            return InvalidInput(msg)

        if len(self.prompt) > 2000 or len(self.negative_prompt) > 2000:
            raise bad("prompt is longer than 2000 characters")
        if not 0 <= self.seed <= MAX_SEED:
            raise bad(f"seed {self.seed} is outside 0..{MAX_SEED}")
        if self.steps is not None and not 1 <= self.steps <= 1000:
            raise bad(f"steps {self.steps} is outside 1..1000")
        if self.candidates is not None and not 1 <= self.candidates <= MAX_CANDIDATES:
            raise bad(f"candidates {self.candidates} is outside 1..{MAX_CANDIDATES}")
        if self.cfg_scale is not None and not (math.isfinite(self.cfg_scale) and 0.0 <= self.cfg_scale <= 30.0):
            raise bad(f"cfg {self.cfg_scale} is outside 0..30")
        for name in ("window_min_s", "window_max_s", "overlap_s", "true_peak_dbtp"):
            value = getattr(self, name)
            if value is not None and not math.isfinite(value):
                raise bad(f"{name} must be a finite number")
        if (self.window_min_s is None) != (self.window_max_s is None):
            raise bad("give both ends of the window range or neither")
        if self.window_min_s is not None and not 0.5 <= self.window_min_s <= self.window_max_s <= 60.0:  # type: ignore[operator]
            raise bad(f"window length {self.window_min_s}:{self.window_max_s} s must satisfy 0.5 <= MIN <= MAX <= 60")
        if self.overlap_s is not None and self.overlap_s <= 0.0:
            raise bad(f"overlap {self.overlap_s} s must be above 0")
        if (self.overlap_s is not None and self.window_min_s is not None
                and self.overlap_s > self.window_min_s / 2 + 1e-9):
            raise bad(f"overlap {self.overlap_s} s must be at most half the minimum window ({self.window_min_s / 2} s)")
        if self.loudness_lufs is not None and not (math.isfinite(self.loudness_lufs) and -70.0 <= self.loudness_lufs <= -5.0):
            raise bad(f"loudness {self.loudness_lufs} LUFS is outside -70..-5")
        if not -20.0 <= self.true_peak_dbtp <= 0.0:
            raise bad(f"true-peak ceiling {self.true_peak_dbtp} dBTP is outside -20..0")
        if self.sample_rate_hz not in (44_100, 48_000, 96_000):
            raise bad(f"delivery sample rate {self.sample_rate_hz} Hz is not one of 44100, 48000, 96000")
        if not 1 <= self.batch_windows <= 256:
            raise bad(f"batch of {self.batch_windows} windows is outside 1..256")
        if self.proxy not in PROXY_FORMATS:
            raise bad(f"proxy format {self.proxy!r} is not one of {', '.join(PROXY_FORMATS)}")
        if self.choose_per not in CHOICES:
            raise bad(f"candidate choice {self.choose_per!r} is not one of {', '.join(CHOICES)}")
        if self.past_end not in PAST_END_MODES:
            raise bad(f"past-the-end frames {self.past_end!r} is not one of {', '.join(PAST_END_MODES)}")
        if self.stems not in STEM_FORMATS:
            raise bad(f"stems format {self.stems!r} is not one of {', '.join(STEM_FORMATS)}")

    def resolved(self, *, steps: int, cfg_scale: float, window_s: tuple[float, float], overlap_s: float,
                 candidates: int = 1) -> "RenderSpec":
        """The spec with the model's defaults filled in, so the stored params say everything."""
        wmin, wmax = (self.window_min_s, self.window_max_s) if self.window_min_s is not None else window_s
        return replace(self, steps=self.steps if self.steps is not None else steps,
                       candidates=self.candidates if self.candidates is not None else candidates,
                       cfg_scale=self.cfg_scale if self.cfg_scale is not None else cfg_scale,
                       window_min_s=wmin, window_max_s=wmax,
                       overlap_s=self.overlap_s if self.overlap_s is not None else min(overlap_s, wmin / 2))

    def to_params(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_params(cls, params: dict[str, object]) -> "RenderSpec":
        known = {f.name for f in fields(cls)}
        unknown = set(params) - known
        if unknown:
            raise InvalidInput(f"unknown render parameters: {', '.join(sorted(unknown))}")
        # rows stored before the spec named its proxy were all rendered from the first format, rows stored
        # before it named the candidate choice chose one candidate a window, and rows stored before it named
        # what lies past the video's end held the last picture
        return cls(**{"proxy": LEGACY_PROXY, "choose_per": LEGACY_CHOICE, "past_end": LEGACY_PAST_END,
                      **params})  # type: ignore[arg-type]


def parse_window_range(text: str) -> tuple[float, float]:
    """`MIN:MAX` seconds (as `--window-s` takes it) → (min, max)."""
    lo, sep, hi = text.partition(":")
    try:
        if not sep:
            value = float(text)
            return value, value
        return float(lo), float(hi)
    except ValueError:
        raise InvalidInput(f"window range {text!r} is not MIN:MAX in seconds") from None

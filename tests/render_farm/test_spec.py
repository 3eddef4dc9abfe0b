"""The render spec refuses absurd parameters with one clear message and round-trips as params."""
from __future__ import annotations

import pytest

from render_farm.errors import InvalidInput
from render_farm.media.proxy_formats import CURRENT_PROXY, LEGACY_PROXY
from render_farm.spec import RenderSpec, parse_window_range


def test_defaults_round_trip_through_params() -> None:
    spec = RenderSpec(prompt="two balls bouncing", seed=7, steps=12, cfg_scale=2.5)
    assert RenderSpec.from_params(spec.to_params()) == spec


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"seed": -1}, "seed"),
        ({"steps": 0}, "steps"),
        ({"steps": 100000}, "steps"),
        ({"cfg_scale": float("nan")}, "cfg"),
        ({"window_min_s": 12.0, "window_max_s": 8.0}, "window length"),
        ({"window_min_s": 1.0, "window_max_s": 1e9}, "window length"),
        ({"overlap_s": 5.0, "window_min_s": 6.0, "window_max_s": 8.0}, "overlap"),
        ({"window_min_s": 6.0}, "window range"),
        ({"overlap_s": 0.0}, "overlap"),
        ({"loudness_lufs": 12.0}, "loudness"),
        ({"true_peak_dbtp": 3.0}, "true-peak"),
        ({"stems": "mp3"}, "stems"),
        ({"sample_rate_hz": 12345}, "sample rate"),
        ({"proxy": "p9-lossless"}, "proxy format"),
        ({"choose_per": "clip"}, "candidate choice"),
        ({"past_end": "mirror"}, "past-the-end"),
    ],
)
def test_absurd_parameters_are_refused(kwargs: dict, fragment: str) -> None:
    with pytest.raises(InvalidInput, match=fragment):
        RenderSpec(**kwargs)


def test_unknown_params_are_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown"):
        RenderSpec.from_params({"seed": 1, "speed": 3})


def test_window_range_parsing() -> None:
    assert parse_window_range("6:10") == (6.0, 10.0)
    assert parse_window_range("8") == (8.0, 8.0)
    with pytest.raises(InvalidInput):
        parse_window_range("a:b")


def test_resolved_fills_in_model_defaults_only() -> None:
    spec = RenderSpec(steps=7).resolved(steps=10, cfg_scale=3.0, window_s=(3.0, 4.0), overlap_s=1.0)
    assert (spec.steps, spec.cfg_scale, spec.window_min_s, spec.window_max_s, spec.overlap_s) == (7, 3.0, 3.0, 4.0, 1.0)


def test_candidates_default_to_the_model_and_stay_in_range() -> None:
    spec = RenderSpec().resolved(steps=10, cfg_scale=3.0, window_s=(3.0, 4.0), overlap_s=1.0, candidates=4)
    assert spec.candidates == 4
    assert RenderSpec(candidates=1).resolved(steps=10, cfg_scale=3.0, window_s=(3.0, 4.0), overlap_s=1.0,
                                             candidates=4).candidates == 1
    assert RenderSpec.from_params(spec.to_params()) == spec
    for bad in (0, -1, 17):
        with pytest.raises(InvalidInput, match="candidates"):
            RenderSpec(candidates=bad)


def test_new_jobs_name_the_current_proxy_and_old_rows_the_first_one() -> None:
    """A row stored before the spec named its proxy was rendered from the first format, so a
    reproduction of it must make that proxy again, not today's."""
    assert RenderSpec().proxy == CURRENT_PROXY != LEGACY_PROXY
    old_row = {k: v for k, v in RenderSpec(seed=3).to_params().items() if k != "proxy"}
    assert RenderSpec.from_params(old_row).proxy == LEGACY_PROXY
    assert RenderSpec.from_params(RenderSpec(seed=3).to_params()).proxy == CURRENT_PROXY


def test_old_rows_choose_candidates_per_window() -> None:
    """Rows stored before the spec named the candidate choice kept one candidate a window; reproducing
    one must choose that way again, whatever the default becomes."""
    assert RenderSpec().choose_per == "window"
    old_row = {k: v for k, v in RenderSpec(seed=3).to_params().items() if k not in ("proxy", "choose_per")}
    assert RenderSpec.from_params(old_row).choose_per == "window"
    assert RenderSpec.from_params(RenderSpec(seed=3, choose_per="window").to_params()).choose_per == "window"
    assert RenderSpec.from_params(RenderSpec(seed=3, choose_per="segment").to_params()).choose_per == "segment"


def test_old_rows_hold_the_last_picture_past_the_end() -> None:
    """Rows stored before the spec named what lies past the video's end held its last picture there;
    reproducing one must do that again, while new jobs encode the real frames only."""
    assert RenderSpec().past_end == "clamp"
    old_row = {k: v for k, v in RenderSpec(seed=3).to_params().items() if k != "past_end"}
    assert RenderSpec.from_params(old_row).past_end == "hold"
    assert RenderSpec.from_params(RenderSpec(seed=3).to_params()).past_end == "clamp"
    assert RenderSpec.from_params(RenderSpec(seed=3, past_end="hold").to_params()).past_end == "hold"

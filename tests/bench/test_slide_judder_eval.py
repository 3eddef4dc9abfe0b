"""bench/slide_judder_eval.py: false onsets sorted into inside a slide and elsewhere, on real toy-world audio."""
from __future__ import annotations

import numpy as np
import pytest

from bench.slide_judder_eval import STREAM, false_onsets_by_place, main
from foley_model.eval_run import EVAL_STREAM_SEED
from foley_model.toyworld import GenStyle, clip_seed, make_clip

SR = 16000


def knock(audio: np.ndarray, at_s: float) -> np.ndarray:
    """The audio with a loud broadband knock (20 ms exponential decay) added at at_s."""
    rng = np.random.default_rng(0)
    n = int(0.15 * SR)
    burst = rng.standard_normal(n) * np.exp(-np.arange(n) / (0.02 * SR)) * 0.6
    out = audio.copy()
    a = int(at_s * SR)
    out[:, a:a + n] += burst
    return out


def test_knocks_inside_a_slide_and_elsewhere_are_told_apart():
    # stream clip 4 at 30 fps: a box slides from 0.13 s to 1.4 s, the next event is a beep at 1.7 s
    clip = make_clip(clip_seed(EVAL_STREAM_SEED + STREAM, 4), duration_s=4.0, fps=24.0, size=(16, 16),
                     sample_rate_hz=SR, style=GenStyle.heldout(), source_fps=30.0)
    slide = next(e for e in clip.events if e.kind == "slide")
    assert slide.onset_s < 0.5 and 1.2 < slide.end_s < 1.5
    inside, elsewhere, slide_s = false_onsets_by_place(clip.audio, SR, clip.events)
    assert (inside, elsewhere) == (0, 0)  # the ground truth sounds nothing false
    assert slide_s == pytest.approx(sum(min(e.end_s, 4.0) - e.onset_s for e in clip.events if e.kind == "slide"))
    assert false_onsets_by_place(knock(clip.audio, 0.8), SR, clip.events)[:2] == (1, 0)
    assert false_onsets_by_place(knock(clip.audio, 1.55), SR, clip.events)[:2] == (0, 1)
    # a knock at an event's onset is no false onset
    assert false_onsets_by_place(knock(clip.audio, slide.onset_s + 0.05), SR, clip.events)[:2] == (0, 0)


def test_codec_run_prints_a_line_per_rate_and_refuses_absurd_arguments(capsys):
    main(["--clips", "2", "--fps", "30", "60", "--mode", "upper"])
    lines = [line for line in capsys.readouterr().out.splitlines() if "source" in line]
    assert len(lines) == 2 and "30.000 fps" in lines[0] and "60.000 fps" in lines[1]
    for bad in (["--clips", "0"], ["--fps", "0"], ["--fps", "1000"]):
        with pytest.raises(SystemExit):
            main(bad)

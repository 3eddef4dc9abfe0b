"""bench/independent_breakdown.py: the distance bins, and the whole report on ground-truth audio."""
from __future__ import annotations

import json
import sys

import numpy as np

from fractions import Fraction

from bench.independent_breakdown import (ANCHORS, DISTANCE_BINS_S, FRAME_GRID_FPS, distance_bin, grid_phase_ms,
                                         judder_times, main, near)
from bench.judgeworld.audio import SAMPLE_RATE_HZ, render_audio
from bench.judgeworld.clip import write_clip
from bench.judgeworld.media import write_wav
from bench.judgeworld.world import random_clip


def test_distance_bins_by_distance_to_the_nearest_anchor():
    joins = np.array([2.0, 6.0])
    assert [distance_bin(x, joins) for x in (2.05, 1.85, 2.1, 1.76, 2.25, 5.6, 6.49, 2.8, 4.0)] == \
        [0, 1, 1, 1, 2, 2, 2, 3, 4]
    assert distance_bin(1.0, np.zeros(0)) == len(DISTANCE_BINS_S) - 2  # no anchors: the farthest bin


def test_grid_phase_is_the_wait_for_the_next_frame_of_the_24_fps_grid():
    frame_ms = 1000 / FRAME_GRID_FPS
    assert grid_phase_ms(2.0) == 0.0  # on a grid frame: seen at once
    assert abs(grid_phase_ms(2.0 + 0.001) - (frame_ms - 1)) < 1e-6  # just after one: seen a frame later
    assert abs(grid_phase_ms(2.0 + 0.5 / FRAME_GRID_FPS) - frame_ms / 2) < 1e-6
    assert all(0 <= grid_phase_ms(t) < frame_ms for t in np.linspace(0, 3, 301))


def test_judder_frames_of_the_24_fps_picking():
    assert len(judder_times(Fraction(24), 10.0)) == 0  # one source frame per grid frame: no judder
    # 30 fps: the picked frame advances 1, 1, 1, 2, ...: a double step into every 4th grid frame
    assert np.allclose(judder_times(Fraction(30), 1.0), [4 / 24, 8 / 24, 12 / 24, 16 / 24, 20 / 24, 24 / 24])
    assert np.allclose(judder_times(Fraction(30000, 1001), 1.0), [5 / 24, 9 / 24, 13 / 24, 17 / 24, 21 / 24])
    # 23.976 fps: a repeated frame every 1001 grid frames (about 42 s), the first at the second grid frame
    assert np.allclose(judder_times(Fraction(24000, 1001), 43.0), [1 / 24, 1002 / 24])
    # 60 fps: 2, 3, 2, 3 steps: every other grid frame
    assert len(judder_times(Fraction(60), 2.0)) in (23, 24)
    x = np.array([0.1, 0.16, 0.5, 0.9])
    assert near(x, np.array([0.15, 0.52]), 0.021).tolist() == [False, True, True, False]
    assert near(x, np.array([0.52]), 0.5).tolist() == [True, True, True, True]
    assert not near(x, np.zeros(0), 1.0).any()


def test_ground_truth_audio_has_full_recall_and_no_false_onsets_in_every_bin(tmp_path, monkeypatch, capsys):
    clip = random_clip(12, 4, 8)  # 30 fps, a box that moves, beeps and impacts
    write_clip(clip, tmp_path / "clips", "clip000")
    (tmp_path / "out").mkdir()
    # the "render" is the ground-truth audio (a WAV; the reader goes by content, not by the file's name)
    write_wav(tmp_path / "out" / "clip000.foley.mp4", render_audio(clip), SAMPLE_RATE_HZ)
    joins = [1.0, 3.0]
    (tmp_path / "out" / "report.json").write_text(json.dumps(
        {"jobs": [{"input": {"uri": "file:///x/clip000.mp4"}, "joins_s": joins}]}))
    monkeypatch.setattr(sys, "argv", ["independent_breakdown.py", str(tmp_path)])
    main()
    out = capsys.readouterr().out
    truth = json.loads((tmp_path / "clips" / "clip000.json").read_text())
    for anchor in ANCHORS:
        table = out.split(f"by distance to the nearest {anchor}:")[1].strip().splitlines()[1:len(DISTANCE_BINS_S)]
        assert len(table) == len(DISTANCE_BINS_S) - 1
        n_events = sum(int(line.rsplit("of", 1)[1]) for line in table)
        assert n_events == sum(e["kind"] in ("impact", "beep") for e in truth["events"]) > 0
        shares = [float(line.split("time")[1].split("%")[0]) for line in table]
        assert abs(sum(shares) - 100.0) < 0.5
        assert shares[0] > 0  # 0.1 s beside each join, and the clip's first and last 0.1 s
        for line in table:
            assert " false    0 " in line, line
            if int(line.rsplit("of", 1)[1]):
                assert "recall 1.000" in line, line
    end = out.split("by distance to the nearest clip end:")[1].strip().splitlines()[1]
    assert abs(float(end.split("time")[1].split("%")[0]) - 100 * 0.1 / truth["duration_s"]) < 0.3
    assert "false onsets: 0 (" in out
    moves = [line for line in out.split("during a box's move")[1].splitlines()[1:] if "fps" in line]
    assert len(moves) == 1 and "30.00 fps" in moves[0], moves
    assert 20 <= int(moves[0].split("chance")[1].split("%")[0]) <= 32, moves  # a quarter of the grid frames
    assert all(" false    0 " in line for line in moves), moves
    # the truth's onsets are where they are: every phase bin's offset is near zero
    phases = [line for line in out.split("matched onsets (+-100 ms)")[1].splitlines() if line.strip().startswith("phase ")]
    assert phases and all(abs(float(line.split("offset")[1].split("ms")[0])) < 5 for line in phases), phases

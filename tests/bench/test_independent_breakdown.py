"""bench/independent_breakdown.py: the distance bins, and the whole report on ground-truth audio."""
from __future__ import annotations

import json
import sys

import numpy as np

from bench.independent_breakdown import ANCHORS, DISTANCE_BINS_S, FRAME_GRID_FPS, distance_bin, grid_phase_ms, main
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


def test_ground_truth_audio_has_full_recall_and_no_false_onsets_in_every_bin(tmp_path, monkeypatch, capsys):
    clip = random_clip(3, 4, 8)
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
    # the truth's onsets are where they are: every phase bin's offset is near zero
    phases = [line for line in out.split("matched onsets (+-100 ms)")[1].splitlines() if line.strip().startswith("phase ")]
    assert phases and all(abs(float(line.split("offset")[1].split("ms")[0])) < 5 for line in phases), phases

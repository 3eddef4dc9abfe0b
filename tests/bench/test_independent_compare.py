"""bench/independent_compare.py: pooled metrics and the paired bootstrap over clips."""
from __future__ import annotations

import json

import numpy as np

from bench.independent_compare import FIELDS, clip_counts, main, metrics, paired_bootstrap


def _run(tmp_path, name: str, tps: list[int], seed: int = 4, n_clips: int = 30) -> str:
    def counts(tp: int) -> dict:
        return {"n_clips": 1, "duration_s": 10.0, "n_events": 20, "n_det": 20, "tp50": tp, "tp100": tp,
                "abs_offset_s_sum": 0.01 * tp, "kind_ok": tp, "side_n": tp, "side_ok": tp, "n_false": 20 - tp,
                "matches": []}
    clips = [{"name": f"clip{i:03d}", "model": counts(tps[i % len(tps)])} for i in range(n_clips)]
    d = tmp_path / name
    d.mkdir()
    (d / "scores.json").write_text(json.dumps({"args": {"seed": seed}, "clips": clips}))
    return str(d)


def test_pooled_metrics_are_the_scorers_summary():
    # FIELDS: n_clips, duration_s, n_events, n_det, tp50, tp100, abs_offset_s_sum, kind_ok, side_n, side_ok, n_false
    c = np.array([[1, 30.0, 10, 8, 6, 7, 0.1, 7, 7, 6, 2], [1, 30.0, 20, 22, 18, 19, 0.2, 19, 19, 17, 4]])
    assert c.shape[1] == len(FIELDS)
    m = metrics(c)
    assert m["f1_50"] == 2 * 24 / 60 and m["f1_100"] == 2 * 26 / 60
    assert m["recall_50"] == 24 / 30 and m["precision_50"] == 24 / 30 and m["false_per_min"] == 6.0


def test_identical_runs_differ_by_nothing_and_a_clear_gain_excludes_zero(tmp_path):
    _, base = clip_counts([_run(tmp_path, "a", [14, 15, 16])])
    same = paired_bootstrap(base, base.copy(), draws=300)
    assert all(v == (0.0, 0.0, 0.0) for v in same.values())
    _, better = clip_counts([_run(tmp_path, "b", [17, 18, 19])])
    d, lo, hi = paired_bootstrap(base, better, draws=300)["f1_50"]
    assert abs(d - 0.15) < 1e-12 and 0 < lo <= d <= hi
    d, lo, hi = paired_bootstrap(base, better, draws=300)["false_per_min"]
    assert d < 0 and hi < 0


def test_cli_prints_the_table_and_refuses_different_clips(tmp_path, capsys):
    a, b = _run(tmp_path, "a", [14, 15]), _run(tmp_path, "b", [15, 16])
    assert main([a, "--", b, "--draws", "200"]) == 0
    out = capsys.readouterr().out
    assert "f1_50" in out and "+0.050" in out
    other_seed = _run(tmp_path, "c", [15, 16], seed=5)
    assert main([a, "--", other_seed]) == 1
    assert "different clips" in capsys.readouterr().err
    assert main([a, b]) == 2
    assert main([a, "--", b, "--draws", "0"]) == 2
    assert "--draws 0" in capsys.readouterr().err

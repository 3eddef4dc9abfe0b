"""`foley render` end to end on the embedded default: real videos in, finished tracks out."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import av
import numpy as np
import pyloudnorm
import pytest

from render_farm.media.stems import read_audio
from render_farm.toyvideo import write_toy_video

FOLEY = [sys.executable, "-m", "render_farm"]


def run_foley(args: list[str], data_dir: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
    env["FOLEY_DATA_DIR"] = str(data_dir)
    proc = subprocess.run(FOLEY + args, capture_output=True, text=True, env=env, timeout=900)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def video_packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as c:
        return [bytes(p) for p in c.demux(c.streams.video[0]) if p.size]


@pytest.fixture(scope="module")
def toy(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("toy")
    return write_toy_video(d / "toy.mp4", 14.0, seed=3, size=(256, 144), audio_track=True, segment_s=7.0)


@pytest.fixture(scope="module")
def rendered(toy, tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("render")
    out, report = d / "out.mp4", d / "report.json"
    run_foley(["render", str(toy.path), "-o", str(out), "--report", str(report), "--quiet", "--seed", "5",
               "--window-s", "4:6"], d / "state")
    return out, json.loads(report.read_text()), d


def test_output_keeps_the_video_and_adds_a_foley_track(toy, rendered) -> None:
    out, report, _ = rendered
    assert video_packets(out) == video_packets(toy.path)
    with av.open(str(out)) as c:
        audio = c.streams.audio
        assert len(audio) == 2, "the production track is kept and the foley track added"
        foley = [s for s in audio if (s.metadata.get("title") or s.metadata.get("name")) == "foley"]  # mp4 keeps it as name
        assert len(foley) == 1
        assert foley[0].codec_context.sample_rate == 48000 and foley[0].codec_context.channels == 2


def test_stem_length_and_loudness(toy, rendered) -> None:
    out, report, _ = rendered
    stem = Path(report["stems"][0]["uri"].removeprefix("file://"))
    audio, sr = read_audio(stem)
    assert sr == 48000 and audio.shape[0] == 2
    assert abs(audio.shape[1] / sr - toy.duration_s) <= 1 / toy.fps
    lufs = pyloudnorm.Meter(sr).integrated_loudness(audio.T.astype(np.float64))
    assert lufs == pytest.approx(-23.0, abs=1.0)


def test_report_holds_provenance(toy, rendered) -> None:
    out, report, _ = rendered
    assert report["state"] == "done"
    assert len(report["input"]["sha256"]) == 64 and len(report["output"]["sha256"]) == 64
    assert report["model"]["name"] and len(report["model"]["checkpoint_sha256"]) == 64
    assert report["seed"] == 5 and report["parameters"]["window_min_s"] == 4.0
    assert len(report["windows"]) >= 3
    assert report["windows"][0]["start_s"] == 0.0
    assert report["windows"][-1]["end_s"] >= toy.duration_s - 0.1
    assert len(report["joins_s"]) == len(report["windows"]) - 1
    for stage in ("ingest", "render", "decode", "post", "mux"):
        assert report["stages"][stage]["wall_s"] > 0 and report["stages"][stage]["peak_rss_mb"] > 0


def test_each_side_of_a_join_on_a_cut_sees_one_shot(toy, rendered) -> None:
    """The toy video cuts to a new scene at 7 s; the join there is bounded on both sides at the
    cut's picture, and a join away from cuts bounds nothing."""
    _, report, _ = rendered
    windows, joins = report["windows"], report["joins_s"]
    on_cut = 0
    for i, j in enumerate(joins):
        before, after = windows[i]["shot_pictures"], windows[i + 1]["shot_pictures"]
        cut = min(toy.cuts_s, key=lambda c: abs(c - j)) if toy.cuts_s else None
        if cut is not None and abs(cut - j) <= 1.5 / report["latent_rate_hz"]:
            on_cut += 1
            assert before[1] is not None and before[1] == after[0], f"join {j}: {before} {after}"
            assert abs(before[1] / 24 - cut) <= 1 / 24 + 1e-9, f"join {j} at cut {cut}: picture {before[1]}"
        else:
            assert before[1] is None and after[0] is None, f"join {j} is not a cut: {before} {after}"
    assert on_cut >= 1 and 7.0 in [round(c, 3) for c in toy.cuts_s], f"{joins=} {toy.cuts_s=}"
    assert windows[0]["shot_pictures"][0] is None and windows[-1]["shot_pictures"][1] is None


def test_rendering_is_deterministic(toy, rendered) -> None:
    out, report, d = rendered
    again = d / "again.mp4"
    run_foley(["render", str(toy.path), "-o", str(again), "--quiet", "--seed", "5", "--window-s", "4:6",
               "--batch", "4"], d / "state2")
    assert again.read_bytes() == out.read_bytes()


def test_existing_output_is_refused_and_kept(toy, rendered) -> None:
    out, _, d = rendered
    before = out.read_bytes()
    proc = run_foley(["render", str(toy.path), "-o", str(out), "--quiet"], d / "state", check=False)
    assert proc.returncode != 0
    assert proc.stderr.strip().count("\n") == 0 and "already exists" in proc.stderr
    assert out.read_bytes() == before


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["render", "{missing}"], "no such file"),
        (["render", "{garbage}"], ""),
        (["render", "{toy}", "--steps", "0"], "steps"),
        (["render", "{toy}", "--window-s", "9:3"], "window"),
        (["render", "{toy}", "-o", "{png}"], ""),
    ],
)
def test_bad_input_gets_one_line(toy, tmp_path: Path, args: list[str], fragment: str) -> None:
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(os.urandom(5000))
    subs = {"{missing}": str(tmp_path / "nope.mp4"), "{garbage}": str(garbage), "{toy}": str(toy.path),
            "{png}": str(tmp_path / "out.png")}
    proc = run_foley([subs.get(a, a) for a in args], tmp_path / "state", check=False)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr and fragment in lines[0]
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "env, fragment",
    [
        ({"FOLEY_DATABASE_URL": "postgresql://farm:secret@127.0.0.1:1/foley"}, "cannot reach database"),
        ({"FOLEY_STORE": "s3://bucket/prefix", "FOLEY_S3_ENDPOINT_URL": "http://127.0.0.1:1",
          "AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"}, "cannot reach S3 endpoint"),
    ],
)
def test_unreachable_services_get_one_line(toy, tmp_path: Path, env: dict, fragment: str) -> None:
    full = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
    full.update(env, FOLEY_DATA_DIR=str(tmp_path / "state"))
    args = ["render", str(toy.path), "-o", str(tmp_path / "out.mp4"), "-q"]
    proc = subprocess.run(FOLEY + args, capture_output=True, text=True, env=full, timeout=300)
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and fragment in lines[0], proc.stderr
    assert "secret" not in proc.stderr
    assert not (tmp_path / "out.mp4").exists()

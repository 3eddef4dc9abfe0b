"""`foley audit reproduce` on a real embedded render (a random-weight tiny checkpoint, a 6 s toy
video): identical when nothing changed, the differing artifact and byte offset after tampering,
one window's latents, clear errors when the input changed; and the provenance the render recorded
as `foley history --format json` shows it."""
from __future__ import annotations

import json
import os
import platform
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from foley_model.checkpoint import save_checkpoint
from foley_model.configs import get_config
from foley_model.model import FoleyModel
from render_farm.steps.render import latents_from_bytes, latents_to_bytes
from render_farm.toyvideo import write_toy_video
from storage.blobs import LocalBlobStore
from tests.audit.clitools import foley


@dataclass(frozen=True)
class Rendered:
    job_id: str
    video: Path
    output: Path
    checkpoint: Path
    data_dir: Path
    record: dict


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Rendered]:
    """One `foley render` of a 6 s toy video (two batches of windows, 2 sampler steps) with a
    random-weight checkpoint."""
    root = tmp_path_factory.mktemp("reproduce")
    torch.manual_seed(0)
    checkpoint = save_checkpoint(FoleyModel(get_config("tiny")), root / "checkpoint")
    video = write_toy_video(root / "toy.mp4", 6.0, seed=3, size=(256, 144), segment_s=3.0).path
    output = root / "out" / "toy.foley.mp4"
    output.parent.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key in [k for k in os.environ if k.startswith("FOLEY_")]:
            mp.delenv(key)
        mp.setenv("FOLEY_DATA_DIR", str(root / "data"))
        mp.chdir(root)
        capture = _Capture()
        code, out, err = capture.run("render", str(video), "-o", str(output), "--model", str(checkpoint),
                                     "--seed", "5", "--steps", "2", "--window-s", "2:3", "--batch", "2",
                                     "--project", "ep7", "--user", "ann", "-q")
        assert code == 0, err
        code, out, err = capture.run("history", "--format", "json")
        assert code == 0, err
        (record,) = json.loads(out)
        yield Rendered(record["id"], video, output, checkpoint, root / "data", record)


class _Capture:
    """capsys for a module-scoped fixture: run foley with stdout/stderr redirected to strings."""

    def run(self, *args: str) -> tuple[int, str, str]:
        import contextlib
        import io

        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                from render_farm.cli import main

                main(list(args))
                code = 0
            except SystemExit as exc:
                code = int(exc.code or 0)
        return code, out.getvalue(), err.getvalue()


@pytest.fixture
def env(rendered: Rendered, monkeypatch: pytest.MonkeyPatch) -> Rendered:
    for key in [k for k in os.environ if k.startswith("FOLEY_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("FOLEY_DATA_DIR", str(rendered.data_dir))
    monkeypatch.chdir(rendered.data_dir.parent)
    return rendered


def _store(rendered: Rendered) -> LocalBlobStore:
    return LocalBlobStore(rendered.data_dir / "store")


def test_history_json_shows_the_provenance_of_a_rendered_job(env: Rendered) -> None:
    record = env.record
    prov = record["provenance"]
    assert prov["user"] == "ann" and prov["project"] == "ep7" and prov["host"] == socket.gethostname()
    assert prov["input"] == {"uri": env.video.resolve().as_uri(), "sha256": record["input_sha256"]}
    assert prov["model"]["checkpoint_sha256"] == record["model_sha256"] and len(record["model_sha256"]) == 64
    assert prov["model"]["name"] == record["model_name"]
    assert prov["code"]["package"] == "foley-render-farm" and prov["code"]["version"]
    assert prov["code"]["git_commit"] is None or len(prov["code"]["git_commit"]) in (40, 64)
    software = prov["software"]
    assert software["torch"] == torch.__version__ and software["numpy"] == np.__version__
    assert software["python"] == platform.python_version() and software["pyav"] and software["deepspeed"]
    output, stem = record["outputs"]
    assert output["kind"] == "output" and output["sha256"] == record["output_sha256"]
    assert output["size_bytes"] == env.output.stat().st_size and output["duration_s"] == pytest.approx(6.0, abs=0.1)
    assert output["loudness_lufs"] == pytest.approx(-23.0, abs=1.0) and stem["kind"] == "stem"


def test_audit_show_names_hosts_devices_and_output_loudness(env: Rendered, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = foley(capsys, "audit", "show", env.job_id)
    assert code == 0, err
    assert "provenance\n" in out and f"host:          {socket.gethostname()}" in out
    windows = out.split("windows (")[1].split("\n\n")[0]
    assert windows.count(" cpu ") >= 3 and "1/3" in windows
    assert "LUFS" in out.split("artifacts (")[1]


def test_reproduce_is_identical_then_names_a_tampered_output(env: Rendered, capsys: pytest.CaptureFixture[str]) -> None:
    before = list((env.data_dir / "store").rglob("*"))
    code, out, err = foley(capsys, "audit", "reproduce", env.job_id)
    assert (code, err) == (0, ""), out + err
    lines = out.splitlines()
    assert lines[-1] == "identical"
    assert any(line.startswith("output toy.foley.mp4: identical") for line in lines)
    assert any(line.startswith("stem toy.foley.stem.wav: identical") for line in lines)
    assert list((env.data_dir / "store").rglob("*")) == before  # nothing stored was touched

    data = bytearray(env.output.read_bytes())
    offset = len(data) // 2
    data[offset] ^= 0xFF
    pristine = env.output.read_bytes()
    env.output.write_bytes(bytes(data))
    try:
        code, out, err = foley(capsys, "audit", "reproduce", env.job_id)
    finally:
        env.output.write_bytes(pristine)
    assert code == 5, out + err
    assert err == f"foley: error: reproduce: job {env.job_id} differs from its record (1 difference)\n"
    (line,) = [line for line in out.splitlines() if ": differs: " in line]
    assert line.startswith("output toy.foley.mp4: differs: the stored copy")
    assert f"first differ at byte offset {offset} " in line
    assert out.splitlines()[-1] == "differs (1 difference)"


def test_reproduce_one_window_compares_latents(env: Rendered, capsys: pytest.CaptureFixture[str]) -> None:
    windows = [w for w in json.loads(foley(capsys, "history", "export")[1])["windows"]]
    assert len({w["batch_index"] for w in windows}) >= 2
    last = windows[-1]
    code, out, err = foley(capsys, "audit", "reproduce", env.job_id, "--window", str(last["index"]))
    assert (code, err) == (0, ""), out + err
    assert f"window {last['index']} latents: identical" in out and out.splitlines()[-1] == "identical"

    store = _store(env)
    path = store.object_path(last["result_key"])
    pristine = path.read_bytes()
    latents = latents_from_bytes(pristine).copy()
    latents[1, 2] += 0.25
    path.write_bytes(latents_to_bytes(latents))
    try:
        code, out, err = foley(capsys, "audit", "reproduce", env.job_id, "--window", str(last["index"]))
    finally:
        path.write_bytes(pristine)
    assert code == 5, out + err
    assert "max abs difference 0.25 over 1 of" in out and "first at (frame, channel) (1, 2)" in out


def test_reproduce_makes_the_proxy_the_row_names(env: Rendered, capsys: pytest.CaptureFixture[str]) -> None:
    """The proxy format is part of the record: a row naming the first format (as every row stored
    before the spec named one does) is reproduced from that format's proxy, whose frames give other
    latents than the proxy this job was rendered from."""
    import sqlite3

    from render_farm.media.proxy_formats import CURRENT_PROXY, LEGACY_PROXY

    db = sqlite3.connect(env.data_dir / "foley.db")
    (raw,) = db.execute("SELECT params FROM jobs WHERE id = ?", (env.job_id,)).fetchone()
    params = json.loads(raw)
    assert params["proxy"] == CURRENT_PROXY
    old_row = {k: v for k, v in params.items() if k != "proxy"}
    db.execute("UPDATE jobs SET params = ? WHERE id = ?", (json.dumps(old_row), env.job_id))
    db.commit()
    try:
        code, out, err = foley(capsys, "audit", "reproduce", env.job_id, "--window", "0")
    finally:
        db.execute("UPDATE jobs SET params = ? WHERE id = ?", (raw, env.job_id))
        db.commit()
        db.close()
    assert code == 5, out + err
    assert "window 0 latents: differs" in out, out
    assert LEGACY_PROXY != CURRENT_PROXY


def test_reproduce_needs_the_recorded_input(env: Rendered, capsys: pytest.CaptureFixture[str]) -> None:
    moved = env.video.with_name("moved.mp4")
    env.video.rename(moved)
    try:
        code, out, err = foley(capsys, "audit", "reproduce", env.job_id)
    finally:
        moved.rename(env.video)
    assert code == 3 and out == "" and err.count("\n") == 1
    assert f"input {env.video.resolve()} no longer exists" in err

    pristine = env.video.read_bytes()
    env.video.write_bytes(pristine + b"\0")
    try:
        code, out, err = foley(capsys, "audit", "reproduce", env.job_id, "--window", "0")
    finally:
        env.video.write_bytes(pristine)
    assert code == 5 and out == "" and err.count("\n") == 1 and "not the recorded" in err
    code, _, err = foley(capsys, "audit", "reproduce", env.job_id, "--window", "99")
    assert code == 3 and "has no window 99" in err
    code, _, err = foley(capsys, "audit", "reproduce", "f" * 32)
    assert code == 3 and err == f"foley: error: no job {'f' * 32}\n"

"""`foley history export`: job records with windows and artifacts as JSON lines, and OpenLineage
RunEvents (one per job, state → eventType, SHA-256s as dataset facets)."""
from __future__ import annotations

import json
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from render_farm.audit.export import PRODUCER, run_id
from render_farm.audit.history import JOB_FIELDS
from storage.blobs import LocalBlobStore
from storage.db import unit_of_work
from storage.models import JobState
from storage.repos import EventRepo, JobRepo
from tests.audit.clitools import foley, set_env
from tests.audit.factory import T0, build_job


@pytest.fixture
def history(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_migrated_url: str,
            local_store: LocalBlobStore) -> tuple[sessionmaker[Session], dict[str, object]]:
    from storage.db import make_engine, make_sessionmaker

    set_env(monkeypatch, tmp_path, sqlite_migrated_url, local_store.root)
    sessions = make_sessionmaker(make_engine(sqlite_migrated_url))
    done = build_job(sessions, local_store, seed=1, local_dir=tmp_path / "media")
    other = build_job(sessions, local_store, project="ep102", seed=2, created_at=T0 + timedelta(hours=1))
    with unit_of_work(sessions) as s:
        failed = JobRepo(s).create(project="ep101", submitted_by="bob", input_uri="file:///media/x.mov", seed=3,
                                   model_name="tiny", now=T0 + timedelta(hours=2)).id
        JobRepo(s).transition(failed, [JobState.QUEUED], JobState.FAILED, error="ingest: not a video")
        EventRepo(s).append("job.failed", actor="w1", job_id=failed, payload={"error": "ingest: not a video"})
    return sessions, {"done": done, "other": other, "failed": failed}


def test_jsonl_has_one_full_record_per_job(history, capsys: pytest.CaptureFixture[str],
                                           local_store: LocalBlobStore) -> None:
    _, jobs = history
    code, out, err = foley(capsys, "history", "export", "--format", "jsonl")
    assert (code, err) == (0, "")
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["id"] for r in records] == [jobs["failed"], jobs["other"].id, jobs["done"].id]  # newest first
    done = records[2]
    assert list(done) == list(JOB_FIELDS) + ["windows", "artifacts"]
    assert [w["index"] for w in done["windows"]] == [0, 1]
    window = done["windows"][0]
    ran = (window["worker_host"], window["device"], window["attempts"], window["took_s"])
    assert ran == ("gpu-node-3", "cuda:1", 1, 2.5)
    assert window["result_sha256"] == local_store.stat(jobs["done"].keys["latents0"]).sha256
    kinds = sorted(a["kind"] for a in done["artifacts"])
    assert kinds == ["latents", "latents", "output", "stem"]
    output = next(a for a in done["artifacts"] if a["kind"] == "output")
    assert output["sha256"] == done["output_sha256"] == local_store.stat(jobs["done"].keys["output"]).sha256
    assert [o["kind"] for o in done["outputs"]] == ["output", "stem"]
    failed = records[0]
    assert failed["state"] == "failed" and failed["windows"] == [] and failed["error"] == "ingest: not a video"


def test_openlineage_run_events(history, capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                local_store: LocalBlobStore) -> None:
    _, jobs = history
    target = tmp_path / "lineage.jsonl"
    code, out, err = foley(capsys, "history", "export", "--format", "openlineage", "--project", "ep101",
                           "-o", str(target))
    assert code == 0 and out == "" and err == f"exported 2 jobs to {target}\n"
    events = [json.loads(line) for line in target.read_text().splitlines()]
    by_run = {e["run"]["runId"]: e for e in events}
    assert set(by_run) == {run_id(jobs["done"].id), run_id(jobs["failed"])}
    for e in events:
        uuid.UUID(e["run"]["runId"])
        assert e["job"]["namespace"] == "foley" and e["job"]["name"] == "ep101"
        assert e["producer"] == PRODUCER and e["schemaURL"].startswith("https://openlineage.io/spec/")
        assert e["eventTime"].endswith("+00:00")
    done = by_run[run_id(jobs["done"].id)]
    assert done["eventType"] == "COMPLETE"
    assert done["run"]["facets"]["foley_render"]["seed"] == 1
    video, model = done["inputs"]
    assert (video["namespace"], video["name"]) == ("file", "/media/ep101/1.mp4")
    assert video["facets"]["version"]["datasetVersion"] == video["facets"]["foley_sha256"]["sha256"]
    assert len(video["facets"]["foley_sha256"]["sha256"]) == 64
    assert model["namespace"] == "foley-model" and model["name"] == "tiny"
    outputs = {o["name"]: o["facets"]["foley_sha256"] for o in done["outputs"]}
    key = jobs["done"].keys["output"]
    assert outputs[str(local_store.object_path(key))]["sha256"] == local_store.stat(key).sha256
    assert outputs[str(jobs["done"].local_output)]["size_bytes"] == jobs["done"].local_output.stat().st_size
    failed = by_run[run_id(jobs["failed"])]
    assert failed["eventType"] == "FAIL" and failed["outputs"] == []
    assert failed["run"]["facets"]["errorMessage"]["message"] == "ingest: not a video"
    # the same job gives the same run id; an existing file is not overwritten silently
    assert run_id(jobs["done"].id) == run_id(jobs["done"].id) != run_id(jobs["failed"])
    code, _, err = foley(capsys, "history", "export", "--format", "openlineage", "-o", str(target))
    assert code != 0 and "already exists" in err and err.count("\n") == 1


def test_filters_belong_after_the_subcommand(history, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = foley(capsys, "history", "--project", "ep101", "export")
    assert code != 0 and out == "" and err == "foley: error: history export: put --project after `export`\n"

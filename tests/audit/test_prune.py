"""`foley history prune`: archive old finished jobs, delete their blobs and rows, keep the events
(the chain still verifies), sign a checkpoint; never without --yes or a confirmation."""
from __future__ import annotations

import hashlib
import json
import stat
import tarfile
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from render_farm.audit.prune import KEY_FILE, audit_key, checkpoint_hmac
from storage.blobs import LocalBlobStore
from storage.db import unit_of_work
from storage.models import ArtifactKind, utcnow
from storage.repos import ArtifactRepo
from storage.repos.history import HistoryRepo
from tests.audit.clitools import foley, set_env
from tests.audit.factory import build_job, event_ids

OLD = utcnow() - timedelta(days=100)


def _age(sessions: sessionmaker[Session], job_id: str) -> None:
    """Make a job's last change as old as its creation (the factory finishes jobs 'now')."""
    with unit_of_work(sessions) as s:
        s.execute(text("UPDATE jobs SET updated_at = created_at WHERE id = :id"), {"id": job_id})


def _proxy(sessions: sessionmaker[Session], store: LocalBlobStore, job_id: str, input_name: str) -> str:
    info = store.put(f"proxies/{input_name}/p1.mp4", f"proxy of {input_name}".encode() * 30)
    with unit_of_work(sessions) as s:
        ArtifactRepo(s).add(job_id, ArtifactKind.PROXY, info.key, uri=store.uri(info.key), sha256=info.sha256,
                            size_bytes=info.size_bytes)
    return info.key


@pytest.fixture
def farm(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, sessions: sessionmaker[Session],
         local_store: LocalBlobStore):
    """Two old finished jobs (one with a local stem outside the store) and a recent one sharing a proxy."""
    set_env(monkeypatch, tmp_path, db_url, local_store.root)
    old_a = build_job(sessions, local_store, seed=1, created_at=OLD)
    old_b = build_job(sessions, local_store, seed=2, created_at=OLD + timedelta(hours=1), local_dir=tmp_path / "media")
    recent = build_job(sessions, local_store, seed=3, created_at=utcnow() - timedelta(days=1))
    for job in (old_a, old_b):
        _age(sessions, job.id)
    shared = _proxy(sessions, local_store, old_a.id, "shared")
    _proxy(sessions, local_store, recent.id, "shared")
    own = _proxy(sessions, local_store, old_b.id, "own")
    return {"old": [old_a, old_b], "recent": recent, "shared_proxy": shared, "own_proxy": own}


def _job_ids(sessions: sessionmaker[Session]) -> set[str]:
    with unit_of_work(sessions) as s:
        return {j.id for j in HistoryRepo(s).list_jobs().jobs}


def test_prune_archives_deletes_and_keeps_the_chain_verifiable(
    farm, sessions: sessionmaker[Session], local_store: LocalBlobStore, tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    old_a, old_b = farm["old"]
    events_before = {job.id: event_ids(sessions, job.id) for job in farm["old"]}
    archive = tmp_path / "history-2026.tar.gz"

    # without --yes and without a terminal: the plan is printed, nothing is touched
    code, out, err = foley(capsys, "history", "prune", "--older-than", "30", "--archive", str(archive))
    assert code != 0 and err == "foley: error: prune: refusing to delete without --yes (no terminal to confirm on)\n"
    assert f"delete {local_store.uri(old_a.keys['output'])}" in out and old_b.id in out
    assert "kept: 1 blobs shared with remaining jobs" in out and "files outside the store" in out
    assert not archive.exists() and _job_ids(sessions) == {old_a.id, old_b.id, farm["recent"].id}
    assert all(local_store.exists(k) for job in farm["old"] for k in job.keys.values())

    code, out, err = foley(capsys, "history", "prune", "--older-than", "30", "--archive", str(archive), "--yes")
    assert code == 0, err
    assert out.splitlines()[-1].startswith(f"pruned 2 jobs: archive {archive}")

    # rows gone, blobs of the pruned jobs gone, shared proxy and local files kept, events kept
    assert _job_ids(sessions) == {farm["recent"].id}
    for job in farm["old"]:
        assert not any(local_store.exists(k) for k in job.keys.values())
        assert event_ids(sessions, job.id) == events_before[job.id]
    assert not local_store.exists(farm["own_proxy"]) and local_store.exists(farm["shared_proxy"])
    assert old_b.local_output is not None and old_b.local_output.exists()
    assert all(local_store.exists(k) for k in farm["recent"].keys.values())

    # the archive: records and events of both jobs, and the signed checkpoint
    with tarfile.open(archive) as tar:
        files = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    assert set(files) == {"manifest.json", "jobs.jsonl", "events.jsonl", "checkpoint.json"}
    records = [json.loads(line) for line in files["jobs.jsonl"].splitlines()]
    assert sorted(r["id"] for r in records) == sorted([old_a.id, old_b.id])
    assert all(r["windows"] and r["artifacts"] for r in records)
    archived_events = [json.loads(line) for line in files["events.jsonl"].splitlines()]
    assert sorted(e["id"] for e in archived_events) == sorted(sum(events_before.values(), []))
    checkpoint = json.loads(files["checkpoint.json"])
    key_path = tmp_path / "data" / KEY_FILE
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    key = audit_key(tmp_path / "data")

    assert checkpoint["archive_sha256"] == hashlib.sha256(files["manifest.json"]).hexdigest()
    assert checkpoint["hmac_sha256"] == checkpoint_hmac(
        key, last_event_id=checkpoint["last_event_id"], last_hash=checkpoint["last_hash"],
        archive_sha256=checkpoint["archive_sha256"], pruned_job_ids=sorted([old_a.id, old_b.id]))
    with unit_of_work(sessions) as s:
        (event,) = HistoryRepo(s).events_by_id([checkpoint["event_id"]])
    assert event.kind == "history.pruned" and event.prev_hash == checkpoint["last_hash"]
    assert event.payload == {k: v for k, v in checkpoint.items() if k != "event_id"}

    code, out, err = foley(capsys, "audit", "verify", "--all")
    assert code == 0 and out.startswith("all jobs: ok") and "4 artifacts re-hashed" in out, out + err
    code, out, err = foley(capsys, "audit", "verify-archive", str(archive))
    assert (code, out) == (0, f"archive {archive}: ok\n"), err
    # nothing left to prune; the archive is never overwritten
    code, out, _ = foley(capsys, "history", "prune", "--older-than", "30", "--archive", str(archive), "--yes")
    assert code == 0 and out.startswith("prune: nothing to prune")


def test_directory_archive_with_an_env_key_detects_a_changed_archive(
    farm, monkeypatch: pytest.MonkeyPatch, sessions: sessionmaker[Session], tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("FOLEY_AUDIT_KEY", "studio-secret")
    archive = tmp_path / "archive-dir"
    code, out, err = foley(capsys, "history", "prune", "--older-than", "30", "--archive", str(archive), "--yes")
    assert code == 0, err
    names = sorted(p.name for p in archive.iterdir())
    assert names == ["checkpoint.json", "events.jsonl", "jobs.jsonl", "manifest.json"]
    assert not (tmp_path / "data" / KEY_FILE).exists()
    assert foley(capsys, "audit", "verify-archive", str(archive))[0] == 0
    monkeypatch.setenv("FOLEY_AUDIT_KEY", "another-key")
    code, out, _ = foley(capsys, "audit", "verify-archive", str(archive))
    assert code != 0 and "HMAC does not verify" in out
    monkeypatch.setenv("FOLEY_AUDIT_KEY", "studio-secret")
    with open(archive / "jobs.jsonl", "a", encoding="utf-8") as f:
        f.write("{}\n")
    code, out, _ = foley(capsys, "audit", "verify-archive", str(archive))
    assert code != 0 and "jobs.jsonl: its SHA-256 does not match the manifest" in out

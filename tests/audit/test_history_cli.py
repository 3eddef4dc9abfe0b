"""`foley history` and `foley audit verify|show` through the real entry point (render_farm.cli.main,
and once as `python -m render_farm` in a subprocess), configured by FOLEY_* variables."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from render_farm.cli import main
from storage.blobs import LocalBlobStore, S3BlobStore
from storage.db import make_engine, make_sessionmaker, unit_of_work
from storage.models import JobState
from storage.repos import JobRepo
from tests.audit.factory import T0, build_job, event_ids, tamper

REPO = Path(__file__).resolve().parents[2]


def foley(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Run `foley ARGS` in-process: (exit code, stdout, stderr)."""
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def _set_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, store: LocalBlobStore) -> dict[str, str]:
    values = {
        "FOLEY_DATA_DIR": str(tmp_path / "data"),
        "FOLEY_DATABASE_URL": db_url,
        "FOLEY_STORE": store.root.as_uri(),
    }
    monkeypatch.chdir(tmp_path)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return values


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, db_url: str, local_store: LocalBlobStore) -> dict[str, str]:
    """FOLEY_* variables naming the test database (SQLite, then PostgreSQL) and a local store."""
    return _set_env(monkeypatch, tmp_path, db_url, local_store)


@pytest.fixture
def sqlite_env(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sqlite_migrated_url: str, local_store: LocalBlobStore
) -> dict[str, str]:
    return _set_env(monkeypatch, tmp_path, sqlite_migrated_url, local_store)


def test_history_pages_through_filtered_jobs_with_the_printed_cursor(
    env: dict[str, str], sessions: sessionmaker[Session], capsys: pytest.CaptureFixture[str]
) -> None:
    with unit_of_work(sessions) as s:
        jobs = JobRepo(s)
        made = []
        for i in range(7):
            job = jobs.create(project="ep101" if i % 2 else "ep102", submitted_by="ann", input_uri="file:///in.mp4",
                              seed=i, model_name="tiny", now=T0 + timedelta(days=i))
            if i >= 3:
                jobs.transition(job.id, [JobState.QUEUED], JobState.DONE)
            made.append(job.id)
    newest_first = made[::-1]

    seen: list[str] = []
    args = ["history", "--format", "json", "--limit", "3"]
    for _ in range(5):
        code, out, err = foley(capsys, *args)
        assert code == 0, err
        seen += [record["id"] for record in json.loads(out)]
        if not err:
            break
        assert err.startswith("more jobs: --cursor ") and err.count("\n") == 1, err
        args = ["history", "--format", "json", "--limit", "3", "--cursor", err.split()[-1]]
    assert seen == newest_first

    code, out, _ = foley(capsys, "history", "--format", "csv", "--project", "ep101", "--state", "done,failed")
    assert code == 0
    assert [line.split(",")[0] for line in out.splitlines()[1:]] == [made[5], made[3]]
    # --until with a date includes that whole day; --since is inclusive
    day = lambda i: (T0 + timedelta(days=i)).date().isoformat()  # noqa: E731
    code, out, _ = foley(capsys, "history", "--since", day(2), "--until", day(4), "--format", "json")
    assert code == 0 and [r["id"] for r in json.loads(out)] == [made[4], made[3], made[2]]
    code, out, _ = foley(capsys, "history", "--user", "bob")
    assert code == 0 and out == "no jobs\n"


def test_audit_verify_passes_then_names_each_finding_after_tampering(
    env: dict[str, str], db_url: str, sessions: sessionmaker[Session], local_store: LocalBlobStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = build_job(sessions, local_store, seed=1)
    b = build_job(sessions, local_store, seed=2, created_at=T0 + timedelta(hours=1))
    code, out, err = foley(capsys, "audit", "verify", "--all")
    assert (code, err) == (0, "") and out == "all jobs: ok (8 events in the chain, 6 artifacts re-hashed)\n"
    code, out, err = foley(capsys, "audit", "verify", a.id)
    assert code == 0 and out.startswith(f"job {a.id}: ok")
    code, out, err = foley(capsys, "history", "--format", "json")
    assert code == 0 and [(r["id"], r["output_sha256"]) for r in json.loads(out)] == [
        (job.id, local_store.stat(job.keys["output"]).sha256) for job in (b, a)
    ]

    victim = event_ids(sessions, b.id)[-1]
    tamper(db_url, "UPDATE events SET actor = 'mallory' WHERE id = :id", id=victim)
    local_store.object_path(a.keys["output"]).write_bytes(b"remixed")
    code, out, err = foley(capsys, "audit", "verify", "--all")
    assert code == 5
    lines = out.splitlines()
    assert len(lines) == 2, out
    assert lines[0].startswith(f"event-edited: event {victim} (job.done) of job {b.id}: ")
    assert lines[1].startswith(f"blob-corrupt: output artifact {a.keys['output']} of job {a.id}: ")
    assert err.count("\n") == 1 and err.startswith("foley: error: audit failed: all jobs: 2 findings")


def test_audit_show_prints_the_lineage(
    env: dict[str, str], sessions: sessionmaker[Session], local_store: LocalBlobStore,
    capsys: pytest.CaptureFixture[str],
) -> None:
    a = build_job(sessions, local_store, seed=5)
    code, out, err = foley(capsys, "audit", "show", a.id)
    assert code == 0 and err == ""
    assert out.startswith(f"job {a.id}\n") and "windows (2)" in out and "events (4)" in out
    assert local_store.stat(a.keys["output"]).sha256 in out


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["audit", "show", "0" * 32], 3, f"no job {'0' * 32}"),
        (["audit", "verify", "deadbeef"], 3, "no job deadbeef"),
        (["audit", "verify"], 2, "give a JOB_ID or --all"),
        (["history", "--since", "last tuesday"], 2, "--since: not a date or time: 'last tuesday'"),
        (["history", "--until", "2026-02-30"], 2, "--until: not a date or time"),
        (["history", "--state", "done,exploded"], 2, "unknown job state 'exploded'"),
        (["history", "--cursor", "page-2"], 2, "not a history cursor"),
        (["history", "--limit", "0"], 2, "--limit"),
        (["history", "--format", "xml"], 2, "--format"),
    ],
)
def test_bad_input_is_one_line_and_a_non_zero_exit(
    sqlite_env: dict[str, str], capsys: pytest.CaptureFixture[str], args: list[str], code: int, message: str
) -> None:
    got, out, err = foley(capsys, *args)
    assert got == code, (got, err)
    assert out == "" and err.count("\n") == 1 and err.startswith("foley: error: ") and message in err, err


def test_python_m_render_farm_audits_an_s3_store(
    sqlite_migrated_url: str, s3_store: S3BlobStore, s3_client: Any, s3_bucket: str, s3_endpoint: str, tmp_path: Path
) -> None:
    engine = make_engine(sqlite_migrated_url)
    sessions = make_sessionmaker(engine)
    a = build_job(sessions, s3_store, seed=1)
    engine.dispose()
    body = b"replaced"
    s3_client.put_object(Bucket=s3_bucket, Key=s3_store.prefix + a.keys["latents0"], Body=body,
                         Metadata={"sha256": hashlib.sha256(body).hexdigest()})
    env = dict(os.environ, FOLEY_DATA_DIR=str(tmp_path / "data"), FOLEY_DATABASE_URL=sqlite_migrated_url,
               FOLEY_STORE=f"s3://{s3_bucket}/farm/store", FOLEY_S3_ENDPOINT_URL=s3_endpoint)
    result = subprocess.run([sys.executable, "-m", "render_farm", "audit", "verify", "--all"], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 5, result.stderr
    assert result.stdout.splitlines() == [
        f"blob-mismatch: latents artifact {a.keys['latents0']} of job {a.id}: store object "
        f"s3://{s3_bucket}/farm/store/{a.keys['latents0']} holds {len(body)} bytes with sha256 "
        f"{hashlib.sha256(body).hexdigest()}, the artifact row records "
        f"{s3_store.stat(a.keys['latents1']).size_bytes} bytes with sha256 "
        f"{hashlib.sha256(f'latents {a.id} 0'.encode() * 10).hexdigest()}"
    ]
    assert result.stderr.splitlines() == ["foley: error: audit failed: all jobs: 1 finding (4 events in the chain, "
                                          "3 artifacts re-hashed)"]

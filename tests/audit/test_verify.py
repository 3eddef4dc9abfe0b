"""render_farm.audit.verify: untouched history verifies; an edited, deleted, inserted or
rewritten event, and a changed or missing blob (local store, local file, S3), are each named."""
from __future__ import annotations

import hashlib
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.orm import Session, sessionmaker

from render_farm.audit.verify import Finding, verify
from storage.blobs import LocalBlobStore, S3BlobStore
from storage.db import unit_of_work
from storage.errors import NotFound
from storage.models import ArtifactKind
from storage.repos import ArtifactRepo, EventRepo
from storage.repos.events import GENESIS_HASH, event_hash
from tests.audit.factory import T0, BuiltJob, build_job, event_ids, tamper


@pytest.fixture
def two_jobs(sessions: sessionmaker[Session], local_store: LocalBlobStore, tmp_path: Path) -> tuple[BuiltJob, BuiltJob]:
    a = build_job(sessions, local_store, seed=1, local_dir=tmp_path / "deliveries")
    b = build_job(sessions, local_store, seed=2, project="ep102", created_at=T0 + timedelta(hours=1),
                  local_dir=tmp_path / "deliveries")
    return a, b


def _problems(findings: list[Finding]) -> list[tuple[str, str | None]]:
    return [(f.problem, f.job_id) for f in findings]


def test_untouched_history_verifies(
    sessions: sessionmaker[Session], local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    report = verify(sessions, lambda: local_store)
    assert report.ok, [f.line() for f in report.findings]
    # per job: submitted + 2 window.done + job.done; artifacts: 2 latents + output + local stem
    assert (report.events_checked, report.artifacts_checked) == (8, 8)
    one = verify(sessions, lambda: local_store, job_id=two_jobs[0].id)
    assert one.ok and one.artifacts_checked == 4 and one.events_checked == 8
    assert "ok" in one.summary() and two_jobs[0].id in one.summary()


def test_unknown_job_is_not_found(sessions: sessionmaker[Session], local_store: LocalBlobStore) -> None:
    with pytest.raises(NotFound, match="no job feedface"):
        verify(sessions, lambda: local_store, job_id="feedface")


def test_edited_event_is_named(
    sessions: sessionmaker[Session], db_url: str, local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, _ = two_jobs
    victim = event_ids(sessions, a.id)[0]  # job.submitted, payload {"seed": 1}
    assert tamper(db_url, "UPDATE events SET payload = '{\"seed\": 7}' WHERE id = :id", id=victim) == 1
    report = verify(sessions, lambda: local_store)
    assert _problems(report.findings) == [("event-edited", a.id)]
    line = report.findings[0].line()
    assert line.startswith(f"event-edited: event {victim} (job.submitted) of job {a.id}: "), line


def test_deleted_event_is_named(
    sessions: sessionmaker[Session], db_url: str, local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, b = two_jobs
    ids = event_ids(sessions, a.id)
    assert tamper(db_url, "DELETE FROM events WHERE id = :id", id=ids[1]) == 1
    report = verify(sessions, lambda: local_store, job_id=b.id)  # the chain is checked whole
    assert _problems(report.findings) == [("event-link", a.id)]
    finding = report.findings[0]
    assert finding.subject == f"event {ids[2]} (window.done)"
    assert f"event {ids[1]} missing" in finding.detail and f"does not match event {ids[0]}" in finding.detail


def test_deleted_first_events_are_named(
    sessions: sessionmaker[Session], db_url: str, local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, _ = two_jobs
    ids = event_ids(sessions, a.id)
    assert tamper(db_url, "DELETE FROM events WHERE id <= :id", id=ids[1]) == 2
    report = verify(sessions, lambda: local_store)
    assert [f.subject for f in report.findings] == [f"event {ids[2]} (window.done)"]
    assert "events before it were deleted" in report.findings[0].detail


def test_inserted_event_is_named(
    sessions: sessionmaker[Session], db_url: str, local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, _ = two_jobs
    first = event_ids(sessions, a.id)[0]
    with unit_of_work(sessions) as s:
        at = EventRepo(s).list_for_job(a.id)[0].at
    # A forged event placed before the first one, with a correctly computed hash of its own.
    payload: dict[str, Any] = {"seed": 99}
    forged = event_hash(GENESIS_HASH, at=at, job_id=a.id, window_id=None, kind="job.submitted", actor="mallory",
                        payload=payload)
    tamper(
        db_url,
        "INSERT INTO events (id, at, job_id, window_id, kind, actor, payload, prev_hash, hash) "
        "VALUES (:id, :at, :job, NULL, 'job.submitted', 'mallory', '{\"seed\": 99}', :prev, :hash)",
        id=first - 1, at=at if db_url.startswith("postgresql") else at.strftime("%Y-%m-%d %H:%M:%S.%f"),
        job=a.id, prev=GENESIS_HASH, hash=forged,
    )
    report = verify(sessions, lambda: local_store)
    assert [f.subject for f in report.findings] == [f"event {first} (job.submitted)"]
    assert report.findings[0].problem == "event-link"
    assert f"event {first - 1} was inserted or rewritten" in report.findings[0].detail
    assert report.events_checked == 9


def test_rewritten_event_with_recomputed_hash_is_named_by_its_successor(
    sessions: sessionmaker[Session], db_url: str, local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, _ = two_jobs
    with unit_of_work(sessions) as s:
        events = EventRepo(s).list_for_job(a.id)
    victim = events[0]
    rehashed = event_hash(victim.prev_hash, at=victim.at, job_id=victim.job_id, window_id=None, kind=victim.kind,
                          actor=victim.actor, payload={"seed": 1000})
    tamper(db_url, "UPDATE events SET payload = '{\"seed\": 1000}', hash = :h WHERE id = :id", h=rehashed, id=victim.id)
    report = verify(sessions, lambda: local_store)
    assert [(f.problem, f.subject) for f in report.findings] == [("event-link", f"event {events[1].id} (window.done)")]
    assert f"event {victim.id} was inserted or rewritten" in report.findings[0].detail


def test_changed_and_missing_blobs_in_a_local_store_and_in_place_are_each_named(
    sessions: sessionmaker[Session], local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, b = two_jobs
    # bytes changed behind the store's back: the store's own record catches it
    local_store.object_path(a.keys["latents1"]).write_bytes(b"not the latents")
    # bytes and the store's record both replaced: the artifact row catches it
    local_store.delete(b.keys["output"])
    local_store.put(b.keys["output"], b"a different mix")
    # an output written in place, edited; another one gone
    assert a.local_output is not None and b.local_output is not None
    a.local_output.write_bytes(b"edited stem")
    b.local_output.unlink()
    # a store object gone
    local_store.delete(b.keys["latents0"])

    report = verify(sessions, lambda: local_store)
    by_subject = {(f.job_id, f.subject): f for f in report.findings}
    assert len(report.findings) == 5, [f.line() for f in report.findings]
    corrupt = by_subject[(a.id, f"latents artifact {a.keys['latents1']}")]
    assert corrupt.problem == "blob-corrupt" and "corrupt" in corrupt.detail
    mismatch = by_subject[(b.id, f"output artifact {b.keys['output']}")]
    assert mismatch.problem == "blob-mismatch"
    assert hashlib.sha256(b"a different mix").hexdigest() in mismatch.detail
    edited = by_subject[(a.id, f"stem artifact {a.local_output.name}")]
    assert edited.problem == "blob-mismatch" and str(a.local_output) in edited.detail
    assert by_subject[(b.id, f"stem artifact {b.local_output.name}")].problem == "blob-missing"
    assert by_subject[(b.id, f"latents artifact {b.keys['latents0']}")].problem == "blob-missing"
    # auditing job a alone names only a's blobs
    assert {f.job_id for f in verify(sessions, lambda: local_store, job_id=a.id).findings} == {a.id}


def test_s3_objects_changed_behind_the_stores_back_are_named(
    sqlite_migrated_url: str, s3_store: S3BlobStore, s3_client: Any, s3_bucket: str, tmp_path: Path
) -> None:
    from storage.db import make_engine, make_sessionmaker

    engine = make_engine(sqlite_migrated_url)
    sessions = make_sessionmaker(engine)
    a = build_job(sessions, s3_store, seed=1)
    b = build_job(sessions, s3_store, seed=2, created_at=T0 + timedelta(hours=1))
    assert verify(sessions, lambda: s3_store).ok

    full = s3_store.prefix
    # overwritten without the sha256 metadata the store records
    s3_client.put_object(Bucket=s3_bucket, Key=full + a.keys["output"], Body=b"swapped")
    # overwritten with metadata that matches the new bytes: only the artifact row disagrees
    evil = b"swapped with care"
    s3_client.put_object(Bucket=s3_bucket, Key=full + b.keys["latents1"], Body=evil,
                         Metadata={"sha256": hashlib.sha256(evil).hexdigest()})
    # removed
    s3_client.delete_object(Bucket=s3_bucket, Key=full + b.keys["output"])

    # an archived copy in another prefix of the bucket, registered by its s3:// uri
    archive = S3BlobStore(s3_bucket, "archive", endpoint_url=s3_store.endpoint_url, client=s3_store.client)
    kept, lost = archive.put("a/mix.wav", b"archived mix"), archive.put("a/dialogue.wav", b"archived dialogue")
    with unit_of_work(sessions) as s:
        for info in (kept, lost):
            ArtifactRepo(s).add(a.id, ArtifactKind.STEM, info.key, uri=archive.uri(info.key), sha256=info.sha256,
                                size_bytes=info.size_bytes)
    s3_client.put_object(Bucket=s3_bucket, Key="archive/" + lost.key, Body=b"re-recorded",
                         Metadata={"sha256": hashlib.sha256(b"re-recorded").hexdigest()})

    report = verify(sessions, lambda: s3_store)
    got = sorted((f.problem, f.job_id, f.subject) for f in report.findings)
    assert got == sorted([
        ("blob-corrupt", a.id, f"output artifact {a.keys['output']}"),
        ("blob-mismatch", b.id, f"latents artifact {b.keys['latents1']}"),
        ("blob-missing", b.id, f"output artifact {b.keys['output']}"),
        ("blob-mismatch", a.id, f"stem artifact {lost.key}"),
    ]), [f.line() for f in report.findings]
    assert all(f"s3://{s3_bucket}/" in f.detail for f in report.findings)
    assert report.artifacts_checked == 8
    engine.dispose()


def test_artifact_outside_every_known_place_cannot_verify(
    sessions: sessionmaker[Session], local_store: LocalBlobStore, two_jobs: tuple[BuiltJob, BuiltJob]
) -> None:
    a, _ = two_jobs
    with unit_of_work(sessions) as s:
        ArtifactRepo(s).add(a.id, ArtifactKind.REPORT, "report.json", uri="https://example.com/report.json",
                            sha256="0" * 64, size_bytes=1)
    report = verify(sessions, lambda: local_store, job_id=a.id)
    assert [(f.problem, f.subject) for f in report.findings] == [("blob-unverifiable", "report artifact report.json")]

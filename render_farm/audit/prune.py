"""Prune old render history: archive finished jobs, delete their blobs and rows, sign a checkpoint.

    plan = plan_prune(sessions, store, older_than_days=90)        # read-only: what would go
    print(plan.describe())
    result = execute_prune(sessions, store, plan, Path("ep101-2026.tar.gz"), key=audit_key(data_dir))

What is selected: jobs done, failed or cancelled whose creation and last change are both older
than the cutoff (optionally of one project).

What happens, in this order, so that a failure never loses history:
1. The archive is written next to its final path: `jobs.jsonl` (one full record per job, as
   `foley history export --format jsonl` writes it: job fields, provenance, windows, artifacts),
   `events.jsonl` (every event of those jobs, with prev_hash and hash) and `manifest.json` (the
   SHA-256, size and line count of both). The archive's SHA-256 is the SHA-256 of manifest.json,
   which names the hash of every data file, so it is known before the archive is packed.
2. One transaction: read the newest event (id, hash); compute the checkpoint HMAC-SHA256 over
   canonical JSON of {last_event_id, last_hash, archive_sha256, pruned_job_ids (sorted)}; append
   the `history.pruned` event carrying the checkpoint (its prev_hash must be that last hash);
   delete the jobs' artifact, window and job rows (events stay: the log is append-only, and the
   chain still verifies); write `checkpoint.json` into the archive and move the archive to its
   final path (a directory, or a .tar.gz/.tgz file); commit. If anything fails the transaction
   rolls back and no archive is left behind.
3. After the commit, delete the jobs' blobs from the configured store: latents, proxies, outputs,
   stems, reports, except any blob an artifact of a remaining job still points to (a proxy is
   shared by every job of the same input). Inputs are never deleted (they are the studio's media,
   content-addressed and reused by later jobs), nor is anything outside the store (a local output
   written with `-o` stays where it is).

The key: FOLEY_AUDIT_KEY, or a random key in `<data dir>/audit.key`, created on first use with
mode 0600 (a key file others can read is refused). `verify_archive` checks an archive against its
checkpoint and, given the database, against the `history.pruned` event.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import shutil
import stat
import tarfile
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from render_farm.audit.history import full_record, iso, load_extras
from storage.blobs import BlobStore
from storage.db import unit_of_work
from storage.errors import Conflict, FoleyError, IntegrityError, InvalidInput, NotFound
from storage.models import ArtifactKind, utcnow
from storage.repos import EventRepo
from storage.repos.history import HistoryRepo
from storage.repos.lineage import LineageRepo

log = logging.getLogger(__name__)

ARCHIVE_FORMAT = "foley-history-archive/1"
EVENT_KIND = "history.pruned"
KEY_FILE = "audit.key"
KEY_ENV = "FOLEY_AUDIT_KEY"
JOBS_FILE, EVENTS_FILE = "jobs.jsonl", "events.jsonl"
MANIFEST_FILE, CHECKPOINT_FILE = "manifest.json", "checkpoint.json"
_KEEP_KINDS = (ArtifactKind.INPUT,)  # never deleted by a prune


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


# -- the key and the checkpoint ----------------------------------------------------------------


def audit_key(data_dir: Path, environ: Mapping[str, str] | None = None) -> bytes:
    """The HMAC key: FOLEY_AUDIT_KEY if set, else `<data_dir>/audit.key` (created on first use,
    mode 0600). A key file readable or writable by group or others is refused."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return env[KEY_ENV].encode("utf-8")
    path = data_dir / KEY_FILE
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: use that one
        else:
            with os.fdopen(fd, "w", encoding="ascii") as f:
                f.write(secrets.token_hex(32) + "\n")
            log.info("created audit key %s", path)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise IntegrityError(f"{path}: audit key file has mode {mode:04o}; it must be 0600 (chmod 600 {path})")
    key = path.read_text(encoding="ascii").strip()
    if not key:
        raise IntegrityError(f"{path}: audit key file is empty")
    return key.encode("ascii")


def key_id(key: bytes) -> str:
    """A short public name of a key (to tell which key signed), not usable to forge."""
    return hashlib.sha256(b"foley-audit-key-id:" + key).hexdigest()[:16]


def checkpoint_hmac(key: bytes, *, last_event_id: int, last_hash: str, archive_sha256: str,
                    pruned_job_ids: Sequence[str]) -> str:
    """HMAC-SHA256 (hex) over canonical JSON of the checkpoint's fields (job ids sorted)."""
    message = _canonical({"last_event_id": last_event_id, "last_hash": last_hash, "archive_sha256": archive_sha256,
                          "pruned_job_ids": sorted(pruned_job_ids)})
    return hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


# -- the plan ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class PrunedBlob:
    job_id: str
    kind: str
    key: str  # the store key
    uri: str
    size_bytes: int


@dataclass
class PrunePlan:
    """What a prune would archive and delete (read-only until executed)."""

    cutoff: datetime
    project: str | None
    records: list[dict[str, Any]]  # full job records, oldest first
    events: list[dict[str, Any]]
    blobs: list[PrunedBlob]  # store objects to delete (unless shared when executed)
    shared: list[PrunedBlob]  # store objects still used by remaining jobs: kept
    kept_inputs: list[str]  # input uris in the store: kept
    outside_store: list[str]  # uris of artifacts outside the store (local outputs): never touched

    @property
    def job_ids(self) -> list[str]:
        return [r["id"] for r in self.records]

    def describe(self) -> str:
        """What will be deleted, as lines a person can check before confirming."""
        if not self.records:
            scope = f" of project {self.project}" if self.project else ""
            return f"prune: nothing to prune (no finished jobs{scope} from before {iso(self.cutoff)})\n"
        per_job: dict[str, list[PrunedBlob]] = {}
        for b in self.blobs:
            per_job.setdefault(b.job_id, []).append(b)
        lines = [f"prune: {len(self.records)} finished job{'s' * (len(self.records) != 1)} from before "
                 f"{iso(self.cutoff)}: their job, window and artifact rows will be deleted (events are kept)"]
        for r in self.records:
            mine = per_job.get(r["id"], [])
            lines.append(f"  {r['id']}  {r['state']:9}  {r['created_at']}  {r['project']}  "
                         f"{len(mine)} blobs, {_size(sum(b.size_bytes for b in mine))}")
        kinds = Counter(b.kind for b in self.blobs)
        lines.append(f"blobs to delete from the store: {len(self.blobs)} "
                     f"({_size(sum(b.size_bytes for b in self.blobs))}"
                     + (": " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) if kinds else "") + ")")
        for b in self.blobs:
            lines.append(f"  delete {b.uri}")
        if self.shared:
            lines.append(f"kept: {len(self.shared)} blobs shared with remaining jobs")
        if self.kept_inputs:
            lines.append(f"kept: {len(self.kept_inputs)} inputs in the store")
        if self.outside_store:
            lines.append(f"kept: {len(self.outside_store)} files outside the store (never deleted), e.g. "
                         f"{self.outside_store[0]}")
        return "\n".join(lines) + "\n"


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} B" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"


def _store_prefix(store: BlobStore) -> str:
    return store.uri("k")[:-1]  # uri(key) is prefix + key


def _event_record(e: Any) -> dict[str, Any]:
    return {"id": e.id, "at": e.at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "job_id": e.job_id,
            "window_id": e.window_id, "kind": e.kind, "actor": e.actor, "payload": dict(e.payload),
            "prev_hash": e.prev_hash, "hash": e.hash}


def plan_prune(sessions: sessionmaker[Session], store: BlobStore, *, older_than_days: float,
               project: str | None = None, now: datetime | None = None, limit: int = 10_000) -> PrunePlan:
    """Select finished jobs older than `older_than_days` and everything a prune would do to them."""
    if not older_than_days >= 0:
        raise InvalidInput(f"--older-than must be 0 days or more, not {older_than_days}")
    cutoff = (now or utcnow()) - timedelta(days=older_than_days)
    prefix = _store_prefix(store)
    with unit_of_work(sessions) as session:
        lineage = LineageRepo(session)
        jobs = lineage.finished_before(cutoff, project=project, limit=limit)
        ids = [j.id for j in jobs]
        windows, artifacts = lineage.windows_of_jobs(ids), lineage.artifacts_of_jobs(ids)
        extras = load_extras(session, ids)
        records = [full_record(j, windows.get(j.id, []), artifacts.get(j.id, []), extras[j.id]) for j in jobs]
        events = [_event_record(e) for e in lineage.events_of_jobs(ids)]
        candidates: list[PrunedBlob] = []
        kept_inputs: list[str] = []
        outside: list[str] = []
        seen: set[str] = set()
        for job_id in ids:
            for a in artifacts.get(job_id, []):
                if not a.uri.startswith(prefix):
                    outside.append(a.uri)
                elif a.kind in _KEEP_KINDS:
                    kept_inputs.append(a.uri)
                elif a.uri not in seen:  # two pruned jobs may share a proxy: delete it once
                    seen.add(a.uri)
                    candidates.append(PrunedBlob(job_id, a.kind.value, a.uri[len(prefix):], a.uri, a.size_bytes))
        used = lineage.uris_used_by_others([b.uri for b in candidates], ids)
    return PrunePlan(
        cutoff=cutoff, project=project, records=records, events=events,
        blobs=[b for b in candidates if b.uri not in used], shared=[b for b in candidates if b.uri in used],
        kept_inputs=sorted(set(kept_inputs)), outside_store=outside,
    )


# -- doing it ----------------------------------------------------------------------------------


@dataclass
class PruneResult:
    archive: Path
    archive_sha256: str
    checkpoint: dict[str, Any]
    event_id: int
    jobs_deleted: int
    blobs_deleted: int = 0
    blobs_kept_shared: int = 0
    blob_errors: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = (f"pruned {self.jobs_deleted} jobs: archive {self.archive} (sha256 {self.archive_sha256}), "
                f"{self.blobs_deleted} blobs deleted, checkpoint event #{self.event_id} ({EVENT_KIND})")
        if self.blob_errors:
            text += f"; {len(self.blob_errors)} blobs could not be deleted (orphans, no longer referenced)"
        return text


def _is_tarball(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz"))


def _write_lines(path: Path, docs: Sequence[dict[str, Any]]) -> dict[str, Any]:
    digest, size = hashlib.sha256(), 0
    with open(path, "wb") as f:
        for doc in docs:
            line = (json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
            f.write(line)
            digest.update(line)
            size += len(line)
    return {"sha256": digest.hexdigest(), "size_bytes": size, "lines": len(docs)}


def _stage_archive(plan: PrunePlan, staging: Path) -> str:
    """Write the data files and the manifest into `staging`; the archive SHA-256 (of the manifest)."""
    staging.mkdir(parents=True)
    files = {JOBS_FILE: _write_lines(staging / JOBS_FILE, plan.records),
             EVENTS_FILE: _write_lines(staging / EVENTS_FILE, plan.events)}
    manifest = {"format": ARCHIVE_FORMAT, "created_at": iso(utcnow()), "cutoff": iso(plan.cutoff),
                "project": plan.project, "job_ids": sorted(plan.job_ids), "files": files}
    data = (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode("utf-8")
    (staging / MANIFEST_FILE).write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def _finalize_archive(staging: Path, archive: Path) -> None:
    """Move the staged archive to `archive`: a directory, or packed as .tar.gz."""
    if _is_tarball(archive):
        tmp = archive.with_name(f".{archive.name}.tmp-{os.getpid()}")
        with tarfile.open(tmp, "w:gz") as tar:
            for name in (MANIFEST_FILE, JOBS_FILE, EVENTS_FILE, CHECKPOINT_FILE):
                tar.add(staging / name, arcname=name)
        os.replace(tmp, archive)
        shutil.rmtree(staging)
    else:
        os.rename(staging, archive)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def execute_prune(sessions: sessionmaker[Session], store: BlobStore, plan: PrunePlan, archive: Path, *,
                  key: bytes, actor: str) -> PruneResult:
    """Archive, sign, delete rows, then delete blobs (see the module docstring for the order)."""
    if not plan.records:
        raise InvalidInput("prune: nothing to prune")
    archive = archive.absolute()
    if archive.exists():
        raise Conflict(f"{archive}: already exists (an archive is never overwritten)")
    if not archive.parent.is_dir():
        raise InvalidInput(f"{archive.parent}: archive directory does not exist")
    staging = archive.with_name(f".{archive.name}.staging-{os.getpid()}")
    ids = sorted(plan.job_ids)
    finalized = False
    try:
        archive_sha256 = _stage_archive(plan, staging)
        with unit_of_work(sessions) as session:
            last = LineageRepo(session).last_event()
            checkpoint = {
                "last_event_id": last.id, "last_hash": last.hash, "archive_sha256": archive_sha256,
                "pruned_job_ids": ids, "archive": archive.name, "cutoff": iso(plan.cutoff), "key_id": key_id(key),
                "hmac_sha256": checkpoint_hmac(key, last_event_id=last.id, last_hash=last.hash,
                                               archive_sha256=archive_sha256, pruned_job_ids=ids),
            }
            event = EventRepo(session).append(EVENT_KIND, actor=actor, payload=checkpoint)
            if event.prev_hash != last.hash:
                raise Conflict("prune: the event log moved while the checkpoint was signed; run it again")
            deleted = LineageRepo(session).delete_jobs(ids)
            if deleted != len(ids):
                raise Conflict(f"prune: {len(ids) - deleted} of the planned jobs changed or went meanwhile; "
                               "run it again")
            (staging / CHECKPOINT_FILE).write_text(
                json.dumps({**checkpoint, "event_id": event.id}, indent=2, sort_keys=True) + "\n", encoding="utf-8")
            _finalize_archive(staging, archive)
            finalized = True
            event_id = event.id
    except BaseException:
        _remove(staging)
        if finalized:
            _remove(archive)  # the transaction did not commit: the archive records nothing that happened
        raise
    log.info("pruned %d jobs into %s (checkpoint event %s)", len(ids), archive, event_id)
    result = PruneResult(archive, archive_sha256, checkpoint, event_id, deleted)
    _delete_blobs(sessions, store, plan, result)
    return result


def _delete_blobs(sessions: sessionmaker[Session], store: BlobStore, plan: PrunePlan, result: PruneResult) -> None:
    """Delete the pruned jobs' blobs, re-checking just before that no remaining job uses them."""
    with unit_of_work(sessions) as session:
        used = LineageRepo(session).uris_used_by_others([b.uri for b in plan.blobs], [])
    for blob in plan.blobs:
        if blob.uri in used:
            result.blobs_kept_shared += 1
            continue
        try:
            store.delete(blob.key)
            result.blobs_deleted += 1
        except FoleyError as exc:
            log.warning("prune: job %s: cannot delete %s: %s", blob.job_id, blob.uri, exc)
            result.blob_errors.append(f"{blob.uri}: {exc}")


# -- checking an archive -----------------------------------------------------------------------


def read_archive(path: Path) -> dict[str, bytes]:
    """The files of an archive (directory or .tar.gz) by name."""
    if not path.exists():
        raise NotFound(f"{path}: no such archive")
    names = (MANIFEST_FILE, JOBS_FILE, EVENTS_FILE, CHECKPOINT_FILE)
    files: dict[str, bytes] = {}
    if path.is_dir():
        for name in names:
            if (path / name).is_file():
                files[name] = (path / name).read_bytes()
        return files
    try:
        with tarfile.open(path, "r:gz") as tar:
            for member in tar.getmembers():
                if member.name in names and member.isfile():
                    handle = tar.extractfile(member)
                    assert handle is not None, f"{member.name=}"
                    files[member.name] = handle.read()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise InvalidInput(f"{path}: not a history archive ({exc})") from None
    return files


def verify_archive(path: Path, key: bytes, sessions: sessionmaker[Session] | None = None) -> list[str]:
    """Problems found checking an archive (empty if it verifies): every data file against the
    manifest, the manifest against the checkpoint's archive SHA-256, the checkpoint's HMAC, and
    (with `sessions`) the `history.pruned` event in the log against the checkpoint."""
    files = read_archive(path)
    missing = [n for n in (MANIFEST_FILE, JOBS_FILE, EVENTS_FILE, CHECKPOINT_FILE) if n not in files]
    if missing:
        return [f"{path}: missing {', '.join(missing)}"]
    problems = []
    manifest = json.loads(files[MANIFEST_FILE])
    checkpoint = json.loads(files[CHECKPOINT_FILE])
    for name, entry in manifest.get("files", {}).items():
        if hashlib.sha256(files.get(name, b"")).hexdigest() != entry.get("sha256"):
            problems.append(f"{name}: its SHA-256 does not match the manifest")
    if hashlib.sha256(files[MANIFEST_FILE]).hexdigest() != checkpoint.get("archive_sha256"):
        problems.append(f"{MANIFEST_FILE}: its SHA-256 is not the checkpoint's archive_sha256")
    if sorted(manifest.get("job_ids", [])) != checkpoint.get("pruned_job_ids"):
        problems.append("the manifest and the checkpoint name different jobs")
    expected = checkpoint_hmac(key, last_event_id=checkpoint["last_event_id"], last_hash=checkpoint["last_hash"],
                               archive_sha256=checkpoint["archive_sha256"], pruned_job_ids=checkpoint["pruned_job_ids"])
    if not hmac.compare_digest(expected, str(checkpoint.get("hmac_sha256", ""))):
        problems.append("checkpoint: HMAC does not verify (another key, or the checkpoint was changed)")
    if sessions is not None:
        with unit_of_work(sessions) as session:
            found = _events_by_id(session, checkpoint.get("event_id"))
        if not found:
            problems.append(f"event #{checkpoint.get('event_id')} ({EVENT_KIND}) is not in the log")
        else:
            event = found[0]
            payload = {k: v for k, v in checkpoint.items() if k != "event_id"}
            if event["kind"] != EVENT_KIND or event["payload"] != payload:
                problems.append(f"event #{event['id']} does not carry this checkpoint")
            elif event["prev_hash"] != checkpoint["last_hash"]:
                problems.append(f"event #{event['id']} does not follow the checkpoint's last event")
    return problems


def _events_by_id(session: Session, event_id: Any) -> list[dict[str, Any]]:
    if not isinstance(event_id, int):
        return []
    return [{"id": e.id, "kind": e.kind, "payload": e.payload, "prev_hash": e.prev_hash}
            for e in HistoryRepo(session).events_by_id([event_id])]


__all__ = [
    "PrunePlan", "PruneResult", "audit_key", "checkpoint_hmac", "execute_prune", "plan_prune", "read_archive",
    "verify_archive",
]

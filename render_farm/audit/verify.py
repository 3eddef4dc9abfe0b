"""Verify the render history: the event hash chain, and every stored blob against its artifact row.

    report = verify(sessions, lambda: open_store(url, s3_endpoint_url=...), job_id=None)  # all jobs
    for finding in report.findings:
        print(finding.line())

Two checks, each naming what it finds:

1. The audit log. EventRepo.verify_chain walks the whole chain (it is one chain for every job,
   so it is checked whole even when one job is audited). Each broken event is named with its id,
   kind and job, and why: its fields no longer give its hash (it was edited), or its prev_hash
   is not the hash of the event before it (an event was deleted there, or one was inserted or
   rewritten with a recomputed hash). Deleting the newest events leaves no broken link; that
   needs an external copy of the last hash.
2. The blobs. Every artifact row is re-hashed from the bytes where its `uri` points:
   - an object of the configured store (its uri is under the store's uri, local or S3): fetched
     through the BlobStore API, which verifies the bytes against the SHA-256 the store recorded
     at write time, then that SHA-256 and size are compared with the artifact row's;
   - another `file://` path (an output written in place): SHA-256 of the file;
   - an `s3://` object in another bucket or prefix: fetched through an S3 store on the same
     endpoint and client as the configured one;
   anything else cannot be re-hashed and is reported as such (a finding, so the audit fails).
   Blobs are fetched outside any transaction, a few at a time, into a temporary directory.
"""
from __future__ import annotations

import logging
import sys
import tempfile
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from threading import Lock
from urllib.parse import unquote, urlsplit

from sqlalchemy.orm import Session, sessionmaker

from storage.blobs import BlobStore
from storage.blobs.base import file_digest
from storage.db import unit_of_work
from storage.errors import IntegrityError, InvalidInput, NotFound
from storage.repos import EventRepo
from storage.repos.events import event_hash
from storage.repos.history import ArtifactRecord, EventRecord, HistoryRepo

log = logging.getLogger(__name__)

StoreOpener = Callable[[], BlobStore]

ARTIFACT_BATCH = 200
DEFAULT_WORKERS = 4


@dataclass(frozen=True)
class Finding:
    """One thing that does not verify."""

    problem: str  # event-edited | event-link | blob-missing | blob-corrupt | blob-mismatch | blob-unverifiable
    subject: str  # "event 7 (window.done)" or "latents artifact jobs/…/0003.npy"
    job_id: str | None
    detail: str

    def line(self) -> str:
        """One line naming the problem, the thing and its job."""
        job = f" of job {self.job_id}" if self.job_id else ""
        return f"{self.problem}: {self.subject}{job}: {self.detail}"


@dataclass
class VerifyReport:
    """What `verify` checked and what it found (ok when nothing)."""

    job_id: str | None
    events_checked: int = 0
    artifacts_checked: int = 0
    findings: list[Finding] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        scope = f"job {self.job_id}" if self.job_id else "all jobs"
        verdict = "ok" if self.ok else f"{len(self.findings)} finding{'s' * (len(self.findings) != 1)}"
        return (
            f"{scope}: {verdict} ({self.events_checked} events in the chain, "
            f"{self.artifacts_checked} artifacts re-hashed)"
        )


def verify(
    sessions: sessionmaker[Session],
    store_opener: StoreOpener,
    job_id: str | None = None,
    *,
    workers: int = DEFAULT_WORKERS,
) -> VerifyReport:
    """Check the event chain and re-hash the artifacts of `job_id` (None: of every job).

    NotFound if `job_id` names no job. A store that cannot be reached raises (ServiceUnavailable)
    rather than reporting every blob as missing.
    """
    assert workers >= 1, f"{workers=}"
    report = VerifyReport(job_id=job_id)
    if job_id is not None:
        with unit_of_work(sessions) as session:
            if not HistoryRepo(session).job_ids([job_id]):
                raise NotFound(f"no job {job_id}")
    report.events_checked, chain_findings = check_chain(sessions)
    report.findings.extend(chain_findings)
    blobs = _Blobs(store_opener)
    with tempfile.TemporaryDirectory(prefix="foley-audit-") as scratch, ThreadPoolExecutor(
        max_workers=workers, thread_name_prefix="audit"
    ) as pool:
        for batch in _artifact_batches(sessions, job_id):
            results = pool.map(lambda a: blobs.check(a, Path(scratch)), batch)
            report.findings.extend(f for f in results if f is not None)
            report.artifacts_checked += len(batch)
    log.info("audit of %s: %s", job_id or "all jobs", report.summary())
    return report


# -- the event chain ---------------------------------------------------------------------------


def check_chain(sessions: sessionmaker[Session]) -> tuple[int, list[Finding]]:
    """(events in the log, one finding per broken event)."""
    with unit_of_work(sessions) as session:
        history = HistoryRepo(session)
        broken = EventRepo(session).verify_chain()
        count = history.count_events()
        findings = [_explain(event, history) for event in history.events_by_id(broken)]
    return count, findings


def _explain(event: EventRecord, history: HistoryRepo) -> Finding:
    subject = f"event {event.id} ({event.kind})"
    own = event_hash(
        event.prev_hash, at=event.at, job_id=event.job_id, window_id=event.window_id,
        kind=event.kind, actor=event.actor, payload=event.payload,
    )
    if own != event.hash:
        return Finding("event-edited", subject, event.job_id,
                       "its fields no longer match its hash: the event was edited (or forged)")
    before = history.event_before(event.id)
    if before is None:
        detail = "it is the first event left but does not chain to the genesis hash: events before it were deleted"
    elif before.id < event.id - 1:
        gap = f"event {before.id + 1}" if before.id + 1 == event.id - 1 else f"events {before.id + 1}..{event.id - 1}"
        detail = f"{gap} missing: its prev_hash does not match event {before.id} (an event was deleted)"
    else:
        detail = (
            f"its prev_hash does not match the hash of event {before.id} ({before.kind}): "
            f"an event was deleted here, or event {before.id} was inserted or rewritten"
        )
    return Finding("event-link", subject, event.job_id, detail)


# -- the blobs ---------------------------------------------------------------------------------


def _artifact_batches(sessions: sessionmaker[Session], job_id: str | None) -> Iterable[list[ArtifactRecord]]:
    """Artifacts in batches, each read in its own short transaction."""
    after: str | None = None
    while True:
        with unit_of_work(sessions) as session:
            batch = HistoryRepo(session).artifact_batch(job_id=job_id, after_id=after, limit=ARTIFACT_BATCH)
        if not batch:
            return
        yield batch
        after = batch[-1].id


class _Blobs:
    """Finds where an artifact's bytes live and re-hashes them; opens the store on first use."""

    def __init__(self, store_opener: StoreOpener) -> None:
        self._opener = store_opener
        self._store: BlobStore | None = None
        self._lock = Lock()
        self._other_s3: dict[tuple[str, str], BlobStore] = {}  # other S3 prefixes of the store's client

    def store(self) -> BlobStore:
        with self._lock:
            if self._store is None:
                self._store = self._opener()
            return self._store

    def _locate(self, uri: str) -> tuple[BlobStore, str] | Path | None:
        """(store, key) for a store object, a Path for a plain local file, None if unknown."""
        store = self.store()
        base = store.uri("k")[:-1]  # the store's uri prefix (uri(key) is prefix + key)
        if uri.startswith(base):
            return store, uri[len(base):]
        parts = urlsplit(uri)
        if parts.scheme == "file" and parts.netloc in ("", "localhost"):
            return Path(unquote(parts.path))
        s3 = sys.modules.get("storage.blobs.s3")  # loaded wherever an S3 store exists (boto3 only then)
        if parts.scheme == "s3" and parts.netloc and s3 is not None and isinstance(store, s3.S3BlobStore):
            prefix, _, key = parts.path.lstrip("/").rpartition("/")
            with self._lock:
                other = self._other_s3.get((parts.netloc, prefix))
                if other is None:
                    other = s3.S3BlobStore(parts.netloc, prefix, endpoint_url=store.endpoint_url,
                                           options=store.options, client=store.client)
                    self._other_s3[(parts.netloc, prefix)] = other
            return other, key
        return None

    def check(self, artifact: ArtifactRecord, scratch: Path) -> Finding | None:
        """None if the bytes at the artifact's uri hash to its recorded sha256, else a finding."""
        subject = f"{artifact.kind} artifact {artifact.key}"
        try:
            where = self._locate(artifact.uri)
        except InvalidInput as err:
            return Finding("blob-unverifiable", subject, artifact.job_id, f"{artifact.uri}: {err}")
        if where is None:
            return Finding("blob-unverifiable", subject, artifact.job_id,
                           f"{artifact.uri} is neither a local file nor in the configured store")
        if isinstance(where, Path):
            return self._check_file(artifact, where, subject)
        return self._check_store_object(artifact, where[0], where[1], scratch, subject)

    @staticmethod
    def _compare(artifact: ArtifactRecord, sha256: str, size_bytes: int, subject: str, source: str) -> Finding | None:
        if sha256.lower() == artifact.sha256.lower() and size_bytes == artifact.size_bytes:
            return None
        return Finding(
            "blob-mismatch", subject, artifact.job_id,
            f"{source} holds {size_bytes} bytes with sha256 {sha256}, the artifact row records "
            f"{artifact.size_bytes} bytes with sha256 {artifact.sha256}",
        )

    def _check_file(self, artifact: ArtifactRecord, path: Path, subject: str) -> Finding | None:
        try:
            sha256, size_bytes = file_digest(path)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            return Finding("blob-missing", subject, artifact.job_id, f"no file {path}")
        except OSError as err:
            return Finding("blob-unverifiable", subject, artifact.job_id, f"cannot read {path}: {err.strerror or err}")
        return self._compare(artifact, sha256, size_bytes, subject, f"file {path}")

    def _check_store_object(
        self, artifact: ArtifactRecord, store: BlobStore, key: str, scratch: Path, subject: str
    ) -> Finding | None:
        target = scratch / f"{artifact.id}.blob"
        try:
            info = store.get_file(key, target)  # verifies the bytes against the store's own sha256
        except NotFound:
            return Finding("blob-missing", subject, artifact.job_id, f"{artifact.uri} is not in the store")
        except IntegrityError as err:
            return Finding("blob-corrupt", subject, artifact.job_id, f"{artifact.uri}: {err}")
        except InvalidInput as err:
            return Finding("blob-unverifiable", subject, artifact.job_id, f"{artifact.uri}: {err}")
        finally:
            target.unlink(missing_ok=True)
        return self._compare(artifact, info.sha256, info.size_bytes, subject, f"store object {artifact.uri}")

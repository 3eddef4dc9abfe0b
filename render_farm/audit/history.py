"""Render history as text: job rows as a table, JSON or CSV, and one job's whole lineage.

A job record (`job_record`) is plain data: ids and SHA-256s as lowercase hex strings, the seed
as an integer, times as ISO 8601 UTC, params as a dict (in CSV, one column of canonical JSON),
so a studio's tools can read provenance without knowing our types.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage.db import unit_of_work
from storage.errors import InvalidInput, NotFound
from storage.models import Job, Window
from storage.repos import JobRepo
from storage.repos.history import ArtifactRecord, EventRecord, HistoryRepo

FORMATS = ("table", "json", "csv")

# Fields of a job record, in output order (CSV columns, JSON keys).
JOB_FIELDS: tuple[str, ...] = (
    "id", "created_at", "updated_at", "state", "priority", "project", "submitted_by",
    "model_name", "model_sha256", "seed", "input_uri", "input_sha256", "output_uri", "output_sha256",
    "windows_done", "windows_total", "attempts", "error", "params",
)


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with an explicit offset, or None."""
    return at.astimezone(timezone.utc).isoformat() if at is not None else None


def _hex(value: str | None) -> str | None:
    return value.lower() if value is not None else None


def job_record(job: Job, output_sha256: str | None = None) -> dict[str, Any]:
    """A job's fields and provenance as plain JSON-able values (`output_sha256`: of its output
    artifact, see HistoryRepo.output_sha256s)."""
    return {
        "id": job.id,
        "created_at": iso(job.created_at),
        "updated_at": iso(job.updated_at),
        "state": job.state.value,
        "priority": job.priority.value,
        "project": job.project,
        "submitted_by": job.submitted_by,
        "model_name": job.model_name,
        "model_sha256": _hex(job.model_sha256),
        "seed": int(job.seed),
        "input_uri": job.input_uri,
        "input_sha256": _hex(job.input_sha256),
        "output_uri": job.output_uri,
        "output_sha256": _hex(output_sha256),
        "windows_done": job.windows_done,
        "windows_total": job.windows_total,
        "attempts": job.attempts,
        "error": job.error,
        "params": dict(job.params),
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_json(jobs: Iterable[Job], outputs: Mapping[str, str] | None = None) -> str:
    """A JSON array of job records (`outputs`: job id → output SHA-256)."""
    outputs = outputs or {}
    return json.dumps([job_record(j, outputs.get(j.id)) for j in jobs], indent=2, ensure_ascii=False)


def format_csv(jobs: Iterable[Job], outputs: Mapping[str, str] | None = None) -> str:
    """CSV with a header row; params as one column of canonical JSON, None as an empty cell."""
    outputs = outputs or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JOB_FIELDS)
    for job in jobs:
        record = job_record(job, outputs.get(job.id))
        record["params"] = _canonical(record["params"])
        writer.writerow("" if record[f] is None else record[f] for f in JOB_FIELDS)
    return out.getvalue()


def _short_time(at: datetime | None) -> str:
    return at.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ") if at is not None else "-"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines) + "\n"


def format_table(jobs: Iterable[Job]) -> str:
    """An aligned text table, one job per line (full ids, to paste into `foley audit show`)."""
    rows = [
        [
            j.id, _short_time(j.created_at), j.state.value, j.project, j.submitted_by, j.model_name,
            str(j.seed), f"{j.windows_done}/{j.windows_total}",
        ]
        for j in jobs
    ]
    if not rows:
        return "no jobs\n"
    return _table(["id", "created", "state", "project", "user", "model", "seed", "windows"], rows)


def format_jobs(jobs: Sequence[Job], fmt: str, outputs: Mapping[str, str] | None = None) -> str:
    """Jobs in one of FORMATS (`outputs`: job id → output SHA-256, shown in JSON and CSV)."""
    if fmt == "json":
        return format_json(jobs, outputs) + "\n"
    if fmt == "csv":
        return format_csv(jobs, outputs)
    if fmt == "table":
        return format_table(jobs)
    raise InvalidInput(f"unknown format {fmt!r}: use one of {', '.join(FORMATS)}")


# -- one job's lineage -------------------------------------------------------------------------


@dataclass(frozen=True)
class Lineage:
    """Everything recorded about one job."""

    job: Job
    windows: Sequence[Window]
    artifacts: Sequence[ArtifactRecord]
    events: Sequence[EventRecord]


def load_lineage(sessions: sessionmaker[Session], job_id: str) -> Lineage:
    """Read a job with its windows, artifacts and events in one transaction; NotFound if absent."""
    with unit_of_work(sessions) as session:
        job = JobRepo(session).find(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        history = HistoryRepo(session)
        return Lineage(job, history.windows_of(job_id), history.artifacts_of(job_id), list(history.events_of(job_id)))


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start) / timedelta(seconds=1):.3f}s"


def format_lineage(lineage: Lineage) -> str:
    """The lineage as readable text: job fields, windows, artifacts, events in order."""
    outputs = [a for a in lineage.artifacts if a.kind == "output"]
    job = job_record(lineage.job, outputs[-1].sha256 if outputs else None)
    lines = [f"job {job['id']}"]
    for name in JOB_FIELDS[1:]:
        value = _canonical(job[name]) if name == "params" else job[name]
        lines.append(f"  {name + ':':15}{'-' if value is None else value}")

    lines += ["", f"windows ({len(lineage.windows)})"]
    if lineage.windows:
        rows = [
            [
                str(w.index), f"[{w.start_frame}, {w.end_frame})", str(w.batch_index), w.state.value,
                f"{w.attempts}/{w.max_attempts}", w.worker_host or "-", w.device or "-",
                _short_time(w.started_at), _short_time(w.finished_at), _duration(w.started_at, w.finished_at),
                _hex(w.result_sha256) or "-",
            ]
            for w in lineage.windows
        ]
        headers = ["index", "frames", "batch", "state", "attempts", "host", "device", "started", "finished",
                   "took", "result sha256"]
        lines += ["  " + line for line in _table(headers, rows).splitlines()]
        lines += [f"  window {w.index} error: {w.error}" for w in lineage.windows if w.error]

    lines += ["", f"artifacts ({len(lineage.artifacts)})"]
    for a in lineage.artifacts:
        window = f" window {a.window_id}" if a.window_id else ""
        lines.append(f"  {a.kind:8} {a.sha256.lower()}  {a.size_bytes:>12} B  {a.uri}{window}")

    lines += ["", f"events ({len(lineage.events)})"]
    for e in lineage.events:
        window = f" window={e.window_id}" if e.window_id else ""
        lines.append(f"  #{e.id} {iso(e.at)} {e.kind} by {e.actor}{window} {_canonical(e.payload)}")
    return "\n".join(lines) + "\n"

"""Render history as text: job rows as a table, JSON or CSV, and one job's whole lineage.

A job record (`job_record`) is plain data: ids and SHA-256s as lowercase hex strings, the seed
as an integer, times as ISO 8601 UTC, params as a dict (in CSV, one column of canonical JSON),
so a studio's tools can read provenance without knowing our types. Besides the job row it holds
the provenance recorded at submission (render_farm.provenance, from the `job.submitted` event;
None for jobs submitted before it was recorded) and the delivered outputs (output and stems: key,
uri, sha256, size, duration, loudness). `full_record` adds every window (host, device, attempts,
timings) and every artifact: one line of `foley history export --format jsonl`.
"""
from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from storage.db import unit_of_work
from storage.errors import InvalidInput, NotFound
from storage.models import Job, Window
from storage.repos import JobRepo
from storage.models import Artifact, ArtifactKind
from storage.repos.history import ArtifactRecord, EventRecord, HistoryRepo
from storage.repos.lineage import LineageRepo

FORMATS = ("table", "json", "csv")

# Fields of a job record, in output order (CSV columns, JSON keys).
JOB_FIELDS: tuple[str, ...] = (
    "id", "created_at", "updated_at", "state", "priority", "project", "submitted_by",
    "model_name", "model_sha256", "seed", "input_uri", "input_sha256", "output_uri", "output_sha256",
    "windows_done", "windows_total", "attempts", "error", "params", "provenance", "outputs",
)
# Fields that hold structures: one column of canonical JSON in CSV.
_NESTED_FIELDS = ("params", "provenance", "outputs")
_DELIVERED = (ArtifactKind.OUTPUT, ArtifactKind.STEM)


def iso(at: datetime | None) -> str | None:
    """ISO 8601 in UTC with an explicit offset, or None."""
    return at.astimezone(timezone.utc).isoformat() if at is not None else None


def _hex(value: str | None) -> str | None:
    return value.lower() if value is not None else None


@dataclass(frozen=True)
class JobExtras:
    """What a job record shows besides the job row (see `load_extras`)."""

    provenance: dict[str, Any] | None = None
    outputs: Sequence[dict[str, Any]] = ()


def output_record(a: Artifact) -> dict[str, Any]:
    """A delivered file (output or stem): where, its SHA-256 and size, duration and loudness."""
    meta = dict(a.meta or {})
    return {
        "kind": a.kind.value, "key": a.key, "uri": a.uri, "sha256": a.sha256.lower(), "size_bytes": a.size_bytes,
        "duration_s": meta.get("duration_s"), "loudness_lufs": meta.get("loudness_lufs"), "meta": meta,
    }


def load_extras(session: Session, job_ids: Sequence[str]) -> dict[str, JobExtras]:
    """job id → its provenance and delivered outputs, in two queries for the whole page."""
    lineage = LineageRepo(session)
    submitted = lineage.submitted_payloads(job_ids)
    delivered = lineage.artifacts_of_jobs(job_ids, kinds=_DELIVERED)
    return {
        job_id: JobExtras(
            provenance=submitted.get(job_id, {}).get("provenance"),
            outputs=[output_record(a) for a in delivered.get(job_id, [])],
        )
        for job_id in job_ids
    }


def job_record(job: Job, output_sha256: str | None = None, extras: JobExtras | None = None) -> dict[str, Any]:
    """A job's fields and provenance as plain JSON-able values (`output_sha256`: of its output
    artifact, see HistoryRepo.output_sha256s; `extras`: see load_extras)."""
    extras = extras or JobExtras()
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
        "provenance": extras.provenance,
        "outputs": [dict(o) for o in extras.outputs],
    }


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def format_json(jobs: Iterable[Job], outputs: Mapping[str, str] | None = None,
                extras: Mapping[str, JobExtras] | None = None) -> str:
    """A JSON array of job records (`outputs`: job id → output SHA-256; `extras`: load_extras)."""
    outputs, extras = outputs or {}, extras or {}
    return json.dumps([job_record(j, outputs.get(j.id), extras.get(j.id)) for j in jobs], indent=2, ensure_ascii=False)


def format_csv(jobs: Iterable[Job], outputs: Mapping[str, str] | None = None,
               extras: Mapping[str, JobExtras] | None = None) -> str:
    """CSV with a header row; params, provenance and outputs as columns of canonical JSON, None
    as an empty cell."""
    outputs, extras = outputs or {}, extras or {}
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(JOB_FIELDS)
    for job in jobs:
        record = job_record(job, outputs.get(job.id), extras.get(job.id))
        for name in _NESTED_FIELDS:
            if record[name] is not None:
                record[name] = _canonical(record[name])
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


def format_jobs(jobs: Sequence[Job], fmt: str, outputs: Mapping[str, str] | None = None,
                extras: Mapping[str, JobExtras] | None = None) -> str:
    """Jobs in one of FORMATS (`outputs`: job id → output SHA-256; `extras`: job id → provenance
    and delivered outputs, see load_extras; both shown in JSON and CSV)."""
    if fmt == "json":
        return format_json(jobs, outputs, extras) + "\n"
    if fmt == "csv":
        return format_csv(jobs, outputs, extras)
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
    extras: JobExtras = JobExtras()
    artifact_meta: Mapping[str, dict[str, Any]] = field(default_factory=dict)  # artifact id → meta


def load_lineage(sessions: sessionmaker[Session], job_id: str) -> Lineage:
    """Read a job with its windows, artifacts and events in one transaction; NotFound if absent."""
    with unit_of_work(sessions) as session:
        job = JobRepo(session).find(job_id)
        if job is None:
            raise NotFound(f"no job {job_id}")
        history = HistoryRepo(session)
        metas = {a.id: dict(a.meta or {}) for a in LineageRepo(session).artifacts_of_jobs([job_id]).get(job_id, [])}
        return Lineage(job, history.windows_of(job_id), history.artifacts_of(job_id), list(history.events_of(job_id)),
                       load_extras(session, [job_id])[job_id], metas)


def _duration(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return "-"
    return f"{(end - start) / timedelta(seconds=1):.3f}s"


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return round((end - start) / timedelta(seconds=1), 6)


def window_record(w: Window) -> dict[str, Any]:
    """A window's plan, where and how often it ran, and its result, as plain data."""
    return {
        "id": w.id, "index": w.index, "start_frame": w.start_frame, "end_frame": w.end_frame,
        "batch_index": w.batch_index, "padded_frames": w.padded_frames, "shot_pictures": [w.shot_from, w.shot_to],
        "state": w.state.value, "attempts": w.attempts,
        "max_attempts": w.max_attempts, "worker_host": w.worker_host, "device": w.device,
        "started_at": iso(w.started_at), "finished_at": iso(w.finished_at),
        "took_s": _seconds(w.started_at, w.finished_at), "result_key": w.result_key,
        "result_sha256": _hex(w.result_sha256), "error": w.error,
    }


def artifact_record(a: Artifact) -> dict[str, Any]:
    """An artifact row as plain data (with its meta: frames of latents, loudness of outputs)."""
    return {
        "id": a.id, "kind": a.kind.value, "key": a.key, "uri": a.uri, "sha256": a.sha256.lower(),
        "size_bytes": a.size_bytes, "window_id": a.window_id, "created_at": iso(a.created_at),
        "meta": dict(a.meta or {}),
    }


def full_record(job: Job, windows: Sequence[Window], artifacts: Sequence[Artifact],
                extras: JobExtras | None = None) -> dict[str, Any]:
    """A job record (as in `foley history --format json`) with every window and artifact."""
    outputs = [a for a in artifacts if a.kind is ArtifactKind.OUTPUT]
    record = job_record(job, outputs[-1].sha256 if outputs else None, extras)
    record["windows"] = [window_record(w) for w in windows]
    record["artifacts"] = [artifact_record(a) for a in artifacts]
    return record


def _meta_text(meta: Mapping[str, Any]) -> str:
    """Duration and loudness of an output, frames of latents: a few words."""
    parts = []
    if meta.get("duration_s") is not None:
        parts.append(f"{float(meta['duration_s']):.3f}s")
    if meta.get("loudness_lufs") is not None:
        parts.append(f"{float(meta['loudness_lufs']):.2f} LUFS")
    if meta.get("gain_db") is not None:
        parts.append(f"gain {float(meta['gain_db']):+.2f} dB")
    if meta.get("frames") is not None:
        parts.append(f"frames {meta['frames']}")
    return f"  ({', '.join(parts)})" if parts else ""


def format_lineage(lineage: Lineage) -> str:
    """The lineage as readable text: job fields, provenance, windows, artifacts, events in order."""
    outputs = [a for a in lineage.artifacts if a.kind == "output"]
    job = job_record(lineage.job, outputs[-1].sha256 if outputs else None, lineage.extras)
    lines = [f"job {job['id']}"]
    for name in JOB_FIELDS[1:]:
        if name in ("provenance", "outputs"):
            continue
        value = _canonical(job[name]) if name == "params" else job[name]
        lines.append(f"  {name + ':':15}{'-' if value is None else value}")

    provenance = lineage.extras.provenance
    lines += ["", "provenance" + ("" if provenance else " (not recorded)")]
    if provenance:
        for key, value in provenance.items():
            text = _canonical(value) if isinstance(value, (dict, list)) else value
            lines.append(f"  {key + ':':15}{'-' if text is None else text}")

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
        meta = _meta_text(lineage.artifact_meta.get(a.id, {}))
        lines.append(f"  {a.kind:8} {a.sha256.lower()}  {a.size_bytes:>12} B  {a.uri}{window}{meta}")

    lines += ["", f"events ({len(lineage.events)})"]
    for e in lineage.events:
        window = f" window={e.window_id}" if e.window_id else ""
        lines.append(f"  #{e.id} {iso(e.at)} {e.kind} by {e.actor}{window} {_canonical(e.payload)}")
    return "\n".join(lines) + "\n"

"""Export the render history as JSON lines: our own job records, or OpenLineage RunEvents.

    for line in export_lines(sessions, JobFilter(project="ep101"), "openlineage"):
        sink.write(line + "\n")

- `jsonl`: one job per line, the record of `foley history --format json` (job fields, provenance,
  delivered outputs) plus every window (host, device, attempts, timings, result SHA-256) and every
  artifact (key, uri, SHA-256, size, meta). See render_farm.audit.history.full_record.
- `openlineage`: one OpenLineage 2-0-2 RunEvent per job (https://openlineage.io/spec/2-0-2/OpenLineage.json):
  eventType from the job's state (done → COMPLETE, failed → FAIL, cancelled → ABORT, any
  unfinished state → START), eventTime the job's last change, run.runId a UUID derived from the
  job id (uuid5 in a fixed foley namespace, so re-exports give the same id), job.namespace
  "foley" and job.name the project. Inputs are the input video and the model checkpoint,
  outputs the delivered output and stems; each dataset carries its SHA-256 as the standard
  `version` facet and in a `foley_sha256` facet (with the size). The run carries a `foley_render`
  facet (seed, params, provenance, windows) so nothing of the job record is lost.

Jobs are read a page at a time (newest first, the order of `foley history`), so an export of a
whole catalog streams in constant memory.
"""
from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.orm import Session, sessionmaker

from render_farm.audit.history import full_record, load_extras
from storage.db import unit_of_work
from storage.errors import InvalidInput
from storage.repos.history import HistoryRepo, JobCursor, JobFilter
from storage.repos.lineage import LineageRepo

EXPORT_FORMATS = ("jsonl", "openlineage")
PAGE = 200

PRODUCER = "https://github.com/foley-render-farm/foley-render-farm/tree/main/render_farm"
OL_SCHEMA = "https://openlineage.io/spec/2-0-2/OpenLineage.json#/definitions/RunEvent"
OL_NAMESPACE = "foley"
_FACET_BASE = "https://openlineage.io/spec/facets/1-0-0"
_FOLEY_FACETS = f"{PRODUCER}/audit/export.py"
# Fixed namespace of run ids: uuid5(RUN_ID_NAMESPACE, job id).
RUN_ID_NAMESPACE = uuid.UUID("5d3c8f6e-0b7a-5e1f-9c2d-f01e7f0a1e00")

_EVENT_TYPES = {"done": "COMPLETE", "failed": "FAIL", "cancelled": "ABORT"}


def run_id(job_id: str) -> str:
    """The OpenLineage run id of a job: a UUID derived from its id (same id, same UUID)."""
    return str(uuid.uuid5(RUN_ID_NAMESPACE, job_id))


def iter_records(sessions: sessionmaker[Session], filters: JobFilter = JobFilter(), *,
                 page: int = PAGE) -> Iterator[dict[str, Any]]:
    """Full job records (see full_record) matching `filters`, newest first, a page per transaction."""
    cursor: JobCursor | None = None
    while True:
        with unit_of_work(sessions) as session:
            result = HistoryRepo(session).list_jobs(filters, limit=page, cursor=cursor)
            ids = [j.id for j in result.jobs]
            lineage = LineageRepo(session)
            windows, artifacts = lineage.windows_of_jobs(ids), lineage.artifacts_of_jobs(ids)
            extras = load_extras(session, ids)
            records = [full_record(j, windows.get(j.id, []), artifacts.get(j.id, []), extras[j.id])
                       for j in result.jobs]
        yield from records
        if result.next_cursor is None:
            return
        cursor = result.next_cursor


def export_lines(sessions: sessionmaker[Session], filters: JobFilter, fmt: str) -> Iterator[str]:
    """One JSON document per job (no newline), in `fmt` (one of EXPORT_FORMATS)."""
    if fmt not in EXPORT_FORMATS:
        raise InvalidInput(f"unknown export format {fmt!r}: use one of {', '.join(EXPORT_FORMATS)}")
    for record in iter_records(sessions, filters):
        doc = record if fmt == "jsonl" else run_event(record)
        yield json.dumps(doc, ensure_ascii=False, sort_keys=False, separators=(",", ":"))


# -- OpenLineage -------------------------------------------------------------------------------


def _facet(schema: str, **fields: Any) -> dict[str, Any]:
    return {"_producer": PRODUCER, "_schemaURL": schema, **fields}


def _dataset_name(uri: str) -> tuple[str, str]:
    """(namespace, name) of a dataset per the OpenLineage naming spec: file → ("file", path),
    s3 → ("s3://bucket", key); anything else: its scheme and the rest."""
    parts = urlsplit(uri)
    if parts.scheme == "file":
        return "file", parts.path
    if parts.scheme in ("s3", "gs", "http", "https"):
        return f"{parts.scheme}://{parts.netloc}", parts.path.lstrip("/")
    if not parts.scheme:
        return "file", uri
    return parts.scheme, uri[len(parts.scheme) + 3 :]


def _dataset(uri: str, sha256: str | None, size_bytes: int | None = None, **extra: Any) -> dict[str, Any]:
    return _named_dataset(*_dataset_name(uri), sha256, size_bytes, **extra)


def _named_dataset(namespace: str, name: str, sha256: str | None, size_bytes: int | None = None,
                   **extra: Any) -> dict[str, Any]:
    facets: dict[str, Any] = {}
    if sha256:
        facets["version"] = _facet(f"{_FACET_BASE}/DatasetVersionDatasetFacet.json#/$defs/DatasetVersionDatasetFacet",
                                   datasetVersion=sha256)
        facets["foley_sha256"] = _facet(f"{_FOLEY_FACETS}#foley_sha256", sha256=sha256, size_bytes=size_bytes,
                                        **extra)
    return {"namespace": namespace, "name": name, "facets": facets}


def run_event(record: dict[str, Any]) -> dict[str, Any]:
    """The OpenLineage RunEvent of one full job record."""
    state = record["state"]
    inputs = [_dataset(record["input_uri"], record["input_sha256"], role="input")]
    model_sha = record["model_sha256"]  # the checkpoint: an input of the run like the video
    inputs.append(_named_dataset(f"{OL_NAMESPACE}-model", record["model_name"], model_sha, role="model"))
    outputs = [_dataset(o["uri"], o["sha256"], o["size_bytes"], role=o["kind"], duration_s=o["duration_s"],
                        loudness_lufs=o["loudness_lufs"]) for o in record["outputs"]]
    render = {k: record[k] for k in ("seed", "params", "priority", "submitted_by", "model_name", "model_sha256",
                                     "windows_done", "windows_total", "attempts", "error", "provenance")}
    render["windows"] = [{k: w[k] for k in ("index", "start_frame", "end_frame", "state", "attempts", "worker_host",
                                            "device", "started_at", "finished_at", "took_s", "result_sha256")}
                         for w in record["windows"]]
    run_facets: dict[str, Any] = {
        "foley_render": _facet(f"{_FOLEY_FACETS}#foley_render", job_id=record["id"], **render),
        "nominalTime": _facet(f"{_FACET_BASE}/NominalTimeRunFacet.json#/$defs/NominalTimeRunFacet",
                              nominalStartTime=record["created_at"]),
    }
    if state == "failed" and record["error"]:
        run_facets["errorMessage"] = _facet(
            f"{_FACET_BASE}/ErrorMessageRunFacet.json#/$defs/ErrorMessageRunFacet",
            message=record["error"], programmingLanguage="python")
    return {
        "eventType": _EVENT_TYPES.get(state, "START"),
        "eventTime": record["updated_at"],
        "run": {"runId": run_id(record["id"]), "facets": run_facets},
        "job": {
            "namespace": OL_NAMESPACE, "name": record["project"],
            "facets": {"jobType": _facet(f"{_FACET_BASE}/JobTypeJobFacet.json#/$defs/JobTypeJobFacet",
                                         processingType="BATCH", integration="FOLEY", jobType="RENDER")},
        },
        "inputs": inputs,
        "outputs": outputs,
        "producer": PRODUCER,
        "schemaURL": OL_SCHEMA,
    }

"""render_farm.audit.history: job records are plain data in JSON and CSV; the lineage is readable."""
from __future__ import annotations

import csv
import io
import json
from datetime import datetime

import pytest
from sqlalchemy.orm import Session, sessionmaker

from render_farm.audit.history import JOB_FIELDS, format_jobs, format_lineage, load_lineage
from storage.blobs import LocalBlobStore
from storage.db import unit_of_work
from storage.repos.history import HistoryRepo
from tests.audit.factory import T0, build_job


@pytest.fixture
def db_url(sqlite_migrated_url: str) -> str:
    """Formatting does not depend on the database (test_history_repo covers both): SQLite only."""
    return sqlite_migrated_url


def _jobs(sessions: sessionmaker[Session], store: LocalBlobStore):  # type: ignore[no-untyped-def]
    built = build_job(sessions, store, seed=2)
    with unit_of_work(sessions) as s:
        return built, HistoryRepo(s).list_jobs().jobs


def _outputs(sessions: sessionmaker[Session], job_ids: list[str]) -> dict[str, str]:
    with unit_of_work(sessions) as s:
        return HistoryRepo(s).output_sha256s(job_ids)


def test_json_carries_id_and_provenance_as_plain_fields(
    sessions: sessionmaker[Session], local_store: LocalBlobStore
) -> None:
    built, jobs = _jobs(sessions, local_store)
    outputs = _outputs(sessions, [built.id])
    assert outputs == {built.id: local_store.stat(built.keys["output"]).sha256}
    (record,) = json.loads(format_jobs(jobs, "json", outputs))
    assert list(record) == list(JOB_FIELDS)
    assert record["id"] == built.id
    assert record["seed"] == 2 and isinstance(record["seed"], int)
    assert record["params"] == {"steps": 25, "cfg": 4.5, "prompt": "rain"}
    assert record["state"] == "done" and record["project"] == "ep101" and record["submitted_by"] == "ann"
    assert record["output_sha256"] == outputs[built.id]
    for key in ("input_sha256", "model_sha256", "output_sha256"):
        assert len(record[key]) == 64 and record[key] == record[key].lower() and int(record[key], 16) >= 0
    assert datetime.fromisoformat(record["created_at"]) == T0
    assert record["created_at"].endswith("+00:00")
    assert record["windows_done"] == record["windows_total"] == 2


def test_csv_has_a_header_and_one_row_per_job(sessions: sessionmaker[Session], local_store: LocalBlobStore) -> None:
    built, jobs = _jobs(sessions, local_store)
    rows = list(csv.DictReader(io.StringIO(format_jobs(jobs, "csv", _outputs(sessions, [built.id])))))
    assert len(rows) == 1 and rows[0]["id"] == built.id and rows[0]["seed"] == "2"
    assert json.loads(rows[0]["params"]) == {"steps": 25, "cfg": 4.5, "prompt": "rain"}
    assert rows[0]["error"] == ""  # None is an empty cell
    assert rows[0]["output_sha256"] == local_store.stat(built.keys["output"]).sha256


def test_table_lists_full_ids(sessions: sessionmaker[Session], local_store: LocalBlobStore) -> None:
    built, jobs = _jobs(sessions, local_store)
    lines = format_jobs(jobs, "table").splitlines()
    assert lines[0].split() == ["id", "created", "state", "project", "user", "model", "seed", "windows"]
    assert lines[1].split()[0] == built.id and "2/2" in lines[1]
    assert format_jobs([], "table") == "no jobs\n"


def test_lineage_shows_fields_windows_artifacts_and_events_in_order(
    sessions: sessionmaker[Session], local_store: LocalBlobStore
) -> None:
    built, _ = _jobs(sessions, local_store)
    text = format_lineage(load_lineage(sessions, built.id))
    assert text.startswith(f"job {built.id}\n")
    assert "seed:          2" in text
    assert "windows (2)" in text and "gpu-node-3" in text and "cuda:1" in text and "1/3" in text
    assert "2.500s" in text  # window timing
    assert f"output_sha256: {local_store.stat(built.keys['output']).sha256}" in text
    assert "artifacts (3)" in text
    for key in built.keys.values():
        info = local_store.stat(key)
        assert f"{info.sha256}" in text and key in text
    events = [line.split()[2] for line in text.split("events (4)\n")[1].splitlines()]
    assert events == ["job.submitted", "window.done", "window.done", "job.done"]

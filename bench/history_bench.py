"""`foley history` on a large PostgreSQL history: time one page (query + formatting, in-process).

    python bench/history_bench.py --pg-url postgresql://postgres@127.0.0.1:55432/postgres --jobs 100000

Creates a scratch database on the server, migrates it, bulk-loads `--jobs` jobs with COPY
(a year of history over 40 projects, 25 users, 3 models, mostly done), runs ANALYZE, then times
each case `--repeats` times: open a unit of work, HistoryRepo.list_jobs and output_sha256s, format
the page as a table and as JSON (what `foley history` does after parsing its options). Prints, in milliseconds,
the first (cold) run and the warm median/p95 of the whole page, the warm medians of the queries
(ORM rows included) and of the formatting, and the index the plan uses with the
server-side execution time of one EXPLAIN ANALYZE. The scratch
database is dropped at the end unless --keep.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from sqlalchemy import create_engine, event, text

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import migrations  # noqa: E402
from render_farm.audit.history import format_jobs  # noqa: E402
from storage.db import make_engine, make_sessionmaker, normalize_url, unit_of_work  # noqa: E402
from storage.models import JobState  # noqa: E402
from storage.repos.history import HistoryRepo, JobCursor, JobFilter  # noqa: E402

NOW = datetime(2026, 11, 27, tzinfo=timezone.utc)
PROJECTS = [f"show{p:02d}" for p in range(40)]
USERS = [f"artist{u:02d}" for u in range(25)]
MODELS = ["tiny", "kling-s", "kling-l"]
STATES = ["done"] * 90 + ["failed"] * 4 + ["cancelled"] * 2 + ["queued", "rendering", "ingesting", "assembling"]
COLUMNS = (
    "id", "created_at", "updated_at", "state", "priority", "project", "submitted_by", "input_uri", "input_sha256",
    "params", "seed", "model_name", "model_sha256", "windows_total", "windows_done", "attempts",
)


def load_jobs(url: str, n: int, seed: int = 0) -> float:
    """COPY n jobs into the jobs table; seconds taken."""
    rng = random.Random(seed)
    engine = make_engine(url)
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        with cursor.copy(f"COPY jobs ({', '.join(COLUMNS)}) FROM STDIN") as copy:
            for i in range(n):
                at = NOW - timedelta(seconds=rng.uniform(0, 365 * 86400))
                state = rng.choice(STATES)
                windows = rng.randint(4, 400)
                copy.write_row((
                    uuid.UUID(int=rng.getrandbits(128)).hex, at, at + timedelta(minutes=rng.randint(1, 90)), state,
                    "episode" if rng.random() < 0.3 else "catalog", rng.choice(PROJECTS), rng.choice(USERS),
                    f"s3://studio-masters/{i:06d}.mov", f"{rng.getrandbits(256):064x}",
                    json.dumps({"steps": 25, "cfg": 4.5, "prompt": f"scene {i}", "loudness_lufs": -23}),
                    rng.getrandbits(31), rng.choice(MODELS), f"{rng.getrandbits(256):064x}",
                    windows, windows if state == "done" else rng.randint(0, windows), 1,
                ))
        conn.execute(text("ANALYZE jobs"))
    engine.dispose()
    return time.perf_counter() - started


def plan_index(url: str, run: Callable[[], object]) -> str:
    """The index names in the plan of the jobs query `run` issues (and whether it sorts), and the
    server's execution time from EXPLAIN ANALYZE."""
    engine = make_engine(url)
    captured: list[tuple[str, object]] = []

    def grab(conn, cur, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if "FROM jobs" in statement:
            captured.append((statement, parameters))

    event.listen(engine.__class__, "before_cursor_execute", grab)
    try:
        run()
    finally:
        event.remove(engine.__class__, "before_cursor_execute", grab)
    statement, parameters = captured[-1]
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("EXPLAIN ANALYZE " + statement, parameters)  # type: ignore[arg-type]
        lines = [r[0] for r in rows]
    engine.dispose()
    used = sorted({word for line in lines for word in line.replace("(", " ").split() if word.startswith("ix_")})
    sort = " + Sort" if any("Sort" in line for line in lines) else ""
    server_ms = next((line.split(":")[1].strip() for line in lines if line.startswith("Execution Time")), "?")
    return f"{', '.join(used) or 'seq scan'}{sort} (server {server_ms})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("FOLEY_TEST_PG_URL"), help="server URL (any database)")
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--limit", type=int, default=50, help="page size")
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the scratch database")
    args = parser.parse_args()
    if not args.pg_url:
        parser.error("give --pg-url or set FOLEY_TEST_PG_URL")
    if args.repeats < 2:
        parser.error("--repeats must be at least 2 (the first run is reported apart)")

    server = normalize_url(args.pg_url)
    name = f"foley_history_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = server.set(database=name).render_as_string(hide_password=False)
    try:
        migrations.upgrade(url)
        load_s = load_jobs(url, args.jobs)
        print(f"loaded {args.jobs:,} jobs with COPY in {load_s:.2f} s ({args.jobs / load_s:,.0f} rows/s)")
        engine = make_engine(url)
        sessions = make_sessionmaker(engine)

        with unit_of_work(sessions) as s:  # a cursor half-way through the history
            mid = s.execute(text("SELECT created_at, id FROM jobs ORDER BY created_at DESC, id DESC "
                                 f"OFFSET {args.jobs // 2} LIMIT 1")).one()
        deep = JobCursor(mid.created_at, mid.id)
        cases: list[tuple[str, JobFilter, JobCursor | None]] = [
            ("first page, no filter", JobFilter(), None),
            ("--project show07", JobFilter(project="show07"), None),
            ("--project show07 --state done", JobFilter(project="show07", states=(JobState.DONE,)), None),
            ("--user artist03 --since 30d", JobFilter(submitted_by="artist03", since=NOW - timedelta(days=30)), None),
            ("--model kling-l --state failed,cancelled",
             JobFilter(model_name="kling-l", states=(JobState.FAILED, JobState.CANCELLED)), None),
            ("--state queued (rare)", JobFilter(states=(JobState.QUEUED,)), None),
            ("page after a cursor half-way down", JobFilter(), deep),
        ]
        print(f"page of {args.limit} jobs: unit of work + list_jobs + output_sha256s + table and JSON formatting; "
              f"{args.repeats} runs each")
        print(f"{'case':42} {'rows':>4} {'first ms':>9} {'median ms':>10} {'p95 ms':>8} "
              f"{'query':>7} {'format':>7}  plan")
        for label, filters, cursor in cases:
            def page(filters: JobFilter = filters, cursor: JobCursor | None = cursor) -> tuple[int, float, float]:
                with unit_of_work(sessions) as s:
                    started = time.perf_counter()
                    history = HistoryRepo(s)
                    result = history.list_jobs(filters, limit=args.limit, cursor=cursor)
                    outputs = history.output_sha256s([j.id for j in result.jobs])
                    queried = time.perf_counter()
                    format_jobs(result.jobs, "table")
                    format_jobs(result.jobs, "json", outputs)
                    return len(result.jobs), queried - started, time.perf_counter() - queried

            totals_ms: list[float] = []
            query_ms: list[float] = []
            format_ms: list[float] = []
            rows = 0
            for _ in range(args.repeats):
                started = time.perf_counter()
                rows, q_s, f_s = page()
                totals_ms.append((time.perf_counter() - started) * 1000)
                query_ms.append(q_s * 1000)
                format_ms.append(f_s * 1000)
            warm = sorted(totals_ms[1:]) or totals_ms
            p95 = warm[min(len(warm) - 1, int(round(0.95 * (len(warm) - 1))))]
            print(f"{label:42} {rows:>4} {totals_ms[0]:>9.2f} {statistics.median(warm):>10.2f} {p95:>8.2f} "
                  f"{statistics.median(query_ms[1:]):>7.2f} {statistics.median(format_ms[1:]):>7.2f}"
                  f"  {plan_index(url, page)}")
        engine.dispose()
    finally:
        if not args.keep:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        else:
            print(f"kept {server.set(database=name).render_as_string(hide_password=True)}")
        admin.dispose()


if __name__ == "__main__":
    main()

"""Farm framework overhead per window on loopback: Celery (Redis) + PostgreSQL + blob store.

    source .services/env && .venv/bin/python bench/farm_bench.py --windows 200

Real `foley worker` processes run a no-model window step that does what render_batch does
around the model: claim the window (lease, attempt), write a 4 KiB result blob under a
deterministic key, complete it and count it done in one transaction, append an audit event.
So what is measured is everything the farm adds per window, not the render itself.

1. latency: one worker, windows sent one at a time; per window enqueue → claimed and
   enqueue → done (median, p99), from timestamps taken in the sender and the worker (same host);
2. throughput: a burst of --windows windows with 1 worker, then with 2 workers
   (first enqueue → last done).

Creates a scratch PostgreSQL database and uses Redis db --redis-db (flushed); a local blob
store in a temp dir (--s3 uses the S3 endpoint of FOLEY_TEST_S3_ENDPOINT instead).
"""
from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

from sqlalchemy import select

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pg_scratch import scratch_database  # noqa: E402 - the suites' throwaway-database helper

STEP = "bench.farm_bench:bench_window"
QUEUE = "gpu-episode"


def bench_window(ctx, job_id: str, window_id: str, sent_s: float) -> None:
    """The per-window framework work of render_batch, minus the model (runs on the worker)."""
    from storage.db import unit_of_work
    from storage.models import utcnow
    from storage.repos import EventRepo, JobRepo, WindowRepo

    received_s = time.time()
    with unit_of_work(ctx.sessions) as s:
        if not WindowRepo(s).claim(window_id, ctx.worker, ctx.lease_s, utcnow(), worker_host=ctx.host, device=ctx.device):
            return
    claimed_s = time.time()
    info = ctx.store.put(f"bench/{job_id}/{window_id}.bin", window_id.encode() * 128)
    with unit_of_work(ctx.sessions) as s:
        if WindowRepo(s).complete(window_id, ctx.worker, info.key, info.sha256):
            JobRepo(s).count_window_done_and_maybe_assemble(job_id)
        EventRepo(s).append("bench.window", job_id=job_id, window_id=window_id, actor=ctx.worker, payload={
            "sent_s": sent_s, "received_s": received_s, "claimed_s": claimed_s, "done_s": time.time()})


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Bench:
    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        import migrations
        from storage.db import make_engine, make_sessionmaker

        self.tmp = tmp
        self._scratch = contextlib.ExitStack()  # the throwaway database, dropped by close()
        self.db_url = self._scratch.enter_context(scratch_database(args.pg_url, "foley_farm_bench"))
        migrations.upgrade(self.db_url)
        self.sessions = make_sessionmaker(make_engine(self.db_url))
        broker = args.redis_url.rsplit("/", 1)[0] + f"/{args.redis_db}"
        import redis

        redis.Redis.from_url(broker).flushdb()
        store = (tmp / "store").as_uri()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
        self.env.update(FOLEY_DATABASE_URL=self.db_url, FOLEY_BROKER_URL=broker, FOLEY_STORE=store,
                        FOLEY_DATA_DIR=str(tmp / "data"), PYTHONPATH=str(ROOT))
        if args.s3:
            import boto3

            bucket = f"foley-bench-{uuid.uuid4().hex[:12]}"
            boto3.client("s3", endpoint_url=os.environ["FOLEY_TEST_S3_ENDPOINT"]).create_bucket(Bucket=bucket)
            self.env.update(FOLEY_STORE=f"s3://{bucket}/bench", FOLEY_S3_ENDPOINT_URL=os.environ["FOLEY_TEST_S3_ENDPOINT"])
            for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
                self.env.setdefault(key, "test")
            self.env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        from render_farm.config import Settings
        from render_farm.farm_ops import farm_app
        from schedulers.celery_executor import CeleryExecutor

        self.executor = CeleryExecutor(farm_app(Settings.from_env(self.env)))
        self.workers: list[subprocess.Popen] = []

    def start_workers(self, count: int) -> None:
        for _ in range(count - len(self.workers)):
            n = len(self.workers)
            log = self.tmp / f"worker{n}.log"
            self.workers.append(subprocess.Popen(
                [sys.executable, "-m", "render_farm", "worker", "-Q", QUEUE, "-n", f"bench{n}@%h", "-l", "INFO"],
                env=self.env, cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT))
            deadline = time.monotonic() + 120
            while "ready." not in log.read_text():
                if time.monotonic() > deadline or self.workers[-1].poll() is not None:
                    raise SystemExit(f"worker did not start: {log.read_text()[-2000:]}")
                time.sleep(0.1)

    def job(self, windows: int) -> tuple[str, list[str]]:
        from storage.db import unit_of_work
        from storage.models import JobState
        from storage.repos import JobRepo, WindowRepo
        from storage.repos.windows import NewWindow

        with unit_of_work(self.sessions) as s:
            jobs = JobRepo(s)
            job = jobs.create(project="bench", submitted_by="bench", input_uri="bench://", seed=0, model_name="none")
            ids = WindowRepo(s).create_many(job.id, [NewWindow(i, i * 10, i * 10 + 12, i) for i in range(windows)])
            jobs.set_windows_total(job.id, windows)
            jobs.transition(job.id, [JobState.QUEUED], JobState.RENDERING)
            return job.id, ids

    def send(self, job_id: str, window_id: str) -> None:
        from schedulers.base import StepCall

        self.executor.submit(StepCall(STEP, (job_id, window_id, time.time()), queue=QUEUE))

    def timings(self, job_id: str, expect: int, timeout_s: float = 600) -> list[dict[str, float]]:
        from storage.db import unit_of_work
        from storage.models import Event

        deadline = time.monotonic() + timeout_s
        while True:
            with unit_of_work(self.sessions) as s:
                rows = s.scalars(select(Event.payload).where(Event.job_id == job_id, Event.kind == "bench.window")).all()
            if len(rows) >= expect:
                return list(rows)
            if time.monotonic() > deadline:
                raise SystemExit(f"only {len(rows)}/{expect} windows done after {timeout_s} s")
            time.sleep(0.002 if expect == 1 else 0.05)

    def close(self) -> None:
        for w in self.workers:
            w.terminate()
        for w in self.workers:
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                w.kill()
        self.sessions.kw["bind"].dispose()
        self._scratch.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--pg-url", default=os.environ.get("FOLEY_TEST_PG_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("FOLEY_TEST_REDIS_URL"))
    parser.add_argument("--redis-db", type=int, default=15)
    parser.add_argument("--latency-windows", type=int, default=100)
    parser.add_argument("--windows", type=int, default=200, help="Windows per throughput burst.")
    parser.add_argument("--s3", action="store_true", help="Blob store on the S3 test endpoint instead of a directory.")
    args = parser.parse_args()
    if not args.pg_url or not args.redis_url:
        raise SystemExit("set FOLEY_TEST_PG_URL and FOLEY_TEST_REDIS_URL (source .services/env)")
    with tempfile.TemporaryDirectory(prefix="farm-bench-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            run(bench, args)
        finally:
            bench.close()


def run(bench: Bench, args: argparse.Namespace) -> None:
    store = "S3 (moto)" if args.s3 else "local dir"
    print(f"farm framework overhead, loopback Redis + PostgreSQL, store: {store}, {os.cpu_count()} CPUs")
    bench.start_workers(1)
    warm, ids = bench.job(5)
    for wid in ids:  # first tasks build the worker's context (DB pool, store)
        bench.send(warm, wid)
    bench.timings(warm, 5)

    job_id, ids = bench.job(args.latency_windows)
    claim_ms, done_ms, step_ms = [], [], []
    for i, wid in enumerate(ids):
        bench.send(job_id, wid)
        t = bench.timings(job_id, i + 1)
        row = next(r for r in t if r["sent_s"] == max(r["sent_s"] for r in t))
        claim_ms.append((row["claimed_s"] - row["sent_s"]) * 1e3)
        done_ms.append((row["done_s"] - row["sent_s"]) * 1e3)
        step_ms.append((row["done_s"] - row["received_s"]) * 1e3)
    print(f"latency, 1 worker, {len(ids)} windows one at a time (ms):")
    for name, values in (("enqueue → claimed", claim_ms), ("enqueue → done", done_ms), ("step itself", step_ms)):
        print(f"  {name:<18} median {statistics.median(values):7.2f}   p99 {pct(values, 99):7.2f}   "
              f"max {max(values):7.2f}")

    for workers in (1, 2):
        bench.start_workers(workers)
        if workers == 2:
            warm, ids = bench.job(6)
            for wid in ids:
                bench.send(warm, wid)
            bench.timings(warm, 6)
        job_id, ids = bench.job(args.windows)
        t0 = time.time()
        for wid in ids:
            bench.send(job_id, wid)
        rows = bench.timings(job_id, len(ids))
        span = max(r["done_s"] for r in rows) - min(r["sent_s"] for r in rows)
        print(f"throughput, {workers} worker(s): {len(ids)} windows in {span:.2f} s = {len(ids) / span:7.1f} windows/s "
              f"(enqueue of the burst took {(max(r['sent_s'] for r in rows) - t0):.2f} s)")


if __name__ == "__main__":
    main()

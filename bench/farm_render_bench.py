"""The farm rendering real tiny-model windows: worker memory across many windows, and throughput
against the number of CPU workers.

    scripts/services.sh start && source .services/env
    .venv/bin/python bench/farm_render_bench.py memory --windows 120          # one worker's RSS, window by window
    .venv/bin/python bench/farm_render_bench.py throughput --workers 1,2,4,8   # the same job on 1, 2, 4, 8 workers

Real `foley worker` processes (Celery over Redis, a scratch PostgreSQL database, a local blob
store or --s3) render real windows of a toy video sent with `foley submit`, with the shipped
tiny checkpoint (--model). One more worker consumes the `cpu` queue (ingest, assembly); the
measured workers consume `gpu-episode` only and run the solo pool, so the worker process is the
process that renders, and what is measured is window rendering: a job counts as finished when
its last window is rendered, and the `cpu` worker is replaced (killed) before the next job, so an
assembly nobody waits for never competes with a measurement.

memory: one render worker takes every window of a job planned with at least --windows windows,
one window per batch (one step per window). Its VmRSS (summed with any child processes) is
sampled every --sample-s together with the job's windows done. After --warmup windows, for the
RSS between windows (the lowest sample while k windows are done) and during them (the highest):
the value at the first and at the last window, and the least-squares slope in MiB per 100
windows. Goal: no growth.

throughput: for each N in --workers, N render workers (each limited to --threads torch threads
with OMP_NUM_THREADS) render a new job of the same input and parameters, after a warm-up job in
which every one of them rendered. Rate = windows / (last window finished - first window
started), from the windows' SQL timestamps; scaling efficiency = rate_N / (N x rate_1). Goal:
>= 85 %. N x --threads above the machine's cores measures oversubscription, not scaling; the
script says so next to those rows.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pg_scratch import scratch_database  # noqa: E402 - the suites' throwaway-database helper

FOLEY = [sys.executable, "-m", "render_farm"]
RENDER_QUEUE = "gpu-episode"
WINDOW_S, OVERLAP_S = (1.0, 2.0), 0.25  # 1–2 s windows: at most 1.75 s of new video per window


# -- process memory ---------------------------------------------------------------------------------

def _status_kib(pid: int, field: str) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _descendants(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{task}/children", encoding="ascii") as f:
                    todo += [int(c) for c in f.read().split()]
        except OSError:
            pass
    return out


def tree_rss_mib(pid: int) -> float:
    """VmRSS of a process and all its descendants, MiB."""
    return sum(_status_kib(p, "VmRSS") for p in _descendants(pid)) / 1024.0


def slope_per_100(xs: list[float], ys: list[float]) -> float:
    """Least-squares slope of ys against xs, times 100."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 100.0 * sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0


# -- the farm -----------------------------------------------------------------------------------------

class Farm:
    """A scratch database, a Redis db number, a store, and `foley worker` processes."""

    def __init__(self, args: argparse.Namespace, tmp: Path) -> None:
        import migrations
        import redis

        self.args, self.tmp = args, tmp
        self._scratch = contextlib.ExitStack()  # the throwaway database, dropped by close()
        self.db_url = self._scratch.enter_context(scratch_database(args.pg_url, "foley_farm_render_bench"))
        migrations.upgrade(self.db_url)
        self.engine = create_engine(self.db_url)
        broker = args.redis_url.rsplit("/", 1)[0] + f"/{args.redis_db}"
        redis.Redis.from_url(broker).flushdb()
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("FOLEY_")}
        self.env.update(FOLEY_DATABASE_URL=self.db_url, FOLEY_BROKER_URL=broker, FOLEY_STORE=(tmp / "store").as_uri(),
                        FOLEY_DATA_DIR=str(tmp / "data"), PYTHONPATH=str(ROOT))
        if args.s3:
            import boto3

            bucket = f"foley-bench-{uuid.uuid4().hex[:12]}"
            boto3.client("s3", endpoint_url=os.environ["FOLEY_TEST_S3_ENDPOINT"]).create_bucket(Bucket=bucket)
            self.env.update(FOLEY_STORE=f"s3://{bucket}/bench", FOLEY_S3_ENDPOINT_URL=os.environ["FOLEY_TEST_S3_ENDPOINT"])
            for key, default in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                                 ("AWS_DEFAULT_REGION", "us-east-1")):
                self.env.setdefault(key, default)
        self.workers: dict[str, subprocess.Popen] = {}

    def start_worker(self, name: str, queues: str, threads: int | None = None) -> subprocess.Popen:
        env = dict(self.env)
        if threads is not None:
            env.update(OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
        log = self.tmp / f"{name}.log"
        proc = subprocess.Popen(FOLEY + ["worker", "-Q", queues, "-c", "1", "--pool", "solo", "-n", f"{name}@%h",
                                         "-l", "INFO"], env=env, cwd=ROOT, stdout=open(log, "w"),
                                stderr=subprocess.STDOUT)
        self.workers[name] = proc
        deadline = time.monotonic() + 180
        while "ready." not in log.read_text(errors="replace"):
            if time.monotonic() > deadline or proc.poll() is not None:
                raise SystemExit(f"worker {name} did not start: {log.read_text(errors='replace')[-3000:]}")
            time.sleep(0.1)
        return proc

    def stop_worker(self, name: str, *, kill: bool = False) -> None:
        """SIGTERM (Celery finishes the step in hand, up to 30 s), or SIGKILL at once."""
        proc = self.workers.pop(name)
        if kill:
            proc.kill()
        else:
            proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def submit(self, video: Path, seed: int) -> str:
        a = self.args
        cmd = FOLEY + ["submit", str(video), "--model", a.model, "--window-s", f"{WINDOW_S[0]:g}:{WINDOW_S[1]:g}",
                       "--overlap-s", f"{OVERLAP_S:g}", "--batch", "1", "--seed", str(seed), "--stems", "none",
                       "--project", "bench"]
        if a.steps:
            cmd += ["--steps", str(a.steps)]
        proc = subprocess.run(cmd, env=self.env, cwd=ROOT, capture_output=True, text=True, timeout=600)
        if proc.returncode != 0:
            raise SystemExit(f"foley submit failed: {proc.stderr}")
        return proc.stdout.strip().splitlines()[-1]

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.engine.connect() as conn:
            return list(conn.execute(text(query), params))

    def job(self, job_id: str) -> Any:
        return self.sql("SELECT state, error, windows_done, windows_total FROM jobs WHERE id = :id", id=job_id)[0]

    def wait_rendered(self, job_id: str, timeout_s: float) -> Any:
        """Wait until every window of the job is rendered (assembly is not measured here)."""
        deadline = time.monotonic() + timeout_s
        while True:
            job = self.job(job_id)
            if job.state in ("failed", "cancelled"):
                raise SystemExit(f"job {job_id} ended {job.state}: {job.error} (logs in {self.tmp})")
            if job.state in ("assembling", "done"):
                return job
            if time.monotonic() > deadline:
                raise SystemExit(f"job {job_id} not rendered after {timeout_s:.0f} s: {job} (logs in {self.tmp})")
            time.sleep(0.2)

    def restart_cpu_worker(self) -> None:
        """A fresh `cpu` worker, the old one killed: its assembly of a finished job (which the
        benchmark does not need) must not compete with the next measurement for the CPUs."""
        if "cpu" in self.workers:
            self.stop_worker("cpu", kill=True)
        self.start_worker("cpu", "cpu")

    def close(self) -> None:
        for name in list(self.workers):
            self.stop_worker(name, kill=name == "cpu")  # it may be assembling a job nobody waits for
        self.engine.dispose()
        self._scratch.close()


def toy_video(tmp: Path, windows: int, name: str = "bench") -> Path:
    """A toy video long enough for at least `windows` windows (each adds at most 1.75 s)."""
    from render_farm.toyvideo import write_toy_video

    duration_s = math.ceil(windows * (WINDOW_S[1] - OVERLAP_S)) + 1.0
    t0 = time.perf_counter()
    video = write_toy_video(tmp / f"{name}.mp4", duration_s, seed=1, size=(256, 144), segment_s=7.0).path
    print(f"toy video {name}: {duration_s:.0f} s, written in {time.perf_counter() - t0:.1f} s", flush=True)
    return video


# -- memory -----------------------------------------------------------------------------------------

def run_memory(farm: Farm, args: argparse.Namespace) -> None:
    video = toy_video(farm.tmp, args.windows)
    farm.start_worker("cpu", "cpu")
    worker = farm.start_worker("render", RENDER_QUEUE, threads=args.threads)
    print(f"render worker pid {worker.pid}: RSS {tree_rss_mib(worker.pid):.1f} MiB before its first window", flush=True)
    job_id = farm.submit(video, seed=1)

    samples: list[tuple[float, int, float]] = []  # (t, windows done, RSS MiB)
    stop = threading.Event()

    def sample() -> None:
        t0 = time.monotonic()
        while not stop.is_set():
            done = farm.sql("SELECT count(*) FROM windows WHERE job_id = :id AND state = 'done'", id=job_id)[0][0]
            samples.append((time.monotonic() - t0, int(done), tree_rss_mib(worker.pid)))
            stop.wait(args.sample_s)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        job = farm.wait_rendered(job_id, args.timeout_s)
    finally:
        stop.set()
        sampler.join()
    hwm = _status_kib(worker.pid, "VmHWM") / 1024.0
    total = job.windows_total
    low: dict[int, float] = {}
    high: dict[int, float] = {}
    for _t, k, rss in samples:
        if 0 < k < total and rss > 0:  # from the first window done to the last one rendering
            low[k] = min(low.get(k, rss), rss)
            high[k] = max(high.get(k, rss), rss)
    ks = sorted(k for k in low if k >= args.warmup)
    if len(ks) < 5:
        raise SystemExit(f"only {len(ks)} sampled window counts after warm-up: lower --sample-s or raise --windows")
    print(f"memory of one render worker across {total} windows (1 window per step, {len(samples)} samples, "
          f"{args.threads} torch thread(s)); from window {ks[0]} (after {args.warmup} warm-up windows) to {ks[-1]}:")
    half = ks[len(ks) // 2:]
    for name, series in (("between windows", low), ("during windows", high)):
        ys = [series[k] for k in ks]
        print(f"  RSS {name:<16} first {ys[0]:7.1f} MiB   last {ys[-1]:7.1f} MiB   last-first {ys[-1] - ys[0]:+6.1f} MiB"
              f"   max {max(ys):7.1f} MiB   slope {slope_per_100([float(k) for k in ks], ys):+6.2f} MiB/100 windows"
              f" (second half, from window {half[0]}: "
              f"{slope_per_100([float(k) for k in half], [series[k] for k in half]):+6.2f})")
    print(f"  peak (VmHWM) {hwm:.1f} MiB; windows done {total}; elapsed {samples[-1][0]:.0f} s")
    if args.trace:
        with open(args.trace, "w") as f:
            f.write("t_s,windows_done,rss_mib\n")
            f.writelines(f"{t:.2f},{k},{rss:.2f}\n" for t, k, rss in samples)
        print(f"  samples written to {args.trace}")


# -- throughput -------------------------------------------------------------------------------------

def run_throughput(farm: Farm, args: argparse.Namespace) -> None:
    counts = sorted({int(n) for n in args.workers.split(",")})
    video = toy_video(farm.tmp, args.windows)
    warm = toy_video(farm.tmp, 2 * max(counts), name="warm-up")
    cores = os.cpu_count() or 1
    print(f"throughput: one job of >= {args.windows} windows per row, {args.threads} torch thread(s) per worker, "
          f"{cores} CPUs here", flush=True)
    rows: list[tuple[int, int, float, float]] = []
    for n in counts:
        while (have := len([w for w in farm.workers if w.startswith("render")])) < n:
            farm.start_worker(f"render{have}", RENDER_QUEUE, threads=args.threads)
        warm_up(farm, warm, args)
        farm.restart_cpu_worker()
        job_id = farm.submit(video, seed=7)  # every row renders the same job
        job = farm.wait_rendered(job_id, args.timeout_s)
        (span,) = farm.sql("SELECT EXTRACT(EPOCH FROM max(finished_at) - min(started_at)) FROM windows "
                           "WHERE job_id = :id", id=job_id)[0]
        walls = [float(r[0]) for r in farm.sql("SELECT (payload->>'wall_s')::float FROM events "
                                               "WHERE job_id = :id AND kind = 'batch.done'", id=job_id)]
        rate = job.windows_total / float(span)
        rows.append((n, job.windows_total, float(span), rate))
        print(f"  {n} worker(s): {job.windows_total} windows in {float(span):6.1f} s = {rate:6.2f} windows/s, "
              f"median step {statistics.median(walls):.2f} s", flush=True)
    base = next((r for r in rows if r[0] == 1), None)
    print("workers  windows  span s  windows/s  speed-up  efficiency")
    for n, windows, span, rate in rows:
        speedup = rate / base[3] if base else float("nan")
        note = "  (oversubscribed: workers x threads > CPUs)" if n * args.threads > cores else ""
        print(f"{n:7d}  {windows:7d}  {span:6.1f}  {rate:9.2f}  {speedup:8.2f}  {speedup / n:9.0%}{note}")


def warm_up(farm: Farm, video: Path, args: argparse.Namespace) -> None:
    """Render short jobs until every render worker has done a window (model loaded, caches warm)."""
    pids = {str(p.pid) for name, p in farm.workers.items() if name.startswith("render")}
    for attempt in range(8):
        farm.restart_cpu_worker()
        farm.wait_rendered(farm.submit(video, seed=attempt), args.timeout_s)
        actors = {r[0].rsplit(":", 1)[-1] for r in farm.sql(
            "SELECT DISTINCT actor FROM events WHERE kind = 'batch.done'")}
        if pids <= actors:
            return
    raise SystemExit(f"warm-up: workers {sorted(pids - actors)} never got a window")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=["memory", "throughput"])
    parser.add_argument("--pg-url", default=os.environ.get("FOLEY_TEST_PG_URL"))
    parser.add_argument("--redis-url", default=os.environ.get("FOLEY_TEST_REDIS_URL"))
    parser.add_argument("--redis-db", type=int, default=14)
    parser.add_argument("--s3", action="store_true", help="Blob store on FOLEY_TEST_S3_ENDPOINT instead of a directory.")
    parser.add_argument("--model", default="tiny", help="Model name or checkpoint directory (default: shipped tiny).")
    parser.add_argument("--steps", type=int, default=None, help="Sampler steps (default: the model's).")
    parser.add_argument("--windows", type=int, default=None,
                        help="At least this many windows per job (default: 120 for memory, 64 for throughput).")
    parser.add_argument("--threads", type=int, default=1, help="Torch threads per render worker.")
    parser.add_argument("--workers", default="1,2,4,8", help="throughput: worker counts.")
    parser.add_argument("--warmup", type=int, default=10, help="memory: windows before RSS counts.")
    parser.add_argument("--sample-s", type=float, default=0.2, help="memory: seconds between RSS samples.")
    parser.add_argument("--trace", default=None, help="memory: write every sample to this CSV.")
    parser.add_argument("--timeout-s", type=float, default=3600.0, help="Per job.")
    args = parser.parse_args()
    if not args.pg_url or not args.redis_url:
        raise SystemExit("set FOLEY_TEST_PG_URL and FOLEY_TEST_REDIS_URL (source .services/env)")
    args.windows = args.windows or (120 if args.mode == "memory" else 64)
    with tempfile.TemporaryDirectory(prefix="farm-render-bench-") as tmp:
        farm = Farm(args, Path(tmp))
        try:
            (run_memory if args.mode == "memory" else run_throughput)(farm, args)
        finally:
            farm.close()


if __name__ == "__main__":
    main()

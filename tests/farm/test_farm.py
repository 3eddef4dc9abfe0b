"""The farm end to end: real Redis, PostgreSQL, S3 (moto) and Celery worker processes."""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

from typing import TYPE_CHECKING

import pytest

from render_farm import farm_ops

if TYPE_CHECKING:
    from tests.farm.conftest import Farm

pytestmark = pytest.mark.slow


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _events(farm: Farm, job_id: str, kind: str) -> list:
    return farm.sql("SELECT * FROM events WHERE job_id = :id AND kind = :k ORDER BY id", id=job_id, k=kind)


def test_job_completes_once_per_window_and_matches_the_embedded_render(farm: Farm, toy: Path,
                                                                       embedded_output: bytes) -> None:
    farm.start_worker("w1", wait=False)
    farm.start_worker("w2")
    farm.wait_ready("w1")
    proc = farm.foley("submit", str(toy), "--model", str(farm.checkpoint), "--steps", "2", "--window-s", "1:2",
                      "--overlap-s", "0.25", "--batch", "1", "--seed", "3", "--project", "pilot", "--wait")
    job_id = proc.stdout.strip().splitlines()[-1]
    assert len(job_id) == 32 and proc.stdout.strip() == job_id

    windows = farm.windows(job_id)
    assert len(windows) >= 4
    assert all(w.state == "done" and w.attempts == 1 for w in windows), "each window rendered exactly once"
    assert len(_events(farm, job_id, "batch.done")) == len(windows)

    status = json.loads(farm.foley("status", job_id, "--json").stdout)
    for key in ("id", "state", "windows_done", "windows_total", "outputs", "error", "eta_s", "presigned_url"):
        assert key in status, key
    assert status["id"] == job_id and status["state"] == "done" and status["error"] is None
    assert status["windows_done"] == status["windows_total"] == len(windows)
    main = next(o for o in status["outputs"] if o["kind"] == "output")
    assert main["uri"].startswith(f"s3://{farm.bucket}/farm/jobs/{job_id}/")
    assert status["presigned_url"].startswith(farm.s3_endpoint)

    data, meta = farm.s3_object(main["uri"])
    assert meta["sha256"] == main["sha256"] == _sha(data), "the S3 object carries its verified SHA-256"
    for out in status["outputs"]:
        assert farm.s3_object(out["uri"])[1]["sha256"] == out["sha256"]
    assert data == embedded_output, "the farm renders the same bytes as `foley render` in-process"

    fetched = farm.tmp / "fetched.mp4"
    assert farm.foley("fetch", job_id, "-o", str(fetched)).stdout.strip() == str(fetched)
    assert fetched.read_bytes() == embedded_output
    assert job_id in farm.foley("jobs", "--project", "pilot").stdout
    assert job_id not in farm.foley("jobs", "--project", "other").stdout
    workers = {w.worker_host for w in windows}
    assert workers, "windows record who rendered them"


def test_sigkilled_worker_mid_window_is_recovered_with_identical_output(farm: Farm, toy: Path,
                                                                         embedded_output: bytes) -> None:
    farm.start_worker("w1", wait=False)
    farm.start_worker("w2")
    farm.wait_ready("w1")
    farm.start_beat(interval_s=1.0)
    job_id = farm.submit(toy)
    victim = farm.wait_until(lambda: next((w for w in farm.windows(job_id) if w.state == "running"), None),
                             what="a running window")
    pid = int(victim.lease_owner.rsplit(":", 1)[1])
    name = next(n for n, p in farm.procs.items() if p.pid == pid)
    os.kill(pid, signal.SIGKILL)
    farm.procs[name].wait()

    job = farm.wait_state(job_id, {"done", "failed"}, timeout_s=240)
    assert job.state == "done", job.error
    windows = farm.windows(job_id)
    again = next(w for w in windows if w.id == victim.id)
    assert again.state == "done" and again.attempts == 2, "the killed window was rendered again"
    assert again.lease_owner is None
    assert _events(farm, job_id, "reaper.requeued"), "the reaper requeued the expired lease"
    status = json.loads(farm.foley("status", job_id, "--json").stdout)
    main = next(o for o in status["outputs"] if o["kind"] == "output")
    assert farm.s3_object(main["uri"])[0] == embedded_output


def test_cancel_stops_within_one_window(farm: Farm, toy: Path) -> None:
    farm.start_worker("w1")
    # more sampler steps than the shared SPEC: with 2-step windows a loaded machine could finish the
    # whole 5-window job between two polls, and there would be nothing left to cancel
    job_id = farm.submit(toy, "--steps", "40")
    farm.wait_until(lambda: farm.job(job_id).windows_done >= 1, poll_s=0.01, what="a first window")
    farm_ops.cancel(farm.client(), job_id)  # in-process: `foley cancel` starts too slowly for 0.5 s windows
    done_at_cancel = farm.job(job_id).windows_done
    time.sleep(4)  # long enough for several more windows if the worker ignored the cancel
    job = farm.job(job_id)
    assert job.state == "cancelled"
    assert job.windows_done <= done_at_cancel + 1, "at most the window in flight finishes"
    assert job.windows_done < job.windows_total
    assert not _events(farm, job_id, "assemble.started")
    assert farm.foley("status", job_id, "--wait", check=False).returncode != 0
    assert farm.foley("cancel", job_id, check=False).returncode != 0, "a cancelled job cannot be cancelled again"


def test_pause_then_resume_does_not_rerender_finished_windows(farm: Farm, toy: Path, embedded_output: bytes) -> None:
    farm.start_worker("w1")
    client = farm.client()  # connected before the job runs: the whole short job (~0.7 s) once finished
    job_id = farm.submit(toy)  # while the pause was still opening its connection
    # pause as soon as a window is in flight: it finishes, the rest wait (waiting for a finished
    # window instead raced a loaded machine, where the whole short job could finish first)
    farm.wait_until(lambda: any(w.state in ("running", "done") for w in farm.windows(job_id)), poll_s=0.01,
                    what="a first window in flight")
    farm_ops.pause(client, job_id)
    farm.wait_until(lambda: not any(w.state == "running" for w in farm.windows(job_id)), what="the window in flight")
    before = {w.id: (w.state, w.attempts, w.finished_at) for w in farm.windows(job_id)}
    time.sleep(2)
    assert {w.id: (w.state, w.attempts, w.finished_at) for w in farm.windows(job_id)} == before, "paused means no work"
    assert farm.job(job_id).state == "paused"
    finished = {wid for wid, (state, _a, _f) in before.items() if state == "done"}
    assert 1 <= len(finished) < len(before)

    assert farm.foley("pause", job_id, check=False).returncode != 0, "pausing a paused job is refused"
    farm.foley("resume", job_id)
    job = farm.wait_state(job_id, {"done", "failed"})
    assert job.state == "done", job.error
    after = {w.id: (w.state, w.attempts, w.finished_at) for w in farm.windows(job_id)}
    for wid in finished:
        assert after[wid] == before[wid], "a window finished before the pause was not rendered again"
    assert all(a == 1 for _s, a, _f in after.values())
    status = json.loads(farm.foley("status", job_id, "--json").stdout)
    main = next(o for o in status["outputs"] if o["kind"] == "output")
    assert farm.s3_object(main["uri"])[0] == embedded_output


def test_episode_overtakes_queued_catalog_work(farm: Farm, toy: Path) -> None:
    farm.start_worker("cpu", queues="cpu")
    catalog = farm.submit(toy, "--priority", "catalog", "--project", "nightly")
    farm.wait_state(catalog, {"rendering"})
    episode = farm.submit(toy, "--priority", "episode", "--seed", "4")
    farm.wait_state(episode, {"rendering"})
    # Both jobs' batches now wait in their queues, the catalog's first; one GPU worker starts.
    farm.start_worker("gpu", queues="gpu-episode,gpu-catalog")
    farm.wait_until(lambda: any(w.started_at for w in farm.windows(catalog)), timeout_s=240, what="catalog work")
    episode_windows = farm.windows(episode)
    assert all(w.state == "done" for w in episode_windows), "the GPU took catalog work before the episode's"
    last_episode_start = max(w.started_at for w in episode_windows)
    first_catalog_start = min(w.started_at for w in farm.windows(catalog) if w.started_at)
    assert last_episode_start < first_catalog_start, "every episode window ran before the queued catalog windows"
    job = farm.wait_state(catalog, {"done", "failed"}, timeout_s=240)  # the catalog still completes after it
    assert job.state == "done", job.error


def test_catalog_sync_submits_only_what_is_new(farm: Farm, toy: Path, tmp_path: Path) -> None:
    from render_farm.toyvideo import write_toy_video

    src = tmp_path / "catalog"
    (src / "season1").mkdir(parents=True)
    (src / "a.mp4").write_bytes(toy.read_bytes())
    write_toy_video(src / "season1" / "b.mp4", 2.0, seed=7, size=(128, 72), segment_s=1.0)
    (src / "notes.txt").write_text("not a video")
    args = ["catalog", "sync", str(src), "--model", str(farm.checkpoint), "--project", "nightly",
            "--steps", "2", "--window-s", "1:2", "--overlap-s", "0.25", "--batch", "1"]

    first = farm.foley(*args).stdout.split()
    assert len(first) == 2 and all(len(j) == 32 for j in first)
    second = farm.foley(*args).stdout.split()
    assert second == [], "nothing new the second time"
    lines = [json.loads(x) for x in farm.foley(*args, "--json").stdout.splitlines()]
    assert sorted(x["job_id"] for x in lines) == sorted(first) and not any(x["submitted"] for x in lines)
    jobs = farm.sql("SELECT priority, project FROM jobs")
    assert len(jobs) == 2 and {(j.priority, j.project) for j in jobs} == {("catalog", "nightly")}

    write_toy_video(src / "a.mp4", 2.0, seed=8, size=(128, 72), segment_s=1.0)  # changed content
    third = farm.foley(*args).stdout.split()
    assert len(third) == 1 and third[0] not in first
    other_params = farm.foley(*args[:-1], "2").stdout.split()  # --batch 2: other parameters, other render
    assert len(other_params) == 2


def test_catalog_sync_of_an_s3_prefix(farm: Farm, toy: Path) -> None:
    from storage.blobs import S3BlobStore

    store = S3BlobStore(farm.bucket, "farm", endpoint_url=farm.s3_endpoint)
    store.put_file("catalog/ep1.mp4", toy)  # written with its sha256, as the store writes everything
    store.put("catalog/readme.txt", b"not a video")
    args = ["catalog", "sync", f"s3://{farm.bucket}/farm/catalog", "--model", str(farm.checkpoint), "--steps", "2",
            "--window-s", "1:2", "--overlap-s", "0.25", "--batch", "1"]
    first = farm.foley(*args).stdout.split()
    assert len(first) == 1
    job = farm.job(first[0])
    assert job.input_uri == f"s3://{farm.bucket}/farm/catalog/ep1.mp4" and job.priority == "catalog"
    assert farm.foley(*args).stdout.split() == []


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _redis_server(port: int, tmp: Path):
    import subprocess

    import redis

    proc = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly",
                             "no", "--dir", str(tmp)], stdout=open(tmp / f"redis-{port}.log", "a"),
                            stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 10
    while True:
        try:
            redis.Redis(port=port).ping()
            return proc
        except redis.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "redis-server did not start"
            time.sleep(0.05)


def test_redis_restart_mid_job_loses_queued_messages_and_the_reaper_recovers(farm: Farm, toy: Path,
                                                                             embedded_output: bytes) -> None:
    """A broker without persistence restarts: the queued batches are gone; SQL still knows the
    work, and the reaper re-sends it once the job has been idle for --stall-s."""
    import shutil

    assert shutil.which("redis-server") is not None, "make test installs redis-server; this test needs it"
    port = _free_port()
    broker = _redis_server(port, farm.tmp)
    try:
        farm.env["FOLEY_BROKER_URL"] = f"redis://127.0.0.1:{port}/0"
        farm.start_worker("w1", stall_s=3)
        farm.start_beat(interval_s=1.0)
        job_id = farm.submit(toy)
        farm.wait_until(lambda: farm.job(job_id).windows_done >= 1, what="a first window")
        broker.kill()
        broker.wait()
        broker = _redis_server(port, farm.tmp)  # empty: every queued message is lost
        job = farm.wait_state(job_id, {"done", "failed"}, timeout_s=240)
        assert job.state == "done", job.error
        assert _events(farm, job_id, "reaper.resent"), "the reaper re-sent the lost batches"
        assert all(w.state == "done" for w in farm.windows(job_id))
        status = json.loads(farm.foley("status", job_id, "--json").stdout)
        main = next(o for o in status["outputs"] if o["kind"] == "output")
        assert farm.s3_object(main["uri"])[0] == embedded_output
    finally:
        farm.stop()  # workers first, then their broker
        broker.kill()
        broker.wait()


def _step_retries(farm: Farm, *names: str) -> list[str]:
    """Lines where a worker met a database error in a step and is calling the step again."""
    lines = []
    for name in names:
        for line in (farm.tmp / f"{name}.log").read_text(errors="replace").splitlines():
            if ": ServiceUnavailable: " in line and "calling it again in this process" in line:
                lines.append(line)
    return lines


def test_database_stopped_briefly_workers_retry_and_continue(farm: Farm, toy: Path, embedded_output: bytes) -> None:
    """PostgreSQL goes away from the farm mid-render and comes back: the workers reach it through a
    TCP proxy that the test cuts (open sessions die mid-query, reconnects are refused), so the shared
    test server stays up for everything else. Steps that meet the outage fail with
    ServiceUnavailable and are called again, with backoff, in the same process, which takes back
    the windows it still leases; the job finishes with the embedded render's bytes, every window
    rendered in one attempt. Leases are long (120 s): nothing here waits for one to expire."""
    from sqlalchemy.engine import make_url

    from tests.farm.tcp_proxy import TcpProxy

    server = make_url(farm.database_url)
    with TcpProxy((server.host or "127.0.0.1", server.port or 5432)) as proxy:
        farm.env["FOLEY_DATABASE_URL"] = server.set(port=proxy.port).render_as_string(hide_password=False)
        farm.start_worker("w1", wait=False, lease_s=120)
        farm.start_worker("w2", lease_s=120)
        farm.wait_ready("w1")
        farm.start_beat(interval_s=1.0)
        job_id = farm.submit(toy)
        farm.wait_until(lambda: farm.job(job_id).windows_done >= 1 and any(
            w.state == "running" for w in farm.windows(job_id)), what="a first window done and another running")

        proxy.down()
        running = {w.batch_index for w in farm.windows(job_id) if w.state == "running"}  # claimed before the cut

        def met_outage() -> bool:
            """The worker of a window claimed before the cut finished it and could not record it
            (any step meeting the outage, if that window completed just before the cut)."""
            lines = _step_retries(farm, "w1", "w2")
            if not running:
                return bool(lines)
            return any(f"render_batch('{job_id}', {b})" in line for b in running for line in lines)

        down_at = time.monotonic()
        farm.wait_until(lambda: time.monotonic() - down_at >= 3 and met_outage(), timeout_s=180, poll_s=0.2,
                        what="a worker meeting the outage with a window it had claimed")
        during = farm.job(job_id)  # read past the proxy: the job waits, it did not fail
        assert during.state == "rendering" and during.windows_done < during.windows_total, during
        reconnects_before = proxy.connections_total
        proxy.up()

        job = farm.wait_state(job_id, {"done", "failed"}, timeout_s=240)
        assert job.state == "done", job.error
        assert proxy.connections_total > reconnects_before, "the workers reconnected through the proxy"
    farm.env["FOLEY_DATABASE_URL"] = farm.database_url

    windows = farm.windows(job_id)
    assert all(w.state == "done" and w.attempts == 1 and w.error is None for w in windows), [
        (w.index, w.state, w.attempts, w.error) for w in windows]
    assert not _events(farm, job_id, "reaper.requeued"), "no lease had to expire"
    assert not _events(farm, job_id, "batch.failed") and not _events(farm, job_id, "job.failed")
    assert len(_events(farm, job_id, "batch.done")) == len(windows)
    status = json.loads(farm.foley("status", job_id, "--json").stdout)
    main = next(o for o in status["outputs"] if o["kind"] == "output")
    data, meta = farm.s3_object(main["uri"])
    assert meta["sha256"] == main["sha256"] == _sha(data)
    assert data == embedded_output

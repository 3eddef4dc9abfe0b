"""The farm commands: `foley worker`, `beat`, `submit`, `status`, `jobs`, `fetch`, `cancel`,
`pause`, `resume`, `retry` and `catalog sync`. They need FOLEY_BROKER_URL, a shared database
(FOLEY_DATABASE_URL, migrated with `foley db upgrade`) and a shared store (FOLEY_STORE)."""
from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import click

from render_farm.config import DTYPES, ENGINES, InferenceConfig, Settings
from render_farm.media.proxy_formats import CURRENT_PROXY, PROXY_FORMATS
from foley_model.configs import CHOICES
from render_farm.spec import (CURRENT_CHOICE, CURRENT_PAST_END, PAST_END_HELP, PAST_END_MODES, RenderSpec,
                              parse_window_range)
from storage.errors import FoleyError, InvalidInput
from storage.models import JobState, Priority

log = logging.getLogger(__name__)

DEFAULT_QUEUES = "cpu,gpu-episode,gpu-catalog"


def _settings() -> Settings:
    return Settings.from_env()


def _client(read_only: bool = False):
    from render_farm.farm_ops import client_context

    return client_context(_settings(), read_only=read_only)


def spec_options(func):
    """The render parameters `foley submit` and `foley catalog sync` share with `foley render`."""
    options = [
        click.option("--prompt", default="", help="Caption of the scene (optional)."),
        click.option("--negative-prompt", default="", help="What the sound should not be."),
        click.option("--seed", type=int, default=0, show_default=True),
        click.option("--steps", type=int, default=None, help="Sampler steps (default: the model's)."),
        click.option("--cfg", "cfg_scale", type=float, default=None, help="Classifier-free guidance scale."),
        click.option("--candidates", type=int, default=None,
                     help="Samples per window the picture onset judge picks from (default: the model's)."),
        click.option("--model", default="tiny", show_default=True, help="Model name or checkpoint directory."),
        click.option("--window-s", default=None, help="Window length range MIN:MAX seconds."),
        click.option("--overlap-s", type=float, default=None, help="Overlap between windows in seconds."),
        click.option("--loudness", type=float, default=-23.0, show_default=True, help="Loudness target, LUFS."),
        click.option("--stems", type=click.Choice(["wav", "flac", "none"]), default="wav", show_default=True),
        click.option("--batch", "batch_windows", type=int, default=4, show_default=True, help="Windows per batch."),
        click.option("--proxy", type=click.Choice(list(PROXY_FORMATS)), default=CURRENT_PROXY, show_default=True,
                     help="Proxy format the sync path reads."),
        click.option("--choose-per", type=click.Choice(list(CHOICES)), default=CURRENT_CHOICE, show_default=True,
                     help="The picture onset judge keeps one candidate per window, or one per stretch between onsets."),
        click.option("--past-end", type=click.Choice(list(PAST_END_MODES)), default=CURRENT_PAST_END,
                     show_default=True, help=PAST_END_HELP),
        click.option("--project", default="default", show_default=True),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _spec(prompt: str, negative_prompt: str, seed: int, steps: int | None, cfg_scale: float | None,
          candidates: int | None, model: str, window_s: str | None, overlap_s: float | None, loudness: float,
          stems: str, batch_windows: int, proxy: str, choose_per: str, past_end: str = CURRENT_PAST_END) -> RenderSpec:
    wmin, wmax = parse_window_range(window_s) if window_s else (None, None)
    return RenderSpec(prompt=prompt, negative_prompt=negative_prompt, seed=seed, steps=steps, cfg_scale=cfg_scale,
                      candidates=candidates, model=model, window_min_s=wmin, window_max_s=wmax, overlap_s=overlap_s,
                      loudness_lufs=loudness, stems=stems, batch_windows=batch_windows, proxy=proxy,
                      choose_per=choose_per, past_end=past_end)


def _progress(status: dict[str, Any]) -> None:
    eta = f", ETA {status['eta_s']:.0f}s" if status.get("eta_s") else ""
    click.echo(f"foley: {status['id'][:8]} {status['state']} {status['windows_done']}/{status['windows_total']}{eta}",
               err=True)


def _finish(status: dict[str, Any]) -> None:
    """Exit non-zero unless the job is done."""
    if status["state"] != JobState.DONE.value:
        raise FoleyError(f"job {status['id']} ended {status['state']}: {status.get('error') or 'no reason recorded'}")


# -- processes -----------------------------------------------------------------------------------

@click.command("worker")
@click.option("--queues", "-Q", default=DEFAULT_QUEUES, show_default=True,
              help="Queues to consume; always polled cpu, gpu-episode, gpu-catalog in that order.")
@click.option("--concurrency", "-c", type=int, default=1, show_default=True, help="Processes (per GPU with --gpus: 1).")
@click.option("--pool", type=click.Choice(["prefork", "solo"]), default=None,
              help="Celery pool (default: solo for one process, prefork for more).")
@click.option("--gpus", default=None,
              help="Comma-separated GPU indices: one solo worker process per GPU, the model on that GPU.")
@click.option("--device", default=None,
              help="Where the render network runs: cpu (default) or cuda[:N] (one process: -c 1).")
@click.option("--device-label", default=None, hidden=True, help="Device recorded for the windows (--gpus children).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="auto", show_default=True,
              help="Inference engine on CUDA (auto: DeepSpeed with CUDA graphs); the CPU path is plain torch.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True,
              help="Network dtype on CUDA (auto: bf16); the CPU path is fp32.")
@click.option("--lease-s", type=float, default=1800.0, show_default=True, help="Lease on a claimed window or step.")
@click.option("--stall-s", type=float, default=600.0, show_default=True, help="Reaper: re-send work idle this long.")
@click.option("--visibility-timeout-s", type=float, default=6 * 3600.0, show_default=True,
              help="Redis redelivers a message unacknowledged this long: keep it above the longest step.")
@click.option("--retry-window-s", type=float, default=60.0, show_default=True,
              help="After a transient error (database or store briefly away), retry the step in this process, "
                   "keeping its leases, for this long before handing it back to Celery's retries (0: at once).")
@click.option("--hostname", "-n", default=None, help="Celery node name.")
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def worker(queues: str, concurrency: int, pool: str | None, gpus: str | None, device: str | None,
           device_label: str | None, engine: str, dtype: str, lease_s: float, stall_s: float,
           visibility_timeout_s: float, retry_window_s: float, hostname: str | None, loglevel: str) -> None:
    """Run a farm worker: consume QUEUES and run the steps they carry.

    With --gpus, this process only supervises: it starts one worker process per GPU (each seeing
    only its GPU, loading the model once onto it) and never touches CUDA itself. A GPU process on
    a machine without a usable GPU renders on the CPU and says so in one log line."""
    names = [q.strip() for q in queues.split(",") if q.strip()]
    from schedulers.celery_executor import QUEUES

    unknown = [q for q in names if q not in QUEUES]
    if unknown or not names:
        raise InvalidInput(f"unknown queue(s) {', '.join(unknown) or '(none)'}: choose from {', '.join(QUEUES)}")
    names = sorted(set(names), key=QUEUES.index)  # polled in this order: cpu, then episode before catalog
    if concurrency < 1:
        raise InvalidInput(f"--concurrency {concurrency} must be at least 1")
    if not 0 <= retry_window_s <= 24 * 3600:
        raise InvalidInput(f"--retry-window-s {retry_window_s} must be between 0 and 86400")
    if gpus:
        indices = [g.strip() for g in gpus.split(",") if g.strip()]
        bad = [g for g in indices if not g.isdigit()]
        if bad or not indices:
            raise InvalidInput(f"--gpus {gpus!r}: give GPU indices such as 0,1")
        sys.exit(_supervise_gpus(indices, names, lease_s, stall_s, visibility_timeout_s, loglevel, engine, dtype,
                                 retry_window_s))
    from render_farm.farm_ops import farm_app

    if visibility_timeout_s <= lease_s:
        raise InvalidInput(f"--visibility-timeout-s {visibility_timeout_s} must be above --lease-s {lease_s}")
    inference = InferenceConfig(device=device or "cpu", engine=engine, dtype=dtype, label=device_label or "")
    if inference.on_cuda and concurrency > 1:
        raise InvalidInput(f"--device {device} with --concurrency {concurrency}: a GPU worker is one process "
                           "(use --gpus 0,1,… for one process per GPU)")
    app = farm_app(_settings(), lease_s=lease_s, stall_s=stall_s, device=device_label or device or "cpu",
                   visibility_timeout_s=visibility_timeout_s, inference=inference, local_retry_s=retry_window_s)
    pool = pool or ("solo" if concurrency == 1 else "prefork")
    argv = ["worker", "-Q", ",".join(names), "-c", str(concurrency), "-P", pool, "-l", loglevel,
            "--without-gossip", "--without-mingle", "--without-heartbeat"]
    if hostname:
        argv += ["-n", hostname]
    app.worker_main(argv=argv)


def _supervise_gpus(gpus: list[str], queues: list[str], lease_s: float, stall_s: float, visibility_timeout_s: float,
                    loglevel: str, engine: str = "auto", dtype: str = "auto", retry_window_s: float = 60.0) -> int:
    """One solo worker process per GPU, each seeing only its GPU (as cuda:0), placing the model on
    it once; this parent never touches CUDA (the children are new programs, not forks)."""
    children: list[subprocess.Popen] = []
    for gpu in gpus:
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=gpu)
        cmd = [sys.executable, "-m", "render_farm", "worker", "-Q", ",".join(queues), "-c", "1", "--pool", "solo",
               "--device", "cuda:0", "--device-label", f"cuda:{gpu}", "--engine", engine, "--dtype", dtype,
               "--lease-s", str(lease_s), "--stall-s", str(stall_s),
               "--visibility-timeout-s", str(visibility_timeout_s), "--retry-window-s", str(retry_window_s),
               "-l", loglevel,
               "-n", f"gpu{gpu}@%h"]
        children.append(subprocess.Popen(cmd, env=env))
    log.info("started %d GPU workers: %s", len(children), [c.pid for c in children])

    def stop(signum: int, _frame: Any) -> None:
        for child in children:
            if child.poll() is None:
                child.send_signal(signum)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    codes = [child.wait() for child in children]
    return max(codes, default=0)


@click.command("beat")
@click.option("--interval", "reaper_interval_s", type=float, default=30.0, show_default=True,
              help="Seconds between reaper runs.")
@click.option("--schedule", "schedule_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Beat's schedule state file (default: under the data dir).")
@click.option("--catalog", "catalog_source", default=None, help="Also sync this catalog (directory or s3:// prefix).")
@click.option("--catalog-interval", type=float, default=3600.0, show_default=True)
@spec_options
@click.option("--loglevel", "-l", default="INFO", show_default=True)
def beat(reaper_interval_s: float, schedule_path: Path | None, catalog_source: str | None, catalog_interval: float,
         project: str, loglevel: str, **spec_kw: Any) -> None:
    """Run Celery beat: the reaper every --interval seconds, and optionally a catalog sync."""
    from render_farm.farm_ops import CATALOG_SYNC_STEP, farm_app
    from render_farm.models import model_for_spec

    settings = _settings()
    catalog = None
    if catalog_source:
        spec = _spec(**spec_kw)
        params = model_for_spec(spec).resolve(spec).to_params()
        catalog = {"step": CATALOG_SYNC_STEP, "interval_s": catalog_interval,
                   "kwargs": {"source": catalog_source, "params": params, "project": project}}
    app = farm_app(settings, reaper_interval_s=reaper_interval_s, catalog_sync=catalog)
    path = schedule_path or settings.data_dir / "celerybeat-schedule"
    path.parent.mkdir(parents=True, exist_ok=True)
    app.Beat(schedule=str(path), loglevel=loglevel, max_interval=min(5.0, reaper_interval_s)).run()


# -- jobs ----------------------------------------------------------------------------------------

@click.command("submit")
@click.argument("inputs", nargs=-1, required=True)
@spec_options
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default="episode", show_default=True)
@click.option("--user", default=None, help="Recorded as the submitter (default: the OS user).")
@click.option("--wait", is_flag=True, help="Wait for the jobs; exit non-zero if one does not finish done.")
@click.option("--timeout", "timeout_s", type=float, default=None, help="With --wait: give up after this many seconds.")
def submit(inputs: tuple[str, ...], project: str, priority: str, user: str | None, wait: bool,
           timeout_s: float | None, **spec_kw: Any) -> None:
    """Submit INPUT videos (local files or s3:// objects in the store) to the farm; prints job ids."""
    from render_farm.farm_ops import stage_input, submit_input, wait_for

    spec = _spec(**spec_kw)
    ctx = _client()
    job_ids = []
    for source in inputs:
        uri, sha = stage_input(ctx, source)
        job_id = submit_input(ctx, uri, sha, spec, project=project, priority=Priority(priority), user=user)
        click.echo(job_id)
        job_ids.append(job_id)
    if wait:
        failures = []
        for job_id in job_ids:
            status = wait_for(ctx, job_id, timeout_s=timeout_s, on_change=_progress)
            if status["state"] != JobState.DONE.value:
                failures.append(status)
        if failures:
            _finish(failures[0])


@click.command("status")
@click.argument("job_id")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--wait", is_flag=True, help="Wait until the job is final; exit non-zero unless done.")
@click.option("--watch", is_flag=True, help="Print a progress line at every change until the job is final.")
@click.option("--timeout", "timeout_s", type=float, default=None)
def status(job_id: str, as_json: bool, wait: bool, watch: bool, timeout_s: float | None) -> None:
    """State, windows done, outputs (with SHA-256), ETA and a download link of JOB."""
    from render_farm.farm_ops import job_status, wait_for

    ctx = _client(read_only=True)
    if wait or watch:
        st = wait_for(ctx, job_id, timeout_s=timeout_s, on_change=_progress if watch or not as_json else None)
    else:
        st = job_status(ctx, job_id)
    if as_json:
        click.echo(json.dumps(st, sort_keys=True))
    else:
        eta = f"  ETA {st['eta_s']:.0f}s" if st.get("eta_s") else ""
        click.echo(f"{st['id']}  {st['state']}  windows {st['windows_done']}/{st['windows_total']}{eta}")
        if st["error"]:
            click.echo(f"  error: {st['error']}")
        for out in st["outputs"]:
            click.echo(f"  {out['kind']}: {out['uri']}  sha256 {out['sha256']}")
        if st["presigned_url"]:
            click.echo(f"  download: {st['presigned_url']}")
    if wait:
        _finish(st)


@click.command("jobs")
@click.option("--state", "states", multiple=True, type=click.Choice([s.value for s in JobState]))
@click.option("--project", default=None)
@click.option("--limit", type=int, default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True)
def jobs(states: tuple[str, ...], project: str | None, limit: int, as_json: bool) -> None:
    """List jobs, newest first."""
    from render_farm.farm_ops import list_jobs

    rows = list_jobs(_client(read_only=True), states=[JobState(s) for s in states] or None, project=project,
                     limit=limit)
    if as_json:
        click.echo(json.dumps(rows, sort_keys=True))
        return
    for r in rows:
        click.echo(f"{r['id']}  {r['state']:<10} {r['priority']:<8} {r['windows_done']:>4}/{r['windows_total']:<4} "
                   f"{r['project']:<12} {r['input_uri']}")


@click.command("fetch")
@click.argument("job_id")
@click.option("-o", "--output", "dest", type=click.Path(path_type=Path, dir_okay=False), required=True)
@click.option("--overwrite", is_flag=True)
def fetch(job_id: str, dest: Path, overwrite: bool) -> None:
    """Download JOB's output, verified against its recorded SHA-256."""
    from render_farm.farm_ops import fetch_output

    info = fetch_output(_client(read_only=True), job_id, dest, overwrite=overwrite)
    click.echo(info["path"])


def _control(name: str, help_text: str):
    @click.command(name, help=help_text)
    @click.argument("job_ids", nargs=-1, required=True)
    def command(job_ids: tuple[str, ...]) -> None:
        from render_farm import farm_ops

        ctx = _client()
        for job_id in job_ids:
            getattr(farm_ops, name)(ctx, job_id)
            click.echo(f"{job_id} {name}", err=True)

    return command


@click.group("catalog")
def catalog() -> None:
    """Nightly catalogs: submit what is new."""


@catalog.command("sync")
@click.argument("source")
@spec_options
@click.option("--priority", type=click.Choice([p.value for p in Priority]), default="catalog", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON line per video.")
def catalog_sync(source: str, project: str, priority: str, as_json: bool, **spec_kw: Any) -> None:
    """Submit every video under SOURCE (directory or s3:// prefix) not yet rendered with this model
    and these parameters; prints the id of each job submitted."""
    from render_farm.farm_ops import catalog_sync as sync

    items = sync(_client(), source, _spec(**spec_kw), project=project, priority=Priority(priority))
    for item in items:
        if as_json:
            click.echo(json.dumps({"source": item.source, "sha256": item.sha256, "job_id": item.job_id,
                                   "submitted": item.submitted}, sort_keys=True))
        elif item.submitted:
            click.echo(item.job_id)
    click.echo(f"foley: {sum(i.submitted for i in items)} submitted, "
               f"{sum(not i.submitted for i in items)} already rendered", err=True)


def register(group: click.Group) -> None:
    for command in (worker, beat, submit, status, jobs, fetch, catalog):
        group.add_command(command)
    group.add_command(_control("cancel", "Cancel JOB(s); workers stop before their next batch."))
    group.add_command(_control("pause", "Pause rendering JOB(s) between batches."))
    group.add_command(_control("resume", "Resume paused JOB(s): only unfinished batches are re-sent."))
    group.add_command(_control("retry", "Retry failed JOB(s): failed windows get fresh attempts."))

"""`foley bench model` and `foley bench episode`: speed measured side by side in one run."""
from __future__ import annotations

import json

import click

from render_farm.config import DTYPES, ENGINES


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(b) for b in text.split(",") if b.strip())
    except ValueError:
        raise click.BadParameter(f"{text!r} is not a comma list of batch sizes", param_hint="--batch") from None
    if not sizes or min(sizes) < 1:
        raise click.BadParameter(f"{text!r}: batch sizes are positive", param_hint="--batch")
    return sizes


@click.group("bench")
def bench_group() -> None:
    """Benchmarks."""


@bench_group.command("model")
@click.option("--variant", default="tiny", show_default=True, help="Model variant (random weights).")
@click.option("--batch", "batches", default="1,4,16", show_default=True, help="Comma list of batch sizes.")
@click.option("--steps", type=int, default=None, help="Euler steps (default: the config's; kling on a CPU: 1).")
@click.option("--duration", "duration_s", type=float, default=None,
              help="Window seconds (default: the config's window; kling on a CPU: 1).")
@click.option("--engine", type=click.Choice([e for e in ENGINES if e != "auto"]), default="eager",
              show_default=True, help="Engine measured against the one-window eager baseline.")
@click.option("--device", default="auto", show_default=True, help="auto (cuda when there is one), cpu, cuda[:N].")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True,
              help="Network dtype (auto: bf16 on cuda, fp32 on the CPU).")
@click.option("--repeats", type=int, default=1, show_default=True, help="Timed runs per batch size (best kept).")
@click.option("--no-check", is_flag=True, help="Skip the batched-equals-single comparison.")
@click.option("--threads", type=int, default=None, help="torch threads (default: torch's).")
@click.option("--json", "as_json", is_flag=True)
def bench_model(variant, batches, steps, duration_s, engine, device, dtype, repeats, no_check, threads,
                as_json) -> None:
    """Audio-seconds per device-second, counted TFLOP/s and the fraction of the measured matrix
    peak of ENGINE at each batch size, against the one-window eager baseline of the same network;
    batched outputs checked against one-window outputs."""
    import torch

    from render_farm.benchmarks.model_bench import ModelBench, format_model_bench, run_model_bench

    if threads:
        torch.set_num_threads(threads)
    result = run_model_bench(ModelBench(variant=variant, batches=_sizes(batches), steps=steps, duration_s=duration_s,
                                        engine=engine, device=device, dtype=dtype, check=not no_check,
                                        repeats=repeats))
    click.echo(json.dumps(result, indent=2) if as_json else format_model_bench(result))


@bench_group.command("episode")
@click.option("--minutes", type=float, default=45.0, show_default=True, help="Length of the synthetic episode.")
@click.option("--model", default="tiny", show_default=True)
@click.option("--device", default="auto", show_default=True, help="auto (cuda when there is one), cpu, cuda[:N].")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="auto", show_default=True)
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True)
@click.option("--batch", "batch_windows", type=int, default=16, show_default=True, help="Windows per batch.")
@click.option("--size", default="256x144", show_default=True, help="Episode frame size WxH.")
@click.option("--workers", type=int, default=None, help="Processes writing the episode (default: all cores).")
@click.option("--work-dir", type=click.Path(file_okay=False), default=None,
              help="Keep the episode, its render and state here (default: a temporary directory).")
@click.option("--json", "as_json", is_flag=True)
def bench_episode(minutes, model, device, engine, dtype, batch_windows, size, workers, work_dir, as_json) -> None:
    """End-to-end wall time of a synthetic toy-world episode through `foley render`'s pipeline,
    with per-stage times and the GPU busy fraction (n/a on a CPU)."""
    from pathlib import Path

    from render_farm.benchmarks.episode_bench import EpisodeBench, format_episode_bench, run_episode_bench

    try:
        w, h = (int(v) for v in size.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{size!r} is not WxH", param_hint="--size") from None
    if minutes <= 0:
        raise click.BadParameter("must be above 0", param_hint="--minutes")
    result = run_episode_bench(
        EpisodeBench(minutes=minutes, model=model, device=device, engine=engine, dtype=dtype,
                     batch_windows=batch_windows, size=(w, h), workers=workers,
                     work_dir=Path(work_dir) if work_dir else None),
        print_fn=None if as_json else (lambda s: click.echo(s, err=True)))
    click.echo(json.dumps(result, indent=2) if as_json else format_episode_bench(result))


def register(group: click.Group) -> None:
    group.add_command(bench_group)

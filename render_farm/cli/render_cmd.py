"""`foley render`: video in, finished sound track out, on this machine."""
from __future__ import annotations

from pathlib import Path

import click

from render_farm.config import DTYPES, ENGINES, InferenceConfig, Settings
from render_farm.media.proxy_formats import CURRENT_PROXY, PROXY_FORMATS
from render_farm.local_render import plan_outputs, render_files, write_report
from foley_model.configs import CHOICES
from render_farm.spec import (CURRENT_CHOICE, CURRENT_PAST_END, PAST_END_HELP, PAST_END_MODES, RenderSpec,
                              parse_window_range)


@click.command("render")
@click.argument("inputs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("-o", "--output", type=click.Path(path_type=Path), help="Output file (one input only).")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False), help="Directory for outputs.")
@click.option("--prompt", default="", help="Caption of the scene (optional).")
@click.option("--negative-prompt", default="", help="What the sound should not be.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--steps", type=int, default=None, help="Sampler steps (default: the model's).")
@click.option("--cfg", "cfg_scale", type=float, default=None, help="Classifier-free guidance scale.")
@click.option("--candidates", type=int, default=None,
              help="Samples per window the picture onset judge picks from (default: the model's; 1: no reranking).")
@click.option("--model", default="tiny", show_default=True, help="Registered model name or checkpoint directory.")
@click.option("--window-s", default=None, help="Window length range MIN:MAX seconds (default: the model's).")
@click.option("--overlap-s", type=float, default=None, help="Overlap between windows in seconds (default: the model's).")
@click.option("--loudness", type=float, default=-23.0, show_default=True, help="Integrated loudness target, LUFS.")
@click.option("--stems", type=click.Choice(["wav", "flac", "none"]), default="wav", show_default=True)
@click.option("--batch", "batch_windows", type=int, default=4, show_default=True, help="Windows per batch.")
@click.option("--proxy", type=click.Choice(list(PROXY_FORMATS)), default=CURRENT_PROXY, show_default=True,
              help="Proxy format the sync path reads (an older one renders as jobs before it did).")
@click.option("--choose-per", type=click.Choice(list(CHOICES)), default=CURRENT_CHOICE, show_default=True,
              help="The picture onset judge keeps one candidate per window, or one per stretch between the "
                   "picture's onsets (latents cross-faded at the joins).")
@click.option("--past-end", type=click.Choice(list(PAST_END_MODES)), default=CURRENT_PAST_END, show_default=True,
              help=PAST_END_HELP)
@click.option("--report", "report_path", type=click.Path(path_type=Path, dir_okay=False), help="Write a JSON report.")
@click.option("--overwrite", is_flag=True, help="Replace outputs that exist.")
@click.option("--project", default="local", show_default=True)
@click.option("--user", default=None, help="Recorded as the submitter (default: the OS user).")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
@click.option("--device", default="cpu", show_default=True,
              help="Where the render network runs: cpu, or cuda[:N] (falls back to the CPU where there is no GPU).")
@click.option("--engine", type=click.Choice(list(ENGINES)), default="auto", show_default=True,
              help="Inference engine on CUDA (auto: DeepSpeed with CUDA graphs); the CPU path is plain torch.")
@click.option("--dtype", type=click.Choice(list(DTYPES)), default="auto", show_default=True,
              help="Network dtype on CUDA (auto: bf16); the CPU path is fp32.")
def render(inputs: tuple[Path, ...], output: Path | None, out_dir: Path | None, prompt: str, negative_prompt: str,
           seed: int, steps: int | None, cfg_scale: float | None, candidates: int | None, model: str, window_s: str | None, overlap_s: float | None,
           loudness: float, stems: str, batch_windows: int, proxy: str, choose_per: str, past_end: str, report_path: Path | None,
           overwrite: bool,
           project: str, user: str | None, quiet: bool, device: str, engine: str, dtype: str) -> None:
    """Render a foley track for each INPUT video and mux it into a copy of the video."""
    wmin, wmax = parse_window_range(window_s) if window_s else (None, None)
    spec = RenderSpec(prompt=prompt, negative_prompt=negative_prompt, seed=seed, steps=steps, cfg_scale=cfg_scale,
                      candidates=candidates, model=model, window_min_s=wmin, window_max_s=wmax, overlap_s=overlap_s,
                      loudness_lufs=loudness, stems=stems, batch_windows=batch_windows, proxy=proxy,
                      choose_per=choose_per, past_end=past_end)
    requests = plan_outputs(list(inputs), output, out_dir, overwrite)
    if report_path is not None and report_path.exists() and not overwrite:
        raise click.ClickException(f"{report_path}: already exists (use --overwrite to replace it)")
    inference = InferenceConfig(device=device, engine=engine, dtype=dtype)
    reports = render_files(Settings.from_env(), requests, spec, quiet=quiet, project=project, user=user,
                           inference=None if inference == InferenceConfig() else inference)
    for r in reports:
        click.echo(r["output"]["uri"].removeprefix("file://"))
    if report_path is not None:
        write_report(report_path, reports)
        if not quiet:
            click.echo(f"report: {report_path}", err=True)


def register(group: click.Group) -> None:
    group.add_command(render)

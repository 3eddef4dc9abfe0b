"""`foley demo`: generate a toy-world video (about a minute, with cuts) and render it end to end
on the embedded default, printing where the result and the report are."""
from __future__ import annotations

import json
import time
from pathlib import Path

import click

from render_farm.config import Settings
from render_farm.local_render import plan_outputs, render_files, write_report
from render_farm.spec import RenderSpec
from render_farm.toyvideo import write_toy_video


@click.command("demo")
@click.option("--out-dir", type=click.Path(path_type=Path, file_okay=False), default=Path("out/demo"), show_default=True)
@click.option("--duration-s", type=float, default=60.0, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo(out_dir: Path, duration_s: float, seed: int) -> None:
    """Render a generated sample video with the shipped tiny model."""
    out_dir.mkdir(parents=True, exist_ok=True)
    video = out_dir / "sample.mp4"
    click.echo(f"1/2 generating a {duration_s:.0f} s toy-world video with cuts: {video}", err=True)
    toy = write_toy_video(video, duration_s, seed=seed, size=(320, 180), audio_track=True)
    (out_dir / "sample.truth.json").write_text(toy.ground_truth_json(), encoding="utf-8")
    click.echo("2/2 rendering it with the tiny model (SQLite, local store, in-process)", err=True)
    t0 = time.perf_counter()
    settings = Settings.from_env()
    settings = settings.with_overrides(data_dir=out_dir / "state") if not _configured() else settings
    requests = plan_outputs([video], out_dir / "sample.foley.mp4", None, overwrite=True)
    spec = RenderSpec(prompt="; ".join(c for c in toy.captions if c), seed=seed)
    reports = render_files(settings, requests, spec, project="demo")
    report_path = out_dir / "sample.report.json"
    write_report(report_path, reports)
    wall = time.perf_counter() - t0
    r = reports[0]
    click.echo(json.dumps({"windows": len(r["windows"]), "joins_s": r["joins_s"], "loudness": r["loudness"]}))
    click.echo(f"rendered {duration_s:.0f} s of video in {wall:.1f} s ({duration_s / wall:.2f}x realtime)")
    click.echo(f"result: {requests[0].output_path}")
    click.echo(f"stem:   {r['stems'][0]['uri'].removeprefix('file://') if r['stems'] else '-'}")
    click.echo(f"report: {report_path}")
    click.echo(f"ground truth of the sample: {out_dir / 'sample.truth.json'}")


def _configured() -> bool:
    import os

    return any(os.environ.get(k) for k in ("FOLEY_DATA_DIR", "FOLEY_DATABASE_URL", "FOLEY_STORE"))


def register(group: click.Group) -> None:
    group.add_command(demo)

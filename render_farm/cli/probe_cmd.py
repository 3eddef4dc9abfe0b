"""`foley probe VIDEO [--json]`: what a media file holds, as a table or JSON."""
from __future__ import annotations

import json

import click

from render_farm.media.probe import MediaInfo, StreamInfo, probe


@click.command("probe")
@click.argument("video", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def probe_command(video: str, as_json: bool) -> None:
    """Show container, duration, size and streams of VIDEO."""
    info = probe(video)
    if as_json:
        click.echo(json.dumps(info.to_dict(), indent=2, sort_keys=True))
    else:
        click.echo(format_table(info))


def _stream_line(s: StreamInfo, main: bool) -> list[str]:
    detail = ""
    if s.video is not None:
        v = s.video
        rate = f"{float(v.frame_rate):.3f} fps {'CFR' if v.constant_frame_rate else 'VFR'}"
        rot = f", rotated {v.rotation_ccw_deg}° ccw" if v.rotation_ccw_deg else ""
        detail = f"{v.width}x{v.height} (shown {v.display_width}x{v.display_height}{rot}), {rate}, {v.pixel_format}"
    elif s.audio is not None:
        detail = f"{s.audio.sample_rate_hz} Hz, {s.audio.channels} ch ({s.audio.layout})"
    duration = f"{s.duration_s:.3f} s" if s.duration_s is not None else "-"
    return [f"{s.index}{'*' if main else ''}", s.kind, s.codec, duration, s.title or "-", detail]


def format_table(info: MediaInfo) -> str:
    """A plain-text summary: file facts, then one row per stream (* marks the main video)."""
    head = [
        f"file      {info.path}",
        f"format    {info.format_name}",
        f"duration  {info.duration_s:.3f} s",
        f"size      {info.size_bytes} bytes",
        "",
    ]
    rows = [["#", "type", "codec", "duration", "title", "details"]]
    rows += [_stream_line(s, s.index == info.video_index) for s in info.streams]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r[:-1], widths)) + "  " + r[-1] for r in rows]
    return "\n".join(head + [line.rstrip() for line in lines])


def register(group: click.Group) -> None:
    """Add `probe` to the foley command group."""
    group.add_command(probe_command)

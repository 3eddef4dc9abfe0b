"""The `foley` command line. Each command group lives in its own module, registered below.

Every FoleyError becomes one line on stderr and a non-zero exit; tracebacks only with --debug.
"""
from __future__ import annotations

import importlib
import logging
import sys

import click

from render_farm.heap import keep_freed_memory, pin_mmap_threshold
from storage.errors import FoleyError

# Modules that define click commands; each exposes `register(group: click.Group) -> None`.
COMMAND_MODULES: tuple[str, ...] = (
    "render_farm.cli.render_cmd",
    "render_farm.cli.demo_cmd",
    "render_farm.cli.db_cmd",
    "render_farm.cli.probe_cmd",
    "render_farm.cli.model_cmd",
    "render_farm.cli.bench_cmd",
    "render_farm.cli.history_cmd",
    "render_farm.cli.farm_cmd",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--debug", is_flag=True, help="Debug logs and full tracebacks.")
@click.option("-v", "--verbose", count=True, help="Log warnings (-v) or progress details (-vv) on stderr.")
@click.pass_context
def cli(ctx: click.Context, debug: bool, verbose: int) -> None:
    """Foley render farm: turn video into a synchronized stereo foley track."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug
    # Quiet by default: a failure is reported as one line by main(), not by log records.
    level = logging.DEBUG if debug else {0: logging.ERROR, 1: logging.WARNING}.get(verbose, logging.INFO)
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(cli)


# Model training and evaluation do not pin the mmap threshold: with it pinned at 1 MiB every
# activation and gradient buffer is a fresh mapping, and a `foley train` step took 28 % longer
# (0.59 vs 0.82 steps/s, measured side by side). Training goes further and keeps freed memory
# (render_farm/heap.py: 0.92 vs 1.29 s per tiny DiT step).
UNPINNED_COMMANDS = {"train", "eval"}


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, translate errors into one line and an exit code."""
    args = sys.argv[1:] if argv is None else argv
    debug = "--debug" in args
    if args[:1] == ["train"]:
        keep_freed_memory()
    elif not set(args[:1]) & UNPINNED_COMMANDS:
        pin_mmap_threshold()  # memory flat in the video's length (see render_farm/heap.py)
    try:
        cli.main(args=args, prog_name="foley", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("foley: aborted", err=True)
        sys.exit(130)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"foley: error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except FoleyError as exc:
        if debug:
            raise
        click.echo(f"foley: error: {exc}", err=True)
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        click.echo("foley: interrupted", err=True)
        sys.exit(130)
    except Exception as exc:  # noqa: BLE001 - the last line of defence of a CLI
        if debug:
            raise
        click.echo(f"foley: internal error: {type(exc).__name__}: {exc} (rerun with --debug)", err=True)
        sys.exit(70)

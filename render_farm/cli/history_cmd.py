"""`foley history` (list past jobs, filtered and paged) and `foley audit verify / show`.

    foley history --project ep101 --state done --since 2026-11-01 --format json --limit 100
    foley history --cursor 2026-11-20T09:14:03.120000Z/5f0c…   # the next page, as printed on stderr
    foley audit verify --all          # exit 0 when the chain and every blob verify
    foley audit verify JOB            # non-zero, one line per finding, when something does not
    foley audit show JOB              # job fields, provenance, windows, artifacts with sha256, events
    foley audit reproduce JOB [--window N]   # re-render from the record; exit 0 when byte-identical
    foley history export --format openlineage|jsonl [filters] [-o FILE]
    foley history prune --older-than 90 --archive ep101-2026.tar.gz [--yes]
    foley audit verify-archive ep101-2026.tar.gz   # a prune archive against its signed checkpoint
"""
from __future__ import annotations

import functools
import logging
import os
import re
import sys
from collections.abc import Callable
from datetime import date, datetime, time, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from render_farm.audit.export import EXPORT_FORMATS, export_lines
from render_farm.audit.history import FORMATS, format_jobs, format_lineage, load_extras, load_lineage
from render_farm.audit.verify import verify
from render_farm.config import Settings
from render_farm.context import open_database
from storage.blobs import open_store
from storage.db import unit_of_work
from storage.errors import Conflict, IntegrityError, InvalidInput
from storage.models import JobState
from storage.repos.history import MAX_PAGE, JobCursor, JobFilter, HistoryRepo

log = logging.getLogger(__name__)

_AGO = re.compile(r"(\d+)([smhdw])")
_AGO_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def parse_time(text: str, *, option: str, end_of_day: bool = False, now: datetime | None = None) -> datetime:
    """A point in time for --since/--until, as aware UTC.

    Accepts an ISO 8601 date or date-time (no offset means UTC) or an age like 90m, 36h, 7d, 2w.
    A bare date is that day's midnight, or with `end_of_day` the next midnight (so
    `--until 2026-11-27` includes the 27th).
    """
    value = text.strip()
    if match := _AGO.fullmatch(value):
        amount, unit = int(match.group(1)), _AGO_UNITS[match.group(2)]
        return (now or datetime.now(timezone.utc)) - timedelta(**{unit: amount})
    try:
        day = date.fromisoformat(value)
    except ValueError:
        pass
    else:
        start = datetime.combine(day, time(0), tzinfo=timezone.utc)
        return start + timedelta(days=1) if end_of_day else start
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{option}: not a date or time: {text!r} (use 2026-11-27, 2026-11-27T14:30:00Z or an age like 7d)"
        ) from None
    return at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)


def parse_states(values: tuple[str, ...]) -> tuple[JobState, ...]:
    """--state values, each possibly comma-separated, as JobStates."""
    states: list[JobState] = []
    for value in values:
        for name in filter(None, (part.strip().lower() for part in value.split(","))):
            try:
                states.append(JobState(name))
            except ValueError:
                valid = ", ".join(s.value for s in JobState)
                raise InvalidInput(f"--state: unknown job state {name!r} (one of {valid})") from None
    return tuple(states)


def _filter_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The job filters shared by `foley history` and `foley history export`."""
    options = [
        click.option("--project", default=None, help="Only jobs of this project."),
        click.option("--user", "submitted_by", default=None, help="Only jobs submitted by this user."),
        click.option("--state", "states", multiple=True, help="Only jobs in this state (repeat, or comma-separate)."),
        click.option("--model", "model_name", default=None, help="Only jobs rendered with this model name."),
        click.option("--since", default=None,
                     help="Created at or after: a date, an ISO time (UTC if no offset), or 7d."),
        click.option("--until", default=None,
                     help="Created before: an ISO time, or a date (that whole day included)."),
    ]
    return functools.reduce(lambda cmd, option: option(cmd), reversed(options), command)


def _job_filter(project: str | None, submitted_by: str | None, states: tuple[str, ...], model_name: str | None,
                since: str | None, until: str | None) -> JobFilter:
    return JobFilter(
        project=project,
        submitted_by=submitted_by,
        states=parse_states(states),
        model_name=model_name,
        since=parse_time(since, option="--since") if since else None,
        until=parse_time(until, option="--until", end_of_day=True) if until else None,
    )


@click.group("history", invoke_without_command=True)
@_filter_options
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True, help="Jobs per page.")
@click.option("--cursor", default=None, help="Continue after a previous page (the cursor it printed on stderr).")
@click.pass_context
def history_cmd(
    ctx: click.Context,
    project: str | None,
    submitted_by: str | None,
    states: tuple[str, ...],
    model_name: str | None,
    since: str | None,
    until: str | None,
    fmt: str,
    limit: int,
    cursor: str | None,
) -> None:
    """List past jobs, newest first, with their provenance (or: export, prune)."""
    if ctx.invoked_subcommand is not None:
        given = [param.opts[0] for param in ctx.command.params if param.name in ctx.params
                 and ctx.get_parameter_source(param.name) is click.core.ParameterSource.COMMANDLINE]
        if given:
            raise InvalidInput(f"history {ctx.invoked_subcommand}: put {', '.join(given)} after "
                               f"`{ctx.invoked_subcommand}`")
        return
    filters = _job_filter(project, submitted_by, states, model_name, since, until)
    after = JobCursor.decode(cursor) if cursor else None
    sessions = open_database(Settings.from_env())
    with unit_of_work(sessions) as session:
        history = HistoryRepo(session)
        page = history.list_jobs(filters, limit=limit, cursor=after)
        ids = [j.id for j in page.jobs]
        outputs = history.output_sha256s(ids) if fmt != "table" else {}
        extras = load_extras(session, ids) if fmt != "table" else {}
        text = format_jobs(page.jobs, fmt, outputs, extras)
    click.echo(text, nl=False)
    if page.next_cursor is not None:
        click.echo(f"more jobs: --cursor {page.next_cursor.encode()}", err=True)


@history_cmd.command("export")
@_filter_options
@click.option("--format", "fmt", type=click.Choice(EXPORT_FORMATS), default="jsonl", show_default=True,
              help="jsonl: one job record per line; openlineage: one OpenLineage RunEvent per line.")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="Write to FILE (default: stdout).")
@click.option("--overwrite", is_flag=True, help="Replace FILE if it exists.")
def export_cmd(project: str | None, submitted_by: str | None, states: tuple[str, ...], model_name: str | None,
               since: str | None, until: str | None, fmt: str, output: Path | None, overwrite: bool) -> None:
    """Export the matching jobs (newest first) as JSON lines, with windows and artifacts."""
    filters = _job_filter(project, submitted_by, states, model_name, since, until)
    sessions = open_database(Settings.from_env())
    if output is None:
        for line in export_lines(sessions, filters, fmt):
            click.echo(line)
        return
    if output.exists() and not overwrite:
        raise Conflict(f"{output}: already exists (use --overwrite to replace it)")
    if not output.absolute().parent.is_dir():
        raise InvalidInput(f"{output.absolute().parent}: output directory does not exist")
    tmp = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    count = 0
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            for line in export_lines(sessions, filters, fmt):
                f.write(line + "\n")
                count += 1
        os.replace(tmp, output)
    finally:
        tmp.unlink(missing_ok=True)
    click.echo(f"exported {count} job{'s' * (count != 1)} to {output}", err=True)


@history_cmd.command("prune")
@click.option("--older-than", "older_than_days", type=click.FloatRange(min=0), required=True, metavar="DAYS",
              help="Finished jobs (done, failed, cancelled) created and last changed more than DAYS ago.")
@click.option("--archive", type=click.Path(path_type=Path), required=True,
              help="Archive to write first: a .tar.gz/.tgz file, or else a directory (must not exist).")
@click.option("--project", default=None, help="Only jobs of this project.")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def prune_cmd(older_than_days: float, archive: Path, project: str | None, yes: bool) -> None:
    """Archive old finished jobs, then delete their blobs and rows; sign a checkpoint event.

    Prints what it will delete first; asks for confirmation unless --yes (and refuses without a
    terminal). Events are kept, so `foley audit verify` still passes; local files outside the
    store (outputs written with -o) and inputs are never deleted.
    """
    from render_farm.audit.prune import audit_key, execute_prune, plan_prune
    from render_farm.submit import current_user

    settings = Settings.from_env()
    sessions = open_database(settings)
    store = open_store(settings.store_url, s3_endpoint_url=settings.s3_endpoint_url)
    plan = plan_prune(sessions, store, older_than_days=older_than_days, project=project)
    click.echo(plan.describe(), nl=False)
    if not plan.records:
        return
    if archive.exists():
        raise Conflict(f"{archive}: already exists (an archive is never overwritten)")
    key = audit_key(settings.data_dir)
    if not yes:
        if not (sys.stdin is not None and sys.stdin.isatty()):
            raise InvalidInput("prune: refusing to delete without --yes (no terminal to confirm on)")
        click.confirm(f"archive to {archive} and delete the above?", abort=True)
    result = execute_prune(sessions, store, plan, archive, key=key, actor=current_user())
    for problem in result.blob_errors:
        click.echo(f"warning: {problem}", err=True)
    click.echo(result.summary())


@click.group("audit")
def audit_group() -> None:
    """Verify and inspect the render history."""


@click.command("verify")
@click.argument("job_id", required=False)
@click.option("--all", "all_jobs", is_flag=True, help="Verify every job (and the whole event chain).")
def verify_cmd(job_id: str | None, all_jobs: bool) -> None:
    """Check the event hash chain and re-hash the stored blobs of JOB_ID (or of --all jobs).

    Exit 0 when everything verifies; otherwise one line per finding and a non-zero exit.
    """
    if (job_id is None) == (not all_jobs):
        raise InvalidInput("audit verify: give a JOB_ID or --all (not both)")
    settings = Settings.from_env()
    sessions = open_database(settings)
    report = verify(
        sessions,
        lambda: open_store(settings.store_url, s3_endpoint_url=settings.s3_endpoint_url),
        job_id=job_id,
    )
    for finding in report.findings:
        click.echo(finding.line())
    if not report.ok:
        raise IntegrityError(f"audit failed: {report.summary()}")
    click.echo(report.summary())


@click.command("show")
@click.argument("job_id")
def show_cmd(job_id: str) -> None:
    """Print the whole lineage of JOB_ID: fields, windows, artifacts with SHA-256s, events."""
    sessions = open_database(Settings.from_env())
    click.echo(format_lineage(load_lineage(sessions, job_id)), nl=False)


@click.command("reproduce")
@click.argument("job_id")
@click.option("--window", type=click.IntRange(min=0), default=None, metavar="N",
              help="Re-render only window N's batch and compare its latents with the stored blob.")
@click.option("--model", default=None, metavar="PATH",
              help="Checkpoint to use if the recorded one moved (its SHA-256 must be the recorded one).")
@click.option("-q", "--quiet", is_flag=True, help="No progress line.")
def reproduce_cmd(job_id: str, window: int | None, model: str | None, quiet: bool) -> None:
    """Re-render JOB_ID from its record in a scratch directory and compare bytes.

    Prints `identical` (exit 0) or each artifact that differs and where (non-zero exit).
    """
    from render_farm.audit.reproduce import reproduce

    report = reproduce(Settings.from_env(), job_id, window=window, model=model,
                       progress=not quiet and sys.stderr is not None and sys.stderr.isatty())
    click.echo(report.text(), nl=False)
    if not report.identical:
        raise IntegrityError(f"reproduce: job {job_id} differs from its record "
                             f"({len(report.differences)} difference{'s' * (len(report.differences) != 1)})")


@click.command("verify-archive")
@click.argument("archive", type=click.Path(path_type=Path))
def verify_archive_cmd(archive: Path) -> None:
    """Check a prune archive: its files, its signed checkpoint, and the `history.pruned` event."""
    from render_farm.audit.prune import audit_key, verify_archive

    settings = Settings.from_env()
    problems = verify_archive(archive, audit_key(settings.data_dir), open_database(settings))
    for problem in problems:
        click.echo(problem)
    if problems:
        raise IntegrityError(f"archive {archive} does not verify ({len(problems)} problems)")
    click.echo(f"archive {archive}: ok")


def register(group: click.Group) -> None:
    """Add `history [export|prune]` and `audit verify|show|reproduce|verify-archive` to the foley group.

    If another module already registered an `audit` group, the subcommands join it.
    """
    group.add_command(history_cmd)
    existing = group.commands.get("audit")
    target = existing if isinstance(existing, click.Group) else audit_group
    target.add_command(verify_cmd)
    target.add_command(show_cmd)
    target.add_command(reproduce_cmd)
    target.add_command(verify_archive_cmd)
    if target is audit_group:
        group.add_command(audit_group)

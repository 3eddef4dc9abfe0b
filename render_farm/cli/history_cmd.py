"""`foley history` (list past jobs, filtered and paged) and `foley audit verify / show`.

    foley history --project ep101 --state done --since 2026-11-01 --format json --limit 100
    foley history --cursor 2026-11-20T09:14:03.120000Z/5f0c…   # the next page, as printed on stderr
    foley audit verify --all          # exit 0 when the chain and every blob verify
    foley audit verify JOB            # non-zero, one line per finding, when something does not
    foley audit show JOB              # job fields, windows, artifacts with sha256, events
"""
from __future__ import annotations

import logging
import re
from datetime import date, datetime, time, timedelta, timezone

import click

from render_farm.audit.history import FORMATS, format_jobs, format_lineage, load_lineage
from render_farm.audit.verify import verify
from render_farm.config import Settings
from render_farm.context import open_database
from storage.blobs import open_store
from storage.db import unit_of_work
from storage.errors import IntegrityError, InvalidInput
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


@click.command("history")
@click.option("--project", default=None, help="Only jobs of this project.")
@click.option("--user", "submitted_by", default=None, help="Only jobs submitted by this user.")
@click.option("--state", "states", multiple=True, help="Only jobs in this state (repeat, or comma-separate).")
@click.option("--model", "model_name", default=None, help="Only jobs rendered with this model name.")
@click.option("--since", default=None, help="Created at or after: a date, an ISO time (UTC if no offset), or 7d.")
@click.option("--until", default=None, help="Created before: an ISO time, or a date (that whole day included).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True)
@click.option("--limit", type=click.IntRange(1, MAX_PAGE), default=50, show_default=True, help="Jobs per page.")
@click.option("--cursor", default=None, help="Continue after a previous page (the cursor it printed on stderr).")
def history_cmd(
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
    """List past jobs, newest first, with their provenance."""
    filters = JobFilter(
        project=project,
        submitted_by=submitted_by,
        states=parse_states(states),
        model_name=model_name,
        since=parse_time(since, option="--since") if since else None,
        until=parse_time(until, option="--until", end_of_day=True) if until else None,
    )
    after = JobCursor.decode(cursor) if cursor else None
    sessions = open_database(Settings.from_env())
    with unit_of_work(sessions) as session:
        history = HistoryRepo(session)
        page = history.list_jobs(filters, limit=limit, cursor=after)
        outputs = history.output_sha256s([j.id for j in page.jobs]) if fmt != "table" else {}
        text = format_jobs(page.jobs, fmt, outputs)
    click.echo(text, nl=False)
    if page.next_cursor is not None:
        click.echo(f"more jobs: --cursor {page.next_cursor.encode()}", err=True)


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


def register(group: click.Group) -> None:
    """Add `history` and `audit verify|show` to the foley command group.

    If another module already registered an `audit` group, the subcommands join it.
    """
    group.add_command(history_cmd)
    existing = group.commands.get("audit")
    target = existing if isinstance(existing, click.Group) else audit_group
    target.add_command(verify_cmd)
    target.add_command(show_cmd)
    if target is audit_group:
        group.add_command(audit_group)

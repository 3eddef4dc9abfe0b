"""Append-only event log (triggers refuse UPDATE/DELETE on `events`) and the indexes of `foley history`.

Triggers (autogenerate does not see them, so they live only here):
- PostgreSQL: one plpgsql function raising restrict_violation (SQLSTATE 23001), fired BEFORE
  UPDATE OR DELETE for each row and BEFORE TRUNCATE for the statement.
- SQLite: BEFORE UPDATE and BEFORE DELETE triggers that RAISE(ABORT, ...).
Both surface in SQLAlchemy as sqlalchemy.exc.IntegrityError. Inserts are untouched.

Caution for later revisions: a SQLite batch-mode ALTER of `events` copies the table and loses
its triggers; such a revision must create them again (call `create_sqlite_triggers`).

Indexes: jobs are listed newest first with a keyset cursor on (created_at, id), so every
history index ends in (created_at, id); the single-column indexes on state, project and
created_at become prefixes of these and are replaced.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27 06:30:00
"""
from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

REFUSED = "events is append-only"

PG_FUNCTION = f"""
CREATE FUNCTION events_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '{REFUSED}: % refused', TG_OP USING ERRCODE = 'restrict_violation';
END
$$
"""
PG_ROW_TRIGGER = (
    "CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events "
    "FOR EACH ROW EXECUTE FUNCTION events_refuse_change()"
)
PG_TRUNCATE_TRIGGER = (
    "CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events "
    "FOR EACH STATEMENT EXECUTE FUNCTION events_refuse_change()"
)


def create_sqlite_triggers() -> None:
    for op_name in ("UPDATE", "DELETE"):
        op.execute(
            f"CREATE TRIGGER events_refuse_{op_name.lower()} BEFORE {op_name} ON events "
            f"BEGIN SELECT RAISE(ABORT, '{REFUSED}: {op_name} refused'); END"
        )


# (old single-column index, its replacement's columns)
OLD_INDEXES = {"ix_jobs_created_at": ["created_at"], "ix_jobs_project": ["project"], "ix_jobs_state": ["state"]}
NEW_INDEXES = {
    "ix_jobs_created_at_id": ["created_at", "id"],
    "ix_jobs_project_created_at_id": ["project", "created_at", "id"],
    "ix_jobs_submitted_by_created_at_id": ["submitted_by", "created_at", "id"],
    "ix_jobs_model_name_created_at_id": ["model_name", "created_at", "id"],
    "ix_jobs_state_created_at_id": ["state", "created_at", "id"],
}


def upgrade() -> None:
    for name, columns in NEW_INDEXES.items():
        op.create_index(op.f(name), "jobs", columns, unique=False)
    for name in OLD_INDEXES:
        op.drop_index(op.f(name), table_name="jobs")

    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute(PG_FUNCTION)
        op.execute(PG_ROW_TRIGGER)
        op.execute(PG_TRUNCATE_TRIGGER)
    elif dialect == "sqlite":
        create_sqlite_triggers()
    else:  # pragma: no cover - storage.db accepts only these two
        raise NotImplementedError(f"append-only triggers for {dialect}")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS events_no_truncate ON events")
        op.execute("DROP TRIGGER IF EXISTS events_append_only ON events")
        op.execute("DROP FUNCTION IF EXISTS events_refuse_change()")
    elif dialect == "sqlite":
        op.execute("DROP TRIGGER IF EXISTS events_refuse_update")
        op.execute("DROP TRIGGER IF EXISTS events_refuse_delete")

    for name, columns in OLD_INDEXES.items():
        op.create_index(op.f(name), "jobs", columns, unique=False)
    for name in NEW_INDEXES:
        op.drop_index(op.f(name), table_name="jobs")

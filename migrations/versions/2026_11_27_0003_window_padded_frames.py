"""Windows record the length their batch is padded to (`padded_frames`, the plan's length bucket).

Nullable: windows planned before length buckets keep NULL, and their batches are still padded to
their longest window, so re-rendering an old job reproduces its bytes.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 09:00:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("windows", sa.Column("padded_frames", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("windows") as batch:  # SQLite: copies `windows` (it has no triggers)
        batch.drop_column("padded_frames")

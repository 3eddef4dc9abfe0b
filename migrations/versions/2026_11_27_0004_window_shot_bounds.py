"""Windows record which pictures they may see (`shot_from`, `shot_to`: the proxy's 24 fps frames).

Where a join between two windows lies on a shot cut, the window before it is rendered from the
old shot only and the window after it from the new one. Nullable: windows planned before this
keep NULL (every picture of their span), so re-rendering an old job reproduces its bytes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 15:20:00
"""
from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("windows", sa.Column("shot_from", sa.Integer(), nullable=True))
    op.add_column("windows", sa.Column("shot_to", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("windows") as batch:  # SQLite: copies `windows` (it has no triggers)
        batch.drop_column("shot_to")
        batch.drop_column("shot_from")

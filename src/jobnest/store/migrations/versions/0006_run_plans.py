"""Retry with the current definitions: the plans a run used before its current one.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

INSTANT = sa.String(27)


def upgrade() -> None:
    """Create the run_plans table."""
    op.create_table(
        "run_plans",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.Column("attempts", sa.Text, nullable=False),
        sa.Column("replaced_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "version", name="pk_run_plans"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_run_plans_run_id_runs", ondelete="CASCADE"
        ),
    )


def downgrade() -> None:
    """Drop the run_plans table."""
    op.drop_table("run_plans")

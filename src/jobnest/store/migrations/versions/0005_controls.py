"""Controls: who marked which failed task as succeeded or skipped, and when.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision: str | None = "0004"
branch_labels: str | None = None
depends_on: str | None = None

INSTANT = sa.String(27)


def upgrade() -> None:
    """Create the task_marks table."""
    op.create_table(
        "task_marks",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("by", sa.Text, nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_task_marks"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_task_marks_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_task_marks_run_id_id", "task_marks", ["run_id", "id"])


def downgrade() -> None:
    """Drop the task_marks table."""
    op.drop_table("task_marks")

"""Workers: attempts sent to Celery workers, with their holder, heartbeat and outcome.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None

INSTANT = sa.String(27)


def upgrade() -> None:
    """Create the worker_attempts table."""
    op.create_table(
        "worker_attempts",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("attempt", sa.Integer, nullable=False),
        sa.Column("queue", sa.Text, nullable=False),
        sa.Column("spec", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("worker", sa.Text),
        sa.Column("heartbeat_at", INSTANT),
        sa.Column("heartbeat_every", sa.Float),
        sa.Column("cancel_grace", sa.Float),
        sa.Column("outcome", sa.Text),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("run_id", "path", "attempt", name="pk_worker_attempts"),
    )


def downgrade() -> None:
    """Drop the worker_attempts table."""
    op.drop_table("worker_attempts")

"""Idempotency keys of manual starts: one run per (job, key).

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

INDEX = "ix_runs_job_idempotency_key"


def upgrade() -> None:
    """Add runs.idempotency_key (NULL for every run so far) and its unique index."""
    op.add_column("runs", sa.Column("idempotency_key", sa.Text))
    op.create_index(INDEX, "runs", ["job", "idempotency_key"], unique=True)


def downgrade() -> None:
    """Drop the index and the column."""
    op.drop_index(INDEX, table_name="runs")
    op.drop_column("runs", "idempotency_key")

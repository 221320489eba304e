"""The daemon's tables: schedule state, skipped slots, and authentication.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

INSTANT = sa.String(27)


def upgrade() -> None:
    """Create the schedule and authentication tables."""
    op.create_table(
        "schedules",
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("last_slot", INSTANT),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("job", name="pk_schedules"),
    )
    op.create_table(
        "skipped_slots",
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("scheduled_for", INSTANT, nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("recorded_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("job", "scheduled_for", name="pk_skipped_slots"),
    )
    create_auth()


def create_auth() -> None:
    op.create_table(
        "auth_settings",
        sa.Column("key", sa.Text, nullable=False),
        sa.Column("value", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_auth_settings"),
    )
    op.create_table(
        "auth_sessions",
        sa.Column("id_hash", sa.Text, nullable=False),
        sa.Column("csrf", sa.Text, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("expires_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id_hash", name="pk_auth_sessions"),
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("scope", sa.Text, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("revoked_at", INSTANT),
        sa.PrimaryKeyConstraint("id", name="pk_api_tokens"),
        sa.UniqueConstraint("hash", name="uq_api_tokens_hash"),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    """Drop the daemon's tables."""
    for table in ("api_tokens", "auth_sessions", "auth_settings", "skipped_slots", "schedules"):
        op.drop_table(table)

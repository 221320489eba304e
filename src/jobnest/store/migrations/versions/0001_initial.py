"""The first schema: jobs and their versions, runs, task runs, attempts and command fixes.

Revision ID: 0001
Revises:
Create Date: 2024-05-01

Instants are fixed-width UTC text (27 characters), JSON documents are text; see
``jobnest.store.schema``. The types are spelled out here, not imported, so that this
revision keeps building the same tables whatever the schema module becomes.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

INSTANT = sa.String(27)


def upgrade() -> None:
    """Create every table of the first schema."""
    create_jobs()
    create_runs()
    create_task_runs()
    create_attempts()
    create_command_fixes()


def downgrade() -> None:
    """Drop every table, children first."""
    for table in ("command_fixes", "attempts", "task_runs", "runs", "job_versions", "jobs"):
        op.drop_table(table)


def create_jobs() -> None:
    op.create_table(
        "jobs",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("updated_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("name", name="pk_jobs"),
    )
    op.create_table(
        "job_versions",
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("definition", sa.Text, nullable=False),
        sa.Column("hash", sa.Text, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("name", "version", name="pk_job_versions"),
    )


def create_runs() -> None:
    op.create_table(
        "runs",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("job", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("trigger", sa.Text, nullable=False),
        sa.Column("workdir", sa.Text, nullable=False),
        sa.Column("created_at", INSTANT, nullable=False),
        sa.Column("finished_at", INSTANT),
        sa.Column("scheduled_for", INSTANT),
        sa.Column("owner", sa.Text),
        sa.Column("heartbeat_at", INSTANT),
        sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
        sa.Column("plan", sa.Text, nullable=False),
        sa.Column("snapshot", sa.Text, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_runs"),
        sa.UniqueConstraint("job", "scheduled_for", name="uq_runs_job_scheduled_for"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_runs_job_id", "runs", ["job", "id"])
    op.create_index("ix_runs_status", "runs", ["status"])
    op.create_index(
        "uq_runs_job_running",
        "runs",
        ["job"],
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    )


def create_task_runs() -> None:
    op.create_table(
        "task_runs",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reason", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("started_at", INSTANT),
        sa.Column("finished_at", INSTANT),
        sa.Column("command", sa.Text),
        sa.PrimaryKeyConstraint("run_id", "path", name="pk_task_runs"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_task_runs_run_id_runs", ondelete="CASCADE"
        ),
        sqlite_with_rowid=False,
    )


def create_attempts() -> None:
    op.create_table(
        "attempts",
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", INSTANT, nullable=False),
        sa.Column("finished_at", INSTANT),
        sa.Column("log_dir", sa.Text, nullable=False),
        sa.Column("command", sa.Text, nullable=False),
        sa.Column("host", sa.Text),
        sa.Column("exit_code", sa.Integer),
        sa.Column("signal", sa.Integer),
        sa.Column("reason", sa.Text),
        sa.Column("pid", sa.Integer),
        sa.Column("stdout_size", sa.BigInteger),
        sa.Column("stderr_size", sa.BigInteger),
        sa.PrimaryKeyConstraint("run_id", "path", "number", name="pk_attempts"),
        sa.ForeignKeyConstraint(
            ["run_id", "path"],
            ["task_runs.run_id", "task_runs.path"],
            name="fk_attempts_task_runs",
            ondelete="CASCADE",
        ),
    )


def create_command_fixes() -> None:
    op.create_table(
        "command_fixes",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("run_id", sa.Integer, nullable=False),
        sa.Column("path", sa.Text, nullable=False),
        sa.Column("old", sa.Text, nullable=False),
        sa.Column("new", sa.Text, nullable=False),
        sa.Column("at", INSTANT, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_command_fixes"),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name="fk_command_fixes_run_id_runs", ondelete="CASCADE"
        ),
    )
    op.create_index("ix_command_fixes_run_id_id", "command_fixes", ["run_id", "id"])

"""The tables of the SQL store, as SQLAlchemy Core metadata, and their portable column types.

Instants are stored as fixed-width ISO-8601 text in UTC (``2024-05-01T02:00:00.000000Z``):
it reads well in a database shell, sorts in time order as plain text, and means the same on
SQLite and PostgreSQL. JSON documents (definitions, plans, snapshots) are stored as text.
Task paths can be hundreds of characters long, so every name and path is ``Text``.

The Alembic revisions in ``migrations/versions`` build these tables; a change here needs a
new revision there.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


def format_instant(value: datetime) -> str:
    """``value`` as fixed-width UTC text (``2024-05-01T02:00:00.000000Z``); naive is refused."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()!r}: instants must be aware")
    utc = value.astimezone(UTC).replace(tzinfo=None)
    return utc.isoformat(timespec="microseconds") + "Z"


def parse_instant(text: str) -> datetime:
    """The aware UTC datetime of text written by ``format_instant``."""
    return datetime.fromisoformat(text).astimezone(UTC)


class UTCDateTime(sa.TypeDecorator[datetime]):
    """An aware datetime, stored as UTC text that sorts in time order."""

    impl = sa.String(27)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> str | None:
        return None if value is None else format_instant(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> datetime | None:
        return None if value is None else parse_instant(value)


class JSONText(sa.TypeDecorator[Any]):
    """A JSON document stored as text, the same on every database."""

    impl = sa.Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value, separators=(",", ":"))

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


REVISION = "0007"  # the newest migration of migrations/versions (a test holds them equal)

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

jobs = sa.Table(
    "jobs",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("definition", JSONText, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

job_versions = sa.Table(
    "job_versions",
    metadata,
    sa.Column("name", sa.Text, primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),
    sa.Column("definition", JSONText, nullable=False),
    sa.Column("hash", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
)

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("trigger", sa.Text, nullable=False),
    sa.Column("workdir", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("scheduled_for", UTCDateTime),
    sa.Column("owner", sa.Text),
    sa.Column("heartbeat_at", UTCDateTime),
    sa.Column("retries", sa.Integer, nullable=False, server_default="0"),
    sa.Column("plan", JSONText, nullable=False),
    sa.Column("snapshot", JSONText, nullable=False),
    sa.Column("idempotency_key", sa.Text),  # a manual start's Idempotency-Key (revision 0007)
    # NULLs are distinct: manual runs (no scheduled_for) never clash.
    sa.UniqueConstraint("job", "scheduled_for"),
    # One run per (job, idempotency key); NULLs are distinct: starts without a key never clash.
    sa.Index(None, "job", "idempotency_key", unique=True),
    sa.Index(None, "job", "id"),
    sa.Index(None, "status"),
    # At most one running run per job, enforced by the database itself.
    sa.Index(
        "uq_runs_job_running",
        "job",
        unique=True,
        sqlite_where=sa.text("status = 'running'"),
        postgresql_where=sa.text("status = 'running'"),
    ),
    sqlite_autoincrement=True,  # ids are never reused: log folders are named after them
)

task_runs = sa.Table(
    "task_runs",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),  # plan order
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("reason", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("started_at", UTCDateTime),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("command", sa.Text),  # a fix made in this run; NULL: the plan's command
    sqlite_with_rowid=False,  # one b-tree keyed by (run_id, path): inserts twice as cheap
)

attempts = sa.Table(
    "attempts",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("number", sa.Integer, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime),
    sa.Column("log_dir", sa.Text, nullable=False),
    sa.Column("command", sa.Text, nullable=False),
    sa.Column("host", sa.Text),
    sa.Column("exit_code", sa.Integer),
    sa.Column("signal", sa.Integer),
    sa.Column("reason", sa.Text),
    sa.Column("pid", sa.Integer),
    sa.Column("stdout_size", sa.BigInteger),
    sa.Column("stderr_size", sa.BigInteger),
    sa.ForeignKeyConstraint(
        ["run_id", "path"],
        ["task_runs.run_id", "task_runs.path"],
        name="fk_attempts_task_runs",
        ondelete="CASCADE",
    ),
)

command_fixes = sa.Table(
    "command_fixes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("old", sa.Text, nullable=False),
    sa.Column("new", sa.Text, nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "run_id", "id"),
)

# --- the daemon: schedules, daemons, authentication (revision 0002) ---------------------------

schedules = sa.Table(
    "schedules",
    metadata,
    sa.Column("job", sa.Text, primary_key=True),
    sa.Column("last_slot", UTCDateTime),  # the latest scheduled instant already handled
    sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
)

skipped_slots = sa.Table(
    "skipped_slots",
    metadata,
    sa.Column("job", sa.Text, primary_key=True),
    sa.Column("scheduled_for", UTCDateTime, primary_key=True),
    sa.Column("reason", sa.Text, nullable=False),  # "running" | "misfire" | "paused"
    sa.Column("recorded_at", UTCDateTime, nullable=False),
)

auth_settings = sa.Table(
    "auth_settings",
    metadata,
    sa.Column("key", sa.Text, primary_key=True),  # e.g. "password_hash"
    sa.Column("value", sa.Text, nullable=False),
)

auth_sessions = sa.Table(
    "auth_sessions",
    metadata,
    sa.Column("id_hash", sa.Text, primary_key=True),  # sha256 of the cookie value
    sa.Column("csrf", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("expires_at", UTCDateTime, nullable=False),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.Text, nullable=False),
    sa.Column("hash", sa.Text, nullable=False, unique=True),  # sha256 of the token
    sa.Column("scope", sa.Text, nullable=False),  # "read" | "full"
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("revoked_at", UTCDateTime),
    sqlite_autoincrement=True,
)

# --- notifications (revision 0003) -------------------------------------------------------------

notifications = sa.Table(
    "notifications",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("retries", sa.Integer, nullable=False),  # the run's retries when it ended
    sa.Column("outcome", sa.Text, nullable=False),  # "succeeded" | "failed" | "cancelled"
    sa.Column("channel", sa.Text, nullable=False),  # "email" | "webhook"
    sa.Column("target", sa.Text, nullable=False),  # an address or a URL
    sa.Column("secret", sa.Text),  # a webhook's signing secret
    sa.Column("report", JSONText, nullable=False),  # what the message says, fixed at the end
    sa.Column("status", sa.Text, nullable=False),  # "pending" | "sending" | "sent" | "failed"
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime),  # while "sending": when another worker may take over
    sa.Column("sent_at", UTCDateTime),
    sa.Column("last_error", sa.Text),
    # One notification per target and ending of a run: enqueueing twice adds nothing.
    sa.UniqueConstraint("run_id", "retries", "channel", "target"),
    sa.Index(None, "status", "next_attempt_at"),
    sqlite_autoincrement=True,
)

# --- workers (revision 0004) -------------------------------------------------------------------

worker_attempts = sa.Table(
    "worker_attempts",
    metadata,
    # the key a broker message carries; no foreign key: a run's attempts are its own business
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("path", sa.Text, primary_key=True),
    sa.Column("attempt", sa.Integer, primary_key=True),
    sa.Column("queue", sa.Text, nullable=False),
    sa.Column("spec", JSONText, nullable=False),  # command, workdir, log_dir, env, timeouts
    sa.Column("status", sa.Text, nullable=False),  # queued|running|finished|lost|cancelled
    sa.Column("worker", sa.Text),  # host:pid of the worker that claimed it
    sa.Column("heartbeat_at", UTCDateTime),  # by the worker's clock
    sa.Column("heartbeat_every", sa.Float),  # the worker's heartbeat interval, in seconds
    sa.Column("cancel_grace", sa.Float),  # set when the daemon asks for a cancel
    sa.Column("outcome", JSONText),  # how it ended, once finished
    sa.Column("created_at", UTCDateTime, nullable=False),
)

# --- controls (revision 0005) ------------------------------------------------------------------

task_marks = sa.Table(
    "task_marks",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), nullable=False),
    sa.Column("path", sa.Text, nullable=False),
    sa.Column("status", sa.Text, nullable=False),  # "succeeded" | "skipped"
    sa.Column("by", sa.Text, nullable=False),  # "local", "token:NAME", "session"
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Index(None, "run_id", "id"),
)

# --- retry with the current definitions (revision 0006) ----------------------------------------

run_plans = sa.Table(
    "run_plans",
    metadata,
    sa.Column("run_id", sa.Integer, sa.ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("version", sa.Integer, primary_key=True),  # 1 for the plan the run started with
    sa.Column("plan", JSONText, nullable=False),
    sa.Column("snapshot", JSONText, nullable=False),
    # path -> attempts made when this plan was replaced: later attempts used a newer plan
    sa.Column("attempts", JSONText, nullable=False),
    sa.Column("replaced_at", UTCDateTime, nullable=False),
)

"""Rows the parts of the store share: reading a run and what its page shows, and inserting.

A record's columns are those of its table named by its fields (``record_columns``). The inserts
are the dialect's: ``dialect_insert`` takes ON CONFLICT, ``insert_many`` skips
SQLAlchemy's per-row work (COPY on PostgreSQL).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection

from jobnest.errors import NotFound, RunInProgress
from jobnest.store.base import (
    AttemptRecord,
    CommandFix,
    NotificationRecord,
    RunRecord,
    TaskMark,
    TaskRecord,
)
from jobnest.store.schema import (
    attempts,
    command_fixes,
    notifications,
    runs,
    task_marks,
    task_runs,
)

TASK_INSERT_COLUMNS = ("run_id", "path", "position", "status", "attempts")


def record_columns(table: sa.Table, record: type) -> list[sa.Column[Any]]:
    """The columns of ``table`` holding the fields of ``record``, in the record's field order."""
    return [table.c[field.name] for field in fields(record)]


RUN_COLUMNS = record_columns(runs, RunRecord)
ATTEMPT_COLUMNS = record_columns(attempts, AttemptRecord)
NOTIFICATION_COLUMNS = record_columns(notifications, NotificationRecord)
_TASK_COLUMNS = record_columns(task_runs, TaskRecord)
_FIX_COLUMNS = record_columns(command_fixes, CommandFix)
_MARK_COLUMNS = record_columns(task_marks, TaskMark)


# --- reading a run -----------------------------------------------------------------------------


def fetch_run(conn: Connection, run_id: int) -> RunRecord:
    row = conn.execute(sa.select(*RUN_COLUMNS).where(runs.c.id == run_id)).first()
    if row is None:
        raise no_run(run_id)
    return RunRecord(*row)


def no_run(run_id: int) -> NotFound:
    return NotFound(f"no run with id {run_id}")


def require_run(conn: Connection, run_id: int) -> None:
    if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise no_run(run_id)


def running_run_id(conn: Connection, job: str) -> int | None:
    query = sa.select(runs.c.id).where(runs.c.job == job, runs.c.status == "running")
    return conn.execute(query.limit(1)).scalar()


def refuse_running(conn: Connection, job: str) -> None:
    running = running_run_id(conn, job)
    if running is not None:
        raise RunInProgress(job, running)


# --- what a run's page shows -------------------------------------------------------------------


def tasks_of(conn: Connection, run_id: int) -> list[TaskRecord]:
    query = (
        sa.select(*_TASK_COLUMNS).where(task_runs.c.run_id == run_id).order_by(task_runs.c.position)
    )
    return [TaskRecord(*row) for row in conn.execute(query)]


def fixes_of(conn: Connection, run_id: int) -> list[CommandFix]:
    query = (
        sa.select(*_FIX_COLUMNS)
        .where(command_fixes.c.run_id == run_id)
        .order_by(command_fixes.c.id)
    )
    return [CommandFix(*row) for row in conn.execute(query)]


def notifications_of(conn: Connection, run_id: int) -> list[NotificationRecord]:
    query = (
        sa.select(*NOTIFICATION_COLUMNS)
        .where(notifications.c.run_id == run_id)
        .order_by(notifications.c.id)
    )
    return [NotificationRecord(*row) for row in conn.execute(query)]


def marks_of(conn: Connection, run_id: int) -> list[TaskMark]:
    query = sa.select(*_MARK_COLUMNS).where(task_marks.c.run_id == run_id)
    return [TaskMark(*row) for row in conn.execute(query.order_by(task_marks.c.id))]


# --- inserting ---------------------------------------------------------------------------------


def dialect_insert(conn: Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """The dialect's INSERT that takes ON CONFLICT (spelt alike by SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_many(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT rows with the driver's executemany, skipping SQLAlchemy's per-row work.

    For columns whose values need no conversion (integers, text): 100,000 rows in a few
    tenths of a second instead of seconds. Works with positional and named paramstyles.
    PostgreSQL takes them by COPY: its executemany still pays one round trip per row.
    """
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    statement = sa.insert(table).values({name: sa.bindparam(name) for name in columns})
    compiled = statement.compile(dialect=conn.dialect)
    params: list[Any] = rows
    if not compiled.positional:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    elif list(compiled.positiontup or ()) != list(columns):
        order = [columns.index(name) for name in compiled.positiontup or ()]
        params = [tuple(row[index] for index in order) for row in rows]
    conn.exec_driver_sql(str(compiled), params)


def _copy_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """COPY rows into a PostgreSQL table, in the transaction of ``conn`` (psycopg 3)."""
    quote = conn.dialect.identifier_preparer.quote
    target = f"{quote(table.name)} ({', '.join(quote(name) for name in columns)})"
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)

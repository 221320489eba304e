"""Runs: starting one, and reading runs, their tasks and attempts.

The one rule SQLite's locking gives for free and PostgreSQL does not, "at most one running
run per job", is also a partial unique index, so a race on PostgreSQL ends in the same
``RunInProgress``. "One run per (job, idempotency key)" is a unique index too: of two starts
with one key, the one refused finds the other's run.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from jobnest.errors import AlreadyStarted, Conflict, RunInProgress
from jobnest.store.base import AttemptRecord, RunRecord, RunView, TaskRecord
from jobnest.store.schema import attempts, runs, task_runs
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import (
    ATTEMPT_COLUMNS,
    RUN_COLUMNS,
    TASK_INSERT_COLUMNS,
    fetch_run,
    fixes_of,
    insert_many,
    marks_of,
    no_run,
    notifications_of,
    refuse_running,
    require_run,
    running_run_id,
    tasks_of,
)


class RunsMixin(SQLBase):
    """Create and read runs; ``_clash`` names why the database refused one to run."""

    def create_run(
        self,
        *,
        job: str,
        plan: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        task_paths: Sequence[str],
        workdir: str,
        trigger: str,
        owner: str,
        now: datetime,
        scheduled_for: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """A refused insert rolls the whole transaction back; only then is the key looked
        up, in a transaction of its own, which sees the run that won the race."""
        values = {
            "job": job,
            "status": "running",
            "trigger": trigger,
            "workdir": workdir,
            "created_at": now,
            "scheduled_for": scheduled_for,
            "owner": owner,
            "heartbeat_at": now,
            "retries": 0,
            "plan": dict(plan),
            "snapshot": dict(snapshot),
            "idempotency_key": idempotency_key,
        }
        try:
            with self._write() as conn:
                refuse_running(conn, job)
                insert = sa.insert(runs).values(values).returning(runs.c.id)
                run_id = conn.execute(insert).scalar_one()
                _insert_tasks(conn, run_id, task_paths)
                return fetch_run(conn, run_id)
        except RunInProgress:
            self._refuse_replay(job, idempotency_key)
            raise
        except exc.IntegrityError as error:
            self._refuse_replay(job, idempotency_key)
            raise self._clash(job, scheduled_for, error) from error

    def _refuse_replay(self, job: str, key: str | None) -> None:
        """Raise AlreadyStarted if ``key`` started a run of ``job``."""
        if key is None:
            return
        query = sa.select(runs.c.id).where(runs.c.job == job, runs.c.idempotency_key == key)
        with self._read() as conn:
            run_id = conn.execute(query).scalar()
        if run_id is not None:
            raise AlreadyStarted(job, key, run_id)

    def _clash(self, job: str, scheduled_for: datetime | None, error: Exception) -> Conflict:
        """The error to raise when the database refused a run of ``job``."""
        with self._read() as conn:
            running = running_run_id(conn, job)
        if running is not None:
            return RunInProgress(job, running)
        if scheduled_for is not None:
            when = scheduled_for.astimezone(UTC).isoformat()
            return Conflict(f"job {job!r} already has a run scheduled for {when}")
        return Conflict(f"a run of job {job!r} clashes with the stored state: {error}")

    def get_run(self, run_id: int) -> RunRecord:
        with self._read() as conn:
            return fetch_run(conn, run_id)

    def run_view(self, run_id: int) -> RunView:
        with self._read() as conn:
            return RunView(
                fetch_run(conn, run_id),
                tasks_of(conn, run_id),
                fixes_of(conn, run_id),
                notifications_of(conn, run_id),
                marks_of(conn, run_id),
            )

    def list_runs(
        self, job: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunRecord]:
        query = sa.select(*RUN_COLUMNS).order_by(runs.c.id.desc()).limit(limit).offset(offset)
        if job is not None:
            query = query.where(runs.c.job == job)
        with self._read() as conn:
            return [RunRecord(*row) for row in conn.execute(query)]

    def running_runs(self) -> list[RunRecord]:
        query = sa.select(*RUN_COLUMNS).where(runs.c.status == "running").order_by(runs.c.id)
        with self._read() as conn:
            return [RunRecord(*row) for row in conn.execute(query)]

    def get_plan(self, run_id: int) -> dict[str, Any]:
        return self._run_document(runs.c.plan, run_id)

    def get_snapshot(self, run_id: int) -> dict[str, Any]:
        return self._run_document(runs.c.snapshot, run_id)

    def _run_document(self, column: sa.Column[Any], run_id: int) -> dict[str, Any]:
        with self._read() as conn:
            document = conn.execute(sa.select(column).where(runs.c.id == run_id)).scalar()
        if document is None:
            raise no_run(run_id)
        return dict(document)

    def tasks(self, run_id: int) -> list[TaskRecord]:
        with self._read() as conn:
            require_run(conn, run_id)
            return tasks_of(conn, run_id)

    def attempts(self, run_id: int, path: str | None = None) -> list[AttemptRecord]:
        query = sa.select(*ATTEMPT_COLUMNS).where(attempts.c.run_id == run_id)
        if path is not None:
            query = query.where(attempts.c.path == path)
        query = query.order_by(attempts.c.started_at, attempts.c.number, attempts.c.path)
        with self._read() as conn:
            return [AttemptRecord(*row) for row in conn.execute(query)]


def _insert_tasks(conn: Connection, run_id: int, task_paths: Iterable[str]) -> None:
    rows = [(run_id, path, position, "pending", 0) for position, path in enumerate(task_paths)]
    if rows:
        insert_many(conn, task_runs, TASK_INSERT_COLUMNS, rows)

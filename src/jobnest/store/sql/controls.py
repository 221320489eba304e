"""Controls: what an operator does to a failed run, or to a failed task of a run.

Retry a failed run (``begin_retry``), or retry it on the current definitions, its old plan
kept as a version (``retry_with_plan``); fix a task's command; mark a failed task (and, with
an owner, continue its run). A run set running again is refused as a new one is, so
``ControlsMixin`` builds on ``RunsMixin`` and its ``_clash``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, replace
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from jobnest.errors import Conflict, NotFound, NotRetryable
from jobnest.store.base import CommandFix, PlanVersion, RunRecord, TaskMark
from jobnest.store.schema import command_fixes, run_plans, runs, task_marks, task_runs
from jobnest.store.sql.rows import (
    TASK_INSERT_COLUMNS,
    fetch_run,
    fixes_of,
    insert_many,
    marks_of,
    no_run,
    refuse_running,
    require_run,
)
from jobnest.store.sql.runs import RunsMixin

_RESET_ON_RETRY = ("failed", "upstream_failed", "cancelled", "pending", "queued", "running")
_KEPT_ON_NEW_PLAN = ("succeeded", "skipped")  # a retry with a new plan never runs these again


class ControlsMixin(RunsMixin):
    """Retries, command fixes, marks and the plan versions a retry leaves."""

    def begin_retry(self, run_id: int, *, owner: str, now: datetime) -> RunRecord:
        job = None
        try:
            with self._write() as conn:
                job = _retryable_job(conn, run_id)
                refuse_running(conn, job)
                _restart_run(conn, run_id, owner=owner, now=now)
                return fetch_run(conn, run_id)
        except exc.IntegrityError as error:
            raise self._clash(job or "", None, error) from error

    def retry_with_plan(
        self,
        run_id: int,
        *,
        plan: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        task_paths: Sequence[str],
        owner: str,
        now: datetime,
    ) -> RunRecord:
        job = None
        try:
            with self._write() as conn:
                job = _retryable_job(conn, run_id)
                refuse_running(conn, job)
                _keep_plan(conn, run_id, now)
                conn.execute(
                    sa.update(runs).where(runs.c.id == run_id).values(plan=plan, snapshot=snapshot)
                )
                _align_tasks(conn, run_id, task_paths)
                _restart_run(conn, run_id, owner=owner, now=now)
                return fetch_run(conn, run_id)
        except exc.IntegrityError as error:
            raise self._clash(job or "", None, error) from error

    def plan_versions(self, run_id: int) -> list[PlanVersion]:
        query = (
            sa.select(run_plans.c.version, run_plans.c.attempts, run_plans.c.replaced_at)
            .where(run_plans.c.run_id == run_id)
            .order_by(run_plans.c.version)
        )
        with self._read() as conn:
            require_run(conn, run_id)
            old = [PlanVersion(v, dict(attempts), at) for v, attempts, at in conn.execute(query)]
        return [*old, PlanVersion(len(old) + 1, {}, None)]

    def fix_command(self, run_id: int, path: str, command: str, *, now: datetime) -> CommandFix:
        with self._write() as conn:
            fix = CommandFix(run_id, path, _fixable_command(conn, run_id, path), command, now)
            conn.execute(
                sa.update(task_runs)
                .where(task_runs.c.run_id == run_id, task_runs.c.path == path)
                .values(command=command)
            )
            conn.execute(sa.insert(command_fixes).values(asdict(fix)))
        return replace(fix, at=now.astimezone(UTC))

    def command_fixes(self, run_id: int) -> list[CommandFix]:
        with self._read() as conn:
            return fixes_of(conn, run_id)

    def mark_task(self, mark: TaskMark, *, owner: str | None = None) -> TaskMark:
        job = None
        try:
            with self._write() as conn:
                job = _markable_run(conn, mark, resume=owner is not None)
                if owner is not None:
                    refuse_running(conn, job)
                    _continue_run(conn, mark.run_id, owner=owner, now=mark.at)
                _set_mark(conn, mark)
        except exc.IntegrityError as error:
            raise self._clash(job or "", None, error) from error
        return replace(mark, at=mark.at.astimezone(UTC))

    def task_marks(self, run_id: int) -> list[TaskMark]:
        with self._read() as conn:
            return marks_of(conn, run_id)


# --- retrying ----------------------------------------------------------------------------------


def _retryable_job(conn: Connection, run_id: int) -> str:
    """The job of a failed run, the run locked for this transaction."""
    query = sa.select(runs.c.job, runs.c.status).where(runs.c.id == run_id).with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise no_run(run_id)
    if row.status != "failed":
        raise NotRetryable(run_id, row.status)
    return str(row.job)


def _restart_run(conn: Connection, run_id: int, *, owner: str, now: datetime) -> None:
    """The run back to running; its unfinished tasks back to pending, outcome cleared."""
    _continue_run(conn, run_id, owner=owner, now=now)
    conn.execute(
        sa.update(task_runs)
        .where(task_runs.c.run_id == run_id, task_runs.c.status.in_(_RESET_ON_RETRY))
        .values(status="pending", reason=None, exit_code=None, started_at=None, finished_at=None)
    )


def _continue_run(conn: Connection, run_id: int, *, owner: str, now: datetime) -> None:
    """The failed run back to running, its tasks as they are: its driver sorts them out."""
    conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(
            status="running",
            retries=runs.c.retries + 1,
            owner=owner,
            heartbeat_at=now,
            finished_at=None,
        )
    )


def _keep_plan(conn: Connection, run_id: int, now: datetime) -> None:
    """Keep the run's current plan as its next version in ``run_plans``, with the number of
    attempts each task had made under it."""
    plan, snapshot = conn.execute(
        sa.select(runs.c.plan, runs.c.snapshot).where(runs.c.id == run_id)
    ).one()
    count = sa.select(sa.func.count()).where(run_plans.c.run_id == run_id)
    made = sa.select(task_runs.c.path, task_runs.c.attempts).where(task_runs.c.run_id == run_id)
    conn.execute(
        sa.insert(run_plans).values(
            run_id=run_id,
            version=int(conn.execute(count).scalar() or 0) + 1,
            plan=plan,
            snapshot=snapshot,
            attempts={path: n for path, n in conn.execute(made) if n},
            replaced_at=now,
        )
    )


def _align_tasks(conn: Connection, run_id: int, task_paths: Sequence[str]) -> None:
    """The run's tasks as the new plan has them: succeeded and skipped ones kept, the others
    with the plan's command (a fix is for the old plan), new ones pending, and those the
    plan dropped ``skipped`` (reason ``removed``) unless they had succeeded, after the rest."""
    query = sa.select(task_runs.c.path, task_runs.c.status).where(task_runs.c.run_id == run_id)
    status = {str(path): str(state) for path, state in conn.execute(query)}
    wanted = set(task_paths)
    dropped = [path for path in status if path not in wanted]
    for position, path in enumerate([*task_paths, *dropped]):
        values: dict[str, Any] = {"position": position}
        if status.get(path) not in _KEPT_ON_NEW_PLAN:
            values["command"] = None
        if path in wanted and path not in status:
            insert_many(
                conn, task_runs, TASK_INSERT_COLUMNS, [(run_id, path, position, "pending", 0)]
            )
            continue
        if path not in wanted and status[path] not in _KEPT_ON_NEW_PLAN:
            values |= {"status": "skipped", "reason": "removed"}
        key = (task_runs.c.run_id == run_id) & (task_runs.c.path == path)
        conn.execute(sa.update(task_runs).where(key).values(values))


# --- fixing and marking ------------------------------------------------------------------------


def _fixable_command(conn: Connection, run_id: int, path: str) -> str:
    """The current command of a task whose command may be fixed now."""
    query = sa.select(runs.c.status).where(runs.c.id == run_id).with_for_update()
    run_status = conn.execute(query).scalar()
    if run_status is None:
        raise no_run(run_id)
    task = conn.execute(
        sa.select(task_runs.c.status, task_runs.c.command).where(
            task_runs.c.run_id == run_id, task_runs.c.path == path
        )
    ).first()
    if task is None:
        raise NotFound(f"run {run_id} has no task {path!r}")
    if run_status == "running":
        raise Conflict(f"run {run_id} is running: fix task {path!r} once it has stopped")
    if task.status == "succeeded":
        raise Conflict(f"task {path!r} of run {run_id} succeeded already: nothing to fix")
    return str(task.command) if task.command is not None else _plan_command(conn, run_id, path)


def _plan_command(conn: Connection, run_id: int, path: str) -> str:
    plan = conn.execute(sa.select(runs.c.plan).where(runs.c.id == run_id)).scalar_one()
    for node in plan.get("nodes", ()):
        if node.get("id") == path and isinstance(node.get("command"), str):
            return str(node["command"])
    raise Conflict(f"task {path!r} of run {run_id} has no command in the plan")


def _markable_run(conn: Connection, mark: TaskMark, *, resume: bool) -> str:
    """The job of the run whose failed task ``mark`` names, the run locked; else raise."""
    query = sa.select(runs.c.job, runs.c.status).where(runs.c.id == mark.run_id)
    run = conn.execute(query.with_for_update()).first()
    if run is None:
        raise no_run(mark.run_id)
    status = conn.execute(
        sa.select(task_runs.c.status).where(
            task_runs.c.run_id == mark.run_id, task_runs.c.path == mark.path
        )
    ).scalar()
    if status is None:
        raise NotFound(f"run {mark.run_id} has no task {mark.path!r}")
    if status != "failed":
        raise Conflict(
            f"task {mark.path!r} of run {mark.run_id} is {status}: only a failed task is marked"
        )
    if run.status != ("failed" if resume else "running"):
        raise Conflict(f"run {mark.run_id} is {run.status}: the task cannot be marked now")
    return str(run.job)


def _set_mark(conn: Connection, mark: TaskMark) -> None:
    conn.execute(
        sa.update(task_runs)
        .where(task_runs.c.run_id == mark.run_id, task_runs.c.path == mark.path)
        .values(status=mark.status, reason="marked")
    )
    conn.execute(sa.insert(task_marks).values(asdict(mark)))

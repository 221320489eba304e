"""``Store.apply``: a driver's batch of state transitions, on statements compiled once.

Every scheduling step writes one batch: its lease renewed (the fence), attempts started and
ended, task and run changes. This is the store's hot path, so it skips SQLAlchemy's
``Connection`` and runs ``_Prepared`` statements on the driver's cursor (``_driver_write``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from jobnest.errors import Conflict
from jobnest.store.base import AttemptEnd, AttemptRecord, Changes, Lease, RunChange, TaskChange
from jobnest.store.schema import UTCDateTime, attempts, format_instant, runs, task_runs
from jobnest.store.sql.engine import Batch, SQLBase
from jobnest.store.sql.rows import ATTEMPT_COLUMNS, no_run

_UNFINISHED = frozenset({"pending", "queued", "running"})


class BatchMixin(SQLBase):
    """``apply``: the writes of one scheduling step, in one transaction."""

    def apply(self, changes: Changes) -> None:
        if not changes:
            return
        with self._driver_write() as batch:
            if changes.lease is not None:
                _renew_lease(batch, changes.lease)
            _start_attempts(batch, changes.started)
            _end_attempts(batch, changes.ended)
            _change_tasks(batch, changes.tasks)
            if changes.run is not None:
                _change_run(batch, changes.run)


class _Prepared:
    """A statement compiled once per dialect, then run on the driver's cursor.

    The writes of every scheduling step (``apply``: attempts started and ended, task and run
    changes) take this way: through SQLAlchemy's ``Connection`` each step paid for building,
    cache-keying and typing every statement and for the connection and transaction wrappers,
    several times what the database itself spends. The rows must be ready for the driver
    (``_driver_row``): instants as text, everything else plain.
    """

    def __init__(self, statement: sa.UpdateBase) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def execute(self, batch: Batch, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run the statement once per row; return how many rows it changed."""
        if not rows:
            return 0
        sql, order = self._compile(batch.dialect)
        params: list[Any] = list(rows)
        if order is not None:
            params = [tuple(row[name] for name in order) for row in rows]
        if len(params) == 1:
            batch.cursor.execute(sql, params[0])
        else:
            batch.cursor.executemany(sql, params)
        return int(batch.cursor.rowcount)

    def _compile(self, dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None]:
        """The SQL text, and the parameter order when the paramstyle is positional."""
        key = f"{dialect.name}+{dialect.driver}"
        if key not in self._compiled:
            compiled = self._statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            self._compiled[key] = (str(compiled), order)
        return self._compiled[key]


def _driver_row(record: object, prefix: str = "") -> dict[str, Any]:
    """A record's fields as parameters for ``_Prepared``, named ``prefix + field``."""
    return {
        prefix + name: format_instant(value) if isinstance(value, datetime) else value
        for name, value in vars(record).items()
    }


# --- the statements ----------------------------------------------------------------------------


def _task_key() -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    return (
        task_runs.c.run_id == sa.bindparam("b_run_id"),
        task_runs.c.path == sa.bindparam("b_path"),
    )


def _prepare_attempt_start() -> tuple[_Prepared, _Prepared]:
    """Insert an attempt; count it on its task."""
    insert = sa.insert(attempts).values({c.name: sa.bindparam(c.name) for c in ATTEMPT_COLUMNS})
    number = sa.bindparam("b_number", type_=sa.Integer)
    count = sa.case((task_runs.c.attempts < number, number), else_=task_runs.c.attempts)
    count_on_task = sa.update(task_runs).where(*_task_key()).values(attempts=count)
    return _Prepared(insert), _Prepared(count_on_task)


def _prepare_attempt_end() -> _Prepared:
    names = ("status", "finished_at", "exit_code", "signal", "reason", "stdout_size", "stderr_size")
    return _Prepared(
        sa.update(attempts)
        .where(
            attempts.c.run_id == sa.bindparam("b_run_id"),
            attempts.c.path == sa.bindparam("b_path"),
            attempts.c.number == sa.bindparam("b_number"),
        )
        .values({name: sa.bindparam(f"b_{name}") for name in names})
    )


def _prepare_task_change() -> _Prepared:
    """Status, reason and exit code as given; an instant left out keeps the stored one.

    A task that is not finished (pending, queued, running) has no ``finished_at``.
    """
    instant = UTCDateTime()
    started = sa.func.coalesce(sa.bindparam("b_started_at", type_=instant), task_runs.c.started_at)
    finished = sa.func.coalesce(
        sa.bindparam("b_finished_at", type_=instant), task_runs.c.finished_at
    )
    unfinished = sa.bindparam("b_unfinished", type_=sa.Boolean)
    return _Prepared(
        sa.update(task_runs)
        .where(*_task_key())
        .values(
            status=sa.bindparam("b_status"),
            reason=sa.bindparam("b_reason"),
            exit_code=sa.bindparam("b_exit_code"),
            started_at=started,
            finished_at=sa.case((unfinished, sa.null()), else_=finished),
        )
    )


_INSERT_ATTEMPT, _COUNT_ATTEMPT = _prepare_attempt_start()
_END_ATTEMPT = _prepare_attempt_end()
_CHANGE_TASK = _prepare_task_change()
_CHANGE_RUN = _Prepared(
    sa.update(runs)
    .where(runs.c.id == sa.bindparam("b_run_id"))
    .values(status=sa.bindparam("b_status"), finished_at=sa.bindparam("b_finished_at"))
)
_RENEW_LEASE = _Prepared(
    sa.update(runs)
    .where(runs.c.id == sa.bindparam("b_run_id"), runs.c.owner == sa.bindparam("b_owner"))
    .values(heartbeat_at=sa.bindparam("b_at"))
)


# --- the writes of a batch ---------------------------------------------------------------------


def _renew_lease(batch: Batch, lease: Lease) -> None:
    """Fence a driver's batch: its run must still be its own. Takes the run's row lock."""
    if _RENEW_LEASE.execute(batch, [_driver_row(lease, "b_")]) == 0:
        raise Conflict(f"run {lease.run_id} is not driven by {lease.owner!r} any more")


def _start_attempts(batch: Batch, started: Sequence[AttemptRecord]) -> None:
    """Insert the attempts and count them on their tasks."""
    _INSERT_ATTEMPT.execute(batch, [_driver_row(attempt) for attempt in started])
    _COUNT_ATTEMPT.execute(
        batch, [{"b_run_id": a.run_id, "b_path": a.path, "b_number": a.number} for a in started]
    )


def _end_attempts(batch: Batch, ended: Sequence[AttemptEnd]) -> None:
    _END_ATTEMPT.execute(batch, [_driver_row(end, "b_") for end in ended])


def _change_tasks(batch: Batch, changes: Sequence[TaskChange]) -> None:
    _CHANGE_TASK.execute(batch, [_task_change_params(change) for change in changes])


def _task_change_params(change: TaskChange) -> dict[str, Any]:
    params = _driver_row(change, "b_")
    params["b_unfinished"] = change.status in _UNFINISHED
    return params


def _change_run(batch: Batch, change: RunChange) -> None:
    if _CHANGE_RUN.execute(batch, [_driver_row(change, "b_")]) == 0:
        raise no_run(change.run_id)

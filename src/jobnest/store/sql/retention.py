"""Retention and metrics: the ended runs past their keep, deleting them, status counts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from jobnest.store.base import RunRecord, StatusCounts
from jobnest.store.schema import (
    attempts,
    command_fixes,
    notifications,
    run_plans,
    runs,
    task_runs,
)
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import RUN_COLUMNS


class RetentionMixin(SQLBase):
    """Find and delete expired runs; count runs, tasks and notifications by status."""

    def expired_runs(
        self,
        *,
        ended_before: datetime | None,
        keep_per_job: int | None,
        jobs: Collection[str] | None = None,
    ) -> list[RunRecord]:
        mine = runs.c.job.in_(jobs) if jobs is not None else sa.true()
        found: dict[int, RunRecord] = {}
        with self._read() as conn:
            if ended_before is not None:
                old = sa.select(*RUN_COLUMNS).where(
                    mine, runs.c.status != "running", runs.c.finished_at < ended_before
                )
                found.update((row.id, RunRecord(*row)) for row in conn.execute(old))
            if keep_per_job is not None:
                for row in conn.execute(_ended_beyond_newest(keep_per_job, mine)):
                    found[row.id] = RunRecord(*row)
        return [found[run_id] for run_id in sorted(found)]

    def delete_runs(self, run_ids: Sequence[int]) -> list[int]:
        with self._write() as conn:
            ended = sa.select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.status != "running")
            gone = [int(run_id) for run_id in conn.execute(ended).scalars()]
            for table in (attempts, command_fixes, notifications, run_plans, task_runs, runs):
                column = table.c.id if table is runs else table.c.run_id
                conn.execute(sa.delete(table).where(column.in_(gone)))
        return gone

    def status_counts(self) -> StatusCounts:
        with self._read() as conn:
            return StatusCounts(
                runs=_count_by_status(conn, runs),
                tasks=_count_by_status(conn, task_runs),
                notifications=_count_by_status(conn, notifications),
            )


def _ended_beyond_newest(keep: int, mine: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The ``mine`` jobs' ended runs past their newest ``keep`` (running ones count)."""
    rank = sa.func.row_number().over(partition_by=runs.c.job, order_by=runs.c.id.desc())
    ranked = sa.select(*RUN_COLUMNS, rank.label("rank")).where(mine).subquery()
    columns = [ranked.c[column.name] for column in RUN_COLUMNS]
    return sa.select(*columns).where(ranked.c.rank > keep, ranked.c.status != "running")


def _count_by_status(conn: Connection, table: sa.Table) -> dict[str, int]:
    query = sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
    return {str(status): int(count) for status, count in conn.execute(query)}

"""Leases: which daemon drives a running run, kept alive by heartbeats and claimed when stale.

A driver's batch renews its lease too, as the fence of ``apply`` (``batch._renew_lease``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from jobnest.errors import Conflict
from jobnest.store.base import RunRecord
from jobnest.store.schema import runs
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import fetch_run, require_run


class LeasesMixin(SQLBase):
    """Heartbeats, releases and claims of runs' leases."""

    def heartbeat(self, run_id: int, *, owner: str, now: datetime) -> None:
        with self._write() as conn:
            done = conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.owner == owner)
                .values(heartbeat_at=now)
            )
            if done.rowcount == 0:
                raise _lost_lease(fetch_run(conn, run_id), owner)

    def release(self, run_id: int, *, owner: str) -> None:
        """Let go of the run; a no-op when ``owner`` does not drive it (any more)."""
        with self._write() as conn:
            require_run(conn, run_id)
            conn.execute(
                sa.update(runs).where(runs.c.id == run_id, runs.c.owner == owner).values(owner=None)
            )

    def claim_runs(
        self, stale: Sequence[RunRecord], *, owner: str, now: datetime
    ) -> list[RunRecord]:
        """Row locks with SKIP LOCKED on PostgreSQL (a driver writing a batch holds its run's
        row, so it is skipped); SQLite's write lock serializes claimers anyway."""
        if not stale:
            return []
        with self._write() as conn:
            taken = _unchanged_runs(conn, stale)
            if taken:
                ids = [run.id for run in taken]
                conn.execute(
                    sa.update(runs).where(runs.c.id.in_(ids)).values(owner=owner, heartbeat_at=now)
                )
        return taken


def _unchanged_runs(conn: Connection, claimed: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs still ``running`` with the owner and heartbeat the claimer saw, now locked."""
    query = (
        sa.select(runs.c.id, runs.c.owner, runs.c.heartbeat_at)
        .where(runs.c.id.in_([run.id for run in claimed]), runs.c.status == "running")
        .with_for_update(skip_locked=True)
    )
    now_seen = {row.id: (row.owner, row.heartbeat_at) for row in conn.execute(query)}
    return [run for run in claimed if now_seen.get(run.id) == (run.owner, run.heartbeat_at)]


def _lost_lease(run: RunRecord, owner: str) -> Conflict:
    driver = f"by {run.owner!r}" if run.owner else "by nobody"
    return Conflict(f"run {run.id} is driven {driver}, not by {owner!r}")

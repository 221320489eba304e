"""The notifications outbox: one row per (run ending, channel, target), sent by a worker.

A worker claims due rows under a lease (``sending``, ``lease_until``); a row whose lease
ran out is claimed again, noting that the interrupted attempt may have been delivered.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from jobnest.store.base import Delivery, NewNotification, NotificationRecord, RunRecord
from jobnest.store.schema import notifications, runs
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import (
    NOTIFICATION_COLUMNS,
    RUN_COLUMNS,
    dialect_insert,
    notifications_of,
    require_run,
)

_INTERRUPTED = (
    "the previous attempt was interrupted (its daemon stopped while sending): "
    "it may have been delivered"
)


class NotificationsMixin(SQLBase):
    """Add, claim and finish notifications; find the run endings none was added for."""

    def add_notifications(
        self,
        run_id: int,
        *,
        retries: int,
        outcome: str,
        targets: Sequence[NewNotification],
        report: Mapping[str, Any],
        now: datetime,
    ) -> list[NotificationRecord]:
        if not targets:
            return []
        common = {"run_id": run_id, "retries": retries, "outcome": outcome, "status": "pending"}
        common |= {"report": dict(report), "created_at": now, "next_attempt_at": now}
        rows = [{**common, **vars(target)} for target in targets]
        key = [notifications.c[name] for name in ("run_id", "retries", "channel", "target")]
        with self._write() as conn:
            require_run(conn, run_id)
            insert = dialect_insert(conn, notifications).on_conflict_do_nothing(index_elements=key)
            added = [conn.execute(insert.returning(notifications.c.id), r).scalar() for r in rows]
            query = sa.select(*NOTIFICATION_COLUMNS).where(notifications.c.id.in_(added))
            return [NotificationRecord(*row) for row in conn.execute(query.order_by("id"))]

    def notifications(self, run_id: int) -> list[NotificationRecord]:
        with self._read() as conn:
            return notifications_of(conn, run_id)

    def claim_notifications(
        self, *, now: datetime, lease_until: datetime, limit: int = 10
    ) -> list[Delivery]:
        due = _due_notifications(now)
        pick = sa.select(notifications.c.id).where(due).order_by(notifications.c.id).limit(limit)
        with self._write() as conn:
            ids = list(conn.execute(pick.with_for_update(skip_locked=True)).scalars())
            if not ids:
                return []
            interrupted = notifications.c.status == "sending"
            conn.execute(
                sa.update(notifications)
                .where(notifications.c.id.in_(ids), due)
                .values(
                    status="sending",
                    attempts=notifications.c.attempts + 1,
                    lease_until=lease_until,
                    last_error=sa.case(
                        (interrupted, _INTERRUPTED), else_=notifications.c.last_error
                    ),
                )
            )
            query = sa.select(
                *NOTIFICATION_COLUMNS, notifications.c.report, notifications.c.secret
            ).where(notifications.c.id.in_(ids))
            rows = conn.execute(query.order_by(notifications.c.id)).all()
        return [Delivery(NotificationRecord(*row[:-2]), row[-2], row[-1]) for row in rows]

    def finish_notification(
        self,
        notification_id: int,
        *,
        attempt: int,
        status: str,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": status, "lease_until": None}
        if error is not None:
            values["last_error"] = error
        if status == "sent":
            values["sent_at"] = now
        if status == "pending":
            values["next_attempt_at"] = retry_at or now
        claim = (
            notifications.c.id == notification_id,
            notifications.c.status == "sending",
            notifications.c.attempts == attempt,
        )
        with self._write() as conn:
            done = conn.execute(sa.update(notifications).where(*claim).values(values))
        return bool(done.rowcount)

    def unnotified_runs(self, since: datetime) -> list[RunRecord]:
        this_ending = sa.exists().where(
            notifications.c.run_id == runs.c.id, notifications.c.retries == runs.c.retries
        )
        query = (
            sa.select(*RUN_COLUMNS)
            .where(runs.c.status != "running", runs.c.finished_at >= since, ~this_ending)
            .order_by(runs.c.finished_at, runs.c.id)
        )
        with self._read() as conn:
            return [RunRecord(*row) for row in conn.execute(query)]


def _due_notifications(now: datetime) -> sa.ColumnElement[bool]:
    """Pending and due, or sending with the lease of its worker expired."""
    table = notifications.c
    pending = (table.status == "pending") & (table.next_attempt_at <= now)
    abandoned = (table.status == "sending") & (table.lease_until <= now)
    return pending | abandoned

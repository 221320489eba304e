"""Workers: attempts dispatched to Celery workers, claimed, kept alive, finished or lost.

A row is keyed by (run, task path, attempt number) (``WorkerKey``); its status goes
``queued`` → ``running`` → ``finished``, or ``cancelled`` while queued, or ``lost``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc

from jobnest.errors import Conflict, NotFound
from jobnest.store.base import WorkerAttempt, WorkerKey
from jobnest.store.schema import worker_attempts
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import record_columns

_WORKER_COLUMNS = record_columns(worker_attempts, WorkerAttempt)


class WorkersMixin(SQLBase):
    """The worker side and the dispatcher side of an attempt sent to a worker."""

    def dispatch_attempt(
        self, key: WorkerKey, *, queue: str, spec: Mapping[str, Any], now: datetime
    ) -> None:
        row = {**vars(key), "queue": queue, "spec": dict(spec), "status": "queued"}
        try:
            with self._write() as conn:
                conn.execute(sa.insert(worker_attempts).values(**row, created_at=now))
        except exc.IntegrityError as error:
            raise Conflict(f"attempt {_worker_key(key)} was dispatched already") from error

    def claim_attempt(
        self, key: WorkerKey, *, worker: str, heartbeat_every: float, now: datetime
    ) -> dict[str, Any] | None:
        values = {"worker": worker, "heartbeat_at": now, "heartbeat_every": heartbeat_every}
        with self._write() as conn:
            claimed = conn.execute(
                sa.update(worker_attempts)
                .where(*_worker_row(key), worker_attempts.c.status == "queued")
                .values(status="running", **values)
            )
            if not claimed.rowcount:
                return None
            query = sa.select(worker_attempts.c.spec).where(*_worker_row(key))
            return dict(conn.execute(query).scalar_one())

    def worker_heartbeat(self, key: WorkerKey, *, worker: str, now: datetime) -> float | None:
        held = (*_worker_row(key), worker_attempts.c.status == "running")
        with self._write() as conn:
            renewed = conn.execute(
                sa.update(worker_attempts)
                .where(*held, worker_attempts.c.worker == worker)
                .values(heartbeat_at=now)
                .returning(worker_attempts.c.cancel_grace)
            ).first()
        if renewed is None:
            raise Conflict(f"attempt {_worker_key(key)} is not held by worker {worker!r} any more")
        return None if renewed.cancel_grace is None else float(renewed.cancel_grace)

    def finish_attempt(
        self, key: WorkerKey, *, worker: str, outcome: Mapping[str, Any], now: datetime
    ) -> bool:
        held = (*_worker_row(key), worker_attempts.c.status == "running")
        with self._write() as conn:
            done = conn.execute(
                sa.update(worker_attempts)
                .where(*held, worker_attempts.c.worker == worker)
                .values(status="finished", outcome=dict(outcome), heartbeat_at=now)
            )
        return bool(done.rowcount)

    def cancel_attempt(self, key: WorkerKey, *, grace: float) -> None:
        table = worker_attempts.c
        with self._write() as conn:
            conn.execute(
                sa.update(worker_attempts)
                .where(*_worker_row(key), table.status.in_(("queued", "running")))
                .values(
                    cancel_grace=grace,
                    status=sa.case((table.status == "queued", "cancelled"), else_=table.status),
                )
            )

    def lose_attempt(self, key: WorkerKey, *, heartbeat_at: datetime | None) -> bool:
        table = worker_attempts.c
        same_beat = (
            table.heartbeat_at.is_(None)
            if heartbeat_at is None
            else (table.heartbeat_at == heartbeat_at)
        )
        with self._write() as conn:
            lost = conn.execute(
                sa.update(worker_attempts)
                .where(*_worker_row(key), table.status == "running", same_beat)
                .values(status="lost")
            )
        return bool(lost.rowcount)

    def worker_attempt(self, key: WorkerKey) -> WorkerAttempt:
        query = sa.select(*_WORKER_COLUMNS).where(*_worker_row(key))
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no attempt {_worker_key(key)} was sent to a worker")
        return WorkerAttempt(*row)


def _worker_row(key: WorkerKey) -> tuple[sa.ColumnElement[bool], ...]:
    table = worker_attempts.c
    return (table.run_id == key.run_id, table.path == key.path, table.attempt == key.attempt)


def _worker_key(key: WorkerKey) -> str:
    return f"{key.attempt} of task {key.path!r} of run {key.run_id}"

"""Schedules: each job's last slot and pause, and the slots a schedule skipped."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

import sqlalchemy as sa

from jobnest.store.base import ScheduleState, SkippedSlot
from jobnest.store.schema import schedules, skipped_slots
from jobnest.store.sql.engine import SQLBase
from jobnest.store.sql.rows import dialect_insert, record_columns

_SKIP_COLUMNS = record_columns(skipped_slots, SkippedSlot)
_SCHEDULE_QUERY = sa.select(*record_columns(schedules, ScheduleState)).order_by(schedules.c.job)


class SchedulesMixin(SQLBase):
    """Schedule states (slot, pause) and skipped slots."""

    def schedule_states(self) -> dict[str, ScheduleState]:
        with self._read() as conn:
            return {row.job: ScheduleState(*row) for row in conn.execute(_SCHEDULE_QUERY)}

    def schedule_state(self, job: str) -> ScheduleState | None:
        with self._read() as conn:
            row = conn.execute(_SCHEDULE_QUERY.where(schedules.c.job == job)).first()
        return None if row is None else ScheduleState(*row)

    def advance_schedules(self, slots: Mapping[str, datetime]) -> None:
        """Upsert with ON CONFLICT, which waits for a concurrent upsert of the row and then
        re-checks "never back"; rows go in name order, so that two daemons advancing the
        same jobs lock them in the same order and never deadlock."""
        if not slots:
            return
        with self._write() as conn:
            insert = dialect_insert(conn, schedules)
            later = insert.excluded.last_slot
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[schedules.c.job],
                    set_={"last_slot": later},
                    where=schedules.c.last_slot.is_(None) | (schedules.c.last_slot < later),
                ),
                [{"job": job, "last_slot": slots[job]} for job in sorted(slots)],
            )

    def forget_schedules(self, jobs: Iterable[str]) -> None:
        names = list(jobs)
        if not names:
            return
        with self._write() as conn:
            conn.execute(
                sa.update(schedules).where(schedules.c.job.in_(names)).values(last_slot=None)
            )

    def set_schedule_paused(self, job: str, paused: bool) -> None:
        with self._write() as conn:
            insert = dialect_insert(conn, schedules).values(job=job, paused=paused)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[schedules.c.job], set_={"paused": insert.excluded.paused}
                )
            )

    def record_skips(self, slots: Sequence[SkippedSlot]) -> None:
        if not slots:
            return
        with self._write() as conn:
            insert = dialect_insert(conn, skipped_slots).on_conflict_do_nothing(
                index_elements=[skipped_slots.c.job, skipped_slots.c.scheduled_for]
            )
            ordered = sorted(slots, key=lambda slot: (slot.job, slot.scheduled_for))  # no deadlock
            conn.execute(insert, [dict(vars(slot)) for slot in ordered])  # asdict() is slow

    def skipped_slots(
        self, job: str, *, after: datetime | None = None, limit: int = 50
    ) -> list[SkippedSlot]:
        query = (
            sa.select(*_SKIP_COLUMNS)
            .where(skipped_slots.c.job == job)
            .order_by(skipped_slots.c.scheduled_for.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(skipped_slots.c.scheduled_for > after)
        with self._read() as conn:
            return [SkippedSlot(*row) for row in conn.execute(query)]

"""The store contract under concurrency: several processes' schedulers on one database.

Daemons sharing a database tick at the same instants and write the same schedule rows;
they must neither deadlock nor move a job's ``last_slot`` back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from jobnest.store.base import ScheduleState, SkippedSlot, Store
from jobnest.store.sql import SQLStore

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)
JOBS = [f"job-{i:02}" for i in range(20)]


def together(store_url: str, work: Callable[[Store, int], None], workers: int = 3) -> None:
    """Run ``work(store, index)`` in ``workers`` threads, each with its own store."""
    stores = [SQLStore.open(store_url) for _ in range(workers)]
    barrier = threading.Barrier(workers)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            barrier.wait(timeout=10)
            work(stores[index], index)
        except BaseException as error:  # handed to the test below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(workers)]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=50)
    finally:
        for store in stores:
            store.close()
    assert not errors, errors


def test_schedulers_advancing_the_same_jobs_at_once_never_deadlock(
    store_url: str, store: Store
) -> None:
    def advance(worker: Store, index: int) -> None:
        for minute in range(1, 31):
            names = JOBS if index % 2 else JOBS[::-1]  # each worker in its own order
            worker.advance_schedules({name: T0 + minute * MINUTE for name in names})

    together(store_url, advance)
    assert store.schedule_states() == {name: ScheduleState(name, T0 + 30 * MINUTE) for name in JOBS}


def test_schedulers_recording_the_same_skips_at_once_keep_one_each(
    store_url: str, store: Store
) -> None:
    def skip(worker: Store, index: int) -> None:
        for minute in range(1, 31):
            names = JOBS if index % 2 else JOBS[::-1]
            slot = T0 + minute * MINUTE
            worker.record_skips([SkippedSlot(name, slot, f"r{index}", slot) for name in names])

    together(store_url, skip)
    for name in JOBS:
        slots = store.skipped_slots(name, limit=100)
        assert sorted(s.scheduled_for for s in slots) == [T0 + m * MINUTE for m in range(1, 31)]

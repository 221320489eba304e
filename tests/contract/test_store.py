"""The store contract (``jobnest.store.base.Store``), run against every backend.

Every test takes the ``store`` fixture (or ``store_url``), parametrized over the backends
in ``conftest.BACKENDS``; none of them knows which database it talks to.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from jobnest.errors import (
    AlreadyStarted,
    Conflict,
    NotFound,
    NotRetryable,
    RunInProgress,
    StoreError,
)
from jobnest.store import migrations
from jobnest.store.base import (
    AttemptEnd,
    AttemptRecord,
    Changes,
    RunChange,
    RunRecord,
    Store,
    TaskChange,
)
from jobnest.store.schema import REVISION, metadata
from jobnest.store.sql import SQLStore, sqlite_url

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
BERLIN = ZoneInfo("Europe/Berlin")
PATHS = ("extract", "load/stage", "load/merge", "report")


def plan_of(paths: Sequence[str]) -> dict[str, Any]:
    nodes = [{"id": path, "kind": "task", "command": f"run {path}"} for path in paths]
    return {"job": "nightly", "nodes": nodes, "edges": []}


def start(
    store: Store,
    job: str = "nightly",
    paths: Sequence[str] = PATHS,
    *,
    now: datetime = T0,
    scheduled_for: datetime | None = None,
    key: str | None = None,
) -> RunRecord:
    return store.create_run(
        job=job,
        plan=plan_of(paths),
        snapshot={job: {"definition": {"name": job}, "hash": "h1"}},
        task_paths=paths,
        workdir="/srv/jobs",
        trigger="manual" if scheduled_for is None else "schedule",
        owner="box:1",
        now=now,
        scheduled_for=scheduled_for,
        idempotency_key=key,
    )


def finish(store: Store, run_id: int, status: str = "succeeded") -> None:
    store.apply(Changes(run=RunChange(run_id, status, finished_at=T0 + timedelta(hours=1))))


def attempt(run_id: int, path: str, number: int = 1, **fields: Any) -> AttemptRecord:
    values: dict[str, Any] = {
        "status": "running",
        "started_at": T0,
        "log_dir": f"logs/{run_id}/{number}",
        "command": f"run {path}",
    }
    return AttemptRecord(run_id, path, number, **{**values, **fields})


def task_status(store: Store, run_id: int) -> dict[str, str]:
    return {task.path: task.status for task in store.tasks(run_id)}


def set_statuses(store: Store, run_id: int, statuses: dict[str, str]) -> None:
    changes = [TaskChange(run_id, path, status) for path, status in statuses.items()]
    store.apply(Changes(tasks=changes))


# --- creating and reading runs --------------------------------------------------------------


def test_create_run_starts_a_running_run_with_every_task_pending(store: Store) -> None:
    run = start(store)
    assert run.status == "running"
    assert (run.job, run.trigger, run.workdir, run.owner) == (
        "nightly",
        "manual",
        "/srv/jobs",
        "box:1",
    )
    assert run.created_at == T0
    assert run.heartbeat_at == T0
    assert run.retries == 0
    assert run.finished_at is None
    assert store.get_run(run.id) == run
    assert task_status(store, run.id) == dict.fromkeys(PATHS, "pending")


def test_a_second_run_of_a_running_job_is_refused_naming_the_running_run(store: Store) -> None:
    first = start(store)
    with pytest.raises(RunInProgress) as refused:
        start(store)
    assert refused.value.run_id == first.id
    assert str(first.id) in str(refused.value)
    assert [run.id for run in store.list_runs()] == [first.id]


def test_a_job_can_run_again_once_its_run_ended(store: Store) -> None:
    first = start(store)
    finish(store, first.id, "failed")
    second = start(store)
    assert second.id > first.id


def test_runs_of_different_jobs_run_side_by_side(store: Store) -> None:
    start(store, "nightly")
    start(store, "hourly")
    assert {run.job for run in store.running_runs()} == {"nightly", "hourly"}


def test_one_run_per_job_and_scheduled_instant(store: Store) -> None:
    first = start(store, scheduled_for=T0)
    finish(store, first.id)
    with pytest.raises(Conflict) as refused:
        start(store, scheduled_for=T0)
    assert not isinstance(refused.value, RunInProgress)
    finish(store, start(store, scheduled_for=T0 + timedelta(days=1)).id)
    finish(store, start(store, "other", scheduled_for=T0).id)
    assert len(store.list_runs("nightly")) == 2


def test_manual_runs_never_clash_on_the_scheduled_instant(store: Store) -> None:
    for _ in range(3):
        finish(store, start(store).id)
    assert len(store.list_runs()) == 3


def test_an_idempotency_key_starts_one_run_whether_it_runs_or_ended(store: Store) -> None:
    first = start(store, key="k-1")
    with pytest.raises(AlreadyStarted) as again:
        start(store, key="k-1")
    assert (again.value.run_id, again.value.job, again.value.key) == (first.id, "nightly", "k-1")
    assert "'k-1'" in str(again.value)
    finish(store, first.id)
    with pytest.raises(AlreadyStarted) as after:
        start(store, key="k-1")
    assert after.value.run_id == first.id
    assert [run.id for run in store.list_runs()] == [first.id]


def test_an_idempotency_key_of_one_job_is_another_start_for_another_job(store: Store) -> None:
    nightly = start(store, "nightly", key="k-1")
    hourly = start(store, "hourly", key="k-1")
    assert nightly.id != hourly.id
    assert len(store.list_runs()) == 2


def test_another_idempotency_key_is_another_start(store: Store) -> None:
    finish(store, start(store, key="k-1").id)
    finish(store, start(store, key="k-2").id)
    finish(store, start(store).id)
    assert len(store.list_runs("nightly")) == 3


def test_an_idempotency_key_is_free_again_once_its_run_is_deleted(store: Store) -> None:
    first = start(store, key="k-1")
    finish(store, first.id)
    assert store.delete_runs([first.id]) == [first.id]
    assert start(store, key="k-1").id > first.id


def test_starts_racing_with_one_idempotency_key_make_one_run(store_url: str, store: Store) -> None:
    """Two stores (two daemons) start each of 15 jobs at once with the same key."""
    rounds, racers = 15, 2
    stores = [SQLStore.open(store_url) for _ in range(racers)]
    barrier = threading.Barrier(racers)
    outcomes: list[tuple[str, int]] = []  # (job, run id started or replayed)
    errors: list[BaseException] = []

    def race(racer: Store) -> None:
        try:
            for number in range(rounds):
                barrier.wait(timeout=10)
                try:
                    outcomes.append((f"job-{number}", start(racer, f"job-{number}", key="k").id))
                except AlreadyStarted as started:
                    outcomes.append((f"job-{number}", started.run_id))
        except BaseException as error:  # handed to the test below
            barrier.abort()
            errors.append(error)

    threads = [threading.Thread(target=race, args=(each,)) for each in stores]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    finally:
        for each in stores:
            each.close()
    assert not errors, errors
    runs = {run.job: run.id for run in store.list_runs(limit=100)}
    assert len(runs) == len(store.list_runs(limit=100)) == rounds
    assert sorted(outcomes) == sorted(
        (job, run_id) for job, run_id in runs.items() for _ in range(racers)
    )


def test_plan_and_snapshot_come_back_as_stored(store: Store) -> None:
    run = start(store)
    assert store.get_plan(run.id) == plan_of(PATHS)
    assert store.get_snapshot(run.id) == {
        "nightly": {"definition": {"name": "nightly"}, "hash": "h1"}
    }


def test_tasks_come_back_in_plan_order_whatever_their_names(store: Store) -> None:
    long_path = "/".join(["a-rather-long-group-name"] * 24)
    paths = ["zeta", long_path, "alpha", "mid/dle"]
    run = start(store, paths=paths)
    assert [task.path for task in store.tasks(run.id)] == paths


def test_list_runs_is_newest_first_with_limit_offset_and_job(store: Store) -> None:
    ids = []
    for job in ("a", "b", "a", "b", "a"):
        run = start(store, job)
        finish(store, run.id)
        ids.append(run.id)
    assert [run.id for run in store.list_runs()] == ids[::-1]
    assert [run.id for run in store.list_runs(limit=2)] == ids[::-1][:2]
    assert [run.id for run in store.list_runs(limit=2, offset=2)] == ids[::-1][2:4]
    assert [run.id for run in store.list_runs("a")] == [ids[4], ids[2], ids[0]]
    assert store.list_runs("nobody") == []


def test_running_runs_are_the_running_ones_oldest_first(store: Store) -> None:
    first = start(store, "a")
    ended = start(store, "b")
    last = start(store, "c")
    finish(store, ended.id)
    assert [run.id for run in store.running_runs()] == [first.id, last.id]


def test_create_run_with_100k_tasks(store: Store) -> None:
    paths = [f"group-{i // 1000}/task-{i}" for i in range(100_000)]
    run = start(store, paths=paths)
    tasks = store.tasks(run.id)
    assert len(tasks) == 100_000
    assert tasks[0].path == paths[0]
    assert tasks[-1].path == paths[-1]


# --- unknown ids ------------------------------------------------------------------------------

UNKNOWN_RUN_CALLS: dict[str, Callable[[Store], object]] = {
    "get_run": lambda store: store.get_run(999),
    "get_plan": lambda store: store.get_plan(999),
    "get_snapshot": lambda store: store.get_snapshot(999),
    "tasks": lambda store: store.tasks(999),
    "run_view": lambda store: store.run_view(999),
    "begin_retry": lambda store: store.begin_retry(999, owner="box:1", now=T0),
    "fix_command": lambda store: store.fix_command(999, "extract", "true", now=T0),
    "heartbeat": lambda store: store.heartbeat(999, owner="box:1", now=T0),
    "release": lambda store: store.release(999, owner="box:1"),
    "apply": lambda store: store.apply(Changes(run=RunChange(999, "failed"))),
}


@pytest.mark.parametrize("call", UNKNOWN_RUN_CALLS.values(), ids=UNKNOWN_RUN_CALLS.keys())
def test_an_unknown_run_is_not_found_and_named(
    store: Store, call: Callable[[Store], object]
) -> None:
    start(store)
    with pytest.raises(NotFound) as missing:
        call(store)
    assert "999" in str(missing.value)


def test_attempts_and_fixes_of_an_unknown_run_are_empty(store: Store) -> None:
    assert store.attempts(999) == []
    assert store.command_fixes(999) == []


# --- applying batches -------------------------------------------------------------------------


def test_apply_writes_attempts_tasks_and_run_in_one_batch(store: Store) -> None:
    run = start(store)
    store.apply(
        Changes(
            started=[attempt(run.id, "extract", pid=41), attempt(run.id, "report", host="box")],
            tasks=[
                TaskChange(run.id, path, "running", started_at=T0) for path in ("extract", "report")
            ],
        )
    )
    end = T0 + timedelta(minutes=5)
    store.apply(
        Changes(
            ended=[
                AttemptEnd(run.id, "extract", 1, "failed", end, exit_code=3, reason="exit_code")
            ],
            tasks=[TaskChange(run.id, "extract", "failed", "exit_code", 3, finished_at=end)],
            run=RunChange(run.id, "failed", finished_at=end),
        )
    )
    extract = store.tasks(run.id)[0]
    assert (extract.status, extract.reason, extract.exit_code, extract.attempts) == (
        "failed",
        "exit_code",
        3,
        1,
    )
    assert (extract.started_at, extract.finished_at) == (T0, end)
    assert task_status(store, run.id) == {
        "extract": "failed",
        "load/stage": "pending",
        "load/merge": "pending",
        "report": "running",
    }
    assert (store.get_run(run.id).status, store.get_run(run.id).finished_at) == ("failed", end)


def test_apply_records_the_whole_attempt(store: Store) -> None:
    run = start(store)
    store.apply(Changes(started=[attempt(run.id, "extract", pid=41, host="box")]))
    end = AttemptEnd(
        run.id, "extract", 1, "failed", T0 + timedelta(seconds=9), None, 15, "signal", 10, 20
    )
    store.apply(Changes(ended=[end]))
    assert store.attempts(run.id) == [
        AttemptRecord(
            run.id,
            "extract",
            1,
            "failed",
            T0,
            f"logs/{run.id}/1",
            "run extract",
            host="box",
            finished_at=end.finished_at,
            signal=15,
            reason="signal",
            pid=41,
            stdout_size=10,
            stderr_size=20,
        )
    ]


def test_a_task_change_keeps_instants_it_leaves_out(store: Store) -> None:
    run = start(store)
    store.apply(Changes(tasks=[TaskChange(run.id, "extract", "running", started_at=T0)]))
    done = T0 + timedelta(minutes=1)
    store.apply(
        Changes(tasks=[TaskChange(run.id, "extract", "succeeded", exit_code=0, finished_at=done)])
    )
    extract = store.tasks(run.id)[0]
    assert (extract.status, extract.exit_code, extract.started_at, extract.finished_at) == (
        "succeeded",
        0,
        T0,
        done,
    )


def test_a_task_that_runs_again_is_not_finished(store: Store) -> None:
    run = start(store)
    store.apply(Changes(tasks=[TaskChange(run.id, "extract", "failed", "exit_code", 1, T0, T0)]))
    later = T0 + timedelta(minutes=1)
    store.apply(Changes(tasks=[TaskChange(run.id, "extract", "running", started_at=later)]))
    extract = store.tasks(run.id)[0]
    assert (extract.status, extract.reason, extract.exit_code) == ("running", None, None)
    assert (extract.started_at, extract.finished_at) == (later, None)


def test_tasks_count_their_attempts(store: Store) -> None:
    run = start(store)
    store.apply(Changes(started=[attempt(run.id, "extract", 1), attempt(run.id, "report", 1)]))
    store.apply(
        Changes(started=[attempt(run.id, "extract", 2, started_at=T0 + timedelta(seconds=1))])
    )
    counts = {task.path: task.attempts for task in store.tasks(run.id)}
    assert counts == {"extract": 2, "load/stage": 0, "load/merge": 0, "report": 1}
    assert [a.number for a in store.attempts(run.id, "extract")] == [1, 2]
    assert [(a.path, a.number) for a in store.attempts(run.id)] == [
        ("extract", 1),
        ("report", 1),
        ("extract", 2),
    ]


def test_apply_of_nothing_writes_nothing(store: Store) -> None:
    run = start(store)
    store.apply(Changes())
    assert store.get_run(run.id) == run


def test_apply_of_a_chain_writes_every_step(store: Store) -> None:
    paths = [f"step-{i}" for i in range(200)]
    run = start(store, paths=paths)
    for i, path in enumerate(paths):
        at = T0 + timedelta(seconds=i)
        store.apply(
            Changes(
                started=[attempt(run.id, path, started_at=at)],
                tasks=[
                    TaskChange(
                        run.id, path, "succeeded", exit_code=0, started_at=at, finished_at=at
                    )
                ],
            )
        )
    assert set(task_status(store, run.id).values()) == {"succeeded"}
    assert len(store.attempts(run.id)) == 200


# --- retry ------------------------------------------------------------------------------------

ALL_STATUSES = {
    "a-pending": "pending",
    "b-queued": "queued",
    "c-running": "running",
    "d-succeeded": "succeeded",
    "e-failed": "failed",
    "f-upstream": "upstream_failed",
    "g-cancelled": "cancelled",
    "h-skipped": "skipped",
}


def failed_run(store: Store) -> RunRecord:
    run = start(store, paths=list(ALL_STATUSES))
    store.apply(Changes(started=[attempt(run.id, "e-failed"), attempt(run.id, "d-succeeded")]))
    changes = [
        TaskChange(run.id, path, status, "exit_code", 1, T0, T0)
        for path, status in ALL_STATUSES.items()
    ]
    store.apply(Changes(tasks=changes, run=RunChange(run.id, "failed", finished_at=T0)))
    store.release(run.id, owner="box:1")
    return store.get_run(run.id)


def test_retry_puts_the_run_back_to_running_and_its_unfinished_tasks_to_pending(
    store: Store,
) -> None:
    run = failed_run(store)
    later = T0 + timedelta(hours=2)
    retried = store.begin_retry(run.id, owner="box:2", now=later)
    assert (retried.id, retried.status, retried.retries) == (run.id, "running", 1)
    assert (retried.owner, retried.heartbeat_at, retried.finished_at) == ("box:2", later, None)
    kept = {"d-succeeded": "succeeded", "h-skipped": "skipped"}
    assert task_status(store, run.id) == {path: kept.get(path, "pending") for path in ALL_STATUSES}
    for task in store.tasks(run.id):
        if task.path not in kept:
            assert (task.reason, task.exit_code) == (None, None)
    assert {task.path: task.attempts for task in store.tasks(run.id)}["e-failed"] == 1
    assert len(store.attempts(run.id)) == 2


def test_a_run_can_be_retried_again_after_failing_again(store: Store) -> None:
    run = failed_run(store)
    store.begin_retry(run.id, owner="box:2", now=T0)
    finish(store, run.id, "failed")
    assert store.begin_retry(run.id, owner="box:3", now=T0).retries == 2


@pytest.mark.parametrize("status", ["running", "succeeded", "cancelled"])
def test_only_a_failed_run_can_be_retried(store: Store, status: str) -> None:
    run = start(store)
    if status != "running":
        finish(store, run.id, status)
    with pytest.raises(NotRetryable) as refused:
        store.begin_retry(run.id, owner="box:2", now=T0)
    assert (refused.value.run_id, refused.value.status) == (run.id, status)
    assert store.get_run(run.id).status == status


def test_retry_is_refused_while_another_run_of_the_job_runs(store: Store) -> None:
    run = failed_run(store)
    other = start(store, paths=["x"])
    with pytest.raises(RunInProgress) as refused:
        store.begin_retry(run.id, owner="box:2", now=T0)
    assert refused.value.run_id == other.id
    assert store.get_run(run.id).status == "failed"


# --- command fixes ----------------------------------------------------------------------------


def test_fix_command_replaces_the_command_and_records_old_and_new(store: Store) -> None:
    run = start(store)
    finish(store, run.id, "failed")
    first = store.fix_command(run.id, "load/merge", "psql -f merge2.sql", now=T0)
    second = store.fix_command(run.id, "load/merge", "psql -f merge3.sql", now=T0 + timedelta(1))
    assert (first.old, first.new) == ("run load/merge", "psql -f merge2.sql")
    assert (second.old, second.new) == ("psql -f merge2.sql", "psql -f merge3.sql")
    assert store.command_fixes(run.id) == [first, second]
    commands = {task.path: task.command for task in store.tasks(run.id)}
    assert commands == {
        "extract": None,
        "load/stage": None,
        "load/merge": "psql -f merge3.sql",
        "report": None,
    }


def test_run_view_holds_the_run_and_what_its_page_shows(store: Store) -> None:
    run = start(store)
    finish(store, run.id, "failed")
    fix = store.fix_command(run.id, "load/merge", "psql -f merge2.sql", now=T0)

    view = store.run_view(run.id)

    assert view.run == store.get_run(run.id)
    assert view.tasks == store.tasks(run.id)
    assert view.fixes == [fix]
    assert view.notifications == store.notifications(run.id)
    assert view.marks == store.task_marks(run.id)


def test_a_running_run_cannot_have_its_commands_fixed(store: Store) -> None:
    run = start(store)
    with pytest.raises(Conflict):
        store.fix_command(run.id, "extract", "true", now=T0)
    assert store.command_fixes(run.id) == []


def test_a_succeeded_task_cannot_have_its_command_fixed(store: Store) -> None:
    run = start(store)
    set_statuses(store, run.id, {"extract": "succeeded"})
    finish(store, run.id, "failed")
    with pytest.raises(Conflict):
        store.fix_command(run.id, "extract", "true", now=T0)


def test_fixing_an_unknown_task_is_not_found_and_named(store: Store) -> None:
    run = start(store)
    finish(store, run.id, "failed")
    with pytest.raises(NotFound) as missing:
        store.fix_command(run.id, "no/such/task", "true", now=T0)
    assert "no/such/task" in str(missing.value)


# --- owners -----------------------------------------------------------------------------------


def test_heartbeat_records_that_the_owner_still_drives_the_run(store: Store) -> None:
    run = start(store)
    store.heartbeat(run.id, owner="box:1", now=T0 + timedelta(seconds=30))
    assert store.get_run(run.id).heartbeat_at == T0 + timedelta(seconds=30)


def test_a_heartbeat_from_someone_else_is_refused(store: Store) -> None:
    run = start(store)
    with pytest.raises(Conflict):
        store.heartbeat(run.id, owner="other:2", now=T0)
    assert store.get_run(run.id).heartbeat_at == T0


def test_release_lets_go_of_the_run_only_for_its_owner(store: Store) -> None:
    run = start(store)
    store.release(run.id, owner="other:2")
    assert store.get_run(run.id).owner == "box:1"
    store.release(run.id, owner="box:1")
    assert store.get_run(run.id).owner is None
    with pytest.raises(Conflict):
        store.heartbeat(run.id, owner="box:1", now=T0)


# --- instants ---------------------------------------------------------------------------------


def test_instants_come_back_as_aware_utc(store: Store) -> None:
    local = datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=BERLIN)  # the second 02:30 of fall-back
    run = start(store, now=local, scheduled_for=local)
    store.apply(Changes(started=[attempt(run.id, "extract", started_at=local)]))
    store.put_job("nightly", {"name": "nightly"}, "h1", now=local)
    stored = store.get_run(run.id)
    instants = [
        stored.created_at,
        stored.scheduled_for,
        stored.heartbeat_at,
        store.attempts(run.id)[0].started_at,
        store.job_versions("nightly")[0][2],
    ]
    assert instants == [datetime(2024, 10, 27, 1, 30, tzinfo=UTC)] * 5
    assert all(instant is not None and instant.tzinfo is UTC for instant in instants)


def test_microseconds_survive(store: Store) -> None:
    precise = T0 + timedelta(microseconds=123456)
    assert start(store, now=precise).created_at == precise


def test_a_naive_datetime_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="naive"):
        start(store, now=datetime(2024, 5, 1, 2, 0))
    assert store.list_runs() == []


# --- the job catalog ---------------------------------------------------------------------------


def test_put_job_makes_a_new_version_only_when_the_hash_changes(store: Store) -> None:
    assert store.put_job("nightly", {"name": "nightly", "v": 1}, "h1", now=T0) == 1
    assert store.put_job("nightly", {"name": "nightly", "v": 1}, "h1", now=T0) == 1
    later = T0 + timedelta(days=1)
    assert store.put_job("nightly", {"name": "nightly", "v": 2}, "h2", now=later) == 2
    assert store.job_versions("nightly") == [(1, "h1", T0), (2, "h2", later)]
    assert store.get_job("nightly") == {"name": "nightly", "v": 2}


def test_list_jobs_maps_names_to_current_definitions_by_name(store: Store) -> None:
    store.put_job("zeta", {"name": "zeta"}, "z", now=T0)
    store.put_job("alpha", {"name": "alpha", "v": 1}, "a1", now=T0)
    store.put_job("alpha", {"name": "alpha", "v": 2}, "a2", now=T0)
    jobs = store.list_jobs()
    assert list(jobs) == ["alpha", "zeta"]
    assert jobs["alpha"] == {"name": "alpha", "v": 2}


def test_job_hashes_map_names_to_current_hashes_by_name(store: Store) -> None:
    store.put_job("zeta", {"name": "zeta"}, "z", now=T0)
    store.put_job("alpha", {"name": "alpha", "v": 1}, "a1", now=T0)
    store.put_job("alpha", {"name": "alpha", "v": 2}, "a2", now=T0)
    assert list(store.job_hashes().items()) == [("alpha", "a2"), ("zeta", "z")]


def test_delete_job_removes_it_and_versions_count_on(store: Store) -> None:
    store.put_job("nightly", {"name": "nightly"}, "h1", now=T0)
    store.delete_job("nightly")
    assert store.list_jobs() == {}
    with pytest.raises(NotFound, match="nightly"):
        store.get_job("nightly")
    assert store.put_job("nightly", {"name": "nightly"}, "h1", now=T0) == 2


def test_an_unknown_job_is_not_found_and_named(store: Store) -> None:
    with pytest.raises(NotFound, match="ghost"):
        store.get_job("ghost")
    with pytest.raises(NotFound, match="ghost"):
        store.delete_job("ghost")
    assert store.job_versions("ghost") == []


# --- the database ------------------------------------------------------------------------------


def test_reopening_a_store_keeps_everything(store_url: str, store: Store) -> None:
    run = start(store)
    store.put_job("nightly", {"name": "nightly"}, "h1", now=T0)
    store.close()
    reopened = SQLStore.open(store_url)
    try:
        assert reopened.get_run(run.id) == run
        assert reopened.list_jobs() == {"nightly": {"name": "nightly"}}
    finally:
        reopened.close()


def test_the_migrations_build_the_schema_of_the_code(store_url: str, store: Store) -> None:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            differences = compare_metadata(MigrationContext.configure(conn), metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_the_code_knows_the_newest_revision_without_alembic(store: Store) -> None:
    assert migrations.head() == REVISION  # SQLStore.open loads Alembic only when it differs


def test_a_database_that_cannot_be_opened_is_a_store_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="missing"):
        SQLStore.open(sqlite_url(tmp_path / "missing" / "jobnest.db"))


WORKER = """
import sys, time
from datetime import UTC, datetime
from pathlib import Path
from jobnest.store.base import AttemptEnd, AttemptRecord, Changes, RunChange, TaskChange
from jobnest.store.sql import SQLStore

url, worker, rounds, go = sys.argv[1], sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    time.sleep(0.005)
store = SQLStore.open(url)
paths = ["a", "b/c", "d"]
for number in range(rounds):
    now = datetime.now(UTC)
    run = store.create_run(
        job=f"{worker}-{number}", plan={"nodes": []}, snapshot={}, task_paths=paths,
        workdir=".", trigger="manual", owner=worker, now=now,
    )
    store.apply(Changes(
        started=[AttemptRecord(run.id, p, 1, "running", now, "logs", "true") for p in paths],
        tasks=[TaskChange(run.id, p, "running", started_at=now) for p in paths],
    ))
    store.heartbeat(run.id, owner=worker, now=now)
    store.apply(Changes(
        ended=[AttemptEnd(run.id, p, 1, "succeeded", now, exit_code=0) for p in paths],
        tasks=[TaskChange(run.id, p, "succeeded", exit_code=0, finished_at=now) for p in paths],
        run=RunChange(run.id, "succeeded", finished_at=now),
    ))
    store.release(run.id, owner=worker)
    store.put_job("shared", {"name": "shared"}, f"{worker}-{number}", now=now)
store.close()
"""


def test_processes_sharing_a_database_do_not_corrupt_each_other(
    store_url: str, tmp_path: Path
) -> None:
    workers, rounds = 3, 40
    go = tmp_path / "go"
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, store_url, f"w{i}", str(rounds), str(go)],
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(workers)
    ]
    time.sleep(0.2)
    go.touch()
    errors = [process.communicate(timeout=50)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * workers, errors
    assert not any("locked" in error for error in errors)
    store = SQLStore.open(store_url)
    try:
        runs = store.list_runs(limit=1000)
        assert len(runs) == workers * rounds
        assert {run.status for run in runs} == {"succeeded"}
        assert all(
            task_status(store, run.id) == dict.fromkeys(["a", "b/c", "d"], "succeeded")
            for run in runs
        )
        assert sum(len(store.attempts(run.id)) for run in runs) == 3 * workers * rounds
        assert [version for version, _, _ in store.job_versions("shared")] == list(
            range(1, workers * rounds + 1)
        )
    finally:
        store.close()

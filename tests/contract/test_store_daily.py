"""The store contract for day-to-day controls, on every backend: retention's queries and
deletes, status counts for metrics, and retrying a run in a new plan."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from jobnest.errors import NotRetryable
from jobnest.store.base import (
    AttemptEnd,
    AttemptRecord,
    Changes,
    RunChange,
    RunRecord,
    Store,
    TaskChange,
    plan_version_of,
)

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
DAY = timedelta(days=1)


def plan_of(paths: list[str]) -> dict[str, Any]:
    return {"job": "j", "nodes": [{"id": p, "kind": "task"} for p in paths], "edges": []}


def start(store: Store, job: str, now: datetime, paths: list[str] | None = None) -> RunRecord:
    paths = ["a", "b"] if paths is None else paths
    return store.create_run(
        job=job,
        plan=plan_of(paths),
        snapshot={job: {"definition": {"name": job}, "hash": "h"}},
        task_paths=paths,
        workdir="/",
        trigger="manual",
        owner="box:1",
        now=now,
    )


def end(store: Store, run: RunRecord, at: datetime, status: str = "succeeded") -> RunRecord:
    store.apply(Changes(run=RunChange(run.id, status, finished_at=at)))
    return store.get_run(run.id)


def test_expired_runs_by_age_and_by_count_never_one_in_progress(store: Store) -> None:
    old = end(store, start(store, "a", T0), T0 + timedelta(hours=1))
    a2 = end(store, start(store, "a", T0 + 5 * DAY), T0 + 5 * DAY)
    b1 = end(store, start(store, "b", T0), T0 + DAY)
    b2 = end(store, start(store, "b", T0 + DAY), T0 + 2 * DAY)
    b_running = start(store, "b", T0 + 3 * DAY)
    by_age = store.expired_runs(ended_before=T0 + 2 * DAY, keep_per_job=None)
    assert [run.id for run in by_age] == [old.id, b1.id]
    by_count = store.expired_runs(ended_before=None, keep_per_job=1)
    assert [run.id for run in by_count] == [old.id, b1.id, b2.id]  # b's newest is running
    both = store.expired_runs(ended_before=T0 + 2 * DAY, keep_per_job=2)
    assert [run.id for run in both] == [old.id, b1.id]
    assert store.expired_runs(ended_before=None, keep_per_job=None) == []
    only_b = store.expired_runs(ended_before=T0 + 9 * DAY, keep_per_job=1, jobs=["b"])
    assert [run.id for run in only_b] == [b1.id, b2.id]
    assert a2.id not in {run.id for run in by_count} and b_running.status == "running"


def test_delete_runs_takes_their_tasks_and_attempts_but_never_a_running_run(store: Store) -> None:
    done = end(store, start(store, "a", T0), T0 + DAY)
    store.apply(
        Changes(started=[AttemptRecord(done.id, "a", 1, "running", T0, "logs/1/0.1", "true")])
    )
    running = start(store, "a", T0 + DAY)
    assert store.delete_runs([done.id, running.id, 999]) == [done.id]
    assert [run.id for run in store.list_runs()] == [running.id]
    assert store.attempts(done.id) == []
    assert store.status_counts().tasks == {"pending": 2}


def test_status_counts_count_runs_tasks_and_notifications_by_status(store: Store) -> None:
    run = start(store, "a", T0)
    store.apply(Changes(tasks=[TaskChange(run.id, "a", "running", started_at=T0)]))
    end(store, start(store, "b", T0), T0, "failed")
    counts = store.status_counts()
    assert counts.runs == {"running": 1, "failed": 1}
    assert counts.tasks == {"running": 1, "pending": 3}
    assert counts.notifications == {}


def test_retry_with_plan_keeps_succeeded_tasks_and_records_the_old_plan(store: Store) -> None:
    run = start(store, "j", T0, ["a", "b", "gone"])
    began = [AttemptRecord(run.id, p, 1, "running", T0, f"logs/{p}", "x") for p in ("a", "b")]
    ended = [
        AttemptEnd(run.id, "a", 1, "succeeded", T0, exit_code=0),
        AttemptEnd(run.id, "b", 1, "failed", T0, exit_code=1),
    ]
    tasks = [
        TaskChange(run.id, "a", "succeeded"),
        TaskChange(run.id, "b", "failed"),
        TaskChange(run.id, "gone", "upstream_failed"),
    ]
    store.apply(Changes(started=began))
    store.apply(Changes(ended=ended, tasks=tasks, run=RunChange(run.id, "failed", T0)))
    retried = store.retry_with_plan(
        run.id,
        plan=plan_of(["a", "b", "new"]),
        snapshot={"j": {"definition": {"name": "j"}, "hash": "h2"}},
        task_paths=["a", "b", "new"],
        owner="box:2",
        now=T0 + DAY,
    )
    assert (retried.status, retried.retries, retried.owner) == ("running", 1, "box:2")
    status = {task.path: (task.status, task.reason) for task in store.tasks(run.id)}
    assert status == {
        "a": ("succeeded", None),
        "b": ("pending", None),
        "new": ("pending", None),
        "gone": ("skipped", "removed"),
    }
    assert [task.path for task in store.tasks(run.id)] == ["a", "b", "new", "gone"]
    assert store.get_snapshot(run.id)["j"]["hash"] == "h2"
    versions = store.plan_versions(run.id)
    assert [(v.version, dict(v.attempts), v.replaced_at) for v in versions] == [
        (1, {"a": 1, "b": 1}, T0 + DAY),
        (2, {}, None),
    ]
    assert [plan_version_of(versions, "b", n) for n in (1, 2)] == [1, 2]


def test_retry_with_plan_refuses_a_run_that_has_not_failed(store: Store) -> None:
    run = start(store, "j", T0)
    with pytest.raises(NotRetryable):
        store.retry_with_plan(
            run.id, plan=plan_of([]), snapshot={}, task_paths=[], owner="x", now=T0
        )
    assert len(store.plan_versions(run.id)) == 1

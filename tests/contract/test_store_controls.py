"""The store's part of the controls, on every backend: marking a failed task."""

from __future__ import annotations

from datetime import timedelta

import pytest
from test_store import T0, finish, set_statuses, start, task_status

from jobnest.errors import Conflict, NotFound, RunInProgress
from jobnest.store.base import Store, TaskMark


def mark(run_id: int, path: str = "extract", status: str = "succeeded") -> TaskMark:
    return TaskMark(run_id, path, status, "token:ops", T0 + timedelta(hours=2))


def test_marking_a_failed_run_resumes_it_and_records_who_and_when(store: Store) -> None:
    run = start(store)
    set_statuses(store, run.id, {"extract": "failed", "report": "upstream_failed"})
    finish(store, run.id, "failed")
    store.mark_task(mark(run.id, status="skipped"), owner="box:2")
    again = store.get_run(run.id)
    assert (again.status, again.owner, again.retries) == ("running", "box:2", 1)
    statuses = task_status(store, run.id)
    assert (statuses["extract"], statuses["report"]) == ("skipped", "upstream_failed")
    assert store.task_marks(run.id) == [mark(run.id, status="skipped")]
    assert {t.path: t.reason for t in store.tasks(run.id)}["extract"] == "marked"


def test_marking_a_running_run_leaves_the_run_to_its_driver(store: Store) -> None:
    run = start(store)
    set_statuses(store, run.id, {"extract": "failed"})
    store.mark_task(mark(run.id))
    assert store.get_run(run.id).status == "running"
    assert task_status(store, run.id)["extract"] == "succeeded"


def test_marking_refuses_what_did_not_fail_and_the_wrong_run_state(store: Store) -> None:
    run = start(store)
    with pytest.raises(Conflict, match=r"'extract' of run \d+ is pending"):
        store.mark_task(mark(run.id))
    set_statuses(store, run.id, {"extract": "failed"})
    with pytest.raises(Conflict, match="is running"):
        store.mark_task(mark(run.id), owner="box:2")  # a running run has its driver
    with pytest.raises(NotFound, match="'nope'"):
        store.mark_task(mark(run.id, "nope"))
    with pytest.raises(NotFound):
        store.mark_task(mark(run.id + 99))
    assert store.task_marks(run.id) == []


def test_marking_refuses_to_resume_a_run_while_another_of_its_job_runs(store: Store) -> None:
    run = start(store)
    set_statuses(store, run.id, {"extract": "failed"})
    finish(store, run.id, "failed")
    start(store, now=T0 + timedelta(hours=1))
    with pytest.raises(RunInProgress):
        store.mark_task(mark(run.id), owner="box:2")
    assert task_status(store, run.id)["extract"] == "failed"

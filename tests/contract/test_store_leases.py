"""The store contract for the leases on runs: fenced batches and claiming stale runs.

A driver writes its batches under its lease (``Changes.lease``): written only while it
drives the run, and renewing it. A process that finds a run stale claims it with
``claim_runs``; of several claimers, one gets each run.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest

from jobnest.errors import Conflict
from jobnest.store.base import Changes, Lease, RunChange, RunRecord, Store, TaskChange
from jobnest.store.sql import SQLStore

T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
LATER = T0 + timedelta(minutes=1)


def start(store: Store, job: str = "nightly", owner: str = "box:1") -> RunRecord:
    return store.create_run(
        job=job,
        plan={"nodes": []},
        snapshot={},
        task_paths=["a", "b"],
        workdir="/srv",
        trigger="manual",
        owner=owner,
        now=T0,
    )


def statuses(store: Store, run_id: int) -> dict[str, str]:
    return {task.path: task.status for task in store.tasks(run_id)}


# --- fenced batches ------------------------------------------------------------------------


def test_a_batch_under_its_owners_lease_is_written_and_renews_it(store: Store) -> None:
    run = start(store)
    store.apply(
        Changes(tasks=[TaskChange(run.id, "a", "running")], lease=Lease(run.id, "box:1", LATER))
    )
    assert statuses(store, run.id)["a"] == "running"
    assert store.get_run(run.id).heartbeat_at == LATER


def test_a_batch_of_a_driver_that_lost_its_run_is_refused_whole(store: Store) -> None:
    run = start(store)
    store.claim_runs([run], owner="box:2", now=LATER)
    with pytest.raises(Conflict, match=f"run {run.id}.*'box:1'"):
        store.apply(
            Changes(
                tasks=[TaskChange(run.id, "a", "succeeded")],
                run=RunChange(run.id, "succeeded", LATER),
                lease=Lease(run.id, "box:1", LATER),
            )
        )
    after = store.get_run(run.id)
    assert (after.status, after.owner, after.heartbeat_at) == ("running", "box:2", LATER)
    assert statuses(store, run.id) == {"a": "pending", "b": "pending"}


def test_a_batch_of_a_released_run_is_refused(store: Store) -> None:
    run = start(store)
    store.release(run.id, owner="box:1")
    with pytest.raises(Conflict):
        store.apply(
            Changes(tasks=[TaskChange(run.id, "a", "running")], lease=Lease(run.id, "box:1", T0))
        )


# --- claiming stale runs -------------------------------------------------------------------


def test_claiming_takes_the_runs_as_they_were_read(store: Store) -> None:
    first, second = start(store, "a"), start(store, "b", owner="box:9")
    taken = store.claim_runs([first, second], owner="box:2", now=LATER)
    assert taken == [first, second]  # as given: the owners that lost them
    for run in (first, second):
        claimed = store.get_run(run.id)
        assert (claimed.owner, claimed.heartbeat_at) == ("box:2", LATER)


def test_a_run_whose_driver_renewed_its_lease_is_not_claimed(store: Store) -> None:
    run = start(store)
    store.heartbeat(run.id, owner="box:1", now=LATER)
    assert store.claim_runs([run], owner="box:2", now=LATER) == []
    assert store.get_run(run.id).owner == "box:1"


def test_a_run_claimed_by_another_is_not_claimed_again(store: Store) -> None:
    run = start(store)
    assert store.claim_runs([run], owner="box:2", now=LATER) == [run]
    assert store.claim_runs([run], owner="box:3", now=LATER) == []
    assert store.get_run(run.id).owner == "box:2"


def test_an_ended_run_is_not_claimed(store: Store) -> None:
    run = start(store)
    store.apply(Changes(run=RunChange(run.id, "failed", LATER)))
    assert store.claim_runs([run], owner="box:2", now=LATER) == []
    assert store.claim_runs([], owner="box:2", now=LATER) == []


def test_claimers_racing_on_one_database_get_each_run_once(store_url: str, store: Store) -> None:
    runs = [start(store, f"job-{i}") for i in range(30)]
    claimers = [SQLStore.open(store_url) for _ in range(4)]
    barrier = threading.Barrier(len(claimers))
    taken: list[list[RunRecord]] = [[] for _ in claimers]

    def claim(index: int) -> None:
        barrier.wait(timeout=10)
        for run in runs:  # one at a time: the claimers interleave
            taken[index] += claimers[index].claim_runs([run], owner=f"c:{index}", now=LATER)

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(claimers))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
    finally:
        for claimer in claimers:
            claimer.close()
    ids = sorted(run.id for mine in taken for run in mine)
    assert ids == sorted(run.id for run in runs)
    for index, mine in enumerate(taken):
        assert {store.get_run(run.id).owner for run in mine} <= {f"c:{index}"}

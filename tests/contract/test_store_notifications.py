"""The store contract for notifications (the outbox), over every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobnest.errors import NotFound
from jobnest.store.base import (
    Changes,
    NewNotification,
    NotificationRecord,
    RunChange,
    RunRecord,
    Store,
)
from jobnest.store.sql import SQLStore

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)
REPORT = {"job": "nightly", "outcome": "failed", "note": "naïve ✓"}
TARGETS = [
    NewNotification("email", "ops@example.com"),
    NewNotification("webhook", "https://hooks.example.com/x", secret="s3cret"),
]


def ended_run(store: Store, job: str = "nightly", status: str = "failed") -> RunRecord:
    run = store.create_run(
        job=job,
        plan={"job": job, "nodes": [], "edges": []},
        snapshot={},
        task_paths=[],
        workdir="/srv",
        trigger="manual",
        owner="box:1",
        now=T0,
    )
    store.apply(Changes(run=RunChange(run.id, status, finished_at=T0)))
    return store.get_run(run.id)


def add(store: Store, run: RunRecord, *, retries: int = 0) -> list[NotificationRecord]:
    return store.add_notifications(
        run.id, retries=retries, outcome=run.status, targets=TARGETS, report=REPORT, now=T0
    )


def test_added_notifications_are_pending_and_due_now(store: Store) -> None:
    run = ended_run(store)

    added = add(store, run)

    assert [(n.channel, n.target, n.status, n.attempts) for n in added] == [
        ("email", "ops@example.com", "pending", 0),
        ("webhook", "https://hooks.example.com/x", "pending", 0),
    ]
    assert all(n.next_attempt_at == T0 and n.created_at == T0 for n in added)
    assert all(n.outcome == "failed" and n.retries == 0 for n in added)
    assert store.notifications(run.id) == added


def test_recording_an_ending_twice_adds_nothing(store: Store) -> None:
    run = ended_run(store)
    first = add(store, run)

    assert add(store, run) == []
    assert store.notifications(run.id) == first


def test_each_ending_of_a_retried_run_gets_its_own_notifications(store: Store) -> None:
    run = ended_run(store)
    add(store, run, retries=0)

    again = add(store, run, retries=1)

    assert len(again) == 2
    assert [n.retries for n in store.notifications(run.id)] == [0, 0, 1, 1]


def test_notifications_of_an_unknown_run_are_refused(store: Store) -> None:
    with pytest.raises(NotFound, match="999"):
        store.add_notifications(
            999, retries=0, outcome="failed", targets=TARGETS, report=REPORT, now=T0
        )


def test_claiming_marks_due_ones_sending_with_a_lease_and_carries_the_report(
    store: Store,
) -> None:
    run = ended_run(store)
    add(store, run)

    claimed = store.claim_notifications(now=T0, lease_until=T0 + LEASE)

    assert [c.notification.status for c in claimed] == ["sending", "sending"]
    assert [c.notification.attempts for c in claimed] == [1, 1]
    assert all(c.notification.lease_until == T0 + LEASE for c in claimed)
    assert [c.report for c in claimed] == [REPORT, REPORT]
    assert [c.secret for c in claimed] == [None, "s3cret"]


def test_a_claimed_notification_is_not_claimed_again_while_its_lease_holds(store: Store) -> None:
    run = ended_run(store)
    add(store, run)
    store.claim_notifications(now=T0, lease_until=T0 + LEASE)

    assert store.claim_notifications(now=T0 + LEASE / 2, lease_until=T0 + 2 * LEASE) == []


def test_two_stores_on_one_database_never_claim_the_same_notification(store_url: str) -> None:
    first, second = SQLStore.open(store_url), SQLStore.open(store_url)
    try:
        add(first, ended_run(first))
        a = first.claim_notifications(now=T0, lease_until=T0 + LEASE, limit=1)
        b = second.claim_notifications(now=T0, lease_until=T0 + LEASE, limit=5)
        c = second.claim_notifications(now=T0, lease_until=T0 + LEASE, limit=5)
    finally:
        first.close()
        second.close()

    assert len(a) == 1 and len(b) == 1 and c == []
    assert a[0].notification.id != b[0].notification.id


def test_a_notification_whose_lease_expired_is_claimed_again_and_says_so(store: Store) -> None:
    run = ended_run(store)
    add(store, run)
    store.claim_notifications(now=T0, lease_until=T0 + LEASE, limit=1)

    again = store.claim_notifications(now=T0 + LEASE, lease_until=T0 + 2 * LEASE, limit=1)

    assert len(again) == 1
    record = again[0].notification
    assert record.attempts == 2
    assert record.last_error is not None and "interrupted" in record.last_error


def test_only_the_current_claim_may_finish_a_notification(store: Store) -> None:
    run = ended_run(store)
    add(store, run)
    (old,) = store.claim_notifications(now=T0, lease_until=T0 + LEASE, limit=1)
    (new,) = store.claim_notifications(now=T0 + LEASE, lease_until=T0 + 2 * LEASE, limit=1)
    later = T0 + LEASE + timedelta(seconds=5)

    stale = store.finish_notification(old.notification.id, attempt=1, status="sent", now=later)
    current = store.finish_notification(new.notification.id, attempt=2, status="sent", now=later)

    assert (stale, current) == (False, True)
    record = store.notifications(run.id)[0]
    assert (record.status, record.attempts, record.sent_at) == ("sent", 2, later)
    assert record.lease_until is None


def test_a_sent_notification_is_never_claimed_again(store: Store) -> None:
    run = ended_run(store)
    add(store, run)
    for delivery in store.claim_notifications(now=T0, lease_until=T0 + LEASE):
        store.finish_notification(delivery.notification.id, attempt=1, status="sent", now=T0)

    assert store.claim_notifications(now=T0 + timedelta(days=9), lease_until=T0) == []


def test_a_notification_to_retry_is_due_again_at_its_time(store: Store) -> None:
    run = ended_run(store)
    add(store, run)
    (first, _) = store.claim_notifications(now=T0, lease_until=T0 + LEASE)
    retry_at = T0 + timedelta(seconds=30)

    store.finish_notification(
        first.notification.id,
        attempt=1,
        status="pending",
        now=T0,
        error="451 try later",
        retry_at=retry_at,
    )

    record = store.notifications(run.id)[0]
    assert (record.status, record.next_attempt_at, record.last_error) == (
        "pending",
        retry_at,
        "451 try later",
    )
    assert store.claim_notifications(now=retry_at - timedelta(seconds=1), lease_until=T0) == []
    (again,) = store.claim_notifications(now=retry_at, lease_until=retry_at + LEASE)
    assert (again.notification.id, again.notification.attempts) == (record.id, 2)


def test_a_failed_notification_keeps_its_error_and_is_not_claimed(store: Store) -> None:
    run = ended_run(store)
    add(store, run)
    for delivery in store.claim_notifications(now=T0, lease_until=T0 + LEASE):
        store.finish_notification(
            delivery.notification.id, attempt=1, status="failed", now=T0, error="550 no such user"
        )

    assert [(n.status, n.last_error) for n in store.notifications(run.id)] == [
        ("failed", "550 no such user"),
        ("failed", "550 no such user"),
    ]
    assert store.claim_notifications(now=T0 + timedelta(days=1), lease_until=T0) == []


def test_unnotified_runs_are_those_that_ended_since_an_instant_without_notifications(
    store: Store,
) -> None:
    early, late, told = ended_run(store, "a"), ended_run(store, "b"), ended_run(store, "c")
    store.apply(Changes(run=RunChange(late.id, "succeeded", finished_at=T0 + timedelta(hours=1))))
    add(store, told)
    running = ended_run(store, "d", status="running")

    assert [r.id for r in store.unnotified_runs(T0)] == [early.id, late.id]
    assert [r.id for r in store.unnotified_runs(T0 + timedelta(minutes=1))] == [late.id]
    assert running.id not in [r.id for r in store.unnotified_runs(T0 - timedelta(days=1))]


def test_a_retried_run_that_ended_again_is_unnotified_until_that_ending_is(
    store: Store, store_url: str
) -> None:
    run = ended_run(store)
    add(store, run, retries=0)
    store.begin_retry(run.id, owner="box:2", now=T0)
    store.apply(Changes(run=RunChange(run.id, "failed", finished_at=T0)))

    assert [r.id for r in store.unnotified_runs(T0)] == [run.id]
    add(store, run, retries=1)
    assert store.unnotified_runs(T0) == []

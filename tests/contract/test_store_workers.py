"""The store's ``workers`` section, on every store backend: the rows behind Celery attempts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from jobnest.errors import Conflict, NotFound
from jobnest.store.base import Store, WorkerKey

KEY = WorkerKey(7, "load/stage", 2)
T0 = datetime(2026, 1, 1, tzinfo=UTC)
SPEC = {"command": "echo hi", "workdir": "/tmp", "log_dir": "/tmp/x", "env": {}, "grace": 1.0}


def dispatched(store: Store) -> Store:
    store.dispatch_attempt(KEY, queue="q", spec=SPEC, now=T0)
    return store


def test_a_dispatched_attempt_is_queued_and_dispatching_it_again_conflicts(store: Store) -> None:
    dispatched(store)

    row = store.worker_attempt(KEY)
    assert (row.status, row.worker, row.outcome) == ("queued", None, None)
    with pytest.raises(Conflict, match="load/stage"):
        store.dispatch_attempt(KEY, queue="q", spec=SPEC, now=T0)


def test_only_the_first_claim_gets_the_spec(store: Store) -> None:
    dispatched(store)

    first = store.claim_attempt(KEY, worker="w1", heartbeat_every=0.5, now=T0)
    second = store.claim_attempt(KEY, worker="w2", heartbeat_every=0.5, now=T0)

    assert (first, second) == (SPEC, None)
    row = store.worker_attempt(KEY)
    assert (row.status, row.worker, row.heartbeat_every) == ("running", "w1", 0.5)


def test_an_unknown_attempt_is_not_claimed_nor_found(store: Store) -> None:
    assert store.claim_attempt(KEY, worker="w", heartbeat_every=1, now=T0) is None
    with pytest.raises(NotFound):
        store.worker_attempt(KEY)


def test_a_heartbeat_returns_the_grace_of_a_requested_cancel(store: Store) -> None:
    dispatched(store).claim_attempt(KEY, worker="w", heartbeat_every=1, now=T0)

    assert store.worker_heartbeat(KEY, worker="w", now=T0 + timedelta(seconds=1)) is None
    store.cancel_attempt(KEY, grace=3.0)
    assert store.worker_heartbeat(KEY, worker="w", now=T0 + timedelta(seconds=2)) == 3.0
    assert store.worker_attempt(KEY).heartbeat_at == T0 + timedelta(seconds=2)


def test_a_queued_attempt_cancelled_is_over_and_never_claimed(store: Store) -> None:
    dispatched(store).cancel_attempt(KEY, grace=1.0)

    assert store.worker_attempt(KEY).status == "cancelled"
    assert store.claim_attempt(KEY, worker="w", heartbeat_every=1, now=T0) is None


def test_a_lost_attempt_fences_its_worker_out(store: Store) -> None:
    dispatched(store).claim_attempt(KEY, worker="w", heartbeat_every=1, now=T0)

    assert not store.lose_attempt(KEY, heartbeat_at=T0 - timedelta(seconds=1))  # a newer beat
    assert store.lose_attempt(KEY, heartbeat_at=T0)
    with pytest.raises(Conflict):
        store.worker_heartbeat(KEY, worker="w", now=T0)
    assert not store.finish_attempt(KEY, worker="w", outcome={"reason": None}, now=T0)
    assert store.worker_attempt(KEY).status == "lost"


def test_only_the_holder_finishes_an_attempt(store: Store) -> None:
    dispatched(store).claim_attempt(KEY, worker="w", heartbeat_every=1, now=T0)

    assert not store.finish_attempt(KEY, worker="other", outcome={"reason": None}, now=T0)
    assert store.finish_attempt(KEY, worker="w", outcome={"reason": "exit_code"}, now=T0)

    row = store.worker_attempt(KEY)
    assert (row.status, row.outcome) == ("finished", {"reason": "exit_code"})

"""Attempts on Celery workers: ``queue: NAME`` runs a task on a worker of that queue.

jobnest owns the truth; the broker only carries "run attempt X". ``CeleryExecutor.start``
records the attempt's spec in the store (``dispatch_attempt``), then sends a message holding
nothing but its key (run id, task path, attempt number) to the queue. A worker
(``jobnest worker --queue NAME``, see ``executors.worker.serve``) claims the attempt, runs it,
heartbeats and records the outcome; the handle here polls the attempt's row:

- ``finished``: the worker's outcome;
- ``running`` with no new heartbeat for ``MISSED_BEATS`` of the worker's intervals: the worker
  is gone; the attempt is marked ``lost`` (the runner's retry policy decides what follows; a
  redelivered message for it is dropped by whichever worker gets it);
- ``terminate(grace)`` asks for a cancel in the row; the worker sees it with its next
  heartbeat and stops the process group. An attempt no worker has claimed yet ends at once.

The attempt's identity is read from the ``JOBNEST_RUN_ID``, ``JOBNEST_TASK`` and
``JOBNEST_ATTEMPT`` variables the runner puts in every spec's environment.

Celery is set up as §10 of the design says: late acks, rejected on worker loss, one message
prefetched at a time, and on Redis a visibility timeout longer than any task.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import suppress
from datetime import UTC, datetime
from typing import Any

from celery import Celery

from jobnest.errors import StoreError
from jobnest.executors.base import (
    STDERR,
    STDOUT,
    AttemptSpec,
    Executor,
    Handle,
    Outcome,
    failed_start,
    output_size,
)
from jobnest.executors.worker import outcome_from_dict, serve, spec_to_dict
from jobnest.model.run import Reason
from jobnest.store.base import Store, WorkerAttempt, WorkerKey

TASK_NAME = "jobnest.run_attempt"
VISIBILITY_TIMEOUT = 7 * 24 * 3600  # seconds (Redis): longer than any task may run
MISSED_BEATS = 3  # heartbeats a worker may miss before its attempt is lost
POLL_INTERVAL = 0.1  # seconds between looks at a dispatched attempt's row
STORE_RETRY = 2.0  # seconds before a worker takes up a message again when the database is away
log = logging.getLogger(__name__)


def make_app(broker: str) -> Celery:
    """A Celery app on ``broker`` with the settings jobnest's attempts need."""
    app = Celery("jobnest", broker=broker, set_as_current=False)
    app.conf.update(
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_ignore_result=True,
        task_create_missing_queues=True,
        broker_transport_options={"visibility_timeout": VISIBILITY_TIMEOUT},
        broker_connection_retry_on_startup=True,
        broker_heartbeat=0,  # a pool thread busy with a task must not cost the connection
        worker_hijack_root_logger=False,
    )
    return app


def worker_app(broker: str, store: Store, *, heartbeat: float) -> Celery:
    """The app of ``jobnest worker``: ``make_app`` with the task that serves attempts."""
    app = make_app(broker)

    @app.task(name=TASK_NAME, bind=True, max_retries=None)  # type: ignore[untyped-decorator]
    def run_attempt(task: Any, run_id: int, path: str, attempt: int) -> str:
        try:
            return serve(store, WorkerKey(run_id, path, attempt), heartbeat=heartbeat)
        except StoreError as exc:  # the database is away: the message comes back later
            log.warning("jobnest: attempt %s/%s#%s: %s", run_id, path, attempt, exc)
            raise task.retry(countdown=STORE_RETRY) from exc

    return app


def run_worker(app: Celery, queue: str, *, concurrency: int) -> None:
    """Consume ``queue`` until stopped, ``concurrency`` attempts at a time, in pool threads."""
    app.worker_main(
        argv=[
            "worker",
            f"--queues={queue}",
            "--pool=threads",
            f"--concurrency={concurrency}",
            f"--hostname=jobnest-{queue}-{os.getpid()}@%h",  # unique: two may share a queue
            "--without-gossip",
            "--without-mingle",
            "--without-heartbeat",
            "--loglevel=INFO",
        ]
    )


class CeleryExecutor(Executor):
    """Sends each attempt with a ``queue`` to that queue's workers."""

    def __init__(
        self,
        store: Store,
        app: Celery,
        *,
        grace: float = 10.0,
        poll: float = POLL_INTERVAL,
        owns_store: bool = False,
    ) -> None:
        self.store = store
        self.app = app
        self.grace = grace  # seconds between a soft timeout's SIGTERM and its SIGKILL
        self.poll = poll
        self.owns_store = owns_store  # close() closes the store too

    async def start(self, spec: AttemptSpec) -> Handle:
        started_at = datetime.now(UTC)
        key = attempt_key(spec)
        if key is None or spec.queue is None:
            return failed_start(spec, started_at, "the attempt has no run, task or queue to send")
        try:
            self.store.dispatch_attempt(
                key, queue=spec.queue, spec=spec_to_dict(spec, self.grace), now=started_at
            )
            await asyncio.to_thread(self._send, key, spec.queue)
        except Exception as exc:  # any broker or store failure fails the start
            with suppress(StoreError):
                self.store.cancel_attempt(key, grace=0.0)
            return failed_start(spec, started_at, f"cannot send it to queue {spec.queue!r}: {exc}")
        return CeleryHandle(self.store, key, spec, started_at, self.poll)

    def _send(self, key: WorkerKey, queue: str) -> None:
        self.app.send_task(TASK_NAME, args=[key.run_id, key.path, key.attempt], queue=queue)

    async def close(self) -> None:
        self.app.close()
        if self.owns_store:
            self.store.close()


class CeleryHandle(Handle):
    """An attempt sent to a worker, followed through its row in the store."""

    def __init__(
        self, store: Store, key: WorkerKey, spec: AttemptSpec, started_at: datetime, poll: float
    ) -> None:
        self._store = store
        self._key = key
        self._log_dir = spec.log_dir
        self._started_at = started_at
        self._poll = poll
        self._beat: datetime | None = None  # the last heartbeat seen ...
        self._beat_seen = 0.0  # ... and when, by the loop's monotonic clock
        self._cancel: float | None = None  # the grace of a cancel not yet written
        self._outcome: Outcome | None = None

    async def wait(self) -> Outcome:
        if self._outcome is None:
            self._outcome = await self._watch()
        return self._outcome

    async def terminate(self, grace: float) -> None:
        self._cancel = grace
        await asyncio.to_thread(self._request_cancel)

    def _request_cancel(self) -> None:
        """Write the cancel request; while the database is away, the next poll tries again."""
        if self._cancel is None:
            return
        try:
            self._store.cancel_attempt(self._key, grace=self._cancel)
        except StoreError as exc:
            log.warning("attempt %s: cannot ask for its cancel yet: %s", self._key, exc)
            return
        self._cancel = None

    async def _watch(self) -> Outcome:
        self._beat_seen = asyncio.get_running_loop().time()
        while True:
            self._request_cancel()
            try:
                outcome = self._look()
            except StoreError as exc:
                log.warning("attempt %s: cannot read its row: %s", self._key, exc)
                self._beat, outcome = None, None  # the worker gets a fresh allowance after
            if outcome is not None:
                return outcome
            await asyncio.sleep(self._poll)

    def _look(self) -> Outcome | None:
        row = self._store.worker_attempt(self._key)
        if row.status == "finished" and row.outcome is not None:
            return outcome_from_dict(row.outcome)
        if row.status in ("lost", "cancelled"):
            return self._ended("lost" if row.status == "lost" else "cancelled")
        if row.status == "running" and self._silent(row):
            lost = self._store.lose_attempt(self._key, heartbeat_at=row.heartbeat_at)
            return self._ended("lost") if lost else None
        return None

    def _silent(self, row: WorkerAttempt) -> bool:
        """Whether the worker has missed ``MISSED_BEATS`` heartbeats, by our own clock."""
        now = asyncio.get_running_loop().time()
        if row.heartbeat_at != self._beat:
            self._beat, self._beat_seen = row.heartbeat_at, now
            return False
        return now - self._beat_seen > MISSED_BEATS * (row.heartbeat_every or 1.0) + self._poll

    def _ended(self, reason: Reason) -> Outcome:
        log.warning("attempt %s: %s", self._key, reason)
        return Outcome(
            started_at=self._started_at,
            finished_at=datetime.now(UTC),
            reason=reason,
            stdout_size=output_size(self._log_dir / STDOUT),
            stderr_size=output_size(self._log_dir / STDERR),
        )


def attempt_key(spec: AttemptSpec) -> WorkerKey | None:
    """The attempt ``spec`` is, from the variables the runner sets; None without them."""
    env = spec.env
    try:
        return WorkerKey(
            int(env["JOBNEST_RUN_ID"]), env["JOBNEST_TASK"], int(env["JOBNEST_ATTEMPT"])
        )
    except (KeyError, ValueError):
        return None

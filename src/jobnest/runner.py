"""The runner: drives runs of a plan through an executor, keeping the store up to date.

``start()`` expands a job into a plan, snapshots every job in it and records a new run;
``drive()`` runs it to the end; ``retry()`` brings a failed run back and drives it again
in the same plan. State transitions are written in one batch per scheduling step: the
attempts about to start are recorded before their processes exist, so a crash never
leaves a process the store does not know of.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobnest.config import Settings
from jobnest.errors import Conflict
from jobnest.executors.base import AttemptSpec, Executor, Handle, Outcome
from jobnest.model.expand import Lookup, PlanGraph, PlanNode, expand, plan_from_dict, plan_to_dict
from jobnest.model.job import Job, job_to_dict
from jobnest.model.plan import Plan
from jobnest.model.run import DONE_OK, UNRETRYABLE, run_outcome
from jobnest.store.base import (
    AttemptEnd,
    AttemptRecord,
    Changes,
    RunChange,
    RunRecord,
    Store,
    TaskChange,
    TaskRecord,
)

HEARTBEAT_SECONDS = 10.0
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Event:
    """A change a watcher may want to show: ``path`` is None for the run itself."""

    run_id: int
    status: str
    path: str | None = None
    attempt: int | None = None
    exit_code: int | None = None
    reason: str | None = None


Observer = Callable[[Event], None]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def default_owner() -> str:
    """Who drives runs from this process: ``host:pid``."""
    return f"{socket.gethostname()}:{os.getpid()}"


class Runner:
    """Starts, drives, retries and cancels runs."""

    def __init__(
        self,
        store: Store,
        executor: Executor,
        settings: Settings,
        *,
        owner: str | None = None,
        observer: Observer | None = None,
        clock: Clock = utc_now,
        heartbeat: float = HEARTBEAT_SECONDS,
    ) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.owner = owner or default_owner()
        self.observer = observer or (lambda event: None)
        self.clock = clock
        self.heartbeat = heartbeat  # seconds between the lease renewals of a driven run
        self._drivers: dict[int, _Driver] = {}

    def start(
        self,
        job: Job,
        lookup: Lookup,
        *,
        workdir: str,
        trigger: str = "manual",
        scheduled_for: datetime | None = None,
    ) -> RunRecord:
        """Expand ``job`` into a fresh plan and record a new run of it (not yet driven)."""
        graph = expand(job, lookup, self.settings.limits)
        snapshot = {name: _snapshot_entry(lookup, name, job) for name in graph.hashes}
        return self.store.create_run(
            job=job.name,
            plan=plan_to_dict(graph),
            snapshot=snapshot,
            task_paths=[node.id for node in graph.nodes if node.is_task],
            workdir=job.workdir or workdir,
            trigger=trigger,
            owner=self.owner,
            now=self.clock(),
            scheduled_for=scheduled_for,
        )

    def begin_retry(self, run_id: int) -> RunRecord:
        """Bring a failed run back to ``running`` in its own plan (not yet driven)."""
        return self.store.begin_retry(run_id, owner=self.owner, now=self.clock())

    async def drive(self, run_id: int) -> RunRecord:
        """Run every task that can still run, then record how the run ended."""
        run = self.store.get_run(run_id)
        graph = plan_from_dict(self.store.get_plan(run_id))
        tasks = {task.path: task for task in self.store.tasks(run_id)}
        driver = _Driver(self, run, graph, tasks)
        self._drivers[run_id] = driver
        try:
            await driver.drive()
        finally:
            del self._drivers[run_id]
        return self.store.get_run(run_id)

    def cancel(self, run_id: int, *, retryable: bool = False) -> bool:
        """Stop a run this runner drives; False when it drives no such run.

        The run ends ``cancelled``; with ``retryable`` it ends ``failed`` instead, so that a
        retry goes on where it stopped (the daemon shutting down, not a user's cancel).
        """
        driver = self._drivers.get(run_id)
        if driver is None:
            return False
        driver.cancel(retryable=retryable)
        return True

    def log_dir(self, run_id: int, index: int, attempt: int) -> Path:
        """Where an attempt's files live: by run, plan position and attempt, never by name."""
        return self.settings.logs / str(run_id) / f"{index}.{attempt}"


def _snapshot_entry(lookup: Lookup, name: str, top: Job) -> dict[str, object]:
    job = top if name == top.name else lookup(name)
    assert job is not None  # expand() has resolved every name in the plan
    return {"definition": job_to_dict(job), "hash": job.content_hash}


class _Driver:
    """Drives one run: the plan's ready/done protocol around the executor."""

    def __init__(
        self, runner: Runner, run: RunRecord, graph: PlanGraph, tasks: Mapping[str, TaskRecord]
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.run = run
        self.tasks = dict(tasks)
        self.index = {node.id: i for i, node in enumerate(graph.nodes)}
        finished = [path for path, task in tasks.items() if task.status in DONE_OK]
        self.plan = Plan(graph, finished)
        self.waiting: list[PlanNode] = []
        self.handles: dict[str, Handle] = {}
        self.delayed: dict[str, asyncio.TimerHandle] = {}
        self.outcomes: asyncio.Queue[tuple[PlanNode, int, Outcome] | None] = asyncio.Queue()
        self.first_attempt: dict[str, int] = {}
        self.background: set[asyncio.Task[None]] = set()
        self.running = 0
        self.cancelled = False
        self.retryable = False  # a cancelled run ends failed, not cancelled
        self.lost = False  # another process owns the run now: hands off the store

    async def drive(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        try:
            await self._loop()
        finally:
            heartbeat.cancel()
        self._finish()

    async def _loop(self) -> None:
        changes = Changes()
        while True:
            self.waiting.extend(self.plan.ready())
            launches = self._launch(changes)
            self._flush(changes)
            for node, number, spec in launches:
                self._spawn(self._attempt(node, number, spec))
            if not (self.running or self.delayed or self.waiting):
                return
            changes = Changes()
            await self._collect(changes)

    def _launch(self, changes: Changes) -> list[tuple[PlanNode, int, AttemptSpec]]:
        launches = []
        while (
            self.waiting and self.running < self.runner.settings.max_parallel and not self.cancelled
        ):
            node = self.waiting.pop(0)
            launches.append(self._prepare(node, changes))
            self.running += 1
        return launches

    def _prepare(self, node: PlanNode, changes: Changes) -> tuple[PlanNode, int, AttemptSpec]:
        task = self.tasks[node.id]
        number = task.attempts + 1
        now = self.runner.clock()
        command = task.command or node.command or ""
        log_dir = self.runner.log_dir(self.run.id, self.index[node.id], number)
        record = AttemptRecord(
            self.run.id,
            node.id,
            number,
            "running",
            now,
            str(log_dir.relative_to(self.runner.settings.home)),
            command,
            host=node.options.host if node.options else None,
        )
        changes.started.append(record)
        self.first_attempt.setdefault(node.id, number)
        self.tasks[node.id] = dataclasses.replace(task, attempts=number)
        self._set_task(changes, node.id, "running", started_at=now)
        return node, number, self._spec(node, number, command, log_dir)

    def _spec(self, node: PlanNode, number: int, command: str, log_dir: Path) -> AttemptSpec:
        options = node.options
        return AttemptSpec(
            command=command,
            workdir=node.workdir or self.run.workdir,
            log_dir=log_dir,
            env={
                "JOBNEST_RUN_ID": str(self.run.id),
                "JOBNEST_JOB": self.run.job,
                "JOBNEST_TASK": node.id,
                "JOBNEST_TASK_JOB": node.job,
                "JOBNEST_ATTEMPT": str(number),
            },
            soft_timeout=options.soft_timeout if options else None,
            hard_timeout=options.hard_timeout if options else None,
            host=options.host if options else None,
        )

    async def _attempt(self, node: PlanNode, number: int, spec: AttemptSpec) -> None:
        handle = await self.runner.executor.start(spec)
        self.handles[node.id] = handle
        if self.cancelled:
            await handle.terminate(self.runner.settings.grace)
        outcome = await handle.wait()
        self.outcomes.put_nowait((node, number, outcome))

    async def _collect(self, changes: Changes) -> None:
        item = await self.outcomes.get()
        while True:
            if item is not None:
                self._record(changes, *item)
            if self.outcomes.empty():
                return
            item = self.outcomes.get_nowait()

    def _record(self, changes: Changes, node: PlanNode, number: int, outcome: Outcome) -> None:
        self.running -= 1
        self.handles.pop(node.id, None)
        status = "succeeded" if outcome.ok else "failed"
        if outcome.reason == "cancelled":
            status = "cancelled"
        changes.ended.append(
            AttemptEnd(
                self.run.id,
                node.id,
                number,
                status,
                outcome.finished_at,
                outcome.exit_code,
                outcome.signal,
                outcome.reason,
                outcome.stdout_size,
                outcome.stderr_size,
            )
        )
        if status == "failed" and self._can_retry(node, number, outcome.reason):
            self._retry_later(changes, node, number, outcome)
            return
        self._set_task(
            changes,
            node.id,
            status,
            reason=outcome.reason,
            exit_code=outcome.exit_code,
            finished_at=outcome.finished_at,
        )
        for path in self.plan.done(node.id, ok=outcome.ok):
            self._set_task(changes, path, "upstream_failed")

    def _can_retry(self, node: PlanNode, number: int, reason: str | None) -> bool:
        """Whether ``retries`` allows another attempt in this drive, and one could help."""
        retries = node.options.retries if node.options else 0
        if self.cancelled or reason in UNRETRYABLE:
            return False
        return number - self.first_attempt[node.id] < retries

    def _retry_later(self, changes: Changes, node: PlanNode, number: int, outcome: Outcome) -> None:
        assert node.options is not None
        delay = node.options.delay_before(number + 1)
        if delay <= 0:
            self.waiting.append(node)
            return
        self._set_task(
            changes, node.id, "queued", reason=outcome.reason, exit_code=outcome.exit_code
        )

        def wake() -> None:
            del self.delayed[node.id]
            self.waiting.append(node)
            self.outcomes.put_nowait(None)

        self.delayed[node.id] = asyncio.get_running_loop().call_later(delay, wake)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run ``work`` in the background, keeping a reference until it is done."""
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def cancel(self, *, retryable: bool = False) -> None:
        if self.cancelled:
            return
        self.cancelled = True
        self.retryable = retryable
        changes = Changes()
        for path in self.plan.cancel():
            self._set_task(changes, path, "cancelled", reason="cancelled")
        for path, timer in self.delayed.items():
            timer.cancel()
            self._set_task(changes, path, "cancelled", reason="cancelled")
        self.delayed.clear()
        self.waiting.clear()
        self._flush(changes)
        for handle in list(self.handles.values()):
            self._spawn(handle.terminate(self.runner.settings.grace))
        self.outcomes.put_nowait(None)

    def _finish(self) -> None:
        if self.lost:
            return
        cancelled = self.cancelled and not self.retryable
        status = run_outcome((t.status for t in self.tasks.values()), cancelled=cancelled)
        changes = Changes(run=RunChange(self.run.id, status, self.runner.clock()))
        self._flush(changes)
        self.store.release(self.run.id, owner=self.runner.owner)

    def _set_task(
        self,
        changes: Changes,
        path: str,
        status: str,
        *,
        reason: str | None = None,
        exit_code: int | None = None,
        started_at: datetime | None = None,
        finished_at: datetime | None = None,
    ) -> None:
        old = self.tasks[path]
        changes.tasks.append(
            TaskChange(self.run.id, path, status, reason, exit_code, started_at, finished_at)
        )
        self.tasks[path] = dataclasses.replace(
            old,
            status=status,
            reason=reason,
            exit_code=exit_code,
            started_at=started_at or old.started_at,
            finished_at=finished_at,
        )

    def _flush(self, changes: Changes) -> None:
        if not changes or self.lost:
            return
        self.store.apply(changes)
        for task in changes.tasks:
            self.runner.observer(
                Event(
                    self.run.id,
                    task.status,
                    task.path,
                    self.tasks[task.path].attempts,
                    task.exit_code,
                    task.reason,
                )
            )
        if changes.run is not None:
            self.runner.observer(Event(self.run.id, changes.run.status))

    async def _heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self.runner.heartbeat)
            try:
                self.store.heartbeat(self.run.id, owner=self.runner.owner, now=self.runner.clock())
            except Conflict as exc:
                self._lose_lease(exc)
                return

    def _lose_lease(self, exc: Conflict) -> None:
        """Another process took the run over: stop our tasks, and write nothing more."""
        log.warning("run %s: %s; stopping its tasks", self.run.id, exc)
        self.lost = True
        self.cancel()

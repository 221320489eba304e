"""The runner: drives runs of a plan through an executor, keeping the store up to date.

``start()`` expands a job into a plan, snapshots every job in it and records a new run;
``drive()`` runs it to the end; ``retry()`` brings a failed run back and drives it again
in the same plan. State transitions are written in one batch per scheduling step: the
attempts about to start are recorded before their processes exist, so a crash never
leaves a process the store does not know of.

A driver holds a lease on its run: it renews it every third of ``lease_seconds`` and with
every batch, and a batch is written only while the lease is its own. A driver that finds
its run taken over stops its tasks and writes nothing more. While the database is away,
running tasks go on; their batches wait, in order, and are written (with backoff) once it is
back, and no new task starts before the batch recording its attempt is written.

Every ``LOG_CAP_INTERVAL`` seconds, and once when an attempt ends, the output files of the
run's attempts are trimmed to ``log_cap_bytes`` per stream (see ``logcap``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import socket
from collections import deque
from collections.abc import Callable, Coroutine, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from jobnest import logcap
from jobnest.config import Settings
from jobnest.errors import Conflict, NotFound, StoreError
from jobnest.executors.base import STDERR, STDOUT, AttemptSpec, Executor, Handle, Outcome
from jobnest.model.expand import Lookup, PlanGraph, PlanNode, expand, plan_from_dict, plan_to_dict
from jobnest.model.job import Job, job_to_dict
from jobnest.model.plan import Plan
from jobnest.model.run import DONE_OK, UNRETRYABLE, run_outcome
from jobnest.slots import JOB_LIMIT, Slots
from jobnest.store.base import (
    AttemptEnd,
    AttemptRecord,
    Changes,
    Lease,
    RunChange,
    RunRecord,
    Store,
    TaskChange,
    TaskMark,
    TaskRecord,
)

WRITE_RETRY_FIRST = 0.1  # seconds before writing again while the database is away; doubling
WRITE_RETRY_MAX = 5.0
LOG_CAP_INTERVAL = 2.0  # seconds between trims of the running attempts' output to its cap
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
        heartbeat: float | None = None,
    ) -> None:
        self.store = store
        self.executor = executor
        self.settings = settings
        self.owner = owner or default_owner()
        self.observer = observer or (lambda event: None)
        self.clock = clock
        # seconds between the lease renewals of a driven run
        self.heartbeat = heartbeat or settings.lease_seconds / 3
        self._drivers: dict[int, _Driver] = {}
        self.slots = Slots(settings.max_parallel, settings.pools)  # shared by every run

    def start(
        self,
        job: Job,
        lookup: Lookup,
        *,
        workdir: str,
        trigger: str = "manual",
        scheduled_for: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """Expand ``job`` into a fresh plan and record a new run of it (not yet driven).

        Raises:
            AlreadyStarted: ``idempotency_key`` started a run of the job already.
        """
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
            idempotency_key=idempotency_key,
        )

    def begin_retry(self, run_id: int) -> RunRecord:
        """Bring a failed run back to ``running`` in its own plan (not yet driven)."""
        return self.store.begin_retry(run_id, owner=self.owner, now=self.clock())

    async def drive(self, run_id: int, *, keep_failed: bool = False) -> RunRecord:
        """Run every task that can still run, then record how the run ended.

        With ``keep_failed`` (a run going on after a mark) its failed tasks stay failed and
        keep blocking what depends on them; else every task not done runs.
        """
        run = self.store.get_run(run_id)
        graph = plan_from_dict(self.store.get_plan(run_id))
        tasks = {task.path: task for task in self.store.tasks(run_id)}
        top = self.store.get_snapshot(run_id).get(run.job, {}).get("definition", {})
        driver = _Driver(self, run, graph, tasks, top, keep_failed=keep_failed)
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

    def kill(self, run_id: int, path: str) -> None:
        """Stop one running task of a run this runner drives; it ends ``failed``, ``killed``.

        Raises:
            Conflict: this runner drives no such run, or the task is not running.
        """
        driver = self._drivers.get(run_id)
        if driver is None:
            raise Conflict(f"run {run_id} is not being driven here: only a running task is killed")
        driver.kill(path)

    def mark(self, mark: TaskMark) -> None:
        """Count a failed task of a run this runner drives as ``mark.status``; it goes on.

        Raises:
            Conflict: this runner drives no such run, or the task has not failed.
        """
        driver = self._drivers.get(mark.run_id)
        if driver is None:
            raise Conflict(f"run {mark.run_id} is not being driven here")
        driver.mark(mark)

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
        self,
        runner: Runner,
        run: RunRecord,
        graph: PlanGraph,
        tasks: Mapping[str, TaskRecord],
        top: Mapping[str, Any],
        *,
        keep_failed: bool = False,
    ) -> None:
        self.runner = runner
        self.store = runner.store
        self.run = run
        self.tasks = dict(tasks)
        self.index = {node.id: i for i, node in enumerate(graph.nodes)}
        finished = [path for path, task in tasks.items() if task.status in DONE_OK]
        failed = [path for path, task in tasks.items() if keep_failed and task.status == "failed"]
        self.plan = Plan(graph, finished, failed)
        self.finishing = False  # nothing more will start: marks come too late
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
        self.unwritten: deque[Changes] = deque()  # batches waiting for the database, in order
        self.outage = False  # the last write found the database away
        self.job_limit: int | None = top.get("max_parallel")  # the starting job's settings
        self.run_timeout: float | None = top.get("run_timeout")
        self.killed: set[str] = set()  # tasks a user is stopping
        self.stop_reason = "cancelled"  # the reason of the tasks a cancel stops

    async def drive(self) -> None:
        heartbeat = asyncio.create_task(self._heartbeat())
        capping = asyncio.create_task(self._cap_output())
        self.runner.slots.listen(self._wake)
        timer = self._time_limit()
        try:
            await self._loop()
            self.finishing = True
            await self._finish()
        finally:
            heartbeat.cancel()
            capping.cancel()
            self.runner.slots.forget(self._wake)
            self.runner.slots.leave(self.run.id)
            if timer is not None:
                timer.cancel()
        await self._release()

    def _wake(self) -> None:
        """A slot was freed: look at the waiting tasks again."""
        if self.waiting:
            self.outcomes.put_nowait(None)

    def _time_limit(self) -> asyncio.TimerHandle | None:
        """Cancel the run ``run_timeout`` seconds after this drive began (a retry: anew)."""
        if self.run_timeout is None:
            return None
        return asyncio.get_running_loop().call_later(self.run_timeout, self._time_out)

    def _time_out(self) -> None:
        log.warning(
            "run %s: still going after run_timeout %gs; cancelling", self.run.id, self.run_timeout
        )
        self.stop_reason = "run_timeout"
        self.cancel()

    def _blocked_anew(self) -> Changes:
        """Tasks blocked by a failure kept failed are ``upstream_failed``; no others are."""
        changes = Changes()
        blocked = set(self.plan.blocked())
        for path, task in list(self.tasks.items()):
            if path in blocked and task.status != "upstream_failed":
                self._set_task(changes, path, "upstream_failed")
            elif path not in blocked and task.status == "upstream_failed":
                self._set_task(changes, path, "pending")
        return changes

    def mark(self, mark: TaskMark) -> None:
        task = self.tasks.get(mark.path)
        if task is None:
            raise NotFound(f"run {self.run.id} has no task {mark.path!r}")
        if task.status != "failed" or self.cancelled or self.finishing:
            state = task.status if task.status != "failed" else "failed, but the run is ending"
            raise Conflict(f"task {mark.path!r} of run {self.run.id} is {state}: not marked")
        self.store.mark_task(mark)
        changes = Changes()
        self._set_task(
            changes,
            mark.path,
            mark.status,
            reason="marked",
            exit_code=task.exit_code,
            finished_at=task.finished_at,
        )
        for path in self.plan.unfail(mark.path):
            self._set_task(changes, path, "pending")
        self._flush(changes)
        self.outcomes.put_nowait(None)  # look for what can start now

    def kill(self, path: str) -> None:
        if path not in self.tasks:
            raise NotFound(f"run {self.run.id} has no task {path!r}")
        handle = self.handles.get(path)
        if handle is None or path in self.killed or self.cancelled:
            raise Conflict(f"task {path!r} of run {self.run.id} is {self._kill_state(path)}")
        self.killed.add(path)
        self._spawn(handle.terminate(self.runner.settings.grace))

    def _kill_state(self, path: str) -> str:
        """Why ``path`` cannot be killed now, for the message."""
        status = self.tasks[path].status
        if path in self.killed or self.cancelled:
            return "being stopped already"
        if status == "running":  # recorded, its process not started yet
            return "starting: try again in a moment"
        return f"{status}, not running"

    async def _loop(self) -> None:
        changes = self._blocked_anew()
        while True:
            self.waiting.extend(self.plan.ready())
            launches = self._launch(changes)
            self._flush(changes)
            await self._written()  # the attempts are recorded before their processes exist
            self._start_all(launches)
            if not (self.running or self.delayed or self.waiting):
                return
            changes = Changes()
            await self._collect(changes)

    def _start_all(self, launches: Sequence[tuple[PlanNode, int, AttemptSpec]]) -> None:
        if self.lost:  # their attempts were never recorded: nothing to start
            for node, _, _ in launches:
                self._give(node)
            return
        for node, number, spec in launches:
            self._spawn(self._attempt(node, number, spec))

    def _launch(self, changes: Changes) -> list[tuple[PlanNode, int, AttemptSpec]]:
        """Start what finds a slot; the rest waits ``queued``, its reason the limit in the way."""
        launches, blocked = [], []
        for node in [] if self.cancelled else self.waiting:
            reason = self._take(node)
            if reason is None:
                launches.append(self._prepare(node, changes))
            else:
                blocked.append(node)
                self._queue(changes, node, reason)
        self.waiting = blocked
        if all(self.tasks[node.id].reason == JOB_LIMIT for node in blocked):
            self.runner.slots.leave(self.run.id)  # no shared slot wanted: let others go first
        return launches

    def _take(self, node: PlanNode) -> str | None:
        """Take the slots ``node`` needs; None, or the limit that keeps it waiting."""
        if self.job_limit is not None and self.running >= self.job_limit:
            return JOB_LIMIT
        reason = self.runner.slots.take(_pool(node), self.run.id)
        if reason is None:
            self.running += 1
        return reason

    def _give(self, node: PlanNode) -> None:
        self.running -= 1
        self.runner.slots.give(_pool(node))

    def _queue(self, changes: Changes, node: PlanNode, reason: str) -> None:
        task = self.tasks[node.id]
        if (task.status, task.reason) != ("queued", reason):
            self._set_task(changes, node.id, "queued", reason=reason)

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
                "JOBNEST_TRIGGER": self.run.trigger,
                "JOBNEST_SCHEDULED_FOR": _instant(self.run.scheduled_for),
            },
            soft_timeout=options.soft_timeout if options else None,
            hard_timeout=options.hard_timeout if options else None,
            host=options.host if options else None,
            queue=options.queue if options else None,
        )

    async def _attempt(self, node: PlanNode, number: int, spec: AttemptSpec) -> None:
        handle = await self.runner.executor.start(spec)
        self.handles[node.id] = handle
        if self.cancelled:
            await handle.terminate(self.runner.settings.grace)
        outcome = await handle.wait()
        cap = self.runner.settings.log_cap_bytes
        if cap and max(outcome.stdout_size, outcome.stderr_size) > cap:
            await asyncio.to_thread(_trim_output, [spec.log_dir], cap)
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
        self._give(node)
        self.handles.pop(node.id, None)
        status = "succeeded" if outcome.ok else "failed"
        if node.id in self.killed:
            self.killed.discard(node.id)
            if not outcome.ok:  # it may have ended by itself meanwhile
                status, outcome = "failed", dataclasses.replace(outcome, reason="killed")
        elif outcome.reason == "cancelled":
            status = "cancelled"
            outcome = dataclasses.replace(outcome, reason=self.stop_reason)
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
            self._set_task(changes, path, "cancelled", reason=self.stop_reason)
        for path, timer in self.delayed.items():
            timer.cancel()
            self._set_task(changes, path, "cancelled", reason=self.stop_reason)
        self.delayed.clear()
        for node in self.waiting:  # queued for a slot
            self._set_task(changes, node.id, "cancelled", reason=self.stop_reason)
        self.waiting.clear()
        self._flush(changes)
        for handle in list(self.handles.values()):
            self._spawn(handle.terminate(self.runner.settings.grace))
        self.outcomes.put_nowait(None)

    async def _finish(self) -> None:
        if self.lost:
            return
        cancelled = self.cancelled and not self.retryable
        status = run_outcome((t.status for t in self.tasks.values()), cancelled=cancelled)
        self._flush(Changes(run=RunChange(self.run.id, status, self.runner.clock())))
        await self._written()

    async def _release(self) -> None:
        """Let go of the run, once the database takes it."""
        await _until(self._released)

    def _released(self) -> bool:
        if self.lost:
            return True
        try:
            self.store.release(self.run.id, owner=self.runner.owner)
        except StoreError as exc:
            self._note_outage(exc)
            return False
        return True

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
        """Queue the batch, then write every queued batch the database takes, in order."""
        if self.lost:
            return
        if changes:
            self.unwritten.append(changes)
        self._write_queued()

    async def _written(self) -> None:
        """Return once every queued batch is written, retrying while the database is away."""
        await _until(self._write_queued)

    def _write_queued(self) -> bool:
        """Write the queued batches, oldest first; False when the database is away."""
        while self.unwritten and not self.lost:
            changes = self.unwritten[0]
            changes.lease = Lease(self.run.id, self.runner.owner, self.runner.clock())
            try:
                self.store.apply(changes)
            except StoreError as exc:
                self._note_outage(exc)
                return False
            except Conflict as exc:
                self._lose_lease(exc)
                break
            self.unwritten.popleft()
            self._announce(changes)
            if self.outage:
                self.outage = False
                log.warning("run %s: the database is back; writing its results", self.run.id)
        return True

    def _note_outage(self, exc: StoreError) -> None:
        if not self.outage:
            log.warning(
                "run %s: the database is away (%s); running tasks go on, their results "
                "wait to be written",
                self.run.id,
                exc,
            )
        self.outage = True

    def _announce(self, changes: Changes) -> None:
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
            except StoreError as exc:
                self._note_outage(exc)

    async def _cap_output(self) -> None:
        """Every ``LOG_CAP_INTERVAL`` seconds, trim the running attempts' output to its cap."""
        cap = self.runner.settings.log_cap_bytes
        while cap:
            await asyncio.sleep(LOG_CAP_INTERVAL)
            running = [
                self.runner.log_dir(self.run.id, self.index[path], self.tasks[path].attempts)
                for path in self.handles
            ]
            if running:
                await asyncio.to_thread(_trim_output, running, cap)

    def _lose_lease(self, exc: Conflict) -> None:
        """Another process took the run over: stop our tasks, and write nothing more."""
        log.warning("run %s: %s; stopping its tasks", self.run.id, exc)
        self.lost = True
        self.unwritten.clear()
        self.cancel()


def _trim_output(log_dirs: Sequence[Path], cap: int) -> None:
    """Keep the stdout and stderr files of each attempt's folder within ``cap`` bytes."""
    for log_dir in log_dirs:
        for stream in (STDOUT, STDERR):
            logcap.trim(log_dir / stream, cap)


def _pool(node: PlanNode) -> str | None:
    return node.options.pool if node.options else None


async def _until(done: Callable[[], bool]) -> None:
    """Call ``done`` until it returns True, waiting longer each time (the database is away)."""
    delay = WRITE_RETRY_FIRST
    while not done():
        await asyncio.sleep(delay)
        delay = min(delay * 2, WRITE_RETRY_MAX)


def _instant(moment: datetime | None) -> str:
    """An instant for a task's environment: ISO 8601 in UTC; empty when there is none."""
    return moment.astimezone(UTC).isoformat() if moment is not None else ""

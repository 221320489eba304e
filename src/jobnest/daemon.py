"""The daemon's services, living together in one event loop.

A ``Daemon`` holds the store, the job catalog, a runner whose observer feeds the event hub
and records the notifications of runs that end (in ``outbox``, which ``serve`` delivers
from), and the runs it drives as background tasks (referenced until they end). The REST
API and the scheduler call its methods from the event loop's thread; ``serve`` builds one and, on
the way out, awaits ``close()``, which stops the runs still being driven (their tasks get
SIGTERM, then SIGKILL after the grace period; the runs end ``failed``, ready to retry) and
ends every event stream. The store and its connections belong to whoever opened it.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import NoReturn
from zoneinfo import ZoneInfo

from jobnest import metrics, recovery, replan, retention
from jobnest.catalog import Catalog, Saved
from jobnest.config import Settings, local_zone
from jobnest.errors import Conflict, InvalidInput, NotFound
from jobnest.executors.base import Executor
from jobnest.executors.router import default_executor
from jobnest.hub import EventHub
from jobnest.model import schedule
from jobnest.model.changes import JobDiff
from jobnest.model.expand import PlanGraph, expand
from jobnest.model.job import Job
from jobnest.notify.outbox import ENDED, Outbox
from jobnest.runner import Clock, Event, Runner, utc_now
from jobnest.scheduler import Scheduler
from jobnest.store.base import MARKS, AttemptRecord, CommandFix, RunRecord, Store, TaskMark

log = logging.getLogger(__name__)


class Daemon:
    """Jobs, runs and their events, for the API and the scheduler."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        executor: Executor | None = None,
        workdir: str | None = None,
        zone: ZoneInfo | None = None,
        clock: Clock = utc_now,
        owner: str | None = None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.workdir = workdir or os.getcwd()
        self.zone = zone or local_zone()
        self.clock = clock
        self.hub = EventHub()
        self.catalog = Catalog(store, clock)
        self.runner = Runner(
            store,
            executor or default_executor(settings),
            settings,
            owner=owner,
            observer=self._observe,
            clock=clock,
        )
        self.outbox = Outbox(store, settings, clock=clock)
        self.scheduler = Scheduler(self.runner, workdir=self.workdir, zone=self.zone)
        self.metrics = metrics.Metrics()
        self._drives: dict[int, asyncio.Task[None]] = {}
        self._job_of: dict[int, str] = {}

    # --- jobs ----------------------------------------------------------------------------------

    def jobs(self) -> dict[str, Job]:
        """Every job, by name."""
        return self.catalog.jobs()

    def job(self, name: str) -> Job:
        """Raises NotFound."""
        return self.catalog.get(name)

    def check_job(self, definition: object) -> Job:
        """Validate a definition with the catalog, without saving it. Raises InvalidJob."""
        return self.catalog.check(definition)

    def put_job(self, definition: object) -> Saved:
        """Create or replace a job, checked with the whole catalog. Raises InvalidJob."""
        saved = self.catalog.put(definition)
        self._publish_job(saved)
        return saved

    def delete_job(self, name: str) -> None:
        """Raises NotFound, or JobReferenced naming the jobs that reference it."""
        self.catalog.delete(name)
        self.hub.publish("job", {"name": name, "action": "deleted"})

    def load_files(self, paths: Sequence[str | Path]) -> list[Saved]:
        """Save every job of the files, or none. Raises InvalidInput naming file, job, task."""
        saved = self.catalog.load_files(paths)
        for one in saved:
            self._publish_job(one)
        return saved

    def plan(self, name: str) -> PlanGraph:
        """The plan ``name`` would run now. Raises NotFound, InvalidInput."""
        jobs = self.jobs()
        return expand(_pick(jobs, name), jobs.get, self.settings.limits)

    def next_run(self, job: Job, now: datetime) -> datetime | None:
        """When the job's schedule fires next after ``now``, in UTC; None if unscheduled."""
        if job.schedule is None:
            return None
        zone = schedule.zone(job.timezone) if job.timezone else self.zone
        return schedule.next_after(job.schedule, zone, now)

    def pause(self, name: str) -> None:
        """Pause the job's schedule: its slots are skipped as ``paused``. Raises NotFound."""
        self.scheduler.pause(name)
        self.hub.publish("job", {"name": name, "action": "paused"})

    def resume(self, name: str, *, catch_up: bool = False) -> RunRecord | None:
        """Resume the job's schedule; with ``catch_up``, run the newest slot missed while
        paused now (the run returned, driven). Raises NotFound, RunInProgress."""
        record = self.scheduler.resume(name, self.clock(), catch_up=catch_up)
        self.hub.publish("job", {"name": name, "action": "resumed"})
        if record is not None:
            self.drive(record)
        return record

    def is_paused(self, name: str) -> bool:
        """Whether the job's schedule is paused."""
        state = self.store.schedule_state(name)
        return state is not None and state.paused

    # --- runs ----------------------------------------------------------------------------------

    def start_run(
        self,
        name: str,
        *,
        trigger: str = "manual",
        scheduled_for: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """Snapshot the job as it is now, record a new run and drive it in the background.

        Raises:
            NotFound: no such job.
            AlreadyStarted: ``idempotency_key`` started a run of the job already; nothing
                starts.
            RunInProgress: the job has a run in progress.
            InvalidInput: the job does not expand (too large).
        """
        jobs = self.jobs()
        job = _pick(jobs, name)
        self._reconcile(name)
        record = self.runner.start(
            job,
            jobs.get,
            workdir=self.workdir,
            trigger=trigger,
            scheduled_for=scheduled_for,
            idempotency_key=idempotency_key,
        )
        self.drive(record)
        return record

    def drive(self, record: RunRecord, *, keep_failed: bool = False) -> None:
        """Drive a run already recorded as ``running`` in the background, until it ends."""
        if record.id in self._drives:
            raise Conflict(f"run {record.id} is being driven already")
        self._job_of[record.id] = record.job
        self._drives[record.id] = asyncio.create_task(
            self._drive(record.id, keep_failed), name=f"jobnest run {record.id}"
        )
        self._publish_run(record)

    def retry(self, run_id: int, *, current: bool = False) -> RunRecord:
        """Bring a failed run back to ``running`` in its own plan and drive it again; with
        ``current``, in a plan of the current definitions (``replan``).

        Raises:
            NotFound: no such run (with ``current``: or its job no longer exists).
            NotRetryable: the run has not failed.
            RunInProgress: another run of its job is in progress.
        """
        self._reconcile(self.store.get_run(run_id).job)
        if current:
            record = replan.retry_current(self.runner, run_id, self.jobs())
        else:
            record = self.runner.begin_retry(run_id)
        self.drive(record)
        return record

    def changes(self, run_id: int) -> list[JobDiff]:
        """The jobs that changed since the run's snapshot (``replan.changes``)."""
        return replan.changes(self.runner, run_id, self.jobs())

    async def cancel(self, run_id: int) -> RunRecord:
        """Stop a run this daemon drives; it ends ``cancelled`` once its tasks have stopped.

        Raises:
            NotFound: no such run.
            Conflict: the run is not running, or another process drives it.
        """
        run = self.store.get_run(run_id)
        if run.status != "running":
            raise Conflict(f"run {run_id} is {run.status}: only a running run can be cancelled")
        if run_id not in self._drives:
            raise Conflict(f"run {run_id} is driven by another process ({run.owner or 'nobody'})")
        await self._stop(run_id, retryable=False)
        return self.store.get_run(run_id)

    def kill_task(self, run_id: int, path: str) -> RunRecord:
        """Stop one running task; it ends ``failed`` (reason ``killed``), the run goes on.

        Raises:
            NotFound: no such run or task.
            Conflict: the run is not driven here, or the task is not running.
        """
        run = self.store.get_run(run_id)
        if run_id not in self._drives:
            _not_here(run, "killed")
        self.runner.kill(run_id, path)
        return run

    def mark_task(self, run_id: int, path: str, status: str, *, by: str) -> RunRecord:
        """Count a failed task as ``succeeded`` or ``skipped``, recorded with who and when.

        What depends on it runs: in a run still going, at once; a ``failed`` run goes back
        to ``running`` (other failed tasks stay failed; a retry re-runs them).

        Raises:
            InvalidInput: ``status`` is not a mark.
            NotFound: no such run or task.
            Conflict: the task has not failed, or another process drives the run.
            RunInProgress: another run of the job is in progress.
        """
        if status not in MARKS:
            raise InvalidInput(f"a task is marked {' or '.join(MARKS)}, not {status!r}")
        mark = TaskMark(run_id, path, status, by, self.clock())
        run = self.store.get_run(run_id)
        if run_id in self._drives:
            self.runner.mark(mark)
            return run
        if run.status == "running":
            _not_here(run, "marked")
        self._reconcile(run.job)
        self.store.mark_task(mark, owner=self.runner.owner)
        self._publish_mark(run, mark)
        record = self.store.get_run(run_id)
        self.drive(record, keep_failed=True)
        return record

    def _publish_mark(self, run: RunRecord, mark: TaskMark) -> None:
        """Tell watchers of a mark written outside a driver (the run had ended)."""
        task = next(t for t in self.store.tasks(run.id) if t.path == mark.path)
        event = {"run_id": run.id, "job": run.job, "path": task.path, "status": task.status}
        event |= {"attempt": task.attempts, "exit_code": task.exit_code, "reason": task.reason}
        self.hub.publish("task", event)

    def fix_command(self, run_id: int, path: str, command: str) -> CommandFix:
        """Replace a task's command for the rest of a stopped run; the fix is recorded.

        Raises:
            InvalidInput: an empty command or one with a NUL character.
            NotFound: no such run or task.
            Conflict: the run is running, or the task succeeded already.
        """
        if not command.strip() or "\x00" in command:
            raise InvalidInput(f"a command must be non-empty text without NUL, got {command!r}")
        return self.store.fix_command(run_id, path, command, now=self.clock())

    def log_file(self, run_id: int, path: str, stream: str, attempt: int | None = None) -> Path:
        """The file of one output stream of a task's attempt (default: the latest).

        Raises:
            NotFound: no such run, task or attempt, or the task has not started.
        """
        attempts = self.store.attempts(run_id, path)
        if not attempts:
            if path not in {task.path for task in self.store.tasks(run_id)}:
                raise NotFound(f"run {run_id} has no task {path!r}")
            raise NotFound(f"task {path!r} of run {run_id} has not started yet")
        chosen = attempts[-1] if attempt is None else _attempt(attempts, attempt)
        if chosen is None:
            raise NotFound(f"task {path!r} of run {run_id} has no attempt {attempt}")
        return self.settings.home / chosen.log_dir / stream

    def sweep(self, *, dry_run: bool = False) -> retention.Sweep:
        """Remove the ended runs the retention policy lets go, with their logs."""
        return retention.sweep(self.store, self.settings, now=self.clock(), dry_run=dry_run)

    def metrics_text(self) -> str:
        """``/metrics`` in Prometheus's text format."""
        return metrics.render(self.metrics, self.store.status_counts(), self.clock())

    def is_driving(self, run_id: int) -> bool:
        """Whether this daemon drives the run now."""
        return run_id in self._drives

    def adopt_orphans(self) -> list[RunRecord]:
        """Take over the runs whose driver died (its lease expired) and drive them on.

        Their lost attempts are settled and every task that has not succeeded runs again,
        as on a retry; of several daemons sweeping at once, one adopts each run. A run that
        was being stopped ends ``failed`` instead (ready to retry).
        """
        adopted = recovery.adopt_stale(
            self.store,
            self.settings,
            owner=self.runner.owner,
            now=self.clock(),
            driving=self._drives,
        )
        for record in adopted:
            if record.status != "running":  # it was being stopped: it ended instead
                self._notify(record.id)
                continue
            log.warning("run %s of job %r: its driver is gone; adopted", record.id, record.job)
            self.drive(record)
        return adopted

    async def close(self) -> None:
        """Stop the runs still being driven, wait for them to end, and end event streams.

        Their running tasks get SIGTERM, then SIGKILL after the grace period; the runs end
        ``failed``, so that a retry goes on where they stopped.
        """
        drives = list(self._drives.values())
        for run_id in list(self._drives):
            await self._stop(run_id, retryable=True)
        if drives:
            await asyncio.wait(drives)
        await self.runner.executor.close()
        self.hub.close()

    # --- in the background ---------------------------------------------------------------------

    async def _drive(self, run_id: int, keep_failed: bool = False) -> None:
        try:
            await self.runner.drive(run_id, keep_failed=keep_failed)
        except Exception:
            log.exception("run %s: driving it failed; recovery will reconcile it", run_id)
        finally:
            del self._drives[run_id]
            self._job_of.pop(run_id, None)

    async def _stop(self, run_id: int, *, retryable: bool) -> None:
        """Cancel a driven run, waiting for its drive to begin if it has not yet."""
        driving = self._drives.get(run_id)
        while (
            driving is not None
            and not driving.done()
            and not self.runner.cancel(run_id, retryable=retryable)
        ):
            await asyncio.sleep(0)  # the drive registers with the runner on its first step

    def _reconcile(self, job: str) -> None:
        """Finish the job's runs left ``running`` by a process that died."""
        ended = recovery.reconcile_stale(
            self.store,
            self.settings,
            job=job,
            now=self.clock(),
            owner=self.runner.owner,
            driving=self._drives,
        )
        for run_id in ended:
            self._notify(run_id)

    def _notify(self, run_id: int) -> None:
        """Record the notifications of a run that ended; never fails, never holds the run up."""
        try:
            if self.outbox.enqueue(run_id):
                self.outbox.wake()
        except Exception:
            log.exception("run %s: cannot record its notifications", run_id)

    # --- events --------------------------------------------------------------------------------

    def _observe(self, event: Event) -> None:
        self.metrics.observe(event, self.clock())
        job = self._job_of.get(event.run_id) or self.store.get_run(event.run_id).job
        if event.path is None:
            self.hub.publish("run", {"run_id": event.run_id, "job": job, "status": event.status})
            if event.status in ENDED:
                self._notify(event.run_id)
            return
        self.hub.publish(
            "task",
            {
                "run_id": event.run_id,
                "job": job,
                "path": event.path,
                "status": event.status,
                "attempt": event.attempt,
                "exit_code": event.exit_code,
                "reason": event.reason,
            },
        )

    def _publish_run(self, run: RunRecord) -> None:
        self.hub.publish("run", {"run_id": run.id, "job": run.job, "status": run.status})

    def _publish_job(self, saved: Saved) -> None:
        self.hub.publish(
            "job", {"name": saved.job.name, "action": "saved", "version": saved.version}
        )


def _pick(jobs: dict[str, Job], name: str) -> Job:
    if name not in jobs:
        raise NotFound(f"no job named {name!r}")
    return jobs[name]


def _not_here(run: RunRecord, done: str) -> NoReturn:
    if run.status != "running":
        raise Conflict(f"run {run.id} is {run.status}: only a running run's task can be {done}")
    raise Conflict(f"run {run.id} is driven by another process ({run.owner or 'nobody'})")


def _attempt(attempts: Sequence[AttemptRecord], number: int) -> AttemptRecord | None:
    return next((a for a in attempts if a.number == number), None)

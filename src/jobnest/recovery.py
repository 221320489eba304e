"""Runs whose driver died: reconciled or adopted, never left ``running`` forever, never lost.

A run is stale when the process that drove it is gone: its heartbeat is older than the
lease (``lease_seconds``), or, on this host, its pid no longer lives. A stale run is first
claimed (``Store.claim_runs``): of several processes that find it, one takes it. Each of its
running attempts is then settled:

- its exit-code file says how it ended (the wrapper wrote it, even with no daemon watching);
- else, when its driver ran on this host, what is left of its process group is killed, and so
  are its processes that left the group (``setsid``), found by the attempt's key;
- else it is marked ``lost``. An attempt whose driver ran on another host cannot be killed
  from here, and its exit-code file is over there (unless the data directory is shared): it
  is marked ``lost`` though it may still be running there, until that host's daemon reaches
  the database again, finds its lease gone and kills it.

Then ``reconcile_stale`` ends the run ``failed``, ready for a retry that continues where it
stopped (a daemon starting up, a CLI start or retry); ``adopt_stale`` keeps it ``running``
with every task that has not succeeded back to ``pending``, for the caller to drive on, as a
retry would (a daemon's periodic sweep, taking over the runs of a daemon that died). A run
that was being stopped (a task of it is ``cancelled``) is not driven on: it ends ``failed``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

from jobnest.config import Settings
from jobnest.executors.escapees import kill_left_by
from jobnest.executors.wrapper import group_alive, pid_alive, read_exit, read_pid
from jobnest.model.run import DONE_OK
from jobnest.runner import default_owner, utc_now
from jobnest.store.base import (
    AttemptEnd,
    Changes,
    Lease,
    RunChange,
    RunRecord,
    Store,
    TaskChange,
    TaskRecord,
    WorkerKey,
)


def reconcile_stale(
    store: Store,
    settings: Settings,
    *,
    job: str | None = None,
    now: datetime | None = None,
    owner: str | None = None,
    driving: Collection[int] = (),
) -> list[int]:
    """End every stale running run (of ``job`` only, when given) ``failed``; return their ids.

    ``owner`` claims them (default: this process); runs in ``driving`` are the caller's own.
    """
    now = now or utc_now()
    owner = owner or default_owner()
    claimed = _claim_stale(store, settings, owner=owner, now=now, job=job, driving=driving)
    for run in claimed:
        _end_failed(store, settings, run, store.tasks(run.id), owner=owner, now=now)
    return [run.id for run in claimed]


def adopt_stale(
    store: Store,
    settings: Settings,
    *,
    owner: str,
    now: datetime | None = None,
    driving: Collection[int] = (),
) -> list[RunRecord]:
    """Take over every stale running run, ready to be driven on by ``owner``; return them.

    The runs returned ``running`` are ``owner``'s to drive; those that were being stopped
    come back ended ``failed``. Runs in ``driving`` are the caller's own, whatever their
    heartbeat says.
    """
    now = now or utc_now()
    claimed = _claim_stale(store, settings, owner=owner, now=now, job=None, driving=driving)
    for run in claimed:
        tasks = store.tasks(run.id)
        if any(task.status == "cancelled" for task in tasks):
            _end_failed(store, settings, run, tasks, owner=owner, now=now)
            continue
        changes = _settle(store, settings, run, tasks, now, resume=True)
        changes.lease = Lease(run.id, owner, now)
        store.apply(changes)
    return [store.get_run(run.id) for run in claimed]


def is_driven(run: RunRecord, now: datetime, lease: timedelta) -> bool:
    """Whether the run's owner is still alive and driving it."""
    host, _, pid = (run.owner or "").rpartition(":")
    fresh = run.heartbeat_at is not None and now - run.heartbeat_at < lease
    if host == socket.gethostname() and pid.isdigit():
        return fresh and pid_alive(int(pid))
    return fresh


def _claim_stale(
    store: Store,
    settings: Settings,
    *,
    owner: str,
    now: datetime,
    job: str | None,
    driving: Collection[int],
) -> list[RunRecord]:
    lease = timedelta(seconds=settings.lease_seconds)
    stale = [
        run
        for run in store.running_runs()
        if (job is None or run.job == job)
        and run.id not in driving
        and not is_driven(run, now, lease)
    ]
    return store.claim_runs(stale, owner=owner, now=now)


def _end_failed(
    store: Store,
    settings: Settings,
    run: RunRecord,
    tasks: list[TaskRecord],
    *,
    owner: str,
    now: datetime,
) -> None:
    """Settle a claimed run's attempts, end it ``failed`` and let go of it."""
    changes = _settle(store, settings, run, tasks, now, resume=False)
    changes.run = RunChange(run.id, "failed", now)
    changes.lease = Lease(run.id, owner, now)
    store.apply(changes)
    store.release(run.id, owner=owner)


def _settle(
    store: Store,
    settings: Settings,
    run: RunRecord,
    tasks: list[TaskRecord],
    now: datetime,
    *,
    resume: bool,
) -> Changes:
    """End the run's running attempts; with ``resume``, every unfinished task to ``pending``."""
    changes = Changes()
    lost_here: list[Path] = []
    for task in tasks:
        if task.status == "running":
            lost = _settle_attempt(changes, store, settings, run, task, now, resume=resume)
            if lost is not None:
                lost_here.append(lost)
        elif resume and task.status not in DONE_OK:
            changes.tasks.append(TaskChange(run.id, task.path, "pending"))
        elif task.status == "queued":
            changes.tasks.append(TaskChange(run.id, task.path, "failed", "lost", finished_at=now))
    kill_left_by(lost_here)  # one look through /proc for all of them
    return changes


def _settle_attempt(
    changes: Changes,
    store: Store,
    settings: Settings,
    run: RunRecord,
    task: TaskRecord,
    now: datetime,
    *,
    resume: bool,
) -> Path | None:
    """Record how the task's last attempt ended; the log folder of one lost on this host."""
    attempt = store.attempts(run.id, task.path)[-1]
    here = _is_local(run.owner)
    code = _ending(settings, attempt.log_dir, kill=here)
    status = "succeeded" if code == 0 else "failed"
    reason = None if code == 0 else ("lost" if code is None else "exit_code")
    if code is None:  # a worker may still run it elsewhere: tell it to stop (no-op if none)
        store.cancel_attempt(WorkerKey(run.id, task.path, attempt.number), grace=settings.grace)
    changes.ended.append(
        AttemptEnd(run.id, task.path, attempt.number, status, now, code, reason=reason)
    )
    if resume and status != "succeeded":
        changes.tasks.append(TaskChange(run.id, task.path, "pending"))
    else:
        changes.tasks.append(TaskChange(run.id, task.path, status, reason, code, finished_at=now))
    return settings.home / attempt.log_dir if here and code is None else None


def _is_local(owner: str | None) -> bool:
    """Whether the owner's processes are on this host (an unknown owner is taken to be)."""
    return owner is None or owner.rpartition(":")[0] == socket.gethostname()


def _ending(settings: Settings, log_dir: str, *, kill: bool) -> int | None:
    """The attempt's exit code from its file; None after killing what is left of it."""
    folder = settings.home / log_dir
    code = read_exit(folder)
    if code is not None or not kill:
        return code
    pgid = read_pid(folder)
    if pgid is not None and group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return read_exit(folder)

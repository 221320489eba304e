"""Reconciling runs whose driver died: never a run left ``running`` forever, never lost.

A run is stale when the process that drove it is gone: on this host its pid no longer
lives, elsewhere its heartbeat is older than the lease. Each of its running attempts is
then finished from its exit-code file when the wrapper wrote one, or, when the process
group is still alive or vanished without a word, killed and marked ``lost``. The run ends
``failed``, ready for a retry that continues where it stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from datetime import datetime, timedelta

from jobnest.config import Settings
from jobnest.executors.wrapper import group_alive, pid_alive, read_exit, read_pid
from jobnest.runner import HEARTBEAT_SECONDS, utc_now
from jobnest.store.base import AttemptEnd, Changes, RunChange, RunRecord, Store, TaskChange

LEASE = timedelta(seconds=6 * HEARTBEAT_SECONDS)


def reconcile_stale(
    store: Store, settings: Settings, *, job: str | None = None, now: datetime | None = None
) -> list[int]:
    """Reconcile every stale running run (of ``job`` only, when given); return their ids."""
    now = now or utc_now()
    stale = [
        run
        for run in store.running_runs()
        if (job is None or run.job == job) and not is_driven(run, now)
    ]
    for run in stale:
        reconcile(store, settings, run, now)
    return [run.id for run in stale]


def is_driven(run: RunRecord, now: datetime) -> bool:
    """Whether the run's owner is still alive and driving it."""
    host, _, pid = (run.owner or "").rpartition(":")
    fresh = run.heartbeat_at is not None and now - run.heartbeat_at < LEASE
    if host == socket.gethostname() and pid.isdigit():
        return fresh and pid_alive(int(pid))
    return fresh


def reconcile(store: Store, settings: Settings, run: RunRecord, now: datetime) -> None:
    """Finish or mark lost every running attempt of ``run``, then end it ``failed``."""
    changes = Changes(run=RunChange(run.id, "failed", now))
    for task in store.tasks(run.id):
        if task.status == "queued":
            changes.tasks.append(TaskChange(run.id, task.path, "failed", "lost", finished_at=now))
        if task.status != "running":
            continue
        attempt = store.attempts(run.id, task.path)[-1]
        code = _ending(settings, attempt.log_dir)
        status = "succeeded" if code == 0 else "failed"
        reason = None if code == 0 else ("lost" if code is None else "exit_code")
        changes.ended.append(
            AttemptEnd(run.id, task.path, attempt.number, status, now, code, reason=reason)
        )
        changes.tasks.append(TaskChange(run.id, task.path, status, reason, code, finished_at=now))
    store.apply(changes)
    if run.owner is not None:
        store.release(run.id, owner=run.owner)  # a driver still alive loses its lease


def _ending(settings: Settings, log_dir: str) -> int | None:
    """The attempt's exit code from its file; None after killing what is left of it."""
    folder = settings.home / log_dir
    code = read_exit(folder)
    if code is not None:
        return code
    pgid = read_pid(folder)
    if pgid is not None and group_alive(pgid):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, signal.SIGKILL)
    return read_exit(folder)

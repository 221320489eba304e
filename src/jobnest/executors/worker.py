"""The worker's side of an attempt sent to a queue: claim it, run it, heartbeat, report.

A broker message names an attempt by its ``WorkerKey`` and nothing else; everything else
comes from jobnest's store, which the worker must reach (the same ``JOBNEST_DATABASE_URL``).
``serve()`` claims the attempt (a message for an attempt that is not ``queued`` any more, a
redelivery, is dropped), runs it as a local process group with the ``LocalExecutor`` (so its
stdout, stderr and exit files are written straight into the attempt's log directory as it
runs), renews its hold every ``heartbeat`` seconds, stops the group when the daemon asks for
a cancel or when the hold is lost, and records the outcome.

A task dies with its worker: a ``GroupGuard`` (a ``sh`` reading a pipe only the worker holds)
sees end-of-file when the worker process dies, however it dies, and SIGKILLs the group.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import subprocess
from collections.abc import Mapping
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from jobnest.errors import Conflict, StoreError
from jobnest.executors.base import AttemptSpec, Handle, Outcome
from jobnest.executors.local import LocalExecutor
from jobnest.executors.wrapper import SHELL
from jobnest.store.base import Store, WorkerKey

Served = Literal["dropped", "finished", "lost"]
log = logging.getLogger(__name__)
GUARD_SCRIPT = 'read _; kill -9 -"$1"'  # dash's kill takes no "--"


def spec_to_dict(spec: AttemptSpec, grace: float) -> dict[str, Any]:
    """What a worker needs of ``spec``, as the store keeps it, with the daemon's ``grace``."""
    return {
        "grace": grace,
        "command": spec.command,
        "workdir": spec.workdir,
        "log_dir": str(spec.log_dir),
        "env": dict(spec.env),
        "soft_timeout": spec.soft_timeout,
        "hard_timeout": spec.hard_timeout,
    }


def spec_from_dict(raw: Mapping[str, Any]) -> AttemptSpec:
    return AttemptSpec(
        command=raw["command"],
        workdir=raw["workdir"],
        log_dir=Path(raw["log_dir"]),
        env=dict(raw["env"]),
        soft_timeout=raw["soft_timeout"],
        hard_timeout=raw["hard_timeout"],
    )


def outcome_to_dict(outcome: Outcome) -> dict[str, Any]:
    return {
        **vars(outcome),
        "started_at": outcome.started_at.isoformat(),
        "finished_at": outcome.finished_at.isoformat(),
    }


def outcome_from_dict(raw: Mapping[str, Any]) -> Outcome:
    return Outcome(
        **{
            **raw,
            "started_at": datetime.fromisoformat(raw["started_at"]),
            "finished_at": datetime.fromisoformat(raw["finished_at"]),
        }
    )


def worker_id() -> str:
    """Who holds an attempt: ``host:pid`` of the worker process."""
    return f"{socket.gethostname()}:{os.getpid()}"


def serve(store: Store, key: WorkerKey, *, heartbeat: float) -> Served:
    """Run the attempt ``key`` names, unless another message got it first."""
    worker = worker_id()
    raw = store.claim_attempt(key, worker=worker, heartbeat_every=heartbeat, now=_now())
    if raw is None:
        log.warning("jobnest: dropped attempt %s: not queued any more", _name(key))
        return "dropped"
    log.info("jobnest: running attempt %s", _name(key))
    attempt = _WorkerAttempt(store, key, worker, heartbeat)
    outcome = asyncio.run(attempt.run(spec_from_dict(raw), float(raw["grace"])))
    if attempt.lost:
        return "lost"
    finished = store.finish_attempt(
        key, worker=worker, outcome=outcome_to_dict(outcome), now=_now()
    )
    return "finished" if finished else "lost"


class _WorkerAttempt:
    """One claimed attempt: its process group, heartbeats and cancel."""

    def __init__(self, store: Store, key: WorkerKey, worker: str, heartbeat: float) -> None:
        self.store = store
        self.key = key
        self.worker = worker
        self.heartbeat = heartbeat
        self.stopping = False
        self.lost = False  # the store took the attempt away: it was marked lost

    async def run(self, spec: AttemptSpec, grace: float) -> Outcome:
        handle = await LocalExecutor(grace=grace).start(spec)
        guard = GroupGuard(handle.pid) if handle.pid is not None else None
        try:
            return await self._watch(handle)
        finally:
            if guard is not None:
                guard.release()

    async def _watch(self, handle: Handle) -> Outcome:
        ending = asyncio.ensure_future(handle.wait())
        while not ending.done():
            await asyncio.wait({ending}, timeout=self.heartbeat)
            if not ending.done():
                await self._beat(handle)
        return ending.result()

    async def _beat(self, handle: Handle) -> None:
        try:
            grace = self.store.worker_heartbeat(self.key, worker=self.worker, now=_now())
        except StoreError as exc:
            log.warning("jobnest: attempt %s: cannot heartbeat: %s", _name(self.key), exc)
            return
        except Conflict as exc:
            log.warning("jobnest: attempt %s: %s; killing it", _name(self.key), exc)
            self.lost = True
            grace = 0.0
        if grace is not None and not self.stopping:
            self.stopping = True
            await handle.terminate(grace)


class GroupGuard:
    """SIGKILLs process group ``pgid`` when this process dies, unless released first.

    The guard is a ``sh`` blocked reading a pipe whose write end only this process holds:
    when this process dies, even by SIGKILL, the kernel closes that end, the read returns and
    the guard kills the group. (``PR_SET_PDEATHSIG`` would signal one child only, and fires
    when the forking *thread* ends, which a pool thread may do at any time.)
    """

    def __init__(self, pgid: int) -> None:
        read, self._write = os.pipe()  # not inherited by other children (PEP 446)
        try:
            self._process = subprocess.Popen(
                [SHELL, "-c", GUARD_SCRIPT, "jobnest-guard", str(pgid)],
                stdin=read,
                stdout=subprocess.DEVNULL,
                start_new_session=True,
            )
        finally:
            os.close(read)

    def release(self) -> None:
        """Stop guarding: the attempt ended while this process lives."""
        self._process.kill()
        self._process.wait()
        with suppress(OSError):
            os.close(self._write)


def _name(key: WorkerKey) -> str:
    return f"{key.run_id}/{key.path}#{key.attempt}"


def _now() -> datetime:
    return datetime.now(UTC)

"""Runs attempts as local processes: the attempt wrapper under ``/bin/sh``, in a session of its own.

The task's stdout and stderr are the files ``stdout`` and ``stderr`` of the attempt's log
directory, opened here and inherited by the task, so nothing it prints passes through the
daemon's memory; stdin is ``/dev/null``. Timers run on the event loop's monotonic clock:

- soft timeout: SIGTERM to the whole process group, then SIGKILL after the grace period;
- hard timeout: SIGKILL to the whole process group;
- ``terminate(grace)``: SIGTERM to the group, then SIGKILL after ``grace``.

Once the group has been signalled, ``wait()`` returns only when none of its processes is left
alive: members that outlive the wrapper get the SIGKILL at the end of the grace period too.
Every signal to the group also reaches the attempt's processes that left it (``setsid``), found
by the key each of them inherits (``escapees``), on the same schedule. An attempt that ends by
itself is not looked at: what it leaves running, in its group or out of it, lives on.

The wait is a pidfd watched by the event loop (Linux 5.3+): asyncio's own subprocesses, on
Python 3.11, wait for each child in a thread of its own, which doubled the cost of a short task.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
from collections.abc import Callable
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

from jobnest.executors.base import (
    EXIT,
    PID,
    STDERR,
    STDOUT,
    AttemptSpec,
    Executor,
    Handle,
    Outcome,
    failed_start,
    output_size,
    reason_of,
)
from jobnest.executors.escapees import VARIABLE, Census, Escapees, new_key
from jobnest.executors.stopping import Stopping
from jobnest.executors.wrapper import (
    group_alive,
    reap_group,
    split_status,
    wrapper_argv,
    write_exit,
)

POLL_INTERVAL = 0.05  # seconds between looks at a signalled group's leftovers


class LocalExecutor(Executor):
    """Runs each attempt as a local process group; ``spec.host`` is not used."""

    def __init__(self, grace: float = 10.0) -> None:
        self.grace = grace  # seconds between a soft timeout's SIGTERM and its SIGKILL
        self._pids: set[int] = set()  # wrappers started and not yet reaped
        self._census = Census()  # shared by the attempts stopped at once

    async def start(self, spec: AttemptSpec) -> Handle:
        started_at = datetime.now(UTC)
        started = asyncio.get_running_loop().time()
        key = new_key(spec.log_dir)
        try:
            process = _spawn(spec, key)
        except (OSError, ValueError) as exc:
            return failed_start(
                spec, started_at, f"cannot start the task in {spec.workdir!r}: {exc}"
            )
        self._pids.add(process.pid)
        escaped = Escapees(key, process.pid, self._census)
        handle = LocalHandle(process, spec, started_at, started, self.grace, escaped)
        handle.on_reaped = self._pids.discard
        return handle

    def child_pids(self) -> frozenset[int]:
        return frozenset(self._pids)


class LocalHandle(Stopping, Handle):
    """A running local attempt: its timers, its process group, and how it ended."""

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        spec: AttemptSpec,
        started_at: datetime,
        started: float,
        grace: float,
        escaped: Escapees,
    ) -> None:
        self.pid = process.pid
        self._pgid = process.pid  # the wrapper leads its own session and group
        self._process = process
        self._log_dir = spec.log_dir
        self._started_at = started_at
        self._init_stopping(grace)
        self._ended = False  # the wrapper has exited and been reaped
        self.on_reaped: Callable[[int], None] = lambda pid: None
        self._escaped = escaped  # the attempt's processes that left the group
        self._outcome: Outcome | None = None
        self._arm(spec, started)

    async def wait(self) -> Outcome:
        if self._outcome is None:
            self._outcome = await self._end()
        return self._outcome

    async def terminate(self, grace: float) -> None:
        if not self._ended:
            self._stop("cancelled", grace)

    def _signal(self, sig: signal.Signals) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self._pgid, sig)
        self._escaped.signal(sig)

    async def _end(self) -> Outcome:
        returncode = await _wait_exit(self._process)
        self._ended = True
        self.on_reaped(self._pgid)
        await self._clear_group()
        for timer in self._timers:
            timer.cancel()
        with suppress(OSError):
            write_exit(self._log_dir, returncode)
        return self._outcome_of(returncode)

    async def _clear_group(self) -> None:
        """After we signalled the group: wait for its leftovers until the kill time, then kill."""
        if self._kill_at is None:
            return
        loop = asyncio.get_running_loop()
        while self._is_left() and loop.time() < self._kill_at:
            await asyncio.sleep(POLL_INTERVAL)
        if self._is_left():
            self._signal(signal.SIGKILL)

    def _is_left(self) -> bool:
        """Whether a process of the group, or one out of it that we signalled, is alive."""
        reap_group(self._pgid)
        return group_alive(self._pgid) or self._escaped.any_alive()

    def _outcome_of(self, returncode: int) -> Outcome:
        exit_code, sig = split_status(returncode)
        return Outcome(
            started_at=self._started_at,
            finished_at=datetime.now(UTC),
            exit_code=exit_code,
            signal=sig,
            reason=self._reason or reason_of(exit_code, sig),
            stdout_size=output_size(self._log_dir / STDOUT),
            stderr_size=output_size(self._log_dir / STDERR),
        )


def _spawn(spec: AttemptSpec, key: str) -> subprocess.Popen[bytes]:
    _prepare_log_dir(spec.log_dir)
    with (
        open(spec.log_dir / STDOUT, "wb", buffering=0) as stdout,
        open(spec.log_dir / STDERR, "wb", buffering=0) as stderr,
    ):
        return subprocess.Popen(
            wrapper_argv(spec.command, spec.log_dir),
            stdin=subprocess.DEVNULL,
            stdout=stdout,
            stderr=stderr,
            cwd=spec.workdir,
            env={**os.environ, **spec.env, VARIABLE: key},
            start_new_session=True,
        )


def _prepare_log_dir(log_dir: Path) -> None:
    try:
        log_dir.mkdir(parents=True)
    except FileExistsError:
        for stale in (PID, EXIT):  # a reused log directory must not tell of an earlier attempt
            with suppress(FileNotFoundError):
                (log_dir / stale).unlink()


async def _wait_exit(process: subprocess.Popen[bytes]) -> int:
    """Wait for ``process`` to exit, then reap it, without blocking the loop or a thread."""
    if process.returncode is not None:
        return process.returncode
    loop = asyncio.get_running_loop()
    pidfd = os.pidfd_open(process.pid)  # safe: the pid stays ours until we reap it
    exited = loop.create_future()
    loop.add_reader(pidfd, _settle, exited)
    try:
        await exited
    finally:
        loop.remove_reader(pidfd)
        os.close(pidfd)
    return process.wait()


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)

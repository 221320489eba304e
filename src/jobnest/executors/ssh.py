"""Runs attempts on SSH hosts: the host named by ``spec.host`` runs the task, we keep its files.

The remote login shell is given one line, every argument quoted, none spliced into code::

    exec /bin/sh -c OUTER jobnest-ssh INNER WORKDIR COMMAND NAME=VALUE...

OUTER exports the variables, ``cd``\\ s into WORKDIR and runs ``setsid /bin/sh -c INNER`` in a
subshell (a subshell is never a group leader, so ``setsid`` does not fork), which makes INNER the
leader of a session and process group of its own while OUTER still waits for its exit status
(128 + N when signal N killed it). INNER first writes ``jobnest-pgid $$`` on a line of its
stderr — the process group to signal — then ``eval``\\ s the command with stdin ``/dev/null``,
``$0`` ``jobnest-attempt`` and no positional parameters, like the local wrapper. That line is
taken out of the stream; lines before it (a chatty ``.bashrc``) pass through. A session that ends
without it never started the command (no such workdir there, no ``setsid``...): reason
``error``, with the remote shell's own words in the stderr file. The remote login shell must
understand POSIX quoting (sh, bash, dash, ksh, zsh).

The task's stdout and stderr are written as they arrive into the attempt's local ``stdout`` and
``stderr`` files, and its exit status into the ``exit`` file once known; no ``pid`` file is
written, as the process group lives on another machine. Timeouts count from ``start()``.

Stopping: closing a channel without a PTY leaves the command running, and sshd refuses signal
requests for root logins, so every signal goes as ``kill -SIG -PGID`` over another channel: a
soft timeout sends SIGTERM, then SIGKILL after the grace; a hard timeout SIGKILL;
``terminate(grace)`` SIGTERM, then SIGKILL after ``grace``. Once the group was signalled,
``wait()`` returns when none of its processes is left, or after SIGKILL at the end of the grace.
A stop that comes while still connecting gives up connecting.

Failures are outcomes, never exceptions, each explained on a ``jobnest:`` line of the stderr
file: the host cannot be reached (``host_unreachable``); it refuses our keys, or its host key is
unknown or changed (``auth_failed``, which is not retried); the connection drops while the task
runs, seen at once or by keepalives (``lost``; its group is then killed over a new connection,
when one can be made).
"""

from __future__ import annotations

import asyncio
import logging
import re
import shlex
import signal
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

import asyncssh

from jobnest.config import Settings
from jobnest.errors import HostError
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
from jobnest.executors.ssh_hosts import SSHHosts, describe
from jobnest.executors.ssh_pool import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_KEEPALIVE_COUNT_MAX,
    DEFAULT_KEEPALIVE_INTERVAL,
    Lease,
    SSHConnections,
)
from jobnest.executors.stopping import Stopping
from jobnest.executors.wrapper import split_status, write_exit
from jobnest.model.run import Reason

OUTER = (
    "_jobnest_inner=$1 _jobnest_dir=$2 _jobnest_cmd=$3; shift 3; "
    'for _jobnest_var do export "$_jobnest_var" || exit; done; '
    'cd "$_jobnest_dir" || exit; '
    "exec 3>&2 2>/dev/null; "  # the task's stderr is kept; OUTER's own notes ("Terminated") not
    '(exec setsid /bin/sh -c "$_jobnest_inner" jobnest-attempt "$_jobnest_cmd" 2>&3 3>&-) '
    "</dev/null"
)
INNER = 'echo "jobnest-pgid $$" >&2; _jobnest_cmd=$1; shift; eval "$_jobnest_cmd"'
PGID_LINE = re.compile(rb"jobnest-pgid (\d+)")
MAX_LINE = 4096  # bytes of a stderr line held back while looking for the pgid line
POLL_INTERVAL = 0.1  # seconds between looks at a signalled group's leftovers
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

log = logging.getLogger(__name__)


class SSHExecutor(Executor):
    """Runs each attempt on its ``spec.host``, over a pool of connections per host."""

    def __init__(
        self,
        hosts: SSHHosts,
        *,
        grace: float = 10.0,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_count_max: int = DEFAULT_KEEPALIVE_COUNT_MAX,
    ) -> None:
        self.grace = grace  # seconds between a soft timeout's SIGTERM and its SIGKILL
        self.connections = SSHConnections(
            hosts,
            connect_timeout=connect_timeout,
            keepalive_interval=keepalive_interval,
            keepalive_count_max=keepalive_count_max,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> SSHExecutor:
        return cls(SSHHosts.from_settings(settings), grace=settings.grace)

    async def start(self, spec: AttemptSpec) -> Handle:
        if spec.host is None:
            raise ValueError("SSHExecutor runs only attempts that name a host")
        started_at = datetime.now(UTC)
        try:
            command = remote_command(spec)
            files = _open_logs(spec.log_dir)
        except (OSError, ValueError) as exc:
            return failed_start(
                spec, started_at, f"cannot start the task on host {spec.host!r}: {exc}"
            )
        return SSHHandle(spec, command, files, self.connections, self.grace, started_at)

    async def close(self) -> None:
        await self.connections.close()


def remote_command(spec: AttemptSpec) -> str:
    """The line the remote login shell runs for ``spec``. Raises ValueError for a bad name."""
    for name in spec.env:
        if not _ENV_NAME.fullmatch(name):
            raise ValueError(f"not an environment variable name: {name!r}")
    env = [f"{name}={value}" for name, value in spec.env.items()]
    args = [OUTER, "jobnest-ssh", INNER, spec.workdir, spec.command, *env]
    return "exec /bin/sh -c " + " ".join(shlex.quote(arg) for arg in args)


class SSHHandle(Stopping, Handle):
    """A remote attempt: its connection, timers, process group and files."""

    def __init__(
        self,
        spec: AttemptSpec,
        command: str,
        files: tuple[BinaryIO, BinaryIO],
        connections: SSHConnections,
        grace: float,
        started_at: datetime,
    ) -> None:
        loop = asyncio.get_running_loop()
        self.host = spec.host or ""
        self._spec = spec
        self._command = command
        self._stdout, self._stderr = files
        self._connections = connections
        self._init_stopping(grace)
        self._started_at = started_at
        self._pgid: asyncio.Future[int | None] = loop.create_future()
        self._stopping = asyncio.Event()
        self._signals: set[asyncio.Task[None]] = set()
        self._ended = False
        self._task = asyncio.ensure_future(self._attempt())
        self._arm(spec, loop.time())

    async def wait(self) -> Outcome:
        return await asyncio.shield(self._task)

    async def terminate(self, grace: float) -> None:
        if not self._ended:
            self._stop("cancelled", grace)

    # --- signals (timers: executors.stopping) ---------------------------------------------------

    def _note(self, reason: Reason) -> None:
        super()._note(reason)
        self._stopping.set()

    def _signal(self, sig: signal.Signals) -> None:
        task = asyncio.ensure_future(self._send(sig))
        self._signals.add(task)
        task.add_done_callback(self._signals.discard)

    async def _send(self, sig: signal.Signals) -> None:
        """Signal the remote group once its id is known, unless the attempt is over."""
        pgid = await self._pgid
        if pgid is not None and not self._ended:
            await self._connections.run(self.host, _kill_command(sig, pgid))

    # --- the attempt ---------------------------------------------------------------------------

    async def _attempt(self) -> Outcome:
        try:
            return await self._connect_and_run()
        except Exception as exc:  # an outcome, never an exception for the runner
            log.exception("attempt on host %r failed unexpectedly", self.host)
            return self._failed("error", f"unexpected failure on host {self.host!r}: {exc!r}")
        finally:
            self._ended = True
            for timer in self._timers:
                timer.cancel()
            if not self._pgid.done():
                self._pgid.set_result(None)
            self._stdout.close()
            self._stderr.close()

    async def _connect_and_run(self) -> Outcome:
        try:
            lease = await self._lease()
        except HostError as exc:
            reason: Reason = "auth_failed" if exc.reason == "auth_failed" else "host_unreachable"
            return self._failed(reason, str(exc))
        if lease is None:
            reason = self._reason or "cancelled"
            return self._failed(reason, f"stopped ({reason}) before it started on {self.host!r}")
        try:
            session = await self._execute(lease.connection)
        except (OSError, asyncssh.Error) as exc:
            message = f"cannot start the task on host {self.host!r}: {describe(exc)}"
            return self._failed("host_unreachable", message)
        finally:
            lease.release()
        return await self._ending(session)

    async def _lease(self) -> Lease | None:
        """A connection to the host; None when the attempt was stopped while connecting."""
        leasing = asyncio.ensure_future(self._connections.lease(self.host))
        stopping = asyncio.ensure_future(self._stopping.wait())
        try:
            await asyncio.wait({leasing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopping.cancel()
            leasing.cancel()  # nothing, once it is done
        await asyncio.wait({leasing})  # a cancelled lease gives up its connecting first
        if leasing.cancelled():
            return None
        lease = leasing.result()
        if self._stopping.is_set():
            lease.release()
            return None
        return lease

    async def _execute(self, connection: asyncssh.SSHClientConnection) -> _AttemptSession:
        session = _AttemptSession(self._stdout, self._stderr, self._pgid)
        channel, _ = await connection.create_session(lambda: session, self._command, encoding=None)
        channel.write_eof()
        await session.closed
        return session

    async def _ending(self, session: _AttemptSession) -> Outcome:
        pgid = self._pgid.result()
        if session.status is None:
            if pgid is not None:  # best effort: no copy of the task may live on unseen
                await self._connections.run(self.host, _kill_command(signal.SIGKILL, pgid))
            why = describe(session.error) if session.error else "the channel closed"
            message = f"lost the connection to host {self.host!r} while the task ran: {why}"
            return self._failed(self._reason or "lost", message)
        if pgid is None:
            message = (
                f"cannot start the task on host {self.host!r} in {self._spec.workdir!r} "
                f"(exit status {session.status}; the remote shell's words are above)"
            )
            return self._failed("error", message)
        await self._clear_group(pgid)
        with suppress(OSError):
            write_exit(self._spec.log_dir, session.status)
        return self._outcome(session.status)

    async def _clear_group(self, pgid: int) -> None:
        """After we signalled the group: wait for its leftovers until the kill time, then kill."""
        if self._kill_at is None:
            return
        loop = asyncio.get_running_loop()
        alive = _alive_command(pgid)
        while loop.time() < self._kill_at and await self._connections.run(self.host, alive) == 0:
            await asyncio.sleep(POLL_INTERVAL)
        await self._connections.run(self.host, _kill_command(signal.SIGKILL, pgid))

    def _outcome(self, status: int) -> Outcome:
        exit_code, sig = split_status(status)
        return Outcome(
            started_at=self._started_at,
            finished_at=datetime.now(UTC),
            exit_code=exit_code,
            signal=sig,
            reason=self._reason or reason_of(exit_code, sig),
            stdout_size=output_size(self._spec.log_dir / STDOUT),
            stderr_size=output_size(self._spec.log_dir / STDERR),
        )

    def _failed(self, reason: Reason, message: str) -> Outcome:
        """The attempt ended without an exit status; ``message`` says why, in its stderr."""
        with suppress(OSError):
            self._stderr.write(f"jobnest: {message}\n".encode())
        return Outcome(
            started_at=self._started_at,
            finished_at=datetime.now(UTC),
            reason=reason,
            stdout_size=output_size(self._spec.log_dir / STDOUT),
            stderr_size=output_size(self._spec.log_dir / STDERR),
        )


class PgidLine:
    """Takes the ``jobnest-pgid N`` line out of the start of a stderr stream.

    ``feed`` returns the bytes to keep; lines before the pgid line are kept whole, and a line
    longer than ``MAX_LINE`` is let through unread. Once the line is found, ``pgid`` is set and
    everything after it is kept as it comes.
    """

    def __init__(self) -> None:
        self.pgid: int | None = None
        self._held = b""  # the start of a line not yet known not to be the pgid line

    def feed(self, data: bytes) -> bytes:
        if self.pgid is not None:
            return data
        kept = bytearray()
        self._held += data
        while self.pgid is None:
            line, newline, rest = self._held.partition(b"\n")
            if not newline:
                break
            found = PGID_LINE.fullmatch(line)
            if found:
                self.pgid = int(found[1])
            else:
                kept += line + newline
            self._held = rest
        if self.pgid is not None or len(self._held) > MAX_LINE:
            kept += self.flush()
        return bytes(kept)

    def flush(self) -> bytes:
        """What is held back, at the end of the stream."""
        held, self._held = self._held, b""
        return held


class _AttemptSession(asyncssh.SSHClientSession[bytes]):
    """Writes what the remote command prints into the attempt's files, less the pgid line."""

    def __init__(
        self, stdout: BinaryIO, stderr: BinaryIO, pgid: asyncio.Future[int | None]
    ) -> None:
        self._stdout = stdout
        self._stderr = stderr
        self._pgid = pgid
        self._pgid_line = PgidLine()
        self.status: int | None = None  # the shell's: an exit code, or 128 + a signal number
        self.error: Exception | None = None  # why the connection was lost, if it was
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        if datatype != asyncssh.EXTENDED_DATA_STDERR:
            self._stdout.write(data)
            return
        self._stderr.write(self._pgid_line.feed(data))
        if self._pgid_line.pgid is not None and not self._pgid.done():
            self._pgid.set_result(self._pgid_line.pgid)

    def exit_status_received(self, status: int) -> None:
        self.status = status

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str, lang: str) -> None:
        self.status = 128 + _signal_number(signal)

    def connection_lost(self, exc: Exception | None) -> None:
        self._stderr.write(self._pgid_line.flush())
        if not self._pgid.done():
            self._pgid.set_result(None)
        self.error = exc
        if not self.closed.done():
            self.closed.set_result(None)


def _open_logs(log_dir: Path) -> tuple[BinaryIO, BinaryIO]:
    log_dir.mkdir(parents=True, exist_ok=True)
    for stale in (PID, EXIT):  # a reused log directory must not tell of an earlier attempt
        with suppress(FileNotFoundError):
            (log_dir / stale).unlink()
    stdout = open(log_dir / STDOUT, "wb", buffering=0)  # noqa: SIM115 - closed by the handle
    try:
        return stdout, open(log_dir / STDERR, "wb", buffering=0)
    except OSError:
        stdout.close()
        raise


def _kill_command(sig: signal.Signals, pgid: int) -> str:
    return f"kill -{sig.name.removeprefix('SIG')} -{pgid}"


def _alive_command(pgid: int) -> str:
    """Exits 0 while a process of group ``pgid`` lives; zombies, which an init that does not
    reap may leave forever, count as dead."""
    program = f"$1 == {pgid} && $2 !~ /^Z/ {{ found = 1 }} END {{ exit !found }}"
    return f"ps -A -o pgid= -o stat= | awk {shlex.quote(program)}"


def _signal_number(name: str) -> int:
    try:
        return int(signal.Signals[f"SIG{name}"])
    except KeyError:
        return 0

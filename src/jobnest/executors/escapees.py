"""Finding an attempt's processes outside its process group: the ones that escaped it.

A signal to an attempt's process group misses a descendant that left the group by calling
``setsid`` (``setsid sleep 1000 &``, a program that daemonizes). So every process of a local
attempt inherits ``JOBNEST_ATTEMPT_KEY``, the attempt's key: its log directory and a random
token, ``LOG_DIR:TOKEN`` (``new_key``). A scan of ``/proc/*/environ`` finds whoever carries it,
wherever it went. The token keeps a stop from reaching a process of an earlier attempt that
wrote into the same log directory (a database started afresh over the same data directory);
the log directory lets a restarted daemon, which never knew the token, find what an attempt of
its dead predecessor left behind (``kill_left_by``).

A scan skips what it may not read (another user's processes, unless we are root), processes
that end meanwhile, zombies (their environment reads empty) and this process. A process that
drops the variable (``env -i``, ``sudo``) or overwrites its environment block in memory (some
daemons do, for their title) is not found.

A scan reads every process's environment, some 25 µs a process: it is made only when an
attempt is stopped, once for all the attempts stopped in the same turn of the event loop
(``Census``), never when an attempt ends by itself. A signal goes through a pidfd opened
before the process is checked once more, so a pid reused since the scan is never signalled.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from collections.abc import Collection
from pathlib import Path

VARIABLE = "JOBNEST_ATTEMPT_KEY"
_ENTRY = f"\0{VARIABLE}=".encode()


def new_key(log_dir: Path) -> str:
    """A key for a new attempt that writes its files into ``log_dir``."""
    return f"{log_dir}:{secrets.token_hex(8)}"


def scan() -> dict[str, list[int]]:
    """Every live process but this one that carries an attempt key, by key."""
    me = os.getpid()
    found: dict[str, list[int]] = {}
    with os.scandir("/proc") as entries:
        for entry in entries:
            if not entry.name.isdigit() or int(entry.name) == me:
                continue
            key = key_of(int(entry.name))
            if key is not None:
                found.setdefault(key, []).append(int(entry.name))
    return found


def key_of(pid: int) -> str | None:
    """The attempt key process ``pid`` carries; None without one, or if it cannot be read."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as file:
            environ = b"\0" + file.read()
    except OSError:
        return None  # gone, or not ours to read
    start = environ.find(_ENTRY)
    if start < 0:
        return None
    start += len(_ENTRY)
    end = environ.find(b"\0", start)
    return os.fsdecode(environ[start : end if end >= 0 else len(environ)])


class Census:
    """Who carries which key, from one scan per turn of the event loop.

    The attempts stopped in one turn (the running tasks of a cancelled run) share its scan.
    """

    def __init__(self) -> None:
        self._carriers: dict[str, list[int]] | None = None

    def carriers(self, key: str) -> list[int]:
        """The processes that carry ``key``, as they were at this turn's scan."""
        if self._carriers is None:
            self._carriers = scan()
            asyncio.get_running_loop().call_soon(self._forget)
        return self._carriers.get(key, [])

    def _forget(self) -> None:
        self._carriers = None


class Escapees:
    """The processes of one attempt outside its group ``pgid``: signalled with the group."""

    def __init__(self, key: str, pgid: int, census: Census) -> None:
        self.key = key
        self.pgid = pgid
        self._census = census
        self._signalled: list[int] = []  # at the last signal

    def signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to every process that carries the key outside the group."""
        found = self._census.carriers(self.key)
        self._signalled = [pid for pid in found if _signal_checked(pid, self.key, self.pgid, sig)]

    def any_alive(self) -> bool:
        """Whether a process the last signal reached is still alive, out of the group."""
        self._signalled = [pid for pid in self._signalled if _carries(pid, self.key, self.pgid)]
        return bool(self._signalled)


def kill_left_by(log_dirs: Collection[Path]) -> None:
    """SIGKILL every process that carries the key of an attempt that wrote into ``log_dirs``."""
    wanted = {str(log_dir) for log_dir in log_dirs}
    if not wanted:
        return
    for key, pids in scan().items():
        if key.rpartition(":")[0] in wanted:
            for pid in pids:
                _signal_checked(pid, key, None, signal.SIGKILL)


def _signal_checked(pid: int, key: str, pgid: int | None, sig: signal.Signals) -> bool:
    """Signal ``pid`` if it carries ``key`` outside group ``pgid`` (in any group: None)."""
    try:
        pidfd = os.pidfd_open(pid)  # this very process, even if its pid is reused meanwhile
    except OSError:
        return False
    try:
        if not _carries(pid, key, pgid):
            return False
        signal.pidfd_send_signal(pidfd, sig)
    except ProcessLookupError:
        return False  # ended after the check: the pid now carries another process
    finally:
        os.close(pidfd)
    return True


def _carries(pid: int, key: str, pgid: int | None) -> bool:
    """Whether ``pid`` is alive and carries ``key`` outside group ``pgid`` (in any: None)."""
    if key_of(pid) != key:
        return False
    try:
        return pgid is None or os.getpgid(pid) != pgid
    except ProcessLookupError:
        return False

"""OS processes in /proc: whether one is dead, the pid of one that is, and the ``sleep``
processes of a test (each sleeps a duration of its own, a ``marker``, to be found by it)."""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path

from support.polling import until_async

_markers = itertools.count(time.time_ns() % 1_000_000)


def is_dead(pid: int) -> bool:
    """Gone, or a zombie that nobody reaps."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rpartition(")")[2].split()[0] in ("Z", "X")


def dead_pid() -> int:
    """The pid of a process that has ended and been reaped, as a crashed driver's would be."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return pid


def marker() -> str:
    """A sleep duration no other process uses: its processes can be found in /proc."""
    return f"{next(_markers) + 1000}.{os.getpid()}"


def sleepers(duration: str) -> list[int]:
    """Live (non-zombie) processes running ``sleep DURATION``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
            state = (entry / "stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if argv[:2] == [b"sleep", duration.encode()] and state not in ("Z", "X"):
            found.append(int(entry.name))
    return found


async def until_running(duration: str) -> None:
    """Wait until a process runs ``sleep DURATION``."""
    await until_async(lambda: sleepers(duration), message=f"sleep {duration} never started")


def rss_kib() -> int:
    """This process's resident memory, in KiB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS in /proc/self/status")

"""What the daemon process needs from the operating system: an exclusive lock and reaping.

- ``DaemonLock``: one daemon per SQLite database, held with ``flock`` on a file beside it,
  released by the kernel however the process dies.
- ``become_subreaper``: orphaned descendants of tasks are re-parented to the daemon (not to
  a PID 1 that may never reap them), so that ``reap_orphans`` can find and reap them.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
from collections.abc import Collection
from pathlib import Path

from jobnest.errors import StoreError

PR_SET_CHILD_SUBREAPER = 36


class DaemonLock:
    """An exclusive, non-blocking lock on ``path``; the holder's pid is written into it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Raises StoreError naming the holder when another process has the lock."""
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise StoreError(
                f"another jobnest daemon (pid {holder}) is already serving this database "
                f"(lock {str(self.path)!r}); stop it first"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def sqlite_lock_path(database_url: str) -> Path | None:
    """The lock file of a SQLite database URL (``<file>.daemon-lock``), or None for others."""
    prefix, _, rest = database_url.partition(":///")
    if not prefix.startswith("sqlite") or not rest or rest.startswith(":memory:"):
        return None
    return Path(rest.split("?", 1)[0] + ".daemon-lock")


def become_subreaper() -> bool:
    """Make orphaned descendants our children (Linux); False where unsupported."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0)
    except (OSError, AttributeError):
        return False


def reap_orphans(ours: Collection[int]) -> list[int]:
    """Reap zombie children that are not in ``ours`` (pids someone else will wait for)."""
    reaped = []
    for pid in _zombie_children():
        if pid in ours:
            continue
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
            reaped.append(pid)
    return reaped


def _zombie_children() -> list[int]:
    me = str(os.getpid())
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if fields[0] == "Z" and fields[1] == me:
            found.append(int(entry.name))
    return found

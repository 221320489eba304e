"""The per-attempt shell wrapper, and the readers that learn from its files how an attempt ended.

The wrapper is the ``/bin/sh -c`` script that runs a task's command. It writes its pid (which is
also the process group id) to ``LOG_DIR/pid``, then ``eval``\\ s the command, passed as an
argument and never spliced into the script text, and an ``EXIT`` trap writes the command's exit
status to ``LOG_DIR/exit``. It costs no process of its own: the shell that writes the files is the
shell that runs the command. Inside the command ``$#`` is 0, ``$0`` is ``jobnest-attempt``,
``$$`` is the wrapper (the group leader) and stdin is ``/dev/null``; two private shell variables,
``_jobnest_dir`` and ``_jobnest_cmd``, are visible but not exported.

Known gaps, where the ``exit`` file stays missing: the command replaces the wrapper's ``EXIT``
trap with its own, ``exec``\\ s a program in place of the shell, or the shell is killed by a
signal. A daemon that sees the attempt end writes the file itself (``write_exit``); a restarted
daemon that finds no ``exit`` file and no live group treats the attempt as lost. The wrapper traps
no signals on purpose: dash drops a signal that reaches a just-forked child while a trap is set.

An exit status is the shell's ``$?``: 128 + N means a process was killed by signal N
(``split_status``).
"""

from __future__ import annotations

import os
import signal
from contextlib import suppress
from pathlib import Path

from jobnest.executors.base import EXIT, PID

SHELL = "/bin/sh"
NAME = "jobnest-attempt"  # $0 inside the command, and its prefix in the shell's error messages
SCRIPT = (
    'echo $$ >"$1/pid"; _jobnest_dir=$1 _jobnest_cmd=$2; shift 2; '
    "trap 'echo $? >\"$_jobnest_dir/exit\"' EXIT; "
    'eval "$_jobnest_cmd"'
)


def wrapper_argv(command: str, log_dir: Path) -> list[str]:
    """The argv that runs ``command`` under the wrapper, writing its files into ``log_dir``."""
    return [SHELL, "-c", SCRIPT, NAME, str(log_dir), command]


def read_pid(log_dir: Path) -> int | None:
    """The wrapper's pid (= process group id), or None if it was never written."""
    return _read_int(log_dir / PID)


def read_exit(log_dir: Path) -> int | None:
    """The command's exit status, or None while it runs or if its ending was never recorded."""
    return _read_int(log_dir / EXIT)


def write_exit(log_dir: Path, returncode: int) -> None:
    """Record how the wrapper ended (a negative ``returncode`` is a signal), unless it did."""
    path = log_dir / EXIT
    if not path.exists():
        path.write_text(f"{shell_status(returncode)}\n")


def shell_status(returncode: int) -> int:
    """A process's return code as a shell status: death by signal N becomes 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def split_status(returncode: int) -> tuple[int | None, int | None]:
    """``(exit_code, signal)`` of a return code or shell status.

    A negative return code is a death by signal, with no exit code. A status of 128 + N, the
    shell's way of saying that the command was killed by signal N, keeps its exit code and
    gives the signal too.
    """
    if returncode < 0:
        return None, -returncode
    if 128 < returncode < 128 + signal.NSIG:
        return returncode, returncode - 128
    return returncode, None


def group_alive(pgid: int) -> bool:
    """Whether any process of group ``pgid`` is alive; zombies count as dead.

    PID 1 may never reap an orphan, so a group whose members are all zombies is over.
    """
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # the group exists but belongs to someone else: look closer
    with os.scandir("/proc") as entries:
        return any(_is_live_member(entry.name, pgid) for entry in entries)


def reap_group(pgid: int) -> None:
    """Reap the exited members of group ``pgid`` that are this process's children.

    The daemon is a subreaper: a stopped task's orphans become its children, and until they
    are reaped their zombies keep the group in existence, so that ``group_alive`` has to look
    through all of ``/proc`` instead of answering from one ``killpg``.
    """
    with suppress(ChildProcessError):
        while os.waitid(os.P_PGID, pgid, os.WEXITED | os.WNOHANG) is not None:
            pass


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` is alive; a zombie counts as dead."""
    fields = _stat(str(pid))
    return fields is not None and _is_live(fields)


def _is_live_member(name: str, pgid: int) -> bool:
    fields = _stat(name) if name.isdigit() else None
    return fields is not None and _is_live(fields) and int(fields[2]) == pgid


def _stat(pid: str) -> list[str] | None:
    """The fields of ``/proc/PID/stat`` after the command name: state, ppid, pgrp, ..."""
    try:
        stat = Path("/proc", pid, "stat").read_text()
    except OSError:
        return None  # no such process (any more)
    return stat.rpartition(")")[2].split()  # the command name may hold spaces and parentheses


def _is_live(fields: list[str]) -> bool:
    return fields[0] not in ("Z", "X")  # zombie, dead


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None

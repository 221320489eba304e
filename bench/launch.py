"""Run a command; write its wall time and peak resident memory to a file. Standard library only.

``python -I -S bench/launch.py REPORT COMMAND [ARG...]`` spawns COMMAND, waits for it, writes
``SECONDS PEAK_KIB`` to REPORT and exits with COMMAND's status.

Why a process in between: a process's peak memory (``ru_maxrss``) includes the memory of the
process it was forked from, up to its ``exec``. Spawned straight from the suite, which holds
tens of MB of imports, every command would seem to need at least that much; spawned from this
small interpreter, the floor is a few MB.
"""

from __future__ import annotations

import os
import sys
import time


def main(report: str, argv: list[str]) -> int:
    started = time.perf_counter()
    pid = os.posix_spawnp(argv[0], argv, os.environ)
    _, status, usage = os.wait4(pid, 0)
    seconds = time.perf_counter() - started
    with open(report, "w") as out:
        out.write(f"{seconds} {usage.ru_maxrss}\n")
    code = os.waitstatus_to_exitcode(status)
    return code if code >= 0 else 128 - code


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))

"""What the suite ran on: CPU, cores, memory, kernel, Python, SQLite, the data directory's
filesystem, the commit of jobnest measured, and how busy the machine was: the load average,
and what creating a file and starting a shell cost there and then (``conditions``), the two
operations that the orchestration of a short task spends most of its time in."""

from __future__ import annotations

import os
import platform
import sqlite3
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

PROBES = 100  # files created, or shells started, per probe


def describe(data_dir: Path) -> dict[str, str]:
    return {
        "cpu": f"{_cpu_model()}, {os.cpu_count()} cores",
        "memory": _memory(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "sqlite": sqlite3.sqlite_version,
        "data directory": f"{data_dir} on {_filesystem(data_dir)}",
        "jobnest commit": _commit(),
    }


def conditions(data_dir: Path) -> str:
    """The load average, and the median times of creating a file and of running ``sh -c true``."""
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    with tempfile.TemporaryDirectory(dir=data_dir) as scratch:
        create = _median_ms(lambda i: os.close(os.open(f"{scratch}/{i}", os.O_CREAT | os.O_WRONLY)))
    shell = _median_ms(lambda i: subprocess.run(["/bin/sh", "-c", "true"], check=True))
    costs = f"a file created in {create:.3f} ms, `sh -c true` run in {shell:.2f} ms"
    return f"load average {load}; {costs}"


def _median_ms(operation: Callable[[int], object]) -> float:
    times = []
    for index in range(PROBES):
        started = time.perf_counter()
        operation(index)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _cpu_model() -> str:
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            return line.partition(":")[2].strip()
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    for line in _read("/proc/meminfo").splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 1024**2:.1f} GiB"
    return "unknown"


def _filesystem(path: Path) -> str:
    """The type, device and options of the mount holding ``path`` (the longest matching one)."""
    target = str(path.resolve())
    best = ("", "unknown filesystem")
    for line in _read("/proc/mounts").splitlines():
        device, mount, kind, options, *_ = line.split()
        inside = target == mount or target.startswith(mount.rstrip("/") + "/")
        if inside and len(mount) >= len(best[0]):
            best = (mount, f"{kind} ({device} at {mount}, {options})")
    return best[1]


def _commit() -> str:
    here = Path(__file__).parent
    try:
        commit = _git(here, "rev-parse", "--short", "HEAD")
        dirty = _git(here, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{commit}{' with local changes' if dirty else ''}"


def _git(folder: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=folder, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""

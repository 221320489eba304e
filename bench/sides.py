"""The two sides of a comparison, each returning what it cost.

jobnest runs for real, with its state recorded durably: ``run_engine`` drives a run in this
process (``Runner`` + ``SQLStore`` on a SQLite file + ``LocalExecutor``) on a fresh data
directory whose database is already migrated, timing ``Runner.start`` (expand, snapshot,
record the run) and ``Runner.drive``; ``run_cli`` runs ``jobnest run`` as a process, start-up
included. The baseline (``bench.baseline``) runs in this process (``run_baseline``) or as a
script in a fresh interpreter (``run_baseline_script``).
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench import baseline
from bench.dags import Workflow
from jobnest.config import Settings, load_settings
from jobnest.executors.local import LocalExecutor
from jobnest.model.job import Job, parse_job
from jobnest.runner import Runner
from jobnest.store.sql import SQLStore

BASELINE_SCRIPT = Path(baseline.__file__)
LAUNCHER = Path(__file__).with_name("launch.py")


class BenchError(Exception):
    """A side did not do its work (a run failed, a process exited non-zero)."""


@dataclass(frozen=True)
class EngineCost:
    seconds: float
    cpu_seconds: float  # of this process alone: jobnest's own work, without its tasks'


@dataclass(frozen=True)
class ProcessCost:
    seconds: float
    peak_rss_mb: float  # the process's own peak, or its largest descendant's


def scratch(root: Path, prefix: str) -> Path:
    """A fresh folder under ``root``.

    Samples leave their folders behind and the suite removes a workload's ``root`` once the
    workload is done: deleting files between timed samples would time the deletions too.
    """
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))


@contextmanager
def removed_after(folder: Path) -> Iterator[Path]:
    """``folder``, removed at the end (for samples too big to leave behind)."""
    try:
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def fresh_home(root: Path, parallel: int) -> Settings:
    """A new data directory with a migrated database, as a second ``jobnest run`` finds it."""
    home = scratch(root, "home-")
    settings = load_settings({"JOBNEST_HOME": str(home), "JOBNEST_MAX_PARALLEL": str(parallel)})
    SQLStore.open(settings.database_url).close()
    return settings


def run_engine(workflow: Workflow, root: Path, *, parallel: int, workdir: Path) -> EngineCost:
    """What starting and driving a run of ``workflow`` in this process costs."""
    jobs = {job.name: job for job in map(parse_job, workflow.jobs)}
    settings = fresh_home(root, parallel)
    store = SQLStore.open(settings.database_url)
    try:
        runner = Runner(store, LocalExecutor(grace=settings.grace), settings)
        cost, status = asyncio.run(_start_and_drive(runner, jobs, workflow.top, workdir))
    finally:
        store.close()
    if status != "succeeded":
        raise BenchError(f"jobnest's run of {workflow.top!r} ended {status}")
    return cost


async def _start_and_drive(
    runner: Runner, jobs: Mapping[str, Job], top: str, workdir: Path
) -> tuple[EngineCost, str]:
    started, cpu = time.perf_counter(), time.process_time()
    record = runner.start(jobs[top], jobs.get, workdir=str(workdir))
    final = await runner.drive(record.id)
    cost = EngineCost(time.perf_counter() - started, time.process_time() - cpu)
    return cost, final.status


def run_cli(workflow: Workflow, root: Path, *, parallel: int, workdir: Path) -> ProcessCost:
    """What ``jobnest run FILE --job TOP`` costs as a process of its own."""
    file = workdir / "jobs.json"
    file.write_text(json.dumps(workflow.file))
    settings = fresh_home(root, parallel)
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBNEST_")}
    env |= {"JOBNEST_HOME": str(settings.home), "JOBNEST_MAX_PARALLEL": str(parallel)}
    argv = [sys.executable, "-m", "jobnest", "run", str(file), "--job", workflow.top]
    return run_process(argv, cwd=workdir, env=env)


def run_baseline(
    workflow: Workflow, *, parallel: int, workdir: Path, output: Path | None = None
) -> float:
    """Seconds the baseline takes to run ``workflow`` in this process."""
    started = time.perf_counter()
    statuses = baseline.run_graph(workflow.graph, parallel=parallel, workdir=workdir, output=output)
    seconds = time.perf_counter() - started
    if len(statuses) != workflow.size or any(statuses.values()):
        raise BenchError(f"the baseline's run of {workflow.top!r} failed: {statuses}")
    return seconds


def run_baseline_script(
    workflow: Workflow, *, parallel: int, workdir: Path, output: Path | None = None
) -> ProcessCost:
    """What the baseline costs as a script in a fresh interpreter."""
    file = workdir / "graph.json"
    file.write_text(json.dumps(workflow.graph.to_json()))
    argv = [sys.executable, "-I", str(BASELINE_SCRIPT), str(file), "--parallel", str(parallel)]
    if output is not None:
        argv += ["--output", str(output)]
    return run_process(argv, cwd=workdir, env=dict(os.environ))


def run_process(argv: list[str], *, cwd: Path, env: Mapping[str, str]) -> ProcessCost:
    """Run ``argv`` to its end through ``bench/launch.py``: its wall time and peak memory."""
    report, errors = cwd / "process.cost", cwd / "process.stderr"
    launcher = [sys.executable, "-I", "-S", str(LAUNCHER), str(report)]
    with open(errors, "wb") as stderr:
        done = subprocess.run(
            launcher + argv,
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            check=False,
        )
    if done.returncode != 0:
        message = errors.read_text(errors="replace")[-2000:]
        raise BenchError(f"{' '.join(argv)} exited {done.returncode}: {message}")
    seconds, peak_kib = report.read_text().split()
    return ProcessCost(float(seconds), int(peak_kib) / 1024)

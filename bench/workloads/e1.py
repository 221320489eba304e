"""E1: expand and validate a plan of 100,000 tasks: time and peak memory.

Two cases: a tree of nested references (five levels of ten: ten thousand child-job copies)
and one flat job of 100,000 tasks with about 300,000 edges. jobnest's side parses every
definition (``parse_job``: names, references, the task graph and its cycles), checks the
set of jobs (``check_catalog``) and expands the plan (``expand``); the baseline runs
``graphlib.TopologicalSorter`` over the same expanded nodes and edges, a cycle check and a
full topological order. Each sample runs in a fresh interpreter
(``python -m bench.e1_probe CASE SIDE TASKS``) that builds its input first and then measures
only the work: its time, and how far the resident memory peaked above where it stood before
(the peak is reset through ``/proc/self/clear_refs``).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

from bench.e1_probe import CASES, FANOUT
from bench.report import Row, Target
from bench.workloads.base import Context, Sample, Side, Workload, alternate, row

ROOT = Path(__file__).resolve().parents[2]
TARGET = Target("below", 1.0, "< 1 s")


def run(ctx: Context) -> list[Row]:
    tasks = ctx.size(100_000, 1_000)
    rows = []
    for case in CASES:
        samples = alternate(ctx, _probe(case, "jobnest", tasks), _probe(case, "graphlib", tasks))
        what = _describe(case, tasks)
        rows.append(row("E1", what, samples, "time", "s", TARGET, "graphlib"))
        rows.append(row("E1", what, samples, "peak memory", "MB", b_label="graphlib"))
    return rows


def _edges(tasks: int) -> int:
    """How many edges the flat case has: every task after the (up to) three before it."""
    return sum(min(i, 3) for i in range(tasks))


def _describe(case: str, tasks: int) -> str:
    if case == "nested":
        levels = round(math.log(tasks, FANOUT))
        return f"{tasks:,} tasks: jobs nested {levels} deep, {FANOUT} references each"
    return f"flat job of {tasks:,} tasks and {_edges(tasks):,} edges"


def _probe(case: str, side: str, tasks: int) -> Side:
    def sample() -> Sample:
        argv = [sys.executable, "-m", "bench.e1_probe", case, side, str(tasks)]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        done = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
        result: Sample = json.loads(done.stdout)
        return result

    return sample


WORKLOAD = Workload("E1", "expand and validate 100,000 tasks", run)

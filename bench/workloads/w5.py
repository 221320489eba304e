"""W5: latency, the time from a task's exit to its dependent's start.

A chain of tasks that each run ``date +%s%N >> stamps``: the gap between two consecutive
stamps is one task's ``date`` and shell ending, the orchestrator noticing, and the next
shell and ``date`` starting. The baseline's gaps hold the same processes, so jobnest's gap
minus the baseline's is what jobnest adds between a task and the next (target ≤ 1 ms).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

from bench.dags import Workflow, chain
from bench.report import Row, Target
from bench.sides import run_baseline, run_engine, scratch
from bench.stats import Summary, percentile
from bench.workloads.base import PARALLEL, Context, Sample, Side, Workload, alternate, row

STAMP = "date +%s%N >> stamps"
TARGET = Target("offset", 1.0, "≤ baseline + 1 ms")


def run(ctx: Context) -> list[Row]:
    length = ctx.size(100, 5)
    flow = chain(length, STAMP)
    samples = alternate(ctx, _side(ctx, flow, _engine), _side(ctx, flow, _plain))
    case = f"exit → dependent's start, chain of {length}"
    return [row("W5", case, samples, metric, "ms", TARGET) for metric in ("median", "p95")]


Drive = Callable[[Context, Workflow, Path], object]


def _side(ctx: Context, workflow: Workflow, drive: Drive) -> Side:
    def sample() -> Sample:
        workdir = scratch(ctx.data, "work-")
        drive(ctx, workflow, workdir)
        gaps = _gaps(workdir / "stamps")
        return {"median": Summary.of(gaps).median, "p95": percentile(gaps, 95)}

    return sample


def _engine(ctx: Context, workflow: Workflow, workdir: Path) -> object:
    return run_engine(workflow, ctx.data, parallel=PARALLEL, workdir=workdir)


def _plain(ctx: Context, workflow: Workflow, workdir: Path) -> object:
    return run_baseline(workflow, parallel=PARALLEL, workdir=workdir)


def _gaps(stamps: Path) -> list[float]:
    """Milliseconds between consecutive stamps."""
    times = [int(line) for line in stamps.read_text().split()]
    return [(b - a) / 1e6 for a, b in itertools.pairwise(times)]


WORKLOAD = Workload("W5", "latency from a task's exit to its dependent's start", run)

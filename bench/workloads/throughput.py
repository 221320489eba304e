"""Throughput: the wall time of a whole workflow of ``true`` tasks, jobnest against the baseline.

Shared by W1–W3 and N1. Each sample runs in a fresh working folder (and, for jobnest, a
fresh data directory), made and removed outside the timing.
"""

from __future__ import annotations

from bench.dags import Workflow
from bench.report import Target
from bench.sides import run_baseline, run_engine, scratch
from bench.workloads.base import Context, Sample, Side

WALL = "wall"
CPU = "process CPU"  # of jobnest's process alone, without its tasks
TARGET = Target("ratio", 1.5, "≤ 1.5× baseline")


def engine(ctx: Context, workflow: Workflow, parallel: int) -> Side:
    """The side that runs ``workflow`` on jobnest's engine."""

    def sample() -> Sample:
        workdir = scratch(ctx.data, "work-")
        cost = run_engine(workflow, ctx.data, parallel=parallel, workdir=workdir)
        return {WALL: cost.seconds, CPU: cost.cpu_seconds}

    return sample


def plain(ctx: Context, workflow: Workflow, parallel: int) -> Side:
    """The side that runs ``workflow`` on the baseline."""

    def sample() -> Sample:
        workdir = scratch(ctx.data, "work-")
        return {WALL: run_baseline(workflow, parallel=parallel, workdir=workdir)}

    return sample

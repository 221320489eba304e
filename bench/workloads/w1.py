"""W1: a chain of 200 tasks, one at a time: the cost per task with nothing to overlap.

Also the same chain through ``jobnest run`` as a process of its own, and that process's
start-up alone (a one-task job), each against the baseline run as a script in a fresh
interpreter: how much of a command-line run is Python and imports rather than scheduling.
"""

from __future__ import annotations

from bench.dags import Workflow, chain
from bench.report import Row
from bench.sides import run_baseline_script, run_cli, scratch
from bench.workloads import throughput
from bench.workloads.base import PARALLEL, Context, Sample, Side, Workload, alternate, row

SCRIPT = "baseline script"


def run(ctx: Context) -> list[Row]:
    length = ctx.size(200, 5)
    flow, one = chain(length), chain(1)
    engine = alternate(
        ctx, throughput.engine(ctx, flow, PARALLEL), throughput.plain(ctx, flow, PARALLEL)
    )
    cli = alternate(ctx, _cli(ctx, flow), _script(ctx, flow))
    startup = alternate(ctx, _cli(ctx, one), _script(ctx, one))
    case, wall = f"chain of {length} tasks", throughput.WALL
    return [
        row("W1", case, engine, wall, "s", throughput.TARGET),
        row("W1", f"{case}, `jobnest run` as a process", cli, wall, "s", b_label=SCRIPT),
        row("W1", "start-up: `jobnest run` of a one-task job", startup, wall, "s", b_label=SCRIPT),
    ]


def _cli(ctx: Context, workflow: Workflow) -> Side:
    def sample() -> Sample:
        workdir = scratch(ctx.data, "work-")
        cost = run_cli(workflow, ctx.data, parallel=PARALLEL, workdir=workdir)
        return {throughput.WALL: cost.seconds}

    return sample


def _script(ctx: Context, workflow: Workflow) -> Side:
    def sample() -> Sample:
        workdir = scratch(ctx.data, "work-")
        cost = run_baseline_script(workflow, parallel=PARALLEL, workdir=workdir)
        return {throughput.WALL: cost.seconds}

    return sample


WORKLOAD = Workload("W1", "a chain of 200 tasks", run)

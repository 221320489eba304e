"""N1: W1's chain of 200 tasks as 20 nested jobs of 10: what a child-job boundary costs.

Side B is jobnest too, running W1's flat chain of the same length: a boundary is two
markers in the plan and must cost no process and next to no time (target ≤ 1.05×). The
difference is small next to the noise of a shared machine, so N1 takes three times the
pairs of the other rows, and shows the CPU time of jobnest's process too, which the load
of other processes disturbs less than the wall time.
"""

from __future__ import annotations

from bench.dags import chain, nested_chain
from bench.report import Row, Target
from bench.workloads import throughput
from bench.workloads.base import PARALLEL, Context, Workload, alternate, row

TARGET = Target("ratio", 1.05, "≤ 1.05× W1")


def run(ctx: Context) -> list[Row]:
    depth, length = ctx.size(20, 2), ctx.size(10, 3)
    nested, flat = nested_chain(depth, length), chain(depth * length)
    sides = throughput.engine(ctx, nested, PARALLEL), throughput.engine(ctx, flat, PARALLEL)
    samples = alternate(ctx, *sides, pairs=3 * ctx.pairs)
    case = f"{depth} nested jobs of {length} tasks"
    label = f"jobnest, W1's flat chain of {depth * length}"
    return [
        row("N1", case, samples, throughput.WALL, "s", TARGET, label),
        row("N1", case, samples, throughput.CPU, "s", b_label=label),
    ]


WORKLOAD = Workload("N1", "20 nested jobs of 10 tasks", run)

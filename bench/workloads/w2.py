"""W2: one task, then 200 in parallel, then one; 2 and then 16 running at a time."""

from __future__ import annotations

from bench.dags import fan
from bench.report import Row
from bench.workloads import throughput
from bench.workloads.base import Context, Workload, alternate, row


def run(ctx: Context) -> list[Row]:
    width = ctx.size(200, 5)
    flow = fan(width)
    return [
        row(
            "W2",
            f"1 → {width} → 1 tasks, {parallel} at a time",
            alternate(
                ctx, throughput.engine(ctx, flow, parallel), throughput.plain(ctx, flow, parallel)
            ),
            throughput.WALL,
            "s",
            throughput.TARGET,
        )
        for parallel in (2, 16)
    ]


WORKLOAD = Workload("W2", "one task, 200 in parallel, one", run)

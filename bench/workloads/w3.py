"""W3: 20 layers of 20 tasks, each task after every task of the layer before (8,000 edges)."""

from __future__ import annotations

from bench.dags import layers
from bench.report import Row
from bench.workloads import throughput
from bench.workloads.base import PARALLEL, Context, Workload, alternate, row


def run(ctx: Context) -> list[Row]:
    depth = width = ctx.size(20, 3)
    flow = layers(depth, width)
    sides = throughput.engine(ctx, flow, PARALLEL), throughput.plain(ctx, flow, PARALLEL)
    case = f"{depth} layers × {width} tasks, {PARALLEL} at a time"
    return [row("W3", case, alternate(ctx, *sides), throughput.WALL, "s", throughput.TARGET)]


WORKLOAD = Workload("W3", "20 layers × 20 tasks", run)

"""O1: one task printing 2 GB: the peak resident memory and wall time of ``jobnest run``.

The output goes from the task straight to its file and never through jobnest's memory, so
the process must stay as small as it starts (target < 150 MB). The baseline, run as a
script too, keeps the output in a file as well: here keeping it is the point.
"""

from __future__ import annotations

from bench.dags import Workflow, chain
from bench.report import Row, Target
from bench.sides import ProcessCost, removed_after, run_baseline_script, run_cli, scratch
from bench.workloads.base import PARALLEL, Context, Sample, Side, Workload, alternate, row

TARGET = Target("below", 150, "< 150 MB", worst=True)
PAIRS = 3  # at most: each pair writes 4 GB
SCRIPT = "baseline script"


def run(ctx: Context) -> list[Row]:
    size = ctx.size(2_000_000_000, 1_000_000)
    flow = chain(1, f"head -c {size} /dev/zero")
    pairs = min(ctx.pairs, PAIRS)
    samples = alternate(ctx, _cli(ctx, flow), _script(ctx, flow), pairs=pairs)
    plural = "s" if pairs > 1 else ""
    case = f"one task printing {size / 1e9:g} GB, `jobnest run` as a process ({pairs} pair{plural})"
    return [
        row("O1", case, samples, "peak RSS", "MB", TARGET, SCRIPT),
        row("O1", case, samples, "wall", "s", b_label=SCRIPT),
    ]


def _cli(ctx: Context, workflow: Workflow) -> Side:
    def sample() -> Sample:
        with removed_after(scratch(ctx.data, "sample-")) as folder:
            workdir = scratch(folder, "work-")
            return _sample(run_cli(workflow, folder, parallel=PARALLEL, workdir=workdir))

    return sample


def _script(ctx: Context, workflow: Workflow) -> Side:
    def sample() -> Sample:
        with removed_after(scratch(ctx.data, "sample-")) as workdir:
            cost = run_baseline_script(workflow, parallel=PARALLEL, workdir=workdir, output=workdir)
            return _sample(cost)

    return sample


def _sample(cost: ProcessCost) -> Sample:
    return {"peak RSS": cost.peak_rss_mb, "wall": cost.seconds}


WORKLOAD = Workload("O1", "a task printing 2 GB", run)

"""E1's probe, run in a fresh interpreter: ``python -m bench.e1_probe CASE SIDE TASKS``.

Builds the input first, then measures only the work: its seconds, and how far the resident
memory peaked above where it stood before (MB), printed as one JSON object. It imports
jobnest's model and nothing of the suite's other parts, to start fast.
"""

from __future__ import annotations

import gc
import graphlib
import json
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from jobnest.model.catalog import check_catalog
from jobnest.model.expand import PlanGraph, expand
from jobnest.model.job import parse_job

CASES = ("nested", "flat")
FANOUT = 10  # the nested case: every job holds ten tasks or ten references


def definitions(case: str, tasks: int) -> tuple[str, list[dict[str, Any]]]:
    """The job definitions of ``case`` as a job file holds them, and the job to expand."""
    if case == "flat":
        return "flat", [{"name": "flat", "tasks": [_flat_task(i) for i in range(tasks)]}]
    levels = round(math.log(tasks, FANOUT))
    jobs = [{"name": f"l{levels - 1}", "tasks": _chained({"command": "true"})}]
    for level in reversed(range(levels - 1)):
        jobs.append({"name": f"l{level}", "tasks": _chained({"job": f"l{level + 1}"})})
    return "l0", jobs


def _chained(body: dict[str, str]) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = [{"name": f"t{i}", **body} for i in range(FANOUT)]
    for i in range(1, FANOUT):
        tasks[i]["after"] = [f"t{i - 1}"]
    return tasks


def _flat_task(i: int) -> dict[str, Any]:
    task: dict[str, Any] = {"name": f"t{i}", "command": "true"}
    if i:
        task["after"] = [f"t{j}" for j in range(max(0, i - 3), i)]
    return task


def jobnest_side(top: str, raw: list[dict[str, Any]]) -> PlanGraph:
    """Parse and validate every definition, check the set of jobs, expand the plan."""
    jobs = {job.name: job for job in map(parse_job, raw)}
    check_catalog(jobs)
    return expand(jobs[top], jobs.get)


def graphlib_side(after: dict[str, list[str]]) -> list[str]:
    """A cycle check and a full topological order of the same graph."""
    return list(graphlib.TopologicalSorter(after).static_order())


def _predecessors(graph: PlanGraph) -> dict[str, list[str]]:
    after: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
    for before, node in graph.edges:
        after[node].append(before)
    return after


def probe(case: str, side: str, tasks: int) -> dict[str, float]:
    top, raw = definitions(case, tasks)
    work: Callable[[], object] = lambda: jobnest_side(top, raw)  # noqa: E731
    if side == "graphlib":
        after = _predecessors(jobnest_side(top, raw))
        work = lambda: graphlib_side(after)  # noqa: E731
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # the peak starts again from here
    before = _memory_kib("VmRSS")
    started = time.perf_counter()
    result = work()
    seconds = time.perf_counter() - started
    peak = _memory_kib("VmHWM") - before
    assert result is not None
    return {"time": seconds, "peak memory": peak / 1024}


def _memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise LookupError(field)


if __name__ == "__main__":
    print(json.dumps(probe(sys.argv[1], sys.argv[2], int(sys.argv[3]))))

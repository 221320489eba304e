"""The drawing of a job's or a run's plan, for the pages: boxes, routes and their states.

A ``View`` says which job references are drawn open: the ``expand``-ed ones, every one
(``all``), and for a run those with a failed task inside (``auto``), minus the
``collapse``-d ones. Each box of a run's layout carries its state: a task its status,
reason, exit code and attempts; a reference or group the count of its tasks by status
(``counts``) and one status that sums them up (``status``). Every reference and group box
tells how many tasks it holds (``tasks``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from jobnest.model.expand import PlanGraph
from jobnest.model.layout import layout, layout_to_dict, refs_with_failures
from jobnest.store.base import TaskRecord

# the first of these present in a reference sums it up; "succeeded" only when all are done ok
ROLLUP_ORDER = (
    "failed",
    "running",
    "queued",
    "cancelled",
    "upstream_failed",
    "pending",
    "succeeded",
    "skipped",
)


@dataclass(frozen=True)
class View:
    """Which references are drawn open."""

    expand: tuple[str, ...] = ()
    collapse: tuple[str, ...] = ()
    all: bool = False
    auto: bool = False


def job_layout(graph: PlanGraph, view: View) -> dict[str, Any]:
    """The layout of a job's plan, with the size of every reference."""
    expanded = _expanded(graph, view, failed=set())
    data = _drawn(graph, expanded)
    sizes = rollups((node.id, "pending") for node in graph.nodes if node.is_task)
    for box in data["boxes"]:
        if box["kind"] != "task":
            box["tasks"] = sum(sizes.get(box["id"], {}).values())
    return data


def run_layout(graph: PlanGraph, tasks: Iterable[TaskRecord], view: View) -> dict[str, Any]:
    """The layout of a run's plan, with every box's state."""
    records = {task.path: task for task in tasks}
    failed = {path for path, task in records.items() if task.status == "failed"}
    data = _drawn(graph, _expanded(graph, view, failed))
    counts = rollups((path, task.status) for path, task in records.items())
    for box in data["boxes"]:
        if box["kind"] == "task":
            box.update(_task_state(records.get(box["id"])))
        else:
            box.update(_group_state(counts.get(box["id"], {})))
    return data


def rollups(statuses: Iterable[tuple[str, str]]) -> dict[str, dict[str, int]]:
    """For each reference path, its tasks counted by status (tasks at any depth inside)."""
    counts: dict[str, Counter[str]] = {}
    for path, status in statuses:
        parts = path.split("/")
        for depth in range(1, len(parts)):
            counts.setdefault("/".join(parts[:depth]), Counter())[status] += 1
    return {prefix: dict(counter) for prefix, counter in counts.items()}


def summary(counts: Mapping[str, int]) -> str:
    """One status for a set of tasks: "failed" if any failed, ..., "succeeded" if all did."""
    return next((status for status in ROLLUP_ORDER if counts.get(status)), "pending")


def references(graph: PlanGraph) -> set[str]:
    """The paths of every job reference in the plan, at any depth."""
    return {node.id for node in graph.nodes if node.kind == "start"}


def _expanded(graph: PlanGraph, view: View, failed: set[str]) -> set[str]:
    chosen = set(view.expand)
    if view.all:
        chosen |= references(graph)
    if view.auto:
        chosen |= refs_with_failures(graph, failed)
    return chosen - set(view.collapse)


def _drawn(graph: PlanGraph, expanded: set[str]) -> dict[str, Any]:
    data = layout_to_dict(layout(graph, expanded))
    data["expanded"] = sorted(expanded & references(graph))
    return data


def _task_state(task: TaskRecord | None) -> dict[str, Any]:
    if task is None:
        return {"status": "pending", "reason": None, "exit_code": None, "attempts": 0}
    return {
        "status": task.status,
        "reason": task.reason,
        "exit_code": task.exit_code,
        "attempts": task.attempts,
    }


def _group_state(counts: Mapping[str, int]) -> dict[str, Any]:
    return {"counts": dict(counts), "status": summary(counts), "tasks": sum(counts.values())}

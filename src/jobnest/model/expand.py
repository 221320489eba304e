"""Expansion: inline every job reference as its job's tasks, into one flat plan graph.

A reference task ``load`` to job ``warehouse-load`` becomes a start marker (id ``load``),
the child's nodes (``load/stage``, ``load/merge``, deeper: ``a/b/c``) and an end marker
(id ``load/``, which no name can produce since names never contain ``/``). Predecessors of
``load`` point at the start marker, the start marker at the child's roots, the child's
leaves at the end marker and the end marker at the successors: the plan stays linear in
its size, and an empty child passes its predecessors straight through. The markers cost
nothing at run time and give the UI its group boundaries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from jobnest.errors import InvalidJob, JobCycleError, PlanTooLarge
from jobnest.model import graph
from jobnest.model.gcpause import paused_gc
from jobnest.model.job import (
    DEFAULT_OPTIONS,
    OPTION_NAMES,
    CommandTask,
    Job,
    JobRef,
    TaskOptions,
    task_to_dict,
)

NodeKind = Literal["task", "start", "end"]
DEFAULT_MAX_DEPTH = 100
DEFAULT_MAX_TASKS = 100_000


@dataclass(frozen=True, slots=True)
class PlanNode:
    """One node of a plan: a command to run, or a group marker of an expanded reference."""

    id: str
    kind: NodeKind
    job: str  # the job the task comes from; for a marker, the job it expands
    command: str | None = None
    options: TaskOptions | None = None
    workdir: str | None = None

    @property
    def is_task(self) -> bool:
        return self.kind == "task"


@dataclass(frozen=True)
class PlanGraph:
    """The expanded, flat graph a run executes, with the content hash of every job in it."""

    job: str
    nodes: tuple[PlanNode, ...]
    edges: tuple[tuple[str, str], ...]
    hashes: Mapping[str, str] = field(default_factory=dict)

    @property
    def task_count(self) -> int:
        return sum(1 for node in self.nodes if node.is_task)


@dataclass(frozen=True)
class Limits:
    """Caps that keep a runaway expansion from eating the machine."""

    max_depth: int = DEFAULT_MAX_DEPTH
    max_tasks: int = DEFAULT_MAX_TASKS


Lookup = Callable[[str], Job | None]


def expand(job: Job, lookup: Lookup, limits: Limits | None = None) -> PlanGraph:
    """Expand ``job`` and, recursively, every job it references.

    ``lookup`` returns the job of a name, or None when there is none.

    Raises:
        InvalidJob: a reference to a job that does not exist.
        JobCycleError: a job reaches itself through references; ``.path`` holds the chain.
        PlanTooLarge: deeper than ``limits.max_depth`` or more than ``limits.max_tasks`` tasks.
    """
    builder = _Builder(lookup, limits or Limits())
    with paused_gc():
        builder.add_job(job, prefix="", context=(job.name,), trail=[job.name], host=None)
    return PlanGraph(job.name, tuple(builder.nodes), tuple(builder.edges), builder.hashes)


class _Builder:
    def __init__(self, lookup: Lookup, limits: Limits) -> None:
        self.lookup = lookup
        self.limits = limits
        self.nodes: list[PlanNode] = []
        self.edges: list[tuple[str, str]] = []
        self.hashes: dict[str, str] = {}
        self.tasks = 0
        self.references = 0

    def add_job(
        self, job: Job, prefix: str, context: tuple[str, ...], trail: list[str], host: str | None
    ) -> tuple[list[str], list[str]]:
        """Add ``job``'s nodes under ``prefix``; return the ids of its entries and exits."""
        self.hashes[job.name] = job.content_hash
        entry: dict[str, str] = {}
        exit_: dict[str, str] = {}
        for task in job.tasks:
            path = prefix + task.name
            if isinstance(task, CommandTask):
                self.add_task(job, task, path, host)
                entry[task.name] = exit_[task.name] = path
            else:
                self.add_reference(job, task, path, context, trail, host)
                entry[task.name], exit_[task.name] = path, path + "/"
        for task in job.tasks:  # a second pass: 'after' may name a task defined further down
            self.edges.extend((exit_[before], entry[task.name]) for before in task.after)
        roots = [entry[t.name] for t in job.tasks if not t.after]
        ends = [exit_[name] for name in graph.leaves({t.name: t.after for t in job.tasks})]
        return roots, ends

    def add_task(self, job: Job, task: CommandTask, path: str, host: str | None) -> None:
        self.tasks += 1
        if self.tasks > self.limits.max_tasks:
            raise PlanTooLarge(
                f"job expands to more than {self.limits.max_tasks} tasks (at {path!r}); "
                "raise the max_tasks limit if this is intended"
            )
        options = task.options
        if host is not None and options.host is None:
            options = replace(options, host=host)
        if job.queue is not None and options.queue is None:
            options = replace(options, queue=job.queue)
        self.nodes.append(PlanNode(path, "task", job.name, task.command, options, job.workdir))

    def add_reference(
        self,
        parent: Job,
        ref: JobRef,
        path: str,
        context: tuple[str, ...],
        trail: list[str],
        host: str | None,
    ) -> None:
        here = [*trail, f"{ref.name} ({ref.job})"]
        self.references += 1
        if self.references > self.limits.max_tasks:  # empty jobs add no tasks, only markers
            raise PlanTooLarge(
                f"job expands to more than {self.limits.max_tasks} job references (at {path!r}); "
                "raise the max_tasks limit if this is intended"
            )
        if ref.job in context:
            raise JobCycleError(here)
        if len(context) > self.limits.max_depth:
            raise PlanTooLarge(
                f"job references nest deeper than {self.limits.max_depth} levels (at {path!r}); "
                "raise the max_depth limit if this is intended"
            )
        child = self.lookup(ref.job)
        if child is None:
            raise InvalidJob(
                f"reference to unknown job {ref.job!r}", job=parent.name, task=ref.name
            )
        start, end = path, path + "/"
        self.nodes.append(PlanNode(start, "start", child.name))
        roots, leaves = self.add_job(
            child, path + "/", (*context, child.name), here, ref.options.host or host
        )
        self.nodes.append(PlanNode(end, "end", child.name))
        if not child.tasks:
            self.edges.append((start, end))
        self.edges.extend((start, root) for root in roots)
        self.edges.extend((leaf, end) for leaf in leaves)


# --- plain data (storage, `jobnest plan --json`, the API) ------------------------------------


def plan_to_dict(plan: PlanGraph) -> dict[str, Any]:
    """The plan as plain JSON-able data."""
    return {
        "job": plan.job,
        "nodes": [node_to_dict(node) for node in plan.nodes],
        "edges": [list(edge) for edge in plan.edges],
        "hashes": dict(plan.hashes),
    }


def node_to_dict(node: PlanNode) -> dict[str, Any]:
    out: dict[str, Any] = {"id": node.id, "kind": node.kind, "job": node.job}
    if node.command is not None and node.options is not None:
        task = task_to_dict(CommandTask(node.id.rpartition("/")[2], node.command, (), node.options))
        del task["name"]
        out.update(task)
    if node.workdir is not None:
        out["workdir"] = node.workdir
    return out


def plan_from_dict(data: Mapping[str, Any]) -> PlanGraph:
    """Read back what ``plan_to_dict`` wrote."""
    nodes = tuple(_node_from_dict(raw) for raw in data["nodes"])
    edges = tuple((a, b) for a, b in data["edges"])
    return PlanGraph(data["job"], nodes, edges, dict(data.get("hashes", {})))


def _node_from_dict(raw: Mapping[str, Any]) -> PlanNode:
    if raw["kind"] != "task":
        return PlanNode(raw["id"], raw["kind"], raw["job"])
    given = {name: raw[name] for name in OPTION_NAMES if name in raw}
    options = TaskOptions(**given) if given else DEFAULT_OPTIONS
    return PlanNode(raw["id"], "task", raw["job"], raw["command"], options, raw.get("workdir"))

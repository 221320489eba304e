"""The shapes the workloads run: each as jobnest job definitions and as the baseline's graph.

A ``Workflow`` holds the same DAG twice: ``jobs``, definitions as a job file holds them
(``top`` is the job to run), and ``graph``, the flat graph of commands the baseline runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.baseline import Graph

TRUE = "true"


@dataclass(frozen=True)
class Workflow:
    top: str
    jobs: list[dict[str, Any]]
    graph: Graph

    @property
    def file(self) -> dict[str, Any]:
        """The definitions as the content of a job file."""
        return {"jobs": self.jobs}

    @property
    def size(self) -> int:
        return len(self.graph.commands)


def _task(name: str, after: list[str], command: str = TRUE) -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, "command": command}
    if after:
        task["after"] = after
    return task


def _flat(name: str, tasks: list[dict[str, Any]]) -> Workflow:
    """A workflow of one job whose tasks are all commands."""
    graph = Graph(
        {t["name"]: t["command"] for t in tasks}, {t["name"]: t.get("after", []) for t in tasks}
    )
    return Workflow(name, [{"name": name, "tasks": tasks}], graph)


def chain(length: int, command: str = TRUE, name: str = "chain") -> Workflow:
    """``t0 → t1 → … → t{length-1}``."""
    return _flat(name, [_task(f"t{i}", [f"t{i - 1}"] if i else [], command) for i in range(length)])


def fan(width: int) -> Workflow:
    """One task, then ``width`` in parallel, then one."""
    middle = [_task(f"m{i}", ["first"]) for i in range(width)]
    last = _task("last", [t["name"] for t in middle])
    return _flat("fan", [_task("first", []), *middle, last])


def layers(depth: int, width: int) -> Workflow:
    """``depth`` layers of ``width`` tasks, each after every task of the layer before."""
    tasks = []
    for layer in range(depth):
        before = [f"l{layer - 1}t{i}" for i in range(width)] if layer else []
        tasks += [_task(f"l{layer}t{i}", before) for i in range(width)]
    return _flat("layers", tasks)


def nested_chain(depth: int, length: int) -> Workflow:
    """``depth`` jobs, each a chain of ``length`` tasks and then a reference to the next.

    The plan is a chain of ``depth × length`` tasks, as ``chain(depth × length)``, crossing
    ``depth - 1`` child-job boundaries on the way down (paths ``n/n/…/t3``).
    """
    jobs = []
    for level in range(depth):
        tasks = [_task(f"t{i}", [f"t{i - 1}"] if i else []) for i in range(length)]
        if level < depth - 1:
            tasks.append({"name": "n", "job": f"level{level + 1}", "after": [f"t{length - 1}"]})
        jobs.append({"name": f"level{level}", "tasks": tasks})
    return Workflow("level0", jobs, chain(depth * length).graph)

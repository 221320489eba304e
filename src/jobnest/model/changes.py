"""What changed in the job definitions since a run's snapshot: a per-job diff of tasks.

``diff_jobs(before, after)`` compares two sets of definitions (name -> the definition as
``job_to_dict`` writes it): the run's snapshot, and the jobs its job expands into now.
A job is ``added`` (referenced now, not then), ``removed`` (not any more: unreferenced or
deleted) or ``changed``; within it each task is ``added``, ``removed`` or ``changed``
with the fields that differ (``command``, ``after``, ``job``, timeouts, ...). Tasks are
matched by name: a renamed task is one removed and one added. Pure: no store, no clock.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Definition = Mapping[str, Any]


@dataclass(frozen=True)
class FieldDiff:
    name: str  # "command", "after", "schedule", ...
    before: Any
    after: Any


@dataclass(frozen=True)
class TaskDiff:
    name: str
    change: str  # "added" | "removed" | "changed"
    fields: tuple[FieldDiff, ...] = ()  # of a changed task; every field of an added one


@dataclass(frozen=True)
class JobDiff:
    job: str
    change: str  # "added" | "removed" | "changed"
    tasks: tuple[TaskDiff, ...] = ()
    fields: tuple[FieldDiff, ...] = ()  # job-level: schedule, workdir, ...; not "tasks"


def diff_jobs(before: Mapping[str, Definition], after: Mapping[str, Definition]) -> list[JobDiff]:
    """The jobs that differ between ``before`` and ``after``, by name."""
    diffs = []
    for name in sorted(before.keys() | after.keys()):
        if name not in after:
            diffs.append(JobDiff(name, "removed", _tasks(before[name], {})))
        elif name not in before:
            diffs.append(JobDiff(name, "added", _tasks({}, after[name])))
        elif before[name] != after[name]:
            old, new = before[name], after[name]
            diffs.append(JobDiff(name, "changed", _tasks(old, new), _fields(old, new, {"tasks"})))
    return diffs


def _tasks(before: Definition, after: Definition) -> tuple[TaskDiff, ...]:
    old = {task["name"]: task for task in before.get("tasks", ())}
    new = {task["name"]: task for task in after.get("tasks", ())}
    diffs = [TaskDiff(name, "removed") for name in old if name not in new]
    for name, task in new.items():
        if name not in old:
            diffs.append(TaskDiff(name, "added", _fields({}, task, {"name"})))
        elif old[name] != task:
            diffs.append(TaskDiff(name, "changed", _fields(old[name], task, {"name"})))
    return tuple(diffs)


def _fields(before: Definition, after: Definition, ignore: set[str]) -> tuple[FieldDiff, ...]:
    keys = sorted((before.keys() | after.keys()) - ignore)
    return tuple(
        FieldDiff(key, before.get(key), after.get(key))
        for key in keys
        if before.get(key) != after.get(key)
    )

"""Small algorithms over a job's own task graph (names and their ``after`` lists)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

from jobnest.errors import TaskCycleError


def check_acyclic(job: str, after: Mapping[str, Sequence[str]]) -> None:
    """Raise ``TaskCycleError`` with the cycle if the tasks depend on each other in a loop.

    Every name in an ``after`` list must be a key of ``after``. Most jobs list each task
    after the ones it waits for: then no edge points forward and there can be no cycle,
    which one pass shows; only the others pay for a topological sort.
    """
    if _only_backward(after):
        return
    try:
        TopologicalSorter(after).prepare()
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        raise TaskCycleError(job, list(reversed(cycle))) from None


def leaves(after: Mapping[str, Sequence[str]]) -> list[str]:
    """Tasks nothing else waits for, in definition order."""
    needed = {before for befores in after.values() for before in befores}
    return [name for name in after if name not in needed]


def _only_backward(after: Mapping[str, Sequence[str]]) -> bool:
    """Whether every task waits only for tasks listed before it."""
    position = {name: index for index, name in enumerate(after)}
    return all(
        position[before] < here for here, befores in enumerate(after.values()) for before in befores
    )

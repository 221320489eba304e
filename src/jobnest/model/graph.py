"""Small algorithms over a job's own task graph (names and their ``after`` lists)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from graphlib import CycleError, TopologicalSorter

from jobnest.errors import TaskCycleError


def check_acyclic(job: str, after: Mapping[str, Sequence[str]]) -> None:
    """Raise ``TaskCycleError`` with the cycle if the tasks depend on each other in a loop."""
    try:
        TopologicalSorter(after).prepare()
    except CycleError as exc:
        cycle: list[str] = list(exc.args[1])
        raise TaskCycleError(job, list(reversed(cycle))) from None


def leaves(after: Mapping[str, Sequence[str]]) -> list[str]:
    """Tasks nothing else waits for, in definition order."""
    needed = {before for befores in after.values() for before in befores}
    return [name for name in after if name not in needed]

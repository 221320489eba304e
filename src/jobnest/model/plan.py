"""The run-time protocol over a plan graph, in the manner of ``graphlib.TopologicalSorter``.

    plan = Plan(graph)
    while plan.is_active():
        for node in plan.ready():
            start(node)
        node_id, ok = await next_finished()
        plan.done(node_id, ok=ok)   # a failure marks its descendants upstream_failed

Group markers complete by themselves the moment their predecessors have; ``ready()`` only
ever returns task nodes. A plan built with ``finished`` (task ids that already succeeded,
as on a retry) treats those tasks as done and never offers them again; one built with
``failed`` (as when a marked task lets a failed run go on) keeps those tasks failed: what
depends on them stays blocked (``blocked()``). ``unfail()`` turns a failure into a success
after the fact (a user marked the task): what it blocked, and nothing else failed blocks, is
released again.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Collection, Iterable

from jobnest.model.expand import PlanGraph, PlanNode


class Plan:
    """Which tasks may start now, given which have finished and how."""

    def __init__(
        self, graph: PlanGraph, finished: Collection[str] = (), failed: Collection[str] = ()
    ) -> None:
        self.graph = graph
        self._node = {node.id: node for node in graph.nodes}
        self._next: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
        self._waiting = dict.fromkeys(self._node, 0)
        for before, after in graph.edges:
            self._next[before].append(after)
            self._waiting[after] += 1
        self._finished = set(finished)
        self._failed = set(failed)
        self._blocked: set[str] = set()
        self._ready: list[PlanNode] = []
        self._started: set[str] = set()
        self._release(n for n, count in self._waiting.items() if count == 0)

    def ready(self) -> list[PlanNode]:
        """Tasks whose predecessors all succeeded, each returned once."""
        out, self._ready = self._ready, []
        self._started.update(node.id for node in out)
        return out

    def done(self, node_id: str, *, ok: bool) -> list[str]:
        """Record a started task's end; return the task ids this makes ``upstream_failed``."""
        self._started.discard(node_id)
        if ok:
            self._release(self._successors_freed(node_id))
            return []
        self._failed.add(node_id)
        return self._block_below(node_id)

    def blocked(self) -> list[str]:
        """The tasks that a failure blocks now, in plan order."""
        return [n.id for n in self.graph.nodes if n.is_task and n.id in self._blocked]

    def unfail(self, node_id: str) -> list[str]:
        """Count a failed task as succeeded; return the tasks it no longer blocks."""
        before = set(self._blocked)
        self._failed.discard(node_id)
        self._blocked = set()
        for failed in self._failed:
            self._block_below(failed)
        self._release(self._successors_freed(node_id))
        return [n.id for n in self.graph.nodes if n.is_task and n.id in before - self._blocked]

    def cancel(self) -> list[str]:
        """Stop offering tasks; return the ids of tasks that will now never start."""
        never = [node.id for node in self._ready]
        never += [
            node_id
            for node_id, node in self._node.items()
            if node.is_task and self._waiting[node_id] > 0 and node_id not in self._blocked
        ]
        self._ready = []
        self._blocked.update(never)
        return never

    def is_active(self) -> bool:
        """True while a task is ready or running."""
        return bool(self._ready or self._started)

    def node(self, node_id: str) -> PlanNode:
        return self._node[node_id]

    def _release(self, free: Iterable[str]) -> None:
        queue = deque(free)
        while queue:
            node_id = queue.popleft()
            if node_id in self._blocked:  # cancelled: never offered, whatever finishes
                continue
            node = self._node[node_id]
            if node_id in self._failed:
                self._block_below(node_id)
            elif node.is_task and node_id not in self._finished:
                self._ready.append(node)
            else:
                queue.extend(self._successors_freed(node_id))

    def _successors_freed(self, node_id: str) -> list[str]:
        freed = []
        for after in self._next[node_id]:
            self._waiting[after] -= 1
            if self._waiting[after] == 0:
                freed.append(after)
        return freed

    def _block_below(self, node_id: str) -> list[str]:
        blocked: list[str] = []
        queue = deque(self._next[node_id])
        while queue:
            below = queue.popleft()
            if below in self._blocked:
                continue
            self._blocked.add(below)
            if self._node[below].is_task:
                blocked.append(below)
            queue.extend(self._next[below])
        return blocked

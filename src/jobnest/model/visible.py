"""The visible graph of a plan: what the UI draws for a given set of open references.

A collapsed reference becomes one node and hides everything under it, whatever is open
inside it. An open reference becomes a group: its start and end markers stay as two
zero-width junctions (the group's left and right borders), so a predecessor joins the
group once and the group fans out to its roots once — the graph stays linear in the plan's
size. An open reference whose child job is empty has nothing to fan out to: it is one
node, drawn as an empty group.

Nodes are numbered: a plain item (task, collapsed reference, empty group) is one node of
weight 1 (it takes a column); an open group is two junctions of weight 0. Layering by
longest path with these weights puts a group's members in the columns after its
predecessors and its successors in the columns after its last member.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from jobnest.errors import InvalidInput
from jobnest.model.expand import PlanGraph, PlanNode

ItemKind = Literal["task", "ref", "group"]


@dataclass(frozen=True, slots=True)
class Item:
    """Something drawn as a box: a task, a collapsed reference or a group."""

    id: str
    kind: ItemKind
    job: str
    parent: int  # the index of the group item it sits in; -1 at top level
    first: int  # its node; for an open group, its start junction
    last: int  # its node; for an open group, its end junction

    @property
    def is_group(self) -> bool:
        """An open reference with members: laid out as a block of its own."""
        return self.first != self.last


@dataclass(frozen=True)
class VisibleGraph:
    """Items in plan order (a group before its members) and the edges between their nodes."""

    items: tuple[Item, ...]
    node_item: tuple[int, ...]  # the item each node belongs to
    edges: tuple[tuple[int, int], ...]

    @property
    def node_count(self) -> int:
        return len(self.node_item)

    def weights(self) -> list[int]:
        """Per node: 1 for a box (it takes a column), 0 for a group's junction."""
        boxes = [0 if item.is_group else 1 for item in self.items]
        return [boxes[item] for item in self.node_item]


def visible_graph(graph: PlanGraph, expanded: Collection[str]) -> VisibleGraph:
    """Contract ``graph`` to what is visible when the references in ``expanded`` are open.

    Paths in ``expanded`` that name no reference of the plan are ignored (a stale page may
    still hold them). Linear in the plan's size: one pass over its nodes (in plan order, a
    start marker before what it holds), one over its edges.
    """
    parents = [parent_of(node.id) for node in graph.nodes]
    builder = _Builder(set(expanded), Counter(parents))
    for node, parent in zip(graph.nodes, parents, strict=True):
        builder.add(node, parent)
    node_of = builder.node_of
    shown = ((node_of[before], node_of[then]) for before, then in graph.edges)
    edges = dict.fromkeys(edge for edge in shown if edge[0] != edge[1])
    return VisibleGraph(tuple(builder.items), tuple(builder.node_item), tuple(edges))


def layers(visible: VisibleGraph, job: str) -> list[int]:
    """Each node's layer by longest path: the most boxes on any path from a root to it.

    Raises:
        InvalidInput: the graph has a cycle (``job`` names the plan in the message).
    """
    count = visible.node_count
    succs: list[list[int]] = [[] for _ in range(count)]
    waiting = [0] * count
    for before, then in visible.edges:
        succs[before].append(then)
        waiting[then] += 1
    layer = [0] * count
    weights = visible.weights()
    ready = [node for node in range(count) if not waiting[node]]
    for node in ready:  # ready grows while we walk it
        reach = layer[node] + weights[node]
        for then in succs[node]:
            if layer[then] < reach:
                layer[then] = reach
            waiting[then] -= 1
            if not waiting[then]:
                ready.append(then)
    if len(ready) < count:
        stuck = sorted({visible.items[visible.node_item[n]].id for n in range(count) if waiting[n]})
        raise InvalidInput(f"plan of {job!r} has a dependency cycle through {stuck[:5]}")
    return layer


def parent_of(node_id: str) -> str:
    """The path of the reference a plan node sits in; "" at top level.

    A task ``a/b/c`` and a start marker ``a/b`` sit in ``a/b`` and ``a``; an end marker
    ``a/b/`` sits where its start marker does.
    """
    return node_id.removesuffix("/").rpartition("/")[0]


def label_of(item: Item) -> str:
    """A task's name; for a reference, its name and its job's: ``load · warehouse-load``."""
    name = item.id.rpartition("/")[2]
    return name if item.kind == "task" else f"{name} · {item.job}"


class _Builder:
    def __init__(self, expanded: set[str], members: Counter[str]) -> None:
        self.expanded = expanded
        self.members = members
        self.hider: dict[str, str | None] = {"": None}
        self.items: list[Item] = []
        self.item_index: dict[str, int] = {}
        self.node_item: list[int] = []
        self.node_of: dict[str, int] = {}

    def hidden_by(self, ref: str) -> str | None:
        """The collapsed reference that hides what ``ref`` holds ("" = the top level)."""
        if ref not in self.hider:
            above = self.hidden_by(parent_of(ref))
            self.hider[ref] = above if above is not None else self._own_cover(ref)
        return self.hider[ref]

    def _own_cover(self, ref: str) -> str | None:
        return None if ref in self.expanded else ref

    def add(self, node: PlanNode, parent: str) -> None:
        """Make an item of ``node`` if it shows, else send it to the reference hiding it."""
        hider = self.hidden_by(parent)
        if hider is not None:
            self.node_of[node.id] = self.node_of[hider]
        elif node.kind == "task":
            self._add_item(node.id, "task", node.job, parent, junctions=False)
        elif node.kind == "start":
            collapsed = node.id not in self.expanded
            junctions = not collapsed and self.members[node.id] > 0
            self._add_item(node.id, "ref" if collapsed else "group", node.job, parent, junctions)

    def _add_item(self, path: str, kind: ItemKind, job: str, parent: str, junctions: bool) -> None:
        index = len(self.items)
        first = len(self.node_item)
        last = first + 1 if junctions else first
        self.node_item.extend([index] * (last - first + 1))
        self.items.append(Item(path, kind, job, self.item_index.get(parent, -1), first, last))
        self.item_index[path] = index
        self.node_of[path] = first
        if kind != "task":  # its end marker, which comes later in the plan
            self.node_of[path + "/"] = last

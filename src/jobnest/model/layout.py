"""Where the UI draws a plan: a layered (Sugiyama-style) layout, left to right.

    layout(graph, expanded) -> Layout(boxes, routes, width, height)

1. Contract the plan to what shows (``jobnest.model.visible``): a collapsed reference is
   one box, an open one a group whose borders are zero-width junctions.
2. Layer by longest path from the roots: a box's column is its dependency depth; a group
   spans the columns of its members.
3. Give every edge that skips columns a lane: a dummy unit of no height spanning the
   columns it crosses, in the level it belongs to (the top, or the inside of a group).
   A lane keeps one height, so it never cuts through a group and long edges run straight;
   edges leaving one box share a lane, as do edges entering one, so a task that many
   others wait for costs one lane, not one per edge.
4. Order and place each level, innermost groups first, so that a group is a block of known
   height in its parent (``jobnest.model.placement``).
5. Give columns their x (wider gaps where group borders stand), make every y absolute,
   and emit boxes (groups before their members) and routes.

An edge into an open group ends at the group's left border and an edge out of it starts at
its right border; inside, the left border fans out to the group's roots and its leaves run
into the right border. So a route's source or target may be a group, and the drawing stays
linear in the plan's size however wide the fan-in and fan-out.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

from jobnest.model.expand import PlanGraph
from jobnest.model.placement import ROW_GAP, Level, Unit, arrange
from jobnest.model.visible import (
    Item,
    ItemKind,
    VisibleGraph,
    label_of,
    layers,
    parent_of,
    visible_graph,
)

BOX_W = 180.0  # every box's width, and so every column's
TASK_H = 40.0
REF_H = 56.0  # a reference has room for a roll-up line under its name
COL_GAP = 64.0  # horizontal space between columns, before group borders
PAD = 14.0  # a group's padding on the left, right and bottom
TITLE = 30.0  # a group's padding on top, where its title goes
MARGIN = 20.0

Point = tuple[float, float]
Side = Literal["left", "right"]


@dataclass(frozen=True)
class Box:
    """A task, a collapsed reference (``ref``) or an open reference drawn around its members."""

    id: str  # a task's path ("load/stage") or a reference's ("load")
    kind: ItemKind
    label: str  # a task's name; "load · warehouse-load" for a reference
    job: str  # the task's job; for a reference, the job it refers to
    x: float  # top-left corner and size, in px
    y: float
    w: float
    h: float
    depth: int  # how many groups it sits in
    parent: str | None  # the id of the group it sits in


@dataclass(frozen=True)
class Route:
    """An edge between two boxes, as a polyline from the source's right to the target's left.

    Edges to and from an open group meet its border, so inside a group two routes have the
    group itself as an end: from its left border to each of its roots, and from each of its
    leaves to its right border.
    """

    source: str
    target: str
    points: tuple[Point, ...]


@dataclass(frozen=True)
class Layout:
    boxes: tuple[Box, ...]  # groups before their members: draw in this order
    routes: tuple[Route, ...]
    width: float
    height: float


def layout(graph: PlanGraph, expanded: Collection[str] = ()) -> Layout:
    """Lay ``graph`` out with the references in ``expanded`` open and every other collapsed.

    A reference inside a collapsed one stays hidden whatever ``expanded`` says; paths that
    name no reference are ignored.

    Raises:
        InvalidInput: the graph has a cycle (a plan from ``expand`` never has).
    """
    visible = visible_graph(graph, expanded)
    if not visible.items:
        return Layout((), (), 2 * MARGIN, 2 * MARGIN)
    return _Scene(visible, layers(visible, graph.job)).draw()


def refs_with_failures(graph: PlanGraph, failed_paths: Iterable[str]) -> set[str]:
    """Every reference of ``graph`` that holds one of ``failed_paths``, at any depth."""
    refs = {node.id for node in graph.nodes if node.kind == "start"}
    found: set[str] = set()
    for path in failed_paths:
        ref = parent_of(path)
        while ref and ref not in found:
            if ref in refs:
                found.add(ref)
            ref = parent_of(ref)
    return found


def layout_to_dict(layout: Layout) -> dict[str, Any]:
    """The layout as compact JSON-able data: coordinates rounded to whole pixels."""
    return {
        "width": round(layout.width),
        "height": round(layout.height),
        "boxes": [_box_to_dict(box) for box in layout.boxes],
        "routes": [
            {
                "source": route.source,
                "target": route.target,
                "points": [[round(x), round(y)] for x, y in route.points],
            }
            for route in layout.routes
        ],
    }


def _box_to_dict(box: Box) -> dict[str, Any]:
    return {
        "id": box.id,
        "kind": box.kind,
        "label": box.label,
        "job": box.job,
        "x": round(box.x),
        "y": round(box.y),
        "w": round(box.w),
        "h": round(box.h),
        "depth": box.depth,
        "parent": box.parent,
    }


class _Path(NamedTuple):
    """A route before coordinates: its ends (a unit and the side it is met on) and, when it
    skips layers, the lane it runs along from layer ``first`` to layer ``last``."""

    source: str
    target: str
    start: tuple[Unit, Side]
    end: tuple[Unit, Side]
    lane: Unit | None = None
    first: int = 0
    last: int = -1


class _Skip(NamedTuple):
    """A path that skips layers, waiting for its lane: its slot in the list, its level."""

    slot: int
    path: _Path
    level: Level


class _Scene:
    """The units of every level, the paths between them, and the columns' x."""

    def __init__(self, visible: VisibleGraph, layer: list[int]) -> None:
        self.visible = visible
        self.layer = layer
        self.levels: dict[int, Level] = {-1: Level()}  # the top, then each group by item
        self.units: list[Unit] = []  # by item
        self.paths: list[_Path] = []
        self.ties = 0
        self.borders: dict[int, tuple[int, int]] = {}  # group item -> borders left, right
        for index in range(len(visible.items)):
            self._add_unit(index)
        skips = [skip for edge in visible.edges if (skip := self._add_path(*edge))]
        for bundle in _bundles(skips):
            self._add_lane(bundle)

    def _tie(self) -> int:
        self.ties += 1
        return self.ties

    def _add_unit(self, index: int) -> None:
        item = self.visible.items[index]
        first = self.layer[item.first]
        if item.is_group:
            self.levels[index] = inner = Level()
            last = self.layer[item.last] - 1
            unit = Unit(first, last, tie=self._tie(), item=index, gap=ROW_GAP, inner=inner)
        else:
            h = TASK_H if item.kind == "task" else REF_H
            unit = Unit(first, first, h, self._tie(), index, ROW_GAP, in_off=h / 2, out_off=h / 2)
        self.levels[item.parent].units.append(unit)
        self.units.append(unit)

    def _add_path(self, before: int, then: int) -> _Skip | None:
        """Add the path of an edge; one that skips layers is returned to get a lane later."""
        items, node_item = self.visible.items, self.visible.node_item
        source, target = items[node_item[before]], items[node_item[then]]
        head, tail = self.units[node_item[before]], self.units[node_item[then]]
        if source.is_group and before == source.first:  # the group's border fans out
            self.levels[node_item[before]].entries.append(tail)
            self.paths.append(_Path(source.id, target.id, (head, "left"), (tail, "left")))
            return None
        end: tuple[Unit, Side]
        if target.is_group and then == target.last:  # a leaf runs into its group's border
            level, end, stop = self.levels[node_item[then]], (tail, "right"), tail.hi + 1
        else:
            level, end, stop = self.levels[source.parent], (tail, "left"), tail.lo
        path = _Path(source.id, target.id, (head, "right"), end, None, head.hi + 1, stop - 1)
        self.paths.append(path)
        if path.first <= path.last:
            return _Skip(len(self.paths) - 1, path, level)
        _link(head, end, level)
        return None

    def _add_lane(self, bundle: list[_Skip]) -> None:
        """One lane for paths that share a start, or an end, or for a path of its own."""
        level = bundle[0].level
        paths = [skip.path for skip in bundle]
        lane = Unit(min(p.first for p in paths), max(p.last for p in paths), tie=self._tie())
        level.units.append(lane)
        for head in dict.fromkeys(path.start[0] for path in paths):
            _link(head, (lane, "left"), level)
        for end in dict.fromkeys(path.end for path in paths):
            _link(lane, end, level)
        for skip in bundle:
            self.paths[skip.slot] = skip.path._replace(lane=lane)

    def draw(self) -> Layout:
        for index, level in reversed(self.levels.items()):
            arrange(level)
            if index >= 0:
                self._close(index, level)
        lefts, rights = self._border_counts()
        columns = _columns(lefts, rights)
        self._place(columns)
        boxes: list[Box] = []
        self._emit(self.levels[-1], None, 0, boxes)
        routes = tuple(_route(path, columns) for path in self.paths)
        width = columns[-1] + BOX_W + PAD * rights[-1] + MARGIN
        return Layout(tuple(boxes), routes, width, self.levels[-1].height + 2 * MARGIN)

    def _close(self, index: int, level: Level) -> None:
        """Size the block of a group once its inside is arranged; count nested borders."""
        unit = self.units[index]
        unit.h = TITLE + level.height + PAD
        unit.in_off = TITLE + _mean(entry.y + entry.in_off for entry in level.entries)
        unit.out_off = TITLE + _mean(exit_.y + exit_.out_off for exit_ in level.exits)
        blocks = [child for child in level.units if child.inner is not None]
        left = max((self.borders[b.item][0] for b in blocks if b.lo == unit.lo), default=0)
        right = max((self.borders[b.item][1] for b in blocks if b.hi == unit.hi), default=0)
        self.borders[index] = (left + 1, right + 1)

    def _border_counts(self) -> tuple[list[int], list[int]]:
        """How many group borders stand, at most, left and right of each column."""
        lefts = [0] * (max(self.layer) + 1)
        rights = lefts.copy()
        for index, (left, right) in self.borders.items():
            unit = self.units[index]
            lefts[unit.lo] = max(lefts[unit.lo], left)
            rights[unit.hi] = max(rights[unit.hi], right)
        return lefts, rights

    def _place(self, columns: list[float]) -> None:
        """Give every unit its x and turn y from its level's top into y on the page."""
        for index, level in self.levels.items():  # outer levels first
            origin = MARGIN if index < 0 else self.units[index].y + TITLE
            for unit in level.units:
                unit.y += origin
                left, right = self.borders.get(unit.item, (0, 0))
                unit.left = columns[unit.lo] - PAD * left
                unit.right = columns[unit.hi] + BOX_W + PAD * right

    def _emit(self, level: Level, parent: str | None, depth: int, out: list[Box]) -> None:
        """Append the boxes of ``level``, each group followed by its own."""
        for unit in level.order:
            if unit.item >= 0:
                item = self.visible.items[unit.item]
                out.append(_box(item, unit, depth, parent))
                if unit.inner is not None:
                    self._emit(unit.inner, item.id, depth + 1, out)


def _box(item: Item, unit: Unit, depth: int, parent: str | None) -> Box:
    label, width = label_of(item), unit.right - unit.left
    return Box(item.id, item.kind, label, item.job, unit.left, unit.y, width, unit.h, depth, parent)


def _bundles(skips: list[_Skip]) -> list[list[_Skip]]:
    """Paths that skip layers, grouped to share lanes: first those leaving one unit, then
    those entering one (or one group's right border); every other path has a lane of its own.

    So a task many later tasks wait for, or one that waits for many earlier ones, costs one
    lane, not one per edge: the drawing stays linear in size.
    """
    leaving = Counter(skip.path.start for skip in skips)
    bundles: dict[object, list[_Skip]] = defaultdict(list)
    rest = []
    for skip in skips:
        if leaving[skip.path.start] > 1:
            bundles["out", skip.path.start].append(skip)
        else:
            rest.append(skip)
    entering = Counter(skip.path.end for skip in rest)
    for skip in rest:
        bundles[("in", skip.path.end) if entering[skip.path.end] > 1 else skip].append(skip)
    return list(bundles.values())


def _link(before: Unit, end: tuple[Unit, Side], level: Level) -> None:
    """Make ``before`` a neighbour of ``end``'s unit, or an exit of the group ``level`` is."""
    unit, side = end
    if side == "left":
        before.succs.append(unit)
        unit.preds.append(before)
    else:
        level.exits.append(before)


def _route(path: _Path, columns: list[float]) -> Route:
    points = [_anchor(*path.start)]
    if path.lane is not None:
        y = path.lane.y
        points += [(columns[path.first], y), (columns[path.last] + BOX_W, y)]
    points.append(_anchor(*path.end))
    return Route(path.source, path.target, tuple(points))


def _columns(lefts: list[int], rights: list[int]) -> list[float]:
    """The x of each column: box widths and gaps, widened where group borders stand."""
    x = MARGIN + PAD * lefts[0]
    columns = [x]
    for layer in range(1, len(lefts)):
        x += BOX_W + COL_GAP + PAD * (rights[layer - 1] + lefts[layer])
        columns.append(x)
    return columns


def _anchor(unit: Unit, side: Side) -> Point:
    if side == "left":
        return unit.left, unit.y + unit.in_off
    return unit.right, unit.y + unit.out_off


def _mean(values: Iterable[float]) -> float:
    listed = list(values)
    return sum(listed) / len(listed)

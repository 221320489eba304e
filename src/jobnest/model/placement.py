"""Order and place the units of one nesting level of a layered drawing.

A level is the top of the drawing or the inside of one open group. Its units are its boxes,
its lanes (edges that skip layers, as units of no height spanning the layers they cross)
and its child groups, each a block spanning the layers of its members. Within every layer
the units are ordered by barycenter sweeps; a unit spanning several layers takes one key
per sweep, the same in all its layers, so such units keep one order everywhere and can be
stacked without overlap: a lane never cuts through a block.
Then the units are placed top to bottom in one order consistent with every layer (a
skyline over the layers: a block lands below everything above it in any of its layers),
each as close as it may get to the centre of its neighbours.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import pairwise

SWEEPS = 4  # barycenter passes: down, up, down, up
RELAX_ROUNDS = 2  # passes bottom up and top down that pull units toward their neighbours
ROW_GAP = 20.0  # vertical space below a box
LANE_GAP = 12.0  # vertical space below a lane


@dataclass(eq=False, slots=True)
class Unit:
    """A box, a lane or a child group's block, as placed within its level."""

    lo: int  # first layer
    hi: int  # last layer (== lo but for blocks)
    h: float = 0.0  # height; 0 for a lane
    tie: int = 0  # creation order: breaks ties so equal input gives equal output
    item: int = -1  # the visible item it draws; -1 for a lane
    gap: float = LANE_GAP  # the space it keeps free below itself
    inner: Level | None = None  # the level inside a block
    in_off: float = 0.0  # where edges come in, from its top
    out_off: float = 0.0  # where edges leave, from its top
    preds: list[Unit] = field(default_factory=list)
    succs: list[Unit] = field(default_factory=list)
    above: list[Unit] = field(default_factory=list)  # its neighbour above, in each layer
    below: list[Unit] = field(default_factory=list)  # its neighbour below, in each layer
    key: float = 0.0
    pos_lo: int = 0  # its index in its first layer
    pos_hi: int = 0  # its index in its last layer
    y: float = 0.0
    placed: bool = False
    left: float = 0.0  # x of its left and right side, once columns are known
    right: float = 0.0

    @property
    def bottom(self) -> float:
        return self.y + self.h + self.gap


@dataclass(eq=False)
class Level:
    """The units of one level; a group's level also knows the units at its borders."""

    units: list[Unit] = field(default_factory=list)
    entries: list[Unit] = field(default_factory=list)  # the group's roots (its left port)
    exits: list[Unit] = field(default_factory=list)  # what runs into its right port
    order: list[Unit] = field(default_factory=list)  # top to bottom, once arranged
    height: float = 0.0


def arrange(level: Level) -> None:
    """Order the units of ``level`` and give each a ``y`` from the level's top (0)."""
    base = min(unit.lo for unit in level.units)
    layers = _layers(level.units, base)
    for sweep in range(SWEEPS):
        _sweep(layers, base, level.units, down=sweep % 2 == 0)
    level.order = sorted(level.units, key=_rank)
    _link_neighbours(layers)
    for unit in level.order:
        _drop(unit)
    _relax(level.order)
    top = min(unit.y for unit in level.units)
    for unit in level.units:
        unit.y -= top
    level.height = max(unit.y + unit.h for unit in level.units)


def _layers(units: list[Unit], base: int) -> list[list[Unit]]:
    layers: list[list[Unit]] = [[] for _ in range(max(unit.hi for unit in units) - base + 1)]
    for unit in units:
        for layer in range(unit.lo - base, unit.hi - base + 1):
            layers[layer].append(unit)
    for index, members in enumerate(layers):
        _number(members, index + base)
    return layers


def _rank(unit: Unit) -> tuple[float, int]:
    return unit.key, unit.tie


def _number(members: list[Unit], layer: int) -> None:
    for index, unit in enumerate(members):
        if unit.lo == layer:
            unit.pos_lo = index
        if unit.hi == layer:
            unit.pos_hi = index


def _sweep(layers: list[list[Unit]], base: int, units: list[Unit], down: bool) -> None:
    for unit in units:
        if unit.hi > unit.lo:
            unit.key = _span_key(unit)
    for index in range(len(layers)) if down else reversed(range(len(layers))):
        members = layers[index]
        for unit in members:
            if unit.hi == unit.lo:
                unit.key = _barycenter(unit, down)
        members.sort(key=_rank)
        _number(members, index + base)


def _barycenter(unit: Unit, down: bool) -> float:
    if down and unit.preds:
        return sum(pred.pos_hi for pred in unit.preds) / len(unit.preds)
    if not down and unit.succs:
        return sum(succ.pos_lo for succ in unit.succs) / len(unit.succs)
    return float(unit.pos_lo)


def _span_key(unit: Unit) -> float:
    """One key for all the layers a unit spans: the mean position of its neighbours."""
    spots = [pred.pos_hi for pred in unit.preds] + [succ.pos_lo for succ in unit.succs]
    return sum(spots) / len(spots) if spots else (unit.pos_lo + unit.pos_hi) / 2


def _link_neighbours(layers: list[list[Unit]]) -> None:
    for members in layers:
        for upper, lower in pairwise(members):
            upper.below.append(lower)
            lower.above.append(upper)


def _drop(unit: Unit) -> None:
    """Place ``unit`` below its neighbours above, and no higher than its placed neighbours."""
    floor = max((above.bottom for above in unit.above), default=0.0)
    wish = _wish(unit)
    unit.y = floor if wish is None else max(floor, wish)
    unit.placed = True


def _wish(unit: Unit) -> float | None:
    """The ``y`` that lines ``unit``'s ports up with its placed neighbours', on average."""
    total, count = 0.0, 0
    for pred in unit.preds:
        if pred.placed:
            total, count = total + pred.y + pred.out_off - unit.in_off, count + 1
    for succ in unit.succs:
        if succ.placed:
            total, count = total + succ.y + succ.in_off - unit.out_off, count + 1
    return total / count if count else None


def _relax(order: list[Unit]) -> None:
    """Move each unit toward its neighbours as far as its layers allow: bottom up, top down."""
    for unit in [*reversed(order), *order] * RELAX_ROUNDS:
        wish = _wish(unit)
        if wish is not None:
            floor = max((above.bottom for above in unit.above), default=0.0)
            ceiling = min((below.y for below in unit.below), default=math.inf)
            unit.y = min(max(wish, floor), ceiling - unit.h - unit.gap)

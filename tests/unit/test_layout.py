"""The layered layout the UI draws: boxes in columns by dependency, groups around members."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import defaultdict
from itertools import pairwise
from typing import Any

import pytest

from jobnest.errors import InvalidInput
from jobnest.model.expand import Limits, PlanGraph, PlanNode, expand, plan_to_dict
from jobnest.model.job import Job, parse_job
from jobnest.model.layout import (
    TITLE,
    Box,
    Layout,
    layout,
    layout_to_dict,
    refs_with_failures,
)


def cmd(name: str, *after: str) -> dict[str, Any]:
    return {"name": name, "command": f"run {name}", "after": list(after)}


def ref(name: str, job: str, *after: str) -> dict[str, Any]:
    return {"name": name, "job": job, "after": list(after)}


def catalog(**jobs: list[dict[str, Any]]) -> dict[str, Job]:
    return {name: parse_job({"name": name, "tasks": tasks}) for name, tasks in jobs.items()}


def nightly() -> PlanGraph:
    """Two levels of references, an empty child, long edges and a fan."""
    jobs = catalog(
        inner=[cmd("a"), cmd("b", "a"), cmd("c", "a"), cmd("d", "b", "c")],
        **{
            "warehouse-load": [
                cmd("stage"),
                ref("sub", "inner", "stage"),
                cmd("check", "stage"),
                cmd("merge", "sub", "check"),
            ]
        },
        empty=[],
        nightly=[
            cmd("extract"),
            cmd("fetch"),
            ref("load", "warehouse-load", "extract", "fetch"),
            ref("e", "empty", "extract"),
            cmd("report", "load", "e"),
            cmd("late", "extract"),
            cmd("final", "report", "late", "fetch"),
        ],
    )
    return expand(jobs["nightly"], jobs.get)


OPEN_SETS = [(), ("load",), ("load", "load/sub", "e"), ("load/sub",), ("e",)]


def by_id(lay: Layout) -> dict[str, Box]:
    return {box.id: box for box in lay.boxes}


def ancestors(box: Box, boxes: dict[str, Box]) -> list[str]:
    chain = []
    while box.parent is not None:
        chain.append(box.parent)
        box = boxes[box.parent]
    return chain


def contains(outer: Box, inner: Box) -> bool:
    return (
        outer.x <= inner.x
        and outer.y <= inner.y
        and inner.x + inner.w <= outer.x + outer.w
        and inner.y + inner.h <= outer.y + outer.h
    )


def overlap(a: Box, b: Box) -> bool:
    return a.x < b.x + b.w and b.x < a.x + a.w and a.y < b.y + b.h and b.y < a.y + a.h


def shown_as(task: str, boxes: dict[str, Box]) -> str:
    """The box a task shows as: itself, or the outermost collapsed reference holding it."""
    parts = task.split("/")
    for depth in range(1, len(parts)):
        prefix = "/".join(parts[:depth])
        if boxes[prefix].kind == "ref":
            return prefix
    return task


def task_dependencies(plan: PlanGraph) -> set[tuple[str, str]]:
    """Every (before, after) pair of tasks the plan orders, directly or through others."""
    succ: dict[str, list[str]] = defaultdict(list)
    for before, then in plan.edges:
        succ[before].append(then)
    tasks = {node.id for node in plan.nodes if node.is_task}
    pairs = set()
    for start in tasks:
        seen, stack = set(), [start]
        while stack:
            for nxt in succ[stack.pop()]:
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        pairs |= {(start, other) for other in seen & tasks}
    return pairs


def segment_hits(box: Box, a: tuple[float, float], b: tuple[float, float]) -> bool:
    """Does the segment a-b pass through the inside of ``box`` (its outline excluded)?"""
    low, high = 0.0, 1.0
    (x0, y0), (dx, dy) = a, (b[0] - a[0], b[1] - a[1])
    for p, q in (
        (-dx, x0 - box.x - 0.5),
        (dx, box.x + box.w - 0.5 - x0),
        (-dy, y0 - box.y - 0.5),
        (dy, box.y + box.h - 0.5 - y0),
    ):
        if p == 0:
            if q < 0:
                return False
        elif p < 0:
            low = max(low, q / p)
        else:
            high = min(high, q / p)
    return low < high


# --- what shows ------------------------------------------------------------------------------


def test_collapsed_reference_is_one_box_that_hides_its_tasks() -> None:
    boxes = by_id(layout(nightly()))

    assert set(boxes) == {"extract", "fetch", "load", "e", "report", "late", "final"}
    load = boxes["load"]
    assert (load.kind, load.label, load.job) == ("ref", "load · warehouse-load", "warehouse-load")
    assert (load.depth, load.parent) == (0, None)
    assert load.h > boxes["extract"].h  # room for the roll-up line


def test_tasks_are_labelled_by_name_and_carry_their_job() -> None:
    boxes = by_id(layout(nightly(), {"load"}))

    stage = boxes["load/stage"]
    assert (stage.kind, stage.label, stage.job) == ("task", "stage", "warehouse-load")
    assert (boxes["extract"].label, boxes["extract"].job) == ("extract", "nightly")


def test_expanding_shows_the_child_tasks_inside_a_group_box() -> None:
    boxes = by_id(layout(nightly(), {"load"}))

    group = boxes["load"]
    assert (group.kind, group.label, group.job) == (
        "group",
        "load · warehouse-load",
        "warehouse-load",
    )
    members = [box for box in boxes.values() if box.parent == "load"]
    assert {box.id for box in members} == {"load/stage", "load/sub", "load/check", "load/merge"}
    assert boxes["load/sub"].kind == "ref"
    for member in members:
        assert contains(group, member)
        assert member.depth == 1
        assert member.y >= group.y + TITLE  # the title has room above the members


def test_nested_groups_sit_inside_outer_ones() -> None:
    boxes = by_id(layout(nightly(), {"load", "load/sub"}))

    outer, inner = boxes["load"], boxes["load/sub"]
    assert inner.kind == "group" and inner.parent == "load" and inner.depth == 1
    assert contains(outer, inner)
    for name in "abcd":
        task = boxes[f"load/sub/{name}"]
        assert task.parent == "load/sub" and task.depth == 2
        assert contains(inner, task)


def test_groups_come_before_their_members() -> None:
    lay = layout(nightly(), {"load", "load/sub"})
    order = [box.id for box in lay.boxes]

    for box in lay.boxes:
        if box.parent is not None:
            assert order.index(box.parent) < order.index(box.id)


def test_reference_inside_a_collapsed_one_stays_hidden() -> None:
    boxes = by_id(layout(nightly(), {"load/sub"}))

    assert boxes["load"].kind == "ref"
    assert not any(box.startswith("load/") for box in boxes)


def test_paths_that_name_no_reference_are_ignored() -> None:
    plan = nightly()

    assert layout(plan, {"nope", "extract", "load/zz"}) == layout(plan)


def assert_dependencies_point_right(plan: PlanGraph, lay: Layout) -> None:
    boxes = by_id(lay)
    for before, then in task_dependencies(plan):
        first, second = boxes[shown_as(before, boxes)], boxes[shown_as(then, boxes)]
        if first != second:
            assert first.x + first.w < second.x, (before, then)


@pytest.mark.parametrize("open_", OPEN_SETS)
def test_every_dependency_points_right(open_: tuple[str, ...]) -> None:
    plan = nightly()
    assert_dependencies_point_right(plan, layout(plan, open_))


def assert_nested_without_overlap(lay: Layout) -> None:
    """Siblings are disjoint and every box lies inside its group: no two boxes overlap
    unless one is a group around the other."""
    siblings: dict[str | None, list[Box]] = defaultdict(list)
    for box in lay.boxes:
        siblings[box.parent].append(box)
    boxes = by_id(lay)
    for parent, members in siblings.items():
        for index, a in enumerate(members):
            assert parent is None or contains(boxes[parent], a), (parent, a.id)
            for b in members[index + 1 :]:
                assert not overlap(a, b), (a.id, b.id)
    assert all(box.x + box.w <= lay.width and box.y + box.h <= lay.height for box in lay.boxes)
    assert all(box.x >= 0 and box.y >= 0 for box in lay.boxes)


@pytest.mark.parametrize("open_", OPEN_SETS)
def test_no_two_boxes_overlap_but_a_group_holds_its_members(open_: tuple[str, ...]) -> None:
    assert_nested_without_overlap(layout(nightly(), open_))


def test_groups_opening_in_one_column_keep_clear_of_the_box_before() -> None:
    jobs = catalog(
        **{f"j{i}": [ref("in", f"j{i + 1}")] for i in range(6)},
        j6=[cmd("work")],
        top=[cmd("first"), ref("deep", "j0", "first"), cmd("last", "deep")],
    )
    paths = ["deep", *("deep" + "/in" * depth for depth in range(1, 7))]
    lay = layout(expand(jobs["top"], jobs.get), paths)

    assert [box.depth for box in lay.boxes if box.kind == "group"] == list(range(7))
    assert_nested_without_overlap(lay)


def test_a_fork_and_a_join_sit_level_with_the_middle_of_their_branches() -> None:
    branches = [cmd(f"b{i}", "fork") for i in (1, 2, 3)]
    jobs = catalog(
        f=[cmd("p"), cmd("fork", "p"), *branches, cmd("join", "b1", "b2", "b3"), cmd("q", "join")]
    )
    boxes = by_id(layout(expand(jobs["f"], jobs.get)))

    middle = boxes["b2"].y + boxes["b2"].h / 2
    for name in ("p", "fork", "join", "q"):
        assert abs(boxes[name].y + boxes[name].h / 2 - middle) < 5, name
    assert boxes["b1"].y < boxes["b2"].y < boxes["b3"].y


def test_unconnected_tasks_stack_in_one_column() -> None:
    jobs = catalog(loose=[cmd(f"t{i}") for i in range(5)])
    lay = layout(expand(jobs["loose"], jobs.get))

    assert len({box.x for box in lay.boxes}) == 1
    assert_nested_without_overlap(lay)


def random_plan(seed: int) -> PlanGraph:
    """Jobs j0..j5 of commands and references to later jobs, wired at random."""
    rnd = random.Random(seed)
    jobs = {}
    for number in reversed(range(6)):
        tasks: list[dict[str, Any]] = []
        for index in range(rnd.randint(0 if number else 3, 7)):
            after = rnd.sample([t["name"] for t in tasks], min(len(tasks), rnd.randint(0, 3)))
            if number < 5 and rnd.random() < 0.3:
                tasks.append(ref(f"r{index}", f"j{rnd.randint(number + 1, 5)}", *after))
            else:
                tasks.append(cmd(f"t{index}", *after))
        jobs[f"j{number}"] = parse_job({"name": f"j{number}", "tasks": tasks})
    return expand(jobs["j0"], jobs.get)


@pytest.mark.parametrize("seed", range(40))
def test_random_plans_keep_every_rule(seed: int) -> None:
    plan = random_plan(seed)
    refs = [node.id for node in plan.nodes if node.kind == "start"]
    for open_ in ([], refs, refs[::2]):
        lay = layout(plan, open_)
        assert_nested_without_overlap(lay)
        assert_dependencies_point_right(plan, lay)
        assert_routes_meet_their_ends(lay)
        assert_routes_cross_no_box(lay)


# --- routes ----------------------------------------------------------------------------------


def assert_routes_meet_their_ends(lay: Layout) -> None:
    boxes = by_id(lay)
    for route in lay.routes:
        source, target = boxes[route.source], boxes[route.target]
        (x0, y0), (x1, y1) = route.points[0], route.points[-1]
        fans_out = source.id in ancestors(target, boxes)  # a group's left border to a root
        runs_in = target.id in ancestors(source, boxes)  # a leaf to its group's right border
        assert x0 == pytest.approx(source.x if fans_out else source.x + source.w)
        assert x1 == pytest.approx(target.x + target.w if runs_in else target.x)
        assert source.y < y0 < source.y + source.h
        assert target.y < y1 < target.y + target.h
        xs = [x for x, _ in route.points]
        assert xs == sorted(xs)


@pytest.mark.parametrize("open_", OPEN_SETS)
def test_routes_start_at_the_source_and_end_at_the_target(open_: tuple[str, ...]) -> None:
    assert_routes_meet_their_ends(layout(nightly(), open_))


def assert_routes_cross_no_box(lay: Layout) -> None:
    for route in lay.routes:
        for box in lay.boxes:
            if box.kind == "group" or box.id in (route.source, route.target):
                continue
            for a, b in pairwise(route.points):
                assert not segment_hits(box, a, b), (route.source, route.target, box.id)


@pytest.mark.parametrize("open_", OPEN_SETS)
def test_routes_never_cross_a_box(open_: tuple[str, ...]) -> None:
    assert_routes_cross_no_box(layout(nightly(), open_))


def test_edges_into_an_open_group_meet_its_border() -> None:
    lay = layout(nightly(), {"load"})
    routes = {(route.source, route.target) for route in lay.routes}

    assert {("extract", "load"), ("fetch", "load"), ("load", "report")} <= routes
    assert ("load", "load/stage") in routes  # the border fans out to the roots
    assert ("load/merge", "load") in routes  # the leaves run into the border
    assert not any(source == "extract" and target.startswith("load/") for source, target in routes)


def test_a_route_into_a_collapsed_reference_stands_for_all_its_edges() -> None:
    routes = [(r.source, r.target) for r in layout(nightly()).routes]

    assert sorted(routes) == sorted(
        [
            ("extract", "load"),
            ("fetch", "load"),
            ("extract", "e"),
            ("extract", "late"),
            ("load", "report"),
            ("e", "report"),
            ("report", "final"),
            ("late", "final"),
            ("fetch", "final"),
        ]
    )


def test_a_long_edge_runs_straight_over_the_columns_it_skips() -> None:
    lay = layout(nightly())
    (route,) = [r for r in lay.routes if (r.source, r.target) == ("fetch", "final")]

    assert len(route.points) == 4
    assert route.points[1][1] == route.points[2][1]


def test_edges_from_one_task_or_into_one_share_a_lane() -> None:
    chain = [cmd(f"t{i}", f"t{i - 1}" if i > 1 else "setup", "setup") for i in range(1, 100)]
    jobs = catalog(p=[cmd("setup"), *chain, cmd("end", *(f"t{i}" for i in range(1, 100)))])
    lay = layout(expand(jobs["p"], jobs.get))

    lanes_out = {r.points[1][1] for r in lay.routes if r.source == "setup" and len(r.points) > 2}
    lanes_in = {r.points[-2][1] for r in lay.routes if r.target == "end" and len(r.points) > 2}
    assert len(lanes_out) == len(lanes_in) == 1
    assert lay.height < 200  # not one row per long edge


def test_wide_fan_in_and_out_through_a_group_stays_linear() -> None:
    jobs = catalog(
        child=[cmd(f"root{i}") for i in range(300)],
        top=[
            *(cmd(f"pre{i}") for i in range(300)),
            ref("c", "child", *(f"pre{i}" for i in range(300))),
        ],
    )
    lay = layout(expand(jobs["top"], jobs.get), {"c"})

    assert len(lay.routes) == 300 + 300 + 300  # into the group, fan out, back to its border


# --- empty children --------------------------------------------------------------------------


def test_empty_child_is_a_box_collapsed_or_open() -> None:
    plan = nightly()

    for open_, kind in (((), "ref"), ({"e"}, "group")):
        boxes = by_id(layout(plan, open_))
        e = boxes["e"]
        assert (e.kind, e.label) == (kind, "e · empty")
        assert not any(box.parent == "e" for box in boxes.values())
        assert boxes["extract"].x < e.x < boxes["report"].x


def test_empty_child_alone_is_laid_out() -> None:
    jobs = catalog(empty=[], top=[ref("e", "empty")])
    plan = expand(jobs["top"], jobs.get)

    for open_ in ((), {"e"}):
        lay = layout(plan, open_)
        assert [box.id for box in lay.boxes] == ["e"]
        assert lay.routes == ()


def test_empty_plan_lays_out_to_nothing() -> None:
    jobs = catalog(none=[])
    lay = layout(expand(jobs["none"], jobs.get))

    assert (lay.boxes, lay.routes) == ((), ())
    assert lay.width > 0 and lay.height > 0


def test_a_cycle_in_a_hand_built_graph_is_refused_with_its_nodes() -> None:
    nodes = tuple(PlanNode(name, "task", "j", "true") for name in ("a", "b", "c"))
    plan = PlanGraph("j", nodes, (("a", "b"), ("b", "c"), ("c", "b")))

    with pytest.raises(InvalidInput, match=r"'j'.*cycle.*'b', 'c'"):
        layout(plan)


# --- failures open their references ----------------------------------------------------------


def test_refs_with_failures_names_every_reference_around_a_failed_task() -> None:
    plan = nightly()

    assert refs_with_failures(plan, ["load/sub/c"]) == {"load", "load/sub"}
    assert refs_with_failures(plan, ["load/check", "load/sub/d"]) == {"load", "load/sub"}
    assert refs_with_failures(plan, ["load/check"]) == {"load"}


def test_refs_with_failures_of_top_level_tasks_is_empty() -> None:
    assert refs_with_failures(nightly(), ["extract", "final"]) == set()
    assert refs_with_failures(nightly(), []) == set()


def test_opening_refs_with_failures_shows_the_failed_task() -> None:
    plan = nightly()

    boxes = by_id(layout(plan, refs_with_failures(plan, ["load/sub/b"])))

    assert boxes["load/sub/b"].kind == "task"
    assert boxes["e"].kind == "ref"


# --- size, output, determinism ---------------------------------------------------------------


def big_plan() -> PlanGraph:
    """5,000 tasks: 10 references to a job of 10 references to a job of 50 tasks."""
    leaf = [
        cmd(f"t{i}", *([f"t{i - 10}", f"t{i - 10 + (i * 7) % 10}"] if i >= 10 else []))
        for i in range(50)
    ]
    jobs = catalog(
        leaf=leaf,
        mid=[ref("r0", "leaf"), *(ref(f"r{i}", "leaf", f"r{(i - 1) // 2}") for i in range(1, 10))],
        top=[ref("m0", "mid"), *(ref(f"m{i}", "mid", f"m{i - 1}", "m0") for i in range(1, 10))],
    )
    return expand(jobs["top"], jobs.get, Limits(max_tasks=10_000))


def test_a_5000_task_plan_lays_out_fully_expanded() -> None:
    plan = big_plan()
    refs = [node.id for node in plan.nodes if node.kind == "start"]
    assert plan.task_count == 5000

    lay = layout(plan, refs)

    boxes = by_id(lay)
    assert sum(box.kind == "task" for box in lay.boxes) == 5000
    assert sum(box.kind == "group" for box in lay.boxes) == 110
    for before, then in plan.edges:
        if before in boxes and then in boxes and boxes[before].kind == boxes[then].kind == "task":
            assert boxes[before].x < boxes[then].x
    assert_nested_without_overlap(lay)


def test_a_5000_task_plan_collapsed_shows_only_the_top() -> None:
    lay = layout(big_plan())

    assert [box.kind for box in lay.boxes] == ["ref"] * 10


def test_layout_to_dict_is_compact_json() -> None:
    data = layout_to_dict(layout(nightly(), {"load"}))

    assert json.loads(json.dumps(data)) == data
    assert set(data) == {"width", "height", "boxes", "routes"}
    box = data["boxes"][0]
    assert set(box) == {"id", "kind", "label", "job", "x", "y", "w", "h", "depth", "parent"}
    numbers = [box[k] for box in data["boxes"] for k in "xywh"]
    numbers += [n for route in data["routes"] for point in route["points"] for n in point]
    assert all(isinstance(n, int) for n in numbers)


def test_same_input_gives_same_output() -> None:
    plan = nightly()

    assert layout(plan, ["load", "e", "load/sub"]) == layout(nightly(), ("load/sub", "e", "load"))


SCRIPT = """
import json, sys
from jobnest.model.expand import plan_from_dict
from jobnest.model.layout import layout, layout_to_dict
given = json.load(sys.stdin)
print(json.dumps(layout_to_dict(layout(plan_from_dict(given["plan"]), set(given["open"])))))
"""


def test_same_input_gives_same_output_whatever_the_hash_seed() -> None:
    plan = big_plan()
    refs = [node.id for node in plan.nodes if node.kind == "start"][:40]
    given = json.dumps({"plan": plan_to_dict(plan), "open": refs})
    outputs = set()
    for seed in ("1", "2"):
        done = subprocess.run(
            [sys.executable, "-c", SCRIPT],
            input=given,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(done.stdout)
    assert len(outputs) == 1

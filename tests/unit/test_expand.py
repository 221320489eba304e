"""Expansion: jobs inside jobs become one flat, linear plan graph named by paths."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from graphlib import TopologicalSorter
from typing import Any

import pytest

from jobnest.errors import InvalidInput, InvalidJob, JobCycleError, PlanTooLarge
from jobnest.model.expand import (
    Limits,
    PlanGraph,
    expand,
    plan_from_dict,
    plan_to_dict,
)
from jobnest.model.job import Job, parse_job


def names(*parts: str) -> str:
    """A regex matching a message that contains every one of ``parts``, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(part)})" for part in parts)


def cmd(name: str, *after: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "command": f"run {name}", "after": list(after), **extra}


def ref(name: str, job: str, *after: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "job": job, "after": list(after), **extra}


def catalog(**jobs: list[dict[str, Any]]) -> dict[str, Job]:
    """Jobs by name, each given as its list of tasks."""
    return {name: parse_job({"name": name, "tasks": tasks}) for name, tasks in jobs.items()}


def plan_of(top: str, jobs: dict[str, Job], limits: Limits | None = None) -> PlanGraph:
    return expand(jobs[top], jobs.get, limits)


def task_ids(plan: PlanGraph) -> list[str]:
    return [node.id for node in plan.nodes if node.is_task]


def task_order(plan: PlanGraph) -> list[str]:
    """The plan's tasks in a topological order of its edges (markers left out)."""
    before: dict[str, set[str]] = {node.id: set() for node in plan.nodes}
    for first, then in plan.edges:
        before[then].add(first)
    kinds = {node.id: node.kind for node in plan.nodes}
    return [n for n in TopologicalSorter(before).static_order() if kinds[n] == "task"]


def reachable(plan: PlanGraph, start: str) -> set[str]:
    succ: dict[str, list[str]] = defaultdict(list)
    for first, then in plan.edges:
        succ[first].append(then)
    seen, stack = set(), [start]
    while stack:
        for nxt in succ[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def chain(depth: int) -> dict[str, Job]:
    """j0 → j1 → ... → j<depth>: ``depth`` levels of references, a command at the bottom."""
    jobs = {f"j{depth}": parse_job({"name": f"j{depth}", "tasks": [cmd("work")]})}
    for level in reversed(range(depth)):
        name = f"j{level}"
        jobs[name] = parse_job({"name": name, "tasks": [ref("in", f"j{level + 1}")]})
    return jobs


# --- naming and shape ----------------------------------------------------------------------


def test_reference_becomes_the_child_tasks_named_by_path() -> None:
    jobs = catalog(
        **{"warehouse-load": [cmd("stage"), cmd("merge", "stage")]},
        nightly=[cmd("extract"), ref("load", "warehouse-load", "extract"), cmd("report", "load")],
    )
    plan = plan_of("nightly", jobs)

    assert task_ids(plan) == ["extract", "load/stage", "load/merge", "report"]
    kinds = {node.id: node.kind for node in plan.nodes}
    assert (kinds["load"], kinds["load/"]) == ("start", "end")
    assert plan.job == "nightly"
    assert plan.task_count == 4
    assert {node.id: node.job for node in plan.nodes if node.is_task} == {
        "extract": "nightly",
        "load/stage": "warehouse-load",
        "load/merge": "warehouse-load",
        "report": "nightly",
    }
    assert plan.nodes[task_ids(plan).index("load/merge") + 1].command == "run merge"


def test_deeper_levels_join_every_name_with_slashes() -> None:
    jobs = catalog(c=[cmd("work")], b=[ref("y", "c")], a=[ref("x", "b")])

    assert task_ids(plan_of("a", jobs)) == ["x/y/work"]


def test_node_ids_are_unique() -> None:
    jobs = catalog(c=[cmd("w")], b=[ref("c", "c"), cmd("c2")], a=[ref("b", "b"), ref("c", "c")])
    ids = [node.id for node in plan_of("a", jobs).nodes]

    assert len(ids) == len(set(ids))


def test_child_runs_between_its_neighbours() -> None:
    jobs = catalog(
        job2=[cmd("task3"), cmd("task4", "task3")],
        parent=[cmd("task1"), ref("job2", "job2", "task1"), cmd("task2", "job2")],
    )

    assert task_order(plan_of("parent", jobs)) == ["task1", "job2/task3", "job2/task4", "task2"]


def test_every_root_of_the_child_waits_and_every_leaf_comes_before() -> None:
    jobs = catalog(
        child=[cmd("r1"), cmd("r2"), cmd("mid", "r1", "r2"), cmd("l1", "mid"), cmd("l2", "mid")],
        parent=[cmd("before"), ref("c", "child", "before"), cmd("after", "c")],
    )
    plan = plan_of("parent", jobs)

    below_before = reachable(plan, "before")
    assert {"c/r1", "c/r2", "c/mid", "c/l1", "c/l2", "after"} <= below_before
    for leaf in ("c/l1", "c/l2"):
        assert "after" in reachable(plan, leaf)
    assert "before" not in reachable(plan, "c/r1")


def test_after_may_name_a_task_defined_further_down() -> None:
    jobs = catalog(
        child=[cmd("x")],
        parent=[cmd("merge", "load"), ref("load", "child", "stage"), cmd("stage")],
    )

    assert task_order(plan_of("parent", jobs)) == ["stage", "load/x", "merge"]


def test_same_job_referenced_twice_in_one_parent_gives_separate_copies() -> None:
    jobs = catalog(
        child=[cmd("a"), cmd("b", "a")], parent=[ref("one", "child"), ref("two", "child")]
    )
    plan = plan_of("parent", jobs)

    assert task_ids(plan) == ["one/a", "one/b", "two/a", "two/b"]
    assert ("one/a", "one/b") in plan.edges and ("two/a", "two/b") in plan.edges
    assert "two/b" not in reachable(plan, "one/a")


def test_same_job_referenced_at_two_depths_gives_separate_copies() -> None:
    jobs = catalog(
        leaf=[cmd("w")],
        mid=[ref("leaf", "leaf")],
        top=[ref("leaf", "leaf"), ref("mid", "mid", "leaf")],
    )
    plan = plan_of("top", jobs)

    assert task_order(plan) == ["leaf/w", "mid/leaf/w"]


def test_empty_child_passes_predecessors_to_successors() -> None:
    jobs = catalog(empty=[], parent=[cmd("a"), ref("e", "empty", "a"), cmd("b", "e")])
    plan = plan_of("parent", jobs)

    assert task_ids(plan) == ["a", "b"]
    assert "b" in reachable(plan, "a")
    assert task_order(plan) == ["a", "b"]


def test_empty_child_alone_expands_to_markers_only() -> None:
    jobs = catalog(empty=[], parent=[ref("e", "empty")])
    plan = plan_of("parent", jobs)

    assert [(node.id, node.kind) for node in plan.nodes] == [("e", "start"), ("e/", "end")]
    assert plan.edges == (("e", "e/"),)
    assert plan.task_count == 0


def test_empty_child_between_many_keeps_every_dependency() -> None:
    jobs = catalog(
        empty=[],
        parent=[
            cmd("a1"),
            cmd("a2"),
            ref("e", "empty", "a1", "a2"),
            cmd("b1", "e"),
            cmd("b2", "e"),
        ],
    )
    plan = plan_of("parent", jobs)

    for first in ("a1", "a2"):
        assert {"b1", "b2"} <= reachable(plan, first)


def test_empty_top_job_expands_to_nothing() -> None:
    plan = plan_of("empty", catalog(empty=[]))

    assert (plan.nodes, plan.edges) == ((), ())


def test_workdir_comes_from_the_job_each_task_belongs_to() -> None:
    jobs = {
        "child": parse_job({"name": "child", "workdir": "/srv/child", "tasks": [cmd("x")]}),
        "parent": parse_job({"name": "parent", "tasks": [cmd("y"), ref("c", "child")]}),
    }
    plan = plan_of("parent", jobs)

    assert {node.id: node.workdir for node in plan.nodes if node.is_task} == {
        "y": None,
        "c/x": "/srv/child",
    }


# --- cycles and unknown jobs ---------------------------------------------------------------


def test_self_reference_is_a_job_cycle() -> None:
    jobs = catalog(a=[cmd("x"), ref("again", "a", "x")])

    with pytest.raises(JobCycleError, match=names("'a'", "cycle", "a → again (a)")) as info:
        plan_of("a", jobs)

    assert info.value.path == ["a", "again (a)"]
    assert isinstance(info.value, InvalidJob)
    assert info.value.job == "a"


def test_three_job_cycle_names_every_job_on_the_path() -> None:
    jobs = catalog(a=[ref("x", "b")], b=[ref("y", "c")], c=[cmd("w"), ref("z", "a", "w")])

    with pytest.raises(JobCycleError, match=names("a → x (b) → y (c) → z (a)")) as info:
        plan_of("a", jobs)

    assert info.value.path == ["a", "x (b)", "y (c)", "z (a)"]


def test_cycle_below_the_started_job_is_found() -> None:
    jobs = catalog(top=[ref("r", "a")], a=[ref("x", "b")], b=[ref("y", "a")])

    with pytest.raises(JobCycleError) as info:
        plan_of("top", jobs)

    assert info.value.path == ["top", "r (a)", "x (b)", "y (a)"]


def test_cycle_error_names_a_job_whose_name_has_a_space() -> None:
    jobs = catalog(**{"night load": [ref("again", "night load")]})

    with pytest.raises(JobCycleError) as info:
        plan_of("night load", jobs)

    assert info.value.job == "night load"


def test_a_job_referenced_twice_without_a_cycle_is_fine() -> None:
    jobs = catalog(
        d=[cmd("w")], b=[ref("d", "d")], c=[ref("d", "d")], a=[ref("b", "b"), ref("c", "c")]
    )

    assert task_ids(plan_of("a", jobs)) == ["b/d/w", "c/d/w"]


def test_reference_to_unknown_job_names_job_task_and_target() -> None:
    jobs = catalog(nightly=[cmd("extract"), ref("load", "warehouse-lod", "extract")])

    with pytest.raises(
        InvalidJob, match=names("job 'nightly'", "task 'load'", "'warehouse-lod'", "unknown")
    ) as info:
        plan_of("nightly", jobs)

    assert (info.value.job, info.value.task) == ("nightly", "load")


def test_unknown_job_deep_down_names_the_child_that_refers_to_it() -> None:
    jobs = catalog(top=[ref("mid", "mid")], mid=[ref("gone", "nowhere")])

    with pytest.raises(InvalidJob, match=names("job 'mid'", "task 'gone'", "'nowhere'")):
        plan_of("top", jobs)


# --- limits --------------------------------------------------------------------------------


def test_one_hundred_levels_of_nesting_are_allowed_by_default() -> None:
    jobs = chain(100)
    plan = plan_of("j0", jobs)

    assert task_ids(plan) == ["/".join(["in"] * 100 + ["work"])]
    assert set(plan.hashes) == set(jobs)


def test_nesting_past_the_default_depth_is_too_large() -> None:
    with pytest.raises(PlanTooLarge, match=names("deeper than 100 levels", "max_depth")):
        plan_of("j0", chain(101))


def test_depth_cap_is_configurable_and_names_where() -> None:
    assert task_ids(plan_of("j0", chain(3), Limits(max_depth=3))) == ["in/in/in/work"]

    with pytest.raises(PlanTooLarge, match=names("deeper than 3 levels", "'in/in/in/in'")) as info:
        plan_of("j0", chain(4), Limits(max_depth=3))

    assert isinstance(info.value, InvalidInput)


def test_task_cap_counts_tasks_across_references() -> None:
    jobs = catalog(
        child=[cmd(f"t{i}") for i in range(5)], top=[ref("a", "child"), ref("b", "child")]
    )

    assert plan_of("top", jobs, Limits(max_tasks=10)).task_count == 10
    with pytest.raises(PlanTooLarge, match=names("more than 9 tasks", "'b/t4'", "max_tasks")):
        plan_of("top", jobs, Limits(max_tasks=9))


def test_references_to_empty_jobs_cannot_blow_up_unbounded() -> None:
    jobs = {"e0": parse_job({"name": "e0"})}
    for level in range(1, 5):  # 10**4 references, and no task to count; 10 levels: 10**10
        tasks = [ref(f"r{i}", f"e{level - 1}") for i in range(10)]
        jobs[f"e{level}"] = parse_job({"name": f"e{level}", "tasks": tasks})

    with pytest.raises(PlanTooLarge, match=names("more than 1000", "references")):
        plan_of("e4", jobs, Limits(max_tasks=1000))


def test_expansion_stays_linear_in_the_plan_size() -> None:
    n, m = 60, 50
    child = [cmd(f"c{i}") for i in range(m)]  # m roots that are also leaves
    parent = [cmd(f"p{i}") for i in range(n)]
    parent.append(ref("r", "child", *(f"p{i}" for i in range(n))))
    parent += [cmd(f"s{i}", "r") for i in range(n)]
    plan = plan_of("parent", catalog(child=child, parent=parent))

    assert len(plan.edges) <= 3 * (2 * n + m)  # n × m alone would be 3000
    for first in ("p0", f"p{n - 1}"):
        assert {f"r/c{i}" for i in range(m)} <= reachable(plan, first)
    for leaf in ("r/c0", f"r/c{m - 1}"):
        assert {f"s{i}" for i in range(n)} <= reachable(plan, leaf)


def test_a_hundred_thousand_tasks_expand() -> None:
    leaf = [cmd(f"t{i}") for i in range(100)]
    mid = [ref(f"l{i}", "leaf") for i in range(100)]
    top = [ref(f"m{i}", "mid") for i in range(10)]
    plan = plan_of("top", catalog(leaf=leaf, mid=mid, top=top))

    assert plan.task_count == 100_000
    assert plan.nodes[-3].id == "m9/l99/t99"


# --- hosts and hashes ----------------------------------------------------------------------


def test_host_of_a_reference_is_inherited_by_child_tasks_without_one() -> None:
    jobs = catalog(
        inner=[cmd("i1"), cmd("i2", host="own-inner")],
        child=[
            cmd("plain"),
            cmd("mine", host="own"),
            ref("deep", "inner"),
            ref("far", "inner", host="far"),
        ],
        top=[cmd("local"), ref("c", "child", host="box")],
    )
    plan = plan_of("top", jobs)

    hosts = {node.id: node.options.host for node in plan.nodes if node.options is not None}
    assert hosts == {
        "local": None,
        "c/plain": "box",
        "c/mine": "own",
        "c/deep/i1": "box",
        "c/deep/i2": "own-inner",
        "c/far/i1": "far",
        "c/far/i2": "own-inner",
    }


def test_inherited_host_keeps_the_other_task_options() -> None:
    jobs = catalog(child=[cmd("x", retries=2, soft_timeout=5)], top=[ref("c", "child", host="box")])
    (node,) = [n for n in plan_of("top", jobs).nodes if n.is_task]

    assert node.options is not None
    assert (node.options.retries, node.options.soft_timeout, node.options.host) == (2, 5.0, "box")


def test_plan_carries_the_hash_of_every_job_in_it() -> None:
    jobs = catalog(
        leaf=[cmd("w")],
        empty=[],
        mid=[ref("leaf", "leaf"), ref("e", "empty")],
        top=[ref("mid", "mid"), ref("leaf", "leaf")],
        unused=[cmd("u")],
    )
    plan = plan_of("top", jobs)

    assert dict(plan.hashes) == {
        name: jobs[name].content_hash for name in ("top", "mid", "leaf", "empty")
    }


# --- plain data ----------------------------------------------------------------------------


def rich_plan() -> PlanGraph:
    jobs = {
        "child": parse_job(
            {
                "name": "child",
                "workdir": "/srv/child",
                "tasks": [
                    cmd("x", soft_timeout=5, hard_timeout=9, retries=2, retry_delay=1.5, backoff=2),
                    cmd("y", "x", host="own"),
                ],
            }
        ),
        "empty": parse_job({"name": "empty"}),
        "top": parse_job(
            {
                "name": "top",
                "tasks": [cmd("a"), ref("c", "child", "a", host="box"), ref("e", "empty", "c")],
            }
        ),
    }
    return plan_of("top", jobs)


def test_plan_to_dict_round_trips() -> None:
    plan = rich_plan()

    assert plan_from_dict(plan_to_dict(plan)) == plan
    assert plan_from_dict(json.loads(json.dumps(plan_to_dict(plan)))) == plan


def test_plan_to_dict_tells_tasks_from_markers() -> None:
    data = plan_to_dict(rich_plan())
    nodes = {node["id"]: node for node in data["nodes"]}

    assert data["job"] == "top"
    assert {i: n["kind"] for i, n in nodes.items()} == {
        "a": "task",
        "c": "start",
        "c/x": "task",
        "c/y": "task",
        "c/": "end",
        "e": "start",
        "e/": "end",
    }
    assert nodes["c/y"]["command"] == "run y" and nodes["c/y"]["host"] == "own"
    assert nodes["c/x"]["workdir"] == "/srv/child"
    assert ["c/x", "c/y"] in data["edges"]
    assert "command" not in nodes["c"]

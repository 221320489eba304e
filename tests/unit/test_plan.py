"""The ready()/done() protocol over an expanded plan, with failure propagation and retry."""

from __future__ import annotations

from typing import Any

from jobnest.model.expand import PlanGraph, expand
from jobnest.model.job import Job, parse_job
from jobnest.model.plan import Plan


def cmd(name: str, *after: str) -> dict[str, Any]:
    return {"name": name, "command": f"run {name}", "after": list(after)}


def ref(name: str, job: str, *after: str) -> dict[str, Any]:
    return {"name": name, "job": job, "after": list(after)}


def graph(top: list[dict[str, Any]], **children: list[dict[str, Any]]) -> PlanGraph:
    """Expand a job ``top`` whose references point at ``children`` (name → tasks)."""
    jobs: dict[str, Job] = {
        name: parse_job({"name": name, "tasks": tasks}) for name, tasks in children.items()
    }
    jobs["top"] = parse_job({"name": "top", "tasks": top})
    return expand(jobs["top"], jobs.get)


def ready(plan: Plan) -> list[str]:
    return [node.id for node in plan.ready()]


def run_all(plan: Plan, failing: frozenset[str] = frozenset()) -> tuple[list[str], list[str]]:
    """Drive ``plan`` like a runner one task at a time: what ran, what was upstream_failed."""
    ran: list[str] = []
    blocked: list[str] = []
    pending: list[str] = []
    while plan.is_active():
        pending += ready(plan)
        node_id = pending.pop(0)
        ran.append(node_id)
        blocked += plan.done(node_id, ok=node_id not in failing)
    return ran, blocked


NESTED = {
    "child": [cmd("x"), cmd("y", "x"), ref("deep", "leaf", "x")],
    "leaf": [cmd("w1"), cmd("w2")],
    "empty": [],
}
NESTED_TOP = [
    cmd("a"),
    ref("c", "child", "a"),
    ref("e", "empty", "a"),
    cmd("b", "c", "e"),
    cmd("side"),
]


# --- the happy path ------------------------------------------------------------------------


def test_chain_runs_in_order() -> None:
    plan = Plan(graph([cmd("a"), cmd("b", "a"), cmd("c", "b")]))

    assert ready(plan) == ["a"]
    assert ready(plan) == []
    assert plan.done("a", ok=True) == []
    assert ready(plan) == ["b"]
    plan.done("b", ok=True)
    assert ready(plan) == ["c"]
    plan.done("c", ok=True)
    assert ready(plan) == []
    assert not plan.is_active()


def test_independent_tasks_are_ready_together() -> None:
    plan = Plan(graph([cmd("a"), cmd("b"), cmd("c", "a")]))

    assert ready(plan) == ["a", "b"]


def test_diamond_waits_for_both_branches() -> None:
    plan = Plan(graph([cmd("a"), cmd("b", "a"), cmd("c", "a"), cmd("d", "b", "c")]))

    assert ready(plan) == ["a"]
    plan.done("a", ok=True)
    assert ready(plan) == ["b", "c"]
    plan.done("b", ok=True)
    assert ready(plan) == []
    assert plan.is_active()
    plan.done("c", ok=True)
    assert ready(plan) == ["d"]


def test_markers_are_never_returned_by_ready() -> None:
    g = graph(NESTED_TOP, **NESTED)
    plan = Plan(g)
    ran, blocked = run_all(plan)

    tasks = [node.id for node in g.nodes if node.is_task]
    assert sorted(ran) == sorted(tasks)
    assert len(ran) == len(set(ran))
    assert blocked == []
    position = {node_id: i for i, node_id in enumerate(ran)}
    assert position["a"] < position["c/x"] < position["c/deep/w1"] < position["b"]
    assert position["c/y"] < position["b"] and position["c/deep/w2"] < position["b"]


def test_child_tasks_wait_for_what_came_before_the_reference() -> None:
    plan = Plan(
        graph([cmd("a"), ref("c", "child", "a"), cmd("b", "c")], child=[cmd("x"), cmd("y")])
    )

    assert ready(plan) == ["a"]
    plan.done("a", ok=True)
    assert sorted(ready(plan)) == ["c/x", "c/y"]
    plan.done("c/x", ok=True)
    assert ready(plan) == []
    plan.done("c/y", ok=True)
    assert ready(plan) == ["b"]


def test_empty_child_reference_passes_through() -> None:
    plan = Plan(graph([cmd("a"), ref("e", "empty", "a"), cmd("b", "e")], empty=[]))

    assert ready(plan) == ["a"]
    plan.done("a", ok=True)
    assert ready(plan) == ["b"]


def test_plan_of_only_empty_references_has_nothing_to_do() -> None:
    plan = Plan(graph([ref("e", "empty"), ref("f", "empty", "e")], empty=[]))

    assert ready(plan) == []
    assert not plan.is_active()


def test_node_looks_up_by_id() -> None:
    plan = Plan(graph([cmd("a")]))

    assert plan.node("a").command == "run a"


# --- failure -------------------------------------------------------------------------------


def test_failure_marks_descendants_upstream_failed() -> None:
    plan = Plan(graph([cmd("a"), cmd("b", "a"), cmd("c", "b"), cmd("d", "a", "c")]))

    ready(plan)
    assert sorted(plan.done("a", ok=False)) == ["b", "c", "d"]
    assert ready(plan) == []
    assert not plan.is_active()


def test_failure_leaves_independent_branches_running() -> None:
    tasks = [cmd("a"), cmd("bad", "a"), cmd("after_bad", "bad"), cmd("good", "a")]
    plan = Plan(graph([*tasks, cmd("after_good", "good"), cmd("loner")]))

    assert ready(plan) == ["a", "loner"]
    plan.done("a", ok=True)
    assert ready(plan) == ["bad", "good"]
    assert plan.done("bad", ok=False) == ["after_bad"]
    assert plan.is_active()
    plan.done("good", ok=True)
    assert ready(plan) == ["after_good"]
    plan.done("after_good", ok=True)
    plan.done("loner", ok=True)
    assert not plan.is_active()


def test_failure_inside_a_child_blocks_only_what_depends_on_it() -> None:
    plan = Plan(graph(NESTED_TOP, **NESTED))
    ran, blocked = run_all(plan, failing=frozenset({"c/x"}))

    assert sorted(blocked) == ["b", "c/deep/w1", "c/deep/w2", "c/y"]
    assert set(ran) == {"a", "c/x", "side"}


def test_failure_before_a_reference_blocks_the_whole_child_and_no_marker() -> None:
    plan = Plan(graph(NESTED_TOP, **NESTED))
    ready(plan)

    blocked = plan.done("a", ok=False)

    assert sorted(blocked) == ["b", "c/deep/w1", "c/deep/w2", "c/x", "c/y"]
    assert all(plan.node(node_id).is_task for node_id in blocked)


def test_task_downstream_of_two_failures_is_reported_once() -> None:
    plan = Plan(graph([cmd("a"), cmd("b"), cmd("c", "a", "b")]))
    ready(plan)

    assert plan.done("a", ok=False) == ["c"]
    assert plan.done("b", ok=False) == []


# --- retry ---------------------------------------------------------------------------------


def test_retry_offers_only_unfinished_tasks_then_their_descendants() -> None:
    g = graph([cmd("a"), cmd("b", "a"), cmd("c", "b"), cmd("d")])
    plan = Plan(g, finished={"a", "d"})

    assert ready(plan) == ["b"]
    plan.done("b", ok=True)
    assert ready(plan) == ["c"]
    plan.done("c", ok=True)
    assert not plan.is_active()


def test_retry_reaches_inside_child_jobs() -> None:
    g = graph(NESTED_TOP, **NESTED)
    finished = {"a", "side", "c/x", "c/deep/w1"}
    plan = Plan(g, finished=finished)

    assert sorted(ready(plan)) == ["c/deep/w2", "c/y"]
    plan.done("c/y", ok=True)
    assert ready(plan) == []
    plan.done("c/deep/w2", ok=True)
    assert ready(plan) == ["b"]


def test_retry_with_everything_finished_is_not_active() -> None:
    g = graph([cmd("a"), cmd("b", "a")])
    plan = Plan(g, finished={"a", "b"})

    assert ready(plan) == []
    assert not plan.is_active()


def test_retry_never_offers_a_finished_task() -> None:
    g = graph(NESTED_TOP, **NESTED)
    tasks = {node.id for node in g.nodes if node.is_task}
    finished = {"a", "c/x", "c/y"}

    ran, _ = run_all(Plan(g, finished=finished))

    assert set(ran) == tasks - finished


# --- cancel and is_active ------------------------------------------------------------------


def test_cancel_returns_tasks_that_never_started() -> None:
    plan = Plan(graph([cmd("a"), cmd("b", "a"), cmd("c", "b"), cmd("d")]))
    assert ready(plan) == ["a", "d"]
    plan.done("d", ok=True)

    assert sorted(plan.cancel()) == ["b", "c"]
    assert plan.is_active()  # "a" is still running
    assert ready(plan) == []


def test_cancel_includes_ready_tasks_not_yet_taken() -> None:
    plan = Plan(graph([cmd("a"), cmd("b"), cmd("c", "a")]))

    assert sorted(plan.cancel()) == ["a", "b", "c"]
    assert ready(plan) == []
    assert not plan.is_active()


def test_nothing_is_offered_after_cancel_even_when_running_tasks_succeed() -> None:
    plan = Plan(graph([cmd("a"), ref("c", "child", "a"), cmd("b", "c")], child=[cmd("x")]))
    ready(plan)
    plan.cancel()

    plan.done("a", ok=True)

    assert ready(plan) == []
    assert not plan.is_active()


def test_cancel_leaves_out_tasks_already_blocked_by_a_failure() -> None:
    plan = Plan(graph([cmd("a"), cmd("b", "a"), cmd("c")]))
    ready(plan)
    plan.done("a", ok=False)

    assert plan.cancel() == []


def test_is_active_while_anything_is_ready_or_running() -> None:
    plan = Plan(graph([cmd("a")]))

    assert plan.is_active()  # ready
    ready(plan)
    assert plan.is_active()  # running
    plan.done("a", ok=False)
    assert not plan.is_active()

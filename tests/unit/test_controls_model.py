"""The pure parts of the day-to-day controls: the job fields, the config's pools, the plan
keeping failures and unfailing a marked task, and the shared slot counter."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from jobnest.config import load_settings
from jobnest.errors import InvalidInput, InvalidJob
from jobnest.model.expand import PlanGraph, expand, node_to_dict, plan_from_dict, plan_to_dict
from jobnest.model.job import job_to_dict, parse_job
from jobnest.model.plan import Plan
from jobnest.slots import GLOBAL_LIMIT, Slots


def cmd(name: str, *after: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "command": f"run {name}", "after": list(after), **options}


def graph(*tasks: dict[str, Any]) -> PlanGraph:
    return expand(parse_job({"name": "top", "tasks": list(tasks)}), lambda name: None)


# --- job fields ------------------------------------------------------------------------------


def test_new_fields_round_trip_and_reach_the_plan() -> None:
    data = {
        "name": "j",
        "max_parallel": 2,
        "run_timeout": 60.0,
        "tasks": [{"name": "t", "command": "true", "pool": "warehouse"}],
    }
    job = parse_job(data)
    assert (job.max_parallel, job.run_timeout, job.tasks[0].options.pool) == (2, 60.0, "warehouse")
    assert job_to_dict(job) == data
    [node] = plan_from_dict(plan_to_dict(expand(job, lambda name: None))).nodes
    assert node.options is not None and node.options.pool == "warehouse"
    assert node_to_dict(node)["pool"] == "warehouse"


def test_content_hash_of_a_definition_without_the_new_fields_is_unchanged() -> None:
    task = {"name": "t", "command": "true", "retries": 1}
    job = parse_job({"name": "j", "schedule": "@daily", "tasks": [task]})
    # the hash the code before these fields gave this definition
    assert job.content_hash == "c7011c8356724bce0098679452d248199e5ec1fffe6b8216bae3ecf378c1264e"


@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("max_parallel", 0, "'max_parallel' must be a positive whole number, got 0"),
        ("max_parallel", True, "got True"),
        ("run_timeout", -1, "'run_timeout' must be a positive number of seconds, got -1"),
    ],
)
def test_bad_job_limits_are_refused_naming_the_value(field: str, value: object, words: str) -> None:
    with pytest.raises(InvalidJob, match=words):
        parse_job({"name": "j", field: value, "tasks": []})


def test_a_pool_must_be_a_name_and_only_on_a_command_task() -> None:
    with pytest.raises(InvalidJob, match="'pool' must be a pool name, got 3"):
        parse_job({"name": "j", "tasks": [cmd("t", pool=3)]})
    with pytest.raises(InvalidJob, match="a job reference never holds a slot"):
        parse_job({"name": "j", "tasks": [{"name": "r", "job": "k", "pool": "p"}]})


# --- config ----------------------------------------------------------------------------------


def test_pools_come_from_the_config_file(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text("[pools]\nwarehouse = 2\n")
    assert load_settings().pools == {"warehouse": 2}


def test_a_pool_without_a_positive_size_is_refused(home: Path) -> None:
    home.mkdir()
    (home / "config.toml").write_text("[pools]\nwarehouse = 0\n")
    with pytest.raises(InvalidInput, match=r"pools\.warehouse must be a positive whole number"):
        load_settings()


# --- the plan: failures kept, failures marked ------------------------------------------------


def test_a_plan_built_with_failed_tasks_keeps_them_blocking() -> None:
    plan = Plan(graph(cmd("a"), cmd("b", "a"), cmd("c")), finished=[], failed=["a"])
    assert [node.id for node in plan.ready()] == ["c"]
    assert plan.blocked() == ["b"]


def test_unfail_releases_only_what_no_other_failure_blocks() -> None:
    plan = Plan(graph(cmd("a"), cmd("b"), cmd("ab", "a", "b"), cmd("a2", "a"), cmd("z")))
    assert sorted(node.id for node in plan.ready()) == ["a", "b", "z"]
    plan.done("a", ok=False)
    plan.done("b", ok=False)
    assert plan.unfail("a") == ["a2"]  # ab still waits on b's failure
    assert [node.id for node in plan.ready()] == ["a2"]
    assert plan.blocked() == ["ab"]


# --- slots -----------------------------------------------------------------------------------


def test_slots_count_the_global_limit_and_each_pool_and_wake_listeners() -> None:
    slots = Slots(2, {"p": 1})
    woken: list[int] = []
    slots.listen(lambda: woken.append(1))
    assert slots.take("p") is None
    assert slots.take("p") == "pool:p"
    assert slots.take(None) is None
    assert slots.take(None) == GLOBAL_LIMIT
    slots.give("p")
    assert woken == [1]
    assert slots.take("p") is None


def test_a_pool_the_config_does_not_name_has_one_slot() -> None:
    slots = Slots(10, {})
    assert slots.take("unknown") is None
    assert slots.take("unknown") == "pool:unknown"


def test_a_freed_slot_goes_to_the_run_that_waited_not_back_to_its_giver() -> None:
    slots = Slots(10, {"p": 1})
    assert slots.take("p", "big") is None
    assert slots.take("p", "big") == "pool:p"  # its next task waits
    assert slots.take("p", "small") == "pool:p"  # behind it
    slots.give("p")
    assert slots.take("p", "small") == "pool:p"  # big is first in line
    assert slots.take("p", "big") is None
    slots.give("p")
    assert slots.take("p", "big") == "pool:p"  # round and round: small's turn
    assert slots.take("p", "small") is None


def test_a_run_that_left_the_line_holds_nobody_back() -> None:
    slots = Slots(1, {})
    assert slots.take(None, "a") is None
    assert slots.take(None, "b") == GLOBAL_LIMIT
    assert slots.take(None, "c") == GLOBAL_LIMIT
    slots.give(None)
    slots.leave("b")  # b's waiting task was cancelled, or its own job_limit holds it
    assert slots.take(None, "c") is None


def test_free_slots_beyond_the_line_are_anyone_s() -> None:
    slots = Slots(3, {})
    assert [slots.take(None, run) for run in ("a", "a", "a")] == [None, None, None]
    assert slots.take(None, "b") == GLOBAL_LIMIT
    slots.give(None)
    slots.give(None)  # two free, one run in line: the second slot is anyone's
    assert slots.take(None, "c") is None
    assert slots.take(None, "b") is None

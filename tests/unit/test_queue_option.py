"""``queue:`` on a task or as a job's default: parsed, kept in the plan, refused when bad."""

from __future__ import annotations

import pytest

from jobnest.errors import InvalidJob
from jobnest.model.expand import expand, plan_from_dict, plan_to_dict
from jobnest.model.job import Job, job_to_dict, parse_job


def test_a_task_queue_is_parsed_and_written_back() -> None:
    raw = {"name": "j", "tasks": [{"name": "t", "command": "true", "queue": "gpu"}]}

    job = parse_job(raw)

    assert job.tasks[0].options.queue == "gpu"
    assert job_to_dict(job) == raw


def test_a_job_without_queues_keeps_its_definition_and_hash() -> None:
    raw = {"name": "j", "tasks": [{"name": "t", "command": "true"}]}

    job = parse_job(raw)

    assert job_to_dict(job) == raw
    assert job.content_hash == parse_job(raw).content_hash


def test_a_job_level_queue_is_the_default_of_its_own_tasks_only() -> None:
    child = parse_job(
        {
            "name": "child",
            "queue": "b",
            "tasks": [
                {"name": "x", "command": "true"},
                {"name": "y", "command": "true", "queue": "c"},
            ],
        }
    )
    top = parse_job(
        {
            "name": "top",
            "tasks": [{"name": "own", "command": "true"}, {"name": "ref", "job": "child"}],
        }
    )
    jobs: dict[str, Job] = {"top": top, "child": child}

    graph = plan_from_dict(plan_to_dict(expand(top, jobs.get)))

    queues = {node.id: node.options.queue for node in graph.nodes if node.options}
    assert queues == {"own": None, "ref/x": "b", "ref/y": "c"}
    assert job_to_dict(child)["queue"] == "b"


@pytest.mark.parametrize("value", ["", "  ", 3, ["a"]])
def test_a_queue_that_is_not_a_name_is_refused(value: object) -> None:
    with pytest.raises(InvalidJob, match="'queue' must be a queue name"):
        parse_job({"name": "j", "tasks": [{"name": "t", "command": "true", "queue": value}]})
    with pytest.raises(InvalidJob, match="'queue' must be a queue name"):
        parse_job({"name": "j", "queue": value, "tasks": []})

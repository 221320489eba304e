"""Day-to-day controls through the REST API, in-process over a real SQLite store and real
task processes: concurrency limits and pools, queued reasons, killing one task, marking a
failed task, and the run timeout. Limits are checked from the recorded attempt times."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobnest.config import Settings, load_settings
from jobnest.daemon import Daemon
from jobnest.store.base import AttemptRecord
from support.polling import until_awaited
from support.served import in_process

pytestmark = pytest.mark.anyio
GATE = "while [ ! -e open ]; do sleep 0.02; done"
SHORT = "sleep 0.15"
DEADLINE = 20.0  # seconds a task or a run may take to get where a test waits for it


@pytest.fixture
def settings(home: Path) -> Settings:
    home.mkdir(parents=True)
    return dataclasses.replace(load_settings(), pools={"one": 1, "two": 2})


class Api:
    def __init__(self, client: httpx.AsyncClient, daemon: Daemon, workdir: Path) -> None:
        self.client = client
        self.daemon = daemon
        self.workdir = workdir

    async def put(self, name: str, *tasks: dict[str, Any], **fields: Any) -> None:
        body = {"name": name, "tasks": list(tasks), **fields}
        response = await self.client.put(f"/api/jobs/{name}", json=body)
        assert response.status_code in (200, 201), response.text

    async def start(self, name: str) -> int:
        response = await self.client.post(f"/api/jobs/{name}/runs")
        assert response.status_code == 201, response.text
        return int(response.json()["id"])

    async def run(self, run_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def tasks(self, run_id: int) -> dict[str, dict[str, Any]]:
        return {task["path"]: task for task in (await self.run(run_id))["tasks"]}

    async def finished(self, run_id: int) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            run = await self.run(run_id)
            return run if run["status"] != "running" else None

        return await until_awaited(done, DEADLINE)

    async def task_is(self, run_id: int, path: str, status: str, reason: Any = ...) -> None:
        async def reached() -> bool:
            task = (await self.tasks(run_id))[path]
            return bool(task["status"] == status and reason in (..., task["reason"]))

        await until_awaited(reached, DEADLINE)

    def open_gate(self) -> None:
        (self.workdir / "open").touch()

    def attempts(self, *run_ids: int) -> list[AttemptRecord]:
        return [a for run_id in run_ids for a in self.daemon.store.attempts(run_id)]


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[Api]:
    async with in_process(settings, tmp_path) as (client, daemon):
        yield Api(client, daemon, tmp_path)


def cmd(name: str, command: str, *after: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "after": list(after), **options}


def ref(name: str, target: str, *after: str) -> dict[str, Any]:
    return {"name": name, "job": target, "after": list(after)}


def most_at_once(attempts: list[AttemptRecord]) -> int:
    """The largest number of attempts running at one instant, from their start and end."""
    points: list[tuple[datetime, int]] = []
    for attempt in attempts:
        assert attempt.finished_at is not None, attempt
        points += [(attempt.started_at, 1), (attempt.finished_at, -1)]
    most = now = 0
    for _, step in sorted(points, key=lambda p: (p[0], p[1])):  # an end before a start
        now += step
        most = max(most, now)
    return most


# --- concurrency ---------------------------------------------------------------------------


async def test_nested_job_competing_for_a_one_slot_pool_finishes_and_never_shares_it(
    api: Api,
) -> None:
    await api.put("child", cmd("c1", SHORT, pool="one"), cmd("c2", SHORT, pool="one"))
    await api.put(
        "parent",
        cmd("p1", SHORT, pool="one"),
        ref("kid", "child"),
        ref("kid2", "child"),
        cmd("p2", SHORT, "kid", pool="one"),
        cmd("free", SHORT),
    )
    run_id = await api.start("parent")
    run = await api.finished(run_id)
    assert run["status"] == "succeeded", run
    pooled = [a for a in api.attempts(run_id) if a.path != "free"]
    assert len(pooled) == 6
    assert most_at_once(pooled) == 1


async def test_runs_sharing_a_pool_take_turns_instead_of_the_first_holding_it_to_the_end(
    api: Api,
) -> None:
    await api.put("big", *(cmd(f"b{i}", GATE, pool="one") for i in range(3)))
    await api.put("small", cmd("s0", GATE, pool="one"))
    big = await api.start("big")
    await until_awaited(lambda: _one_of(api, big, "queued", "pool:one"), DEADLINE)
    small = await api.start("small")
    await api.task_is(small, "s0", "queued", "pool:one")
    api.open_gate()
    for run_id in (big, small):
        assert (await api.finished(run_id))["status"] == "succeeded"
    order = [a.path for a in sorted(api.attempts(big, small), key=lambda a: a.started_at)]
    assert order.index("s0") < 3, order  # not after every task of big
    assert most_at_once(api.attempts(big, small)) == 1


async def test_a_task_waiting_for_a_pool_shows_queued_with_the_pool_as_its_reason(
    api: Api,
) -> None:
    await api.put("pooled", cmd("a", GATE, pool="one"), cmd("b", GATE, pool="one"))
    run_id = await api.start("pooled")
    await until_awaited(lambda: _one_of(api, run_id, "queued", "pool:one"), DEADLINE)
    api.open_gate()
    assert (await api.finished(run_id))["status"] == "succeeded"
    assert most_at_once(api.attempts(run_id)) == 1


async def _one_of(api: Api, run_id: int, status: str, reason: str) -> bool:
    tasks = (await api.tasks(run_id)).values()
    return any(t["status"] == status and t["reason"] == reason for t in tasks)


async def test_the_global_limit_holds_across_runs_of_different_jobs(
    settings: Settings, tmp_path: Path
) -> None:
    limited = dataclasses.replace(settings, max_parallel=2)
    async with in_process(limited, tmp_path) as (client, daemon):
        api = Api(client, daemon, tmp_path)
        await api.put("x", *(cmd(f"x{i}", GATE) for i in range(3)))
        await api.put("y", *(cmd(f"y{i}", GATE) for i in range(3)))
        runs = [await api.start("x"), await api.start("y")]
        await until_awaited(lambda: _one_of(api, runs[1], "queued", "global_limit"), DEADLINE)
        api.open_gate()
        for run_id in runs:
            assert (await api.finished(run_id))["status"] == "succeeded"
        assert len(api.attempts(*runs)) == 6
        assert most_at_once(api.attempts(*runs)) == 2


async def test_a_jobs_max_parallel_limits_its_own_run_and_shows_as_job_limit(api: Api) -> None:
    await api.put("one-at-a-time", *(cmd(f"t{i}", GATE) for i in range(3)), max_parallel=1)
    run_id = await api.start("one-at-a-time")
    await until_awaited(lambda: _one_of(api, run_id, "queued", "job_limit"), DEADLINE)
    api.open_gate()
    assert (await api.finished(run_id))["status"] == "succeeded"
    assert most_at_once(api.attempts(run_id)) == 1


async def test_a_pool_on_a_job_reference_is_refused_when_saved(api: Api) -> None:
    await api.put("child", cmd("c", "true"))
    body = {"name": "p", "tasks": [{"name": "r", "job": "child", "pool": "one"}]}
    response = await api.client.put("/api/jobs/p", json=body)
    assert response.status_code == 422
    assert "pool" in response.json()["error"]


# --- kill one task -------------------------------------------------------------------------


async def test_killing_one_task_fails_it_blocks_its_downstream_and_the_rest_goes_on(
    api: Api,
) -> None:
    await api.put("k", cmd("slow", "sleep 30"), cmd("after", "true", "slow"), cmd("other", GATE))
    run_id = await api.start("k")
    await api.task_is(run_id, "slow", "running")
    await api.task_is(run_id, "other", "running")
    response = await api.client.post(f"/api/runs/{run_id}/tasks/slow/kill")
    assert response.status_code == 202, response.text
    await api.task_is(run_id, "slow", "failed", "killed")
    tasks = await api.tasks(run_id)
    assert tasks["after"]["status"] == "upstream_failed"
    assert tasks["other"]["status"] == "running"
    api.open_gate()
    run = await api.finished(run_id)
    assert run["status"] == "failed"
    assert (await api.tasks(run_id))["other"]["status"] == "succeeded"


async def test_killing_a_task_that_is_not_running_is_a_conflict_and_unknown_is_404(
    api: Api,
) -> None:
    await api.put("k", cmd("gate", GATE), cmd("later", "true", "gate"))
    run_id = await api.start("k")
    await api.task_is(run_id, "gate", "running")
    later = await api.client.post(f"/api/runs/{run_id}/tasks/later/kill")
    assert later.status_code == 409
    assert "'later'" in later.json()["error"]
    unknown = await api.client.post(f"/api/runs/{run_id}/tasks/nope/kill")
    assert unknown.status_code == 404
    api.open_gate()
    await api.finished(run_id)
    ended = await api.client.post(f"/api/runs/{run_id}/tasks/gate/kill")
    assert ended.status_code == 409


# --- mark a failed task --------------------------------------------------------------------


async def test_marking_the_failure_of_a_failed_run_runs_its_downstream(api: Api) -> None:
    await api.put("m", cmd("broken", "exit 3"), cmd("next", "echo ran > next.txt", "broken"))
    run_id = await api.start("m")
    assert (await api.finished(run_id))["status"] == "failed"
    since = api.daemon.hub.last_id
    response = await api.client.post(
        f"/api/runs/{run_id}/tasks/broken/mark", json={"status": "succeeded"}
    )
    assert response.status_code == 200, response.text
    event = await asyncio.wait_for(_task_event(api, since, "broken"), 10)
    assert (event["status"], event["reason"]) == ("succeeded", "marked")  # watchers are told
    run = await api.finished(run_id)
    assert run["status"] == "succeeded"
    tasks = await api.tasks(run_id)
    assert (tasks["broken"]["status"], tasks["broken"]["reason"]) == ("succeeded", "marked")
    assert tasks["next"]["status"] == "succeeded"
    assert (api.workdir / "next.txt").read_text() == "ran\n"
    [mark] = run["marks"]
    assert (mark["path"], mark["status"], mark["by"]) == ("broken", "succeeded", "local")
    assert [a.path for a in api.attempts(run_id)].count("broken") == 1  # not run again


async def _task_event(api: Api, since: str, path: str) -> dict[str, Any]:
    async for event in api.daemon.hub.watch(since):
        if event.kind == "task" and event.data["path"] == path:
            return event.data
    raise AssertionError("the hub closed")


async def test_marking_one_failure_leaves_other_failures_and_their_downstream_alone(
    api: Api,
) -> None:
    await api.put(
        "two",
        cmd("a", "false"),
        cmd("after-a", "true", "a"),
        cmd("b", "false"),
        cmd("after-b", "true", "b"),
    )
    run_id = await api.start("two")
    await api.finished(run_id)
    await api.client.post(f"/api/runs/{run_id}/tasks/a/mark", json={"status": "skipped"})
    run = await api.finished(run_id)
    assert run["status"] == "failed"
    statuses = {path: t["status"] for path, t in (await api.tasks(run_id)).items()}
    assert statuses == {
        "a": "skipped",
        "after-a": "succeeded",
        "b": "failed",
        "after-b": "upstream_failed",
    }


async def test_marking_a_failure_while_the_run_goes_on_releases_its_downstream_at_once(
    api: Api,
) -> None:
    await api.put("live", cmd("bad", "false"), cmd("next", "true", "bad"), cmd("gate", GATE))
    run_id = await api.start("live")
    await api.task_is(run_id, "next", "upstream_failed")
    response = await api.client.post(
        f"/api/runs/{run_id}/tasks/bad/mark", json={"status": "succeeded"}
    )
    assert response.status_code == 200, response.text
    await api.task_is(run_id, "next", "succeeded")
    assert (await api.tasks(run_id))["gate"]["status"] == "running"
    api.open_gate()
    assert (await api.finished(run_id))["status"] == "succeeded"


async def test_marking_refuses_a_task_that_did_not_fail_and_a_bad_status(api: Api) -> None:
    await api.put("ok", cmd("fine", "true"), cmd("bad", "false"))
    run_id = await api.start("ok")
    await api.finished(run_id)
    fine = await api.client.post(f"/api/runs/{run_id}/tasks/fine/mark", json={"status": "skipped"})
    assert fine.status_code == 409
    assert "'fine'" in fine.json()["error"]
    odd = await api.client.post(f"/api/runs/{run_id}/tasks/bad/mark", json={"status": "great"})
    assert odd.status_code == 422
    assert "'great'" in odd.json()["error"]
    unknown = await api.client.post(f"/api/runs/{run_id}/tasks/x/mark", json={"status": "skipped"})
    assert unknown.status_code == 404
    assert (await api.run(run_id))["marks"] == []


# --- run timeout ---------------------------------------------------------------------------


async def test_a_run_past_its_run_timeout_is_cancelled(api: Api) -> None:
    await api.put(
        "slow", cmd("forever", "sleep 30"), cmd("then", "true", "forever"), run_timeout=0.5
    )
    run_id = await api.start("slow")
    run = await api.finished(run_id)
    assert run["status"] == "cancelled"
    tasks = await api.tasks(run_id)
    assert (tasks["forever"]["status"], tasks["forever"]["reason"]) == ("cancelled", "run_timeout")
    assert tasks["then"]["status"] == "cancelled"

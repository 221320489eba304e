"""The REST API in-process: a Daemon over a real SQLite store, real task processes."""

from __future__ import annotations

import asyncio
import os
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from jobnest.config import Settings
from jobnest.daemon import Daemon
from jobnest.errors import StoreError
from jobnest.files import load_jobs
from jobnest.runner import Runner
from jobnest.store.sql import SQLStore
from jobnest.web import create_app

pytestmark = pytest.mark.anyio
GATE = "while [ ! -e open ]; do sleep 0.02; done"


@dataclass
class Api:
    client: httpx.AsyncClient
    daemon: Daemon
    workdir: Path

    async def put(self, definition: dict[str, Any]) -> httpx.Response:
        return await self.client.put(f"/api/jobs/{definition['name']}", json=definition)

    async def start(self, name: str) -> dict[str, Any]:
        response = await self.client.post(f"/api/jobs/{name}/runs")
        assert response.status_code == 201, response.text
        return dict(response.json())

    async def run(self, run_id: int) -> dict[str, Any]:
        response = await self.client.get(f"/api/runs/{run_id}")
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def finished(self, run_id: int) -> dict[str, Any]:
        async def done() -> dict[str, Any] | None:
            run = await self.run(run_id)
            return run if run["status"] != "running" else None

        finished: dict[str, Any] = await until(done)
        return finished

    async def task(self, run_id: int, path: str, status: str) -> None:
        async def reached() -> bool:
            tasks = {t["path"]: t["status"] for t in (await self.run(run_id))["tasks"]}
            return bool(tasks[path] == status)

        await until(reached)

    async def log(self, run_id: int, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(f"/api/runs/{run_id}/tasks/{path}/log", params=params)


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[Api]:
    store = SQLStore.open(settings.database_url)
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))
    transport = httpx.ASGITransport(app=create_app(daemon))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://jobnest") as client:
            yield Api(client, daemon, tmp_path)
    finally:
        await daemon.close()
        store.close()


async def until(check: Callable[[], Awaitable[Any]], deadline: float = 15.0) -> Any:
    end = time.monotonic() + deadline
    while not (result := await check()):
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.02)
    return result


def job(name: str, *tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    return {"name": name, "tasks": list(tasks), **fields}


def cmd(name: str, command: str, *after: str, **options: Any) -> dict[str, Any]:
    return {"name": name, "command": command, "after": list(after), **options}


def ref(name: str, target: str, *after: str) -> dict[str, Any]:
    return {"name": name, "job": target, "after": list(after)}


# --- jobs --------------------------------------------------------------------------------------


async def test_put_creates_then_replaces_and_get_reads_back(api: Api) -> None:
    first = await api.put(job("etl", cmd("a", "true")))
    assert first.status_code == 201
    assert first.headers["location"] == "/api/jobs/etl"
    assert first.json() == {"name": "etl", "tasks": [{"name": "a", "command": "true"}]}

    second = await api.put(job("etl", cmd("a", "true"), cmd("b", "false", "a")))
    assert second.status_code == 200
    got = await api.client.get("/api/jobs/etl")
    assert got.status_code == 200
    assert [t["name"] for t in got.json()["tasks"]] == ["a", "b"]
    assert got.json()["tasks"][1]["after"] == ["a"]


async def test_put_takes_the_name_from_the_url_when_the_body_has_none(api: Api) -> None:
    response = await api.client.put("/api/jobs/nameless", json={"tasks": []})
    assert response.status_code == 201
    assert response.json()["name"] == "nameless"


async def test_put_refuses_a_body_naming_another_job(api: Api) -> None:
    response = await api.client.put("/api/jobs/one", json=job("other"))
    assert response.status_code == 422
    assert "'other'" in response.json()["error"]
    assert "'one'" in response.json()["error"]
    assert (await api.client.get("/api/jobs/one")).status_code == 404


async def test_dry_run_validates_without_saving(api: Api) -> None:
    good = await api.client.put("/api/jobs/j?dry_run=true", json=job("j", cmd("a", "true")))
    bad = await api.client.put("/api/jobs/j?dry_run=true", json=job("j", ref("a", "nowhere")))
    assert good.status_code == 200
    assert bad.status_code == 422
    assert (await api.client.get("/api/jobs/j")).status_code == 404


@pytest.mark.parametrize(
    ("definition", "task", "reason"),
    [
        (job("j", cmd("a", "true", "ghost")), "a", "unknown task 'ghost' in 'after'"),
        (job("j", cmd("a", "true"), cmd("a", "true")), "a", "duplicate task name"),
        (job("j", {"name": "a", "command": "x", "job": "y"}), "a", "got both"),
        (job("j", {"name": "a"}), "a", "got neither"),
        (job("j", ref("load", "missing")), "load", "reference to unknown job 'missing'"),
        (job("j", cmd("a", "true", "b"), cmd("b", "true", "a")), None, "cycle"),
        (job("j", cmd("a", "true", soft_timeout=-1)), "a", "'soft_timeout' must be"),
        (job("j", schedule="61 * * * *"), None, "schedule '61 * * * *'"),
    ],
)
async def test_each_validation_error_is_a_422_naming_job_task_and_reason(
    api: Api, definition: dict[str, Any], task: str | None, reason: str
) -> None:
    response = await api.put(definition)
    assert response.status_code == 422
    body = response.json()
    assert body["job"] == "j"
    assert body.get("task") == task
    assert reason in body["reason"]
    assert reason in body["error"]


async def test_a_cycle_through_references_is_a_422_showing_the_path(api: Api) -> None:
    assert (await api.put(job("leaf"))).status_code == 201
    assert (await api.put(job("nightly", ref("load", "leaf")))).status_code == 201
    response = await api.put(job("leaf", ref("back", "nightly")))
    assert response.status_code == 422
    assert response.json()["path"] == ["leaf", "back (nightly)", "load (leaf)"]
    assert "cycle" in response.json()["error"]


@pytest.mark.parametrize(
    ("url", "body", "status", "says"),
    [
        ("/api/jobs/j", b"{not json", 422, "not valid JSON"),
        ("/api/jobs/j", b'{"name": "j\xff"}', 422, "not UTF-8"),
        ("/api/jobs/j", b'{"name": "\\ud800"}', 422, "surrogate"),
        ("/api/jobs/j", b"[" * 100_000, 422, "JSON"),
        ("/api/jobs/j", b'{"retries": ' + b"9" * 5000 + b"}", 422, "JSON"),
        ("/api/jobs/j", b"[1, 2]", 422, "must be a mapping"),
        ("/api/jobs/j", b'{"tasks": 5}', 422, "'tasks' must be a list"),
        ("/api/jobs/j", b"{" + b" " * (1 << 20) + b"}", 413, "larger than"),
        ("/api/jobs/a%00b", b"{}", 422, "control character"),
        ("/api/jobs/a%0Ab", b"{}", 422, "control character"),
        ("/api/jobs/" + "x" * 129, b"{}", 422, "1–128 characters, got 129"),
    ],
)
async def test_bad_input_is_a_json_4xx_naming_the_problem(
    api: Api, url: str, body: bytes, status: int, says: str
) -> None:
    response = await api.client.put(url, content=body)
    assert response.status_code == status
    assert says in response.json()["error"]


async def test_a_128_character_name_is_fine(api: Api) -> None:
    assert (await api.client.put("/api/jobs/" + "x" * 128, json={})).status_code == 201


async def test_unknown_jobs_are_404(api: Api) -> None:
    for method, url in [
        ("GET", "/api/jobs/ghost"),
        ("DELETE", "/api/jobs/ghost"),
        ("GET", "/api/jobs/ghost/plan"),
        ("POST", "/api/jobs/ghost/runs"),
        ("GET", "/api/jobs/ghost/runs"),
        ("GET", "/api/no/such/route"),
    ]:
        response = await api.client.request(method, url)
        assert response.status_code == 404, (method, url)
        assert response.json()["error"]


async def test_delete_refuses_a_referenced_job_naming_the_referrers(api: Api) -> None:
    await api.put(job("child", cmd("t", "true")))
    await api.put(job("p1", ref("c", "child")))
    await api.put(job("p2", ref("c", "child")))

    refused = await api.client.delete("/api/jobs/child")
    assert refused.status_code == 409
    assert refused.json()["referrers"] == ["p1", "p2"]
    assert "'p1', 'p2'" in refused.json()["error"]

    for name in ("p1", "p2", "child"):
        assert (await api.client.delete(f"/api/jobs/{name}")).status_code == 204
    assert (await api.client.get("/api/jobs/child")).status_code == 404


async def test_jobs_list_shows_schedule_next_run_and_last_run(
    settings: Settings, tmp_path: Path
) -> None:
    now = datetime(2024, 3, 9, 12, 0, tzinfo=UTC)
    store = SQLStore.open(settings.database_url)
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"), clock=lambda: now)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=create_app(daemon)), base_url="http://jobnest"
    ) as client:
        api = Api(client, daemon, tmp_path)
        await api.put(
            job("berlin", cmd("t", "true"), schedule="0 2 * * *", timezone="Europe/Berlin")
        )
        await api.put(job("daemon-zone", schedule="@hourly"))
        await api.put(job("manual", cmd("t", "true")))
        run = await api.start("manual")
        await api.finished(run["id"])
        listed = {j["name"]: j for j in (await client.get("/api/jobs")).json()["jobs"]}
    await daemon.close()
    store.close()

    assert listed["berlin"]["schedule"] == "0 2 * * *"
    assert listed["berlin"]["next_run"] == "2024-03-10T01:00:00Z"
    assert listed["daemon-zone"]["next_run"] == "2024-03-09T13:00:00Z"
    assert listed["manual"]["next_run"] is None
    assert listed["manual"]["last_run"]["id"] == run["id"]
    assert listed["manual"]["last_run"]["status"] == "succeeded"
    assert listed["berlin"]["last_run"] is None
    assert listed["berlin"]["tasks"] == 1


async def test_plan_has_nodes_edges_and_nested_groups(api: Api) -> None:
    await api.put(job("inner", cmd("x", "true")))
    await api.put(job("middle", ref("in", "inner"), cmd("y", "true", "in")))
    await api.put(job("top", cmd("first", "true"), ref("mid", "middle", "first")))

    plan = (await api.client.get("/api/jobs/top/plan")).json()
    kinds = {node["id"]: node["kind"] for node in plan["nodes"]}
    assert kinds == {
        "first": "task",
        "mid": "start",
        "mid/in": "start",
        "mid/in/x": "task",
        "mid/in/": "end",
        "mid/y": "task",
        "mid/": "end",
    }
    assert ["first", "mid"] in plan["edges"]
    assert ["mid/in/", "mid/y"] in plan["edges"]
    assert plan["groups"] == [
        {"id": "mid", "job": "middle", "end": "mid/", "parent": None},
        {"id": "mid/in", "job": "inner", "end": "mid/in/", "parent": "mid"},
    ]
    assert next(n for n in plan["nodes"] if n["id"] == "mid/in/x")["command"] == "true"


# --- runs --------------------------------------------------------------------------------------


async def test_start_runs_the_job_and_the_run_shows_every_task(api: Api) -> None:
    await api.put(job("j", cmd("ok", "true"), cmd("bad", "exit 3"), cmd("below", "true", "bad")))
    response = await api.client.post("/api/jobs/j/runs")
    assert response.status_code == 201
    started = response.json()
    assert response.headers["location"] == f"/api/runs/{started['id']}"
    assert started["status"] == "running"
    assert started["trigger"] == "manual"

    run = await api.finished(started["id"])
    tasks = {t["path"]: t for t in run["tasks"]}
    assert run["status"] == "failed"
    assert (tasks["ok"]["status"], tasks["ok"]["exit_code"], tasks["ok"]["attempts"]) == (
        "succeeded",
        0,
        1,
    )
    assert (tasks["bad"]["status"], tasks["bad"]["reason"], tasks["bad"]["exit_code"]) == (
        "failed",
        "exit_code",
        3,
    )
    assert tasks["below"]["status"] == "upstream_failed"
    assert tasks["ok"]["started_at"] and tasks["ok"]["finished_at"]
    assert run["finished_at"] is not None


async def test_starting_a_running_job_is_409(api: Api) -> None:
    await api.put(job("j", cmd("wait", GATE)))
    first = await api.start("j")
    again = await api.client.post("/api/jobs/j/runs")
    assert again.status_code == 409
    assert again.json()["run_id"] == first["id"]
    retry = await api.client.post(f"/api/runs/{first['id']}/retry")
    assert (retry.status_code, retry.json()["run_status"]) == (409, "running")
    (api.workdir / "open").touch()
    assert (await api.finished(first["id"]))["status"] == "succeeded"


async def test_a_repeated_idempotency_key_returns_the_run_it_started(api: Api) -> None:
    await api.put(job("j", cmd("wait", GATE)))
    key = {"Idempotency-Key": "3f6c1e0a-click-1"}
    double_click = await asyncio.gather(
        *(api.client.post("/api/jobs/j/runs", headers=key) for _ in range(2))
    )
    first, replayed = sorted(double_click, key=lambda r: -r.status_code)
    assert (first.status_code, first.headers.get("idempotent-replayed")) == (201, None)
    run_id = first.json()["id"]
    again = await api.client.post("/api/jobs/j/runs", headers=key)  # while it runs
    for repeat in (replayed, again):
        assert (repeat.status_code, repeat.headers["idempotent-replayed"]) == (200, "true")
        assert repeat.headers["location"] == f"/api/runs/{run_id}"
        assert repeat.json().keys() == first.json().keys()
        assert repeat.json()["id"] == run_id

    (api.workdir / "open").touch()
    assert (await api.finished(run_id))["status"] == "succeeded"
    after = await api.client.post("/api/jobs/j/runs", headers=key)  # once it ended
    assert (after.status_code, after.headers["idempotent-replayed"]) == (200, "true")
    assert (after.json()["id"], after.json()["status"]) == (run_id, "succeeded")
    assert [r["id"] for r in (await api.client.get("/api/jobs/j/runs")).json()["runs"]] == [run_id]


async def test_an_idempotency_key_is_per_job_and_optional(api: Api) -> None:
    await api.put(job("j", cmd("t", "true")))
    await api.put(job("k", cmd("t", "true")))
    key = {"Idempotency-Key": "same"}
    first = await api.client.post("/api/jobs/j/runs", headers=key)
    other = await api.client.post("/api/jobs/k/runs", headers=key)
    assert (first.status_code, other.status_code) == (201, 201)
    assert first.json()["id"] != other.json()["id"]
    await api.finished(first.json()["id"])
    keyless = await api.start("j")
    assert keyless["id"] not in (first.json()["id"], other.json()["id"])


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (b"", "''"),
        (b"two words", "'two words'"),
        ("caf\u00e9".encode("latin-1"), "'caf\u00e9'"),
        (b"x" * 201, "'xxxxxxxx"),
    ],
)
async def test_a_malformed_idempotency_key_is_422_naming_it(
    api: Api, value: bytes, named: str
) -> None:
    await api.put(job("j", cmd("t", "true")))
    response = await api.client.post("/api/jobs/j/runs", headers={"Idempotency-Key": value})
    assert response.status_code == 422
    assert "Idempotency-Key" in response.json()["error"]
    assert named in response.json()["error"]
    assert (await api.client.get("/api/jobs/j/runs")).json()["runs"] == []


async def test_start_reconciles_a_run_left_running_by_a_dead_process(
    api: Api, settings: Settings
) -> None:
    await api.put(job("j", cmd("t", "true")))
    dead = Runner(api.daemon.store, api.daemon.runner.executor, settings, owner=dead_owner())
    jobs = api.daemon.jobs()
    stale = dead.start(jobs["j"], jobs.get, workdir=str(api.workdir))

    fresh = await api.start("j")
    assert (await api.run(stale.id))["status"] == "failed"
    assert (await api.finished(fresh["id"]))["status"] == "succeeded"


async def test_run_history_is_newest_first_and_paginated(api: Api) -> None:
    await api.put(job("j", cmd("t", "true")))
    await api.put(job("other", cmd("t", "true")))
    ids = []
    for _ in range(5):
        ids.append((await api.start("j"))["id"])
        await api.finished(ids[-1])
    other = await api.start("other")
    await api.finished(other["id"])

    first = (await api.client.get("/api/jobs/j/runs", params={"limit": 2})).json()
    assert [r["id"] for r in first["runs"]] == ids[::-1][:2]
    assert (first["limit"], first["offset"], first["next_offset"]) == (2, 0, 2)
    last = (await api.client.get("/api/jobs/j/runs?limit=2&offset=4")).json()
    assert [r["id"] for r in last["runs"]] == [ids[0]]
    assert last["next_offset"] is None
    everything = (await api.client.get("/api/runs")).json()
    assert [r["id"] for r in everything["runs"]] == [other["id"], *ids[::-1]]
    assert (await api.client.get("/api/runs?job=other")).json()["runs"][0]["job"] == "other"
    assert (await api.client.get("/api/runs?job=a%00b")).status_code == 422
    for bad in ("limit=0", "limit=501", "offset=-1", "limit=x"):
        assert (await api.client.get(f"/api/jobs/j/runs?{bad}")).status_code == 422, bad


async def test_runs_of_a_deleted_job_stay_readable(api: Api) -> None:
    await api.put(job("gone", cmd("t", "true")))
    run = await api.start("gone")
    await api.finished(run["id"])
    await api.client.delete("/api/jobs/gone")
    history = await api.client.get("/api/jobs/gone/runs")
    assert history.status_code == 200
    assert [r["id"] for r in history.json()["runs"]] == [run["id"]]


async def test_retry_fixes_and_reruns_the_failed_task_in_the_same_run(api: Api) -> None:
    await api.put(
        job(
            "j",
            cmd("first", "true"),
            cmd("flaky", "exit 1", "first"),
            cmd("after", "true", "flaky"),
        )
    )
    run = await api.start("j")
    await api.finished(run["id"])

    fix = await api.client.put(
        f"/api/runs/{run['id']}/tasks/flaky/command", json={"command": "true"}
    )
    assert fix.status_code == 200
    assert (fix.json()["old"], fix.json()["new"]) == ("exit 1", "true")
    retried = await api.client.post(f"/api/runs/{run['id']}/retry")
    assert retried.status_code == 200
    assert (retried.json()["id"], retried.json()["status"]) == (run["id"], "running")

    final = await api.finished(run["id"])
    tasks = {t["path"]: t for t in final["tasks"]}
    assert final["status"] == "succeeded"
    assert final["retries"] == 1
    assert tasks["first"]["attempts"] == 1  # succeeded tasks are not run again
    assert tasks["flaky"]["attempts"] == 2
    assert tasks["flaky"]["command"] == "true"
    assert [(f["path"], f["old"], f["new"]) for f in final["fixes"]] == [
        ("flaky", "exit 1", "true")
    ]


async def test_retry_of_a_run_that_has_not_failed_is_409(api: Api) -> None:
    await api.put(job("j", cmd("t", "true")))
    run = await api.start("j")
    await api.finished(run["id"])
    response = await api.client.post(f"/api/runs/{run['id']}/retry")
    assert response.status_code == 409
    assert response.json()["run_status"] == "succeeded"


async def test_fixing_a_command_needs_a_stopped_run_and_a_real_command(api: Api) -> None:
    await api.put(job("j", cmd("wait", GATE)))
    run = await api.start("j")
    url = f"/api/runs/{run['id']}/tasks/wait/command"
    assert (await api.client.put(url, json={"command": "true"})).status_code == 409
    assert (await api.client.put(url, json={"command": ""})).status_code == 422
    assert (await api.client.put(url, json={"cmd": "true"})).status_code == 422
    assert (await api.client.put(url, content=b"\xff")).status_code == 422
    assert (
        await api.client.put(f"/api/runs/{run['id']}/tasks/nope/command", json={"command": "x"})
    ).status_code == 404
    (api.workdir / "open").touch()


async def test_cancel_stops_the_running_tasks(api: Api) -> None:
    await api.put(job("j", cmd("sleepy", "sleep 300"), cmd("next", "true", "sleepy")))
    run = await api.start("j")
    await api.task(run["id"], "sleepy", "running")

    response = await api.client.post(f"/api/runs/{run['id']}/cancel")
    assert response.status_code == 202
    final = await api.finished(run["id"])
    assert final["status"] == "cancelled"
    assert {t["path"]: t["status"] for t in final["tasks"]} == {
        "sleepy": "cancelled",
        "next": "cancelled",
    }
    assert (await api.client.post(f"/api/runs/{run['id']}/cancel")).status_code == 409


async def test_cancel_right_after_start_cancels(api: Api) -> None:
    await api.put(job("j", cmd("sleepy", "sleep 300")))
    run = api.daemon.start_run("j")  # its drive has not begun yet
    assert (await api.daemon.cancel(run.id)).id == run.id
    assert (await api.finished(run.id))["status"] == "cancelled"


@pytest.mark.parametrize("run_id", ["999", "abc", "0", "-1", "1.5", "99999999999999999999999"])
async def test_unknown_or_malformed_run_ids_are_404(api: Api, run_id: str) -> None:
    for method, suffix in [
        ("GET", ""),
        ("GET", "/plan"),
        ("POST", "/retry"),
        ("POST", "/cancel"),
        ("GET", "/tasks/t/log"),
    ]:
        response = await api.client.request(method, f"/api/runs/{run_id}{suffix}")
        assert response.status_code == 404, (method, suffix, response.text)
        assert "run" in response.json()["error"]


# --- logs --------------------------------------------------------------------------------------


async def test_logs_by_head_tail_and_byte_range(api: Api) -> None:
    await api.put(job("j", cmd("talk", "seq 1 10; echo oops >&2")))
    run = await api.start("j")
    await api.finished(run["id"])

    async def text(**params: Any) -> str:
        response = await api.log(run["id"], "talk", **params)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert response.headers["x-log-size"] == "21"
        return response.text

    assert await text() == "".join(f"{i}\n" for i in range(1, 11))
    assert await text(head=3) == "1\n2\n3\n"
    assert await text(tail=2) == "9\n10\n"
    assert await text(offset=2, length=4) == "2\n3\n"
    assert await text(offset=-3) == "10\n"
    assert await text(length=2) == "1\n"
    assert (await api.log(run["id"], "talk", stream="stderr")).text == "oops\n"


async def test_log_errors_are_4xx(api: Api) -> None:
    await api.put(
        job("j", cmd("talk", "echo hi"), cmd("never", "true", "talk"), cmd("x", "exit 1", "talk"))
    )
    await api.put(job("p", ref("c", "j")))
    run = await api.start("j")
    await api.finished(run["id"])
    assert (await api.log(run["id"], "talk", head=1, tail=1)).status_code == 422
    assert (await api.log(run["id"], "talk", tail=1, length=1)).status_code == 422
    assert (await api.log(run["id"], "talk", stream="stdin")).status_code == 422
    assert (await api.log(run["id"], "talk", attempt=2)).status_code == 404
    assert (await api.log(run["id"], "ghost")).status_code == 404
    assert (await api.log(run["id"], "a%00b")).status_code == 422


async def test_logs_of_tasks_inside_child_jobs(api: Api) -> None:
    await api.put(job("child", cmd("say", "echo deep")))
    await api.put(job("parent", ref("c", "child")))
    run = await api.start("parent")
    await api.finished(run["id"])
    assert (await api.log(run["id"], "c/say")).text == "deep\n"
    pending = await api.log(run["id"], "c")
    assert pending.status_code == 404


async def test_a_task_that_has_not_started_has_no_log_yet(api: Api) -> None:
    await api.put(job("j", cmd("wait", GATE), cmd("later", "true", "wait")))
    run = await api.start("j")
    response = await api.log(run["id"], "later")
    assert response.status_code == 404
    assert "not started" in response.json()["error"]
    (api.workdir / "open").touch()


# --- snapshots ---------------------------------------------------------------------------------


async def test_editing_a_child_while_its_parent_runs_changes_only_the_next_run(api: Api) -> None:
    await api.put(job("child", cmd("say", "echo v1")))
    await api.put(job("parent", cmd("gate", GATE), ref("sub", "child", "gate")))
    first = await api.start("parent")
    await api.task(first["id"], "gate", "running")

    edited = await api.put(job("child", cmd("say", "echo v2"), cmd("extra", "true")))
    assert edited.status_code == 200
    frozen = (await api.client.get(f"/api/runs/{first['id']}/plan")).json()
    now = (await api.client.get("/api/jobs/parent/plan")).json()
    assert _command(frozen, "sub/say") == "echo v1"
    assert "sub/extra" not in {n["id"] for n in frozen["nodes"]}
    assert _command(now, "sub/say") == "echo v2"
    assert frozen["hashes"]["child"] != now["hashes"]["child"]

    (api.workdir / "open").touch()
    assert (await api.finished(first["id"]))["status"] == "succeeded"
    assert (await api.log(first["id"], "sub/say")).text == "v1\n"
    assert [t["path"] for t in (await api.run(first["id"]))["tasks"]] == ["gate", "sub/say"]

    second = await api.start("parent")
    assert (await api.finished(second["id"]))["status"] == "succeeded"
    assert (await api.log(second["id"], "sub/say")).text == "v2\n"
    assert {t["path"] for t in (await api.run(second["id"]))["tasks"]} == {
        "gate",
        "sub/say",
        "sub/extra",
    }
    assert (await api.client.get("/api/jobs/child/runs")).json()["runs"] == []


def _command(plan: dict[str, Any], node_id: str) -> str:
    return str(next(n for n in plan["nodes"] if n["id"] == node_id)["command"])


# --- the rest ----------------------------------------------------------------------------------


async def test_healthz(api: Api) -> None:
    response = await api.client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok", "last_tick": None})


async def test_an_unusable_database_is_a_503(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    def locked(*args: Any, **kwargs: Any) -> None:
        raise StoreError("the database cannot be used: database is locked")

    monkeypatch.setattr(api.daemon.store, "list_runs", locked)
    response = await api.client.get("/healthz")
    assert response.status_code == 503
    assert "database is locked" in response.json()["error"]


async def test_the_openapi_document_declares_the_error_responses(api: Api) -> None:
    document = (await api.client.get("/openapi.json")).json()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            declared = set(operation["responses"])
            if path.startswith("/api/"):
                assert {"401", "404", "409", "422"} <= declared, (method, path)
    put = document["paths"]["/api/jobs/{name}"]["put"]
    schema = put["requestBody"]["content"]["application/json"]["schema"]
    assert schema == {"$ref": "#/components/schemas/JobDefinition"}
    assert "tasks" in document["components"]["schemas"]["JobDefinition"]["properties"]


def dead_owner() -> str:
    """The owner string of a process of this host that has exited."""
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.waitpid(pid, 0)
    return f"{socket.gethostname()}:{pid}"


async def test_export_downloads_yaml_that_loads_back(api: Api, tmp_path: Path) -> None:
    await api.put(job("child", cmd("x", "echo x")))
    await api.put(job("parent", ref("c", "child")))
    await api.put(job("other", cmd("y", "true")))
    one = await api.client.get("/api/export", params={"name": "parent"})
    assert one.status_code == 200
    assert one.headers["content-type"].startswith("application/yaml")
    assert "attachment" in one.headers["content-disposition"]
    saved = tmp_path / "exported.yml"
    saved.write_text(one.text)
    assert sorted(load_jobs([saved])) == ["child", "parent"]
    everything = await api.client.get("/api/export")
    assert "name: other" in everything.text
    missing = await api.client.get("/api/export", params={"name": "ghost"})
    assert missing.status_code == 404
    assert "'ghost'" in missing.json()["error"]


async def test_hosts_lists_the_ssh_config_aliases(
    api: Api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text("Host box\n  HostName 127.0.0.1\n  User deploy\n  Port 2222\n")
    monkeypatch.setattr(api.daemon, "settings", replace(api.daemon.settings, ssh_config=config))
    hosts = (await api.client.get("/api/hosts")).json()
    assert [(h["alias"], h["hostname"], h["user"], h["port"]) for h in hosts] == [
        ("box", "127.0.0.1", "deploy", 2222)
    ]

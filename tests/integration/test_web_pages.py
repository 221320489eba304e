"""The web UI's server side in-process: pages, static files and the layout routes, over a
real Daemon with a real SQLite store and real task processes."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from jobnest.config import Settings
from jobnest.web.layouts import rollups, summary
from support.polling import until_awaited
from support.served import in_process

pytestmark = pytest.mark.anyio

CHILD = {
    "name": "warehouse",
    "tasks": [
        {"name": "stage", "command": "echo staged"},
        {"name": "merge", "command": "echo nope >&2; exit 3", "after": ["stage"]},
    ],
}
PARENT = {
    "name": "nightly",
    "schedule": "0 2 * * *",
    "timezone": "Europe/Berlin",
    "tasks": [
        {"name": "extract", "command": "true"},
        {"name": "load", "job": "warehouse", "after": ["extract"]},
        {"name": "again", "job": "warehouse", "after": ["extract"]},
    ],
}


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    async with in_process(settings, tmp_path) as (http, _):
        for job in (CHILD, PARENT):
            assert (await http.put(f"/api/jobs/{job['name']}", json=job)).status_code == 201
        yield http


async def finished_run(client: httpx.AsyncClient, job: str) -> dict[str, Any]:
    started = await client.post(f"/api/jobs/{job}/runs")
    assert started.status_code == 201, started.text

    async def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = (await client.get(f"/api/runs/{started.json()['id']}")).json()
        return run if run["status"] != "running" else None

    return await until_awaited(ended, 15, "the run did not end in time")


def kinds(layout: dict[str, Any]) -> dict[str, str]:
    return {box["id"]: box["kind"] for box in layout["boxes"]}


# --- layout routes -----------------------------------------------------------------------------


async def test_job_layout_is_collapsed_by_default_and_opens_what_expand_names(
    client: httpx.AsyncClient,
) -> None:
    closed = (await client.get("/api/jobs/nightly/layout")).json()
    assert kinds(closed) == {"extract": "task", "load": "ref", "again": "ref"}
    assert {box["id"]: box.get("tasks") for box in closed["boxes"]}["load"] == 2
    assert closed["expanded"] == []

    opened = (await client.get("/api/jobs/nightly/layout", params={"expand": "load"})).json()
    assert kinds(opened)["load"] == "group"
    assert kinds(opened)["load/merge"] == "task"
    assert kinds(opened)["again"] == "ref"
    assert opened["expanded"] == ["load"]
    assert {"source": "load/stage", "target": "load/merge"} in [
        {"source": r["source"], "target": r["target"]} for r in opened["routes"]
    ]


async def test_job_layout_all_opens_every_reference_but_the_collapsed_ones(
    client: httpx.AsyncClient,
) -> None:
    params = {"all": "true", "collapse": "again"}
    layout = (await client.get("/api/jobs/nightly/layout", params=params)).json()
    assert kinds(layout)["load"] == "group"
    assert kinds(layout)["again"] == "ref"
    assert layout["expanded"] == ["load"]


async def test_layout_refuses_a_path_with_a_control_character(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs/nightly/layout", params={"expand": "lo\x01ad"})
    assert response.status_code == 422
    assert "control character" in response.json()["error"]


async def test_layout_of_an_unknown_job_is_a_404(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/jobs/nope/layout")
    assert response.status_code == 404
    assert "'nope'" in response.json()["error"]


async def test_run_layout_opens_references_with_a_failure_and_rolls_up_their_states(
    client: httpx.AsyncClient,
) -> None:
    run = await finished_run(client, "nightly")
    assert run["status"] == "failed"
    layout = (await client.get(f"/api/runs/{run['id']}/layout")).json()
    boxes = {box["id"]: box for box in layout["boxes"]}
    assert layout["expanded"] == ["again", "load"]
    assert boxes["load"]["kind"] == "group"
    assert boxes["load"]["counts"] == {"succeeded": 1, "failed": 1}
    assert boxes["load"]["status"] == "failed"
    assert (boxes["load/merge"]["status"], boxes["load/merge"]["exit_code"]) == ("failed", 3)
    assert boxes["extract"]["status"] == "succeeded"

    closed = await client.get(
        f"/api/runs/{run['id']}/layout", params={"auto": "false", "expand": "again"}
    )
    boxes = {box["id"]: box for box in closed.json()["boxes"]}
    assert boxes["load"]["kind"] == "ref"
    assert boxes["load"]["tasks"] == 2
    assert boxes["load"]["counts"] == {"succeeded": 1, "failed": 1}
    assert boxes["again"]["kind"] == "group"


async def test_run_layout_auto_leaves_references_that_went_well_collapsed(
    client: httpx.AsyncClient,
) -> None:
    fixed = {**CHILD, "tasks": [CHILD["tasks"][0]]}
    assert (await client.put("/api/jobs/warehouse", json=fixed)).status_code == 200
    run = await finished_run(client, "nightly")
    layout = (await client.get(f"/api/runs/{run['id']}/layout")).json()
    assert run["status"] == "succeeded"
    assert kinds(layout)["load"] == "ref"
    assert layout["expanded"] == []


async def test_attempts_of_a_task_and_of_an_unknown_one(client: httpx.AsyncClient) -> None:
    run = await finished_run(client, "nightly")
    attempts = (await client.get(f"/api/runs/{run['id']}/tasks/load/merge/attempts")).json()
    assert [(a["number"], a["status"], a["exit_code"]) for a in attempts] == [(1, "failed", 3)]
    assert attempts[0]["command"] == "echo nope >&2; exit 3"
    assert attempts[0]["finished_at"] is not None
    missing = await client.get(f"/api/runs/{run['id']}/tasks/load/nothing/attempts")
    assert missing.status_code == 404
    assert "'load/nothing'" in missing.json()["error"]


async def test_job_list_says_the_schedule_in_words(client: httpx.AsyncClient) -> None:
    jobs = {job["name"]: job for job in (await client.get("/api/jobs")).json()["jobs"]}
    assert jobs["nightly"]["schedule_words"] == "At 02:00 every day"
    assert jobs["warehouse"]["schedule_words"] is None


def test_rollups_count_tasks_under_every_reference_at_any_depth() -> None:
    counts = rollups([("a/b/c", "failed"), ("a/d", "succeeded"), ("e", "succeeded")])
    assert counts == {"a": {"failed": 1, "succeeded": 1}, "a/b": {"failed": 1}}
    assert summary({"succeeded": 3, "running": 1}) == "running"
    assert summary({"succeeded": 3}) == "succeeded"
    assert summary({}) == "pending"


# --- pages -------------------------------------------------------------------------------------


async def test_dashboard_lists_jobs_with_schedule_words_and_local_time_hooks(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert 'href="/jobs/nightly"' in page.text
    assert "At 02:00 every day" in page.text
    assert "Europe/Berlin" in page.text
    assert '<time datetime="' in page.text  # the browser shows it in the viewer's zone
    assert 'data-start="warehouse"' in page.text


async def test_job_page_carries_the_definition_and_the_jobs_to_reference(
    client: httpx.AsyncClient,
) -> None:
    page = await client.get("/jobs/nightly")
    assert page.status_code == 200
    assert '<script type="application/json" id="job-data">' in page.text
    assert '"others": ["warehouse"]' in page.text
    assert "/static/graph.js" in page.text
    child = await client.get("/jobs/warehouse")
    assert 'href="/jobs/nightly">nightly</a>' in child.text  # used by


async def test_pages_escape_what_users_typed(client: httpx.AsyncClient) -> None:
    job = {"name": "<em>hi", "tasks": [{"name": "<script>x", "command": "true"}]}
    assert (await client.put("/api/jobs/%3Cem%3Ehi", json=job)).status_code == 201
    page = await client.get("/jobs/%3Cem%3Ehi")
    assert page.status_code == 200
    assert "<em>hi" not in page.text
    assert "&lt;em&gt;hi" in page.text
    assert "<script>x" not in page.text  # not even inside the JSON the scripts read


async def test_unknown_job_and_run_pages_are_html_404s(client: httpx.AsyncClient) -> None:
    for url in ("/jobs/nope", "/runs/999", "/runs/abc", "/jobs/nope/runs"):
        page = await client.get(url)
        assert page.status_code == 404, url
        assert page.headers["content-type"].startswith("text/html"), url
        assert "Back to the jobs" in page.text


async def test_run_page_and_history_show_the_run(client: httpx.AsyncClient) -> None:
    run = await finished_run(client, "nightly")
    page = await client.get(f"/runs/{run['id']}")
    assert page.status_code == 200
    assert f"Run {run['id']}" in page.text
    assert "/static/run.js" in page.text
    history = await client.get("/jobs/nightly/runs")
    assert f'href="/runs/{run["id"]}"' in history.text
    assert "failed" in history.text


async def test_static_files_are_served(client: httpx.AsyncClient) -> None:
    for name, kind in (("graph.js", "javascript"), ("app.css", "text/css")):
        response = await client.get(f"/static/{name}")
        assert response.status_code == 200, name
        assert kind in response.headers["content-type"]

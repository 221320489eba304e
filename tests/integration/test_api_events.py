"""``GET /api/events`` over real HTTP on loopback: a Daemon behind uvicorn, real tasks."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import anyio
import fastapi.routing
import httpx
import pytest
import uvicorn

from jobnest.config import Settings, load_settings
from jobnest.daemon import Daemon
from jobnest.store.sql import SQLStore
from jobnest.web import create_app

pytestmark = pytest.mark.anyio


@dataclass
class Served:
    client: httpx.AsyncClient
    daemon: Daemon


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
def settings(home: Path) -> Settings:
    home.mkdir(parents=True)
    return load_settings()


@pytest.fixture
async def served(settings: Settings, tmp_path: Path) -> AsyncIterator[Served]:
    store = SQLStore.open(settings.database_url)
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))
    try:
        async with uvicorn_on_loopback(create_app(daemon)) as url:
            async with httpx.AsyncClient(base_url=url, timeout=10) as client:
                yield Served(client, daemon)
            await daemon.close()  # ends the event streams, so the server can stop
    finally:
        await daemon.close()
        store.close()


@asynccontextmanager
async def uvicorn_on_loopback(app: Any) -> AsyncIterator[str]:
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, lifespan="off", ws="none", log_level="warning"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    await until(lambda: server.started)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await serving


async def until(check: Callable[[], Any], deadline: float = 10.0) -> None:
    end = time.monotonic() + deadline
    while not check():
        assert time.monotonic() < end, "condition not met in time"
        await asyncio.sleep(0.01)


@asynccontextmanager
async def events(
    client: httpx.AsyncClient, last_id: str | None = None, **params: Any
) -> AsyncIterator[EventReader]:
    headers = {"Last-Event-ID": last_id} if last_id is not None else {}
    async with client.stream("GET", "/api/events", headers=headers, params=params) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        yield EventReader(response.aiter_lines())


class EventReader:
    """Reads server-sent events: ``{"id", "event", "data"}``; comments as ``{"comment"}``."""

    def __init__(self, lines: AsyncIterator[str]) -> None:
        self.lines = lines

    async def next(self, *, comments: bool = False) -> dict[str, Any]:
        with anyio.fail_after(10):
            event: dict[str, Any] = {}
            async for line in self.lines:
                if not line:
                    if event and (comments or "comment" not in event):
                        return event
                    event = {}
                    continue
                field, _, value = line.partition(":")
                if field == "":
                    event["comment"] = value.strip()
                else:
                    event[field] = json.loads(value) if field == "data" else value.strip()
            raise EOFError("the stream ended")

    async def until_run_ends(self, run_id: int) -> list[dict[str, Any]]:
        seen = []
        while True:
            event = await self.next()
            seen.append(event)
            data = event["data"]
            if event["event"] == "run" and data["run_id"] == run_id and data["status"] != "running":
                return seen


def shape(event: dict[str, Any]) -> tuple[str, str | None, str]:
    return event["event"], event["data"].get("path"), event["data"]["status"]


async def put(client: httpx.AsyncClient, name: str, *commands: str) -> None:
    tasks: list[dict[str, Any]] = [{"name": f"t{i}", "command": c} for i, c in enumerate(commands)]
    for before, task in itertools.pairwise(tasks):
        task["after"] = [before["name"]]
    response = await client.put(f"/api/jobs/{name}", json={"tasks": tasks})
    assert response.status_code in (200, 201), response.text


async def start(client: httpx.AsyncClient, name: str) -> int:
    response = await client.post(f"/api/jobs/{name}/runs")
    assert response.status_code == 201, response.text
    return int(response.json()["id"])


async def test_a_run_and_its_task_changes_arrive_in_order(served: Served) -> None:
    await put(served.client, "j", "true", "exit 4")
    async with events(served.client) as stream:
        assert (await stream.next())["event"] == "ready"
        run_id = await start(served.client, "j")
        seen = await stream.until_run_ends(run_id)

    assert [shape(e) for e in seen] == [
        ("run", None, "running"),
        ("task", "t0", "running"),
        ("task", "t0", "succeeded"),
        ("task", "t1", "running"),
        ("task", "t1", "failed"),
        ("run", None, "failed"),
    ]
    assert all(e["data"]["job"] == "j" and e["data"]["run_id"] == run_id for e in seen)
    assert seen[-2]["data"]["exit_code"] == 4
    assert seen[-2]["data"]["reason"] == "exit_code"
    assert seen[-2]["data"]["attempt"] == 1


async def test_reconnecting_with_last_event_id_resumes_where_it_stopped(served: Served) -> None:
    await put(served.client, "j", "true", "true")
    async with events(served.client) as stream:
        await stream.next()
        run_id = await start(served.client, "j")
        seen = await stream.until_run_ends(run_id)

    async with events(served.client, last_id=seen[2]["id"]) as resumed:
        again = [await resumed.next() for _ in seen[3:]]
    assert again == seen[3:]

    async with events(served.client, last_id="an-old-boot:12") as lost:
        assert (await lost.next())["event"] == "reset"


async def test_the_stream_can_be_narrowed_to_one_job(served: Served) -> None:
    await put(served.client, "noisy", "true")
    await put(served.client, "quiet", "true")
    async with events(served.client, job="quiet") as stream:
        await stream.next()
        await start(served.client, "noisy")
        quiet = await start(served.client, "quiet")
        first = await stream.next()
    assert first["data"]["job"] == "quiet"
    assert first["data"]["run_id"] == quiet


async def test_saving_a_job_is_an_event(served: Served) -> None:
    async with events(served.client) as stream:
        await stream.next()
        await put(served.client, "j", "true")
        event = await stream.next()
    assert (event["event"], event["data"]["name"], event["data"]["action"]) == ("job", "j", "saved")


async def test_a_quiet_stream_gets_keep_alive_comments(
    served: Served, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.05)
    async with events(served.client) as stream:
        await stream.next()
        assert (await stream.next(comments=True)) == {"comment": "ping"}


async def test_closing_the_daemon_ends_the_streams(served: Served) -> None:
    async with events(served.client) as stream:
        await stream.next()
        await served.daemon.close()
        with pytest.raises(EOFError):
            await stream.next()

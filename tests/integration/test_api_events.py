"""``GET /api/events`` over real HTTP on loopback: a Daemon behind uvicorn, real tasks."""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import shlex
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

from jobnest.config import Settings
from jobnest.daemon import Daemon
from jobnest.store.sql import SQLStore
from jobnest.web import create_app

pytestmark = pytest.mark.anyio


@dataclass
class Served:
    client: httpx.AsyncClient
    daemon: Daemon


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

    async def until(self, check: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        seen = [await self.next()]
        while not check(seen[-1]):
            seen.append(await self.next())
        return seen

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


async def put_task(client: httpx.AsyncClient, name: str, command: str, **options: Any) -> None:
    task = {"name": "t0", "command": command, **options}
    response = await client.put(f"/api/jobs/{name}", json={"tasks": [task]})
    assert response.status_code in (200, 201), response.text


def wait_for(gate: Path) -> str:
    """A shell loop that waits for the test to create ``gate``."""
    return f"until [ -e {shlex.quote(str(gate))} ]; do sleep 0.01; done"


def logged(seen: list[dict[str, Any]]) -> str:
    return "".join(e["data"]["text"] for e in seen if e["event"] == "log")


def is_log_end(event: dict[str, Any]) -> bool:
    return event["event"] == "log-end"


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


async def test_a_running_tasks_output_is_followed_as_it_is_written(
    served: Served, tmp_path: Path
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    command = f"echo one; {wait_for(first)}; echo two; {wait_for(second)}; echo three"
    await put_task(served.client, "j", command)
    run_id = await start(served.client, "j")
    async with events(served.client, run=run_id, log="t0") as stream:
        seen = await stream.until(lambda e: logged([e]).endswith("one\n"))
        first.touch()
        seen += await stream.until(lambda e: logged([e]).endswith("two\n"))
        assert served.daemon.is_driving(run_id)  # the task waits for the second gate
        assert not any(is_log_end(e) for e in seen)
        second.touch()
        seen += await stream.until(is_log_end)

    assert logged(seen) == "one\ntwo\nthree\n"
    chunks = [e["data"] for e in seen if e["event"] == "log"]
    assert chunks[0]["offset"] == 0
    for before, after in itertools.pairwise(chunks):
        assert after["offset"] == before["end"] == before["offset"] + len(before["text"].encode())
    about = {(c["run_id"], c["path"], c["attempt"], c["stream"]) for c in chunks}
    assert about == {(run_id, "t0", 1, "stdout")}
    end = {"run_id": run_id, "path": "t0", "attempt": 1, "stream": "stdout", "size": 14}
    assert seen[-1]["data"] == end
    assert "id" not in seen[-1]
    ended = [shape(e) for e in seen if e["event"] == "task"]
    assert ended[-1] == ("task", "t0", "succeeded")


async def test_an_ended_attempt_gives_its_last_ten_lines_then_log_end(served: Served) -> None:
    await put_task(served.client, "j", "seq 1 15; seq 1 3 >&2")
    run_id = await start(served.client, "j")
    await until(lambda: not served.daemon.is_driving(run_id))
    async with events(served.client, run=run_id, log="t0") as stream:
        assert (await stream.next())["event"] == "ready"
        seen = await stream.until(is_log_end)
    assert logged(seen) == "".join(f"{n}\n" for n in range(6, 16))
    assert seen[0]["data"]["offset"] == len("1\n2\n3\n4\n5\n")
    assert seen[-1]["data"]["size"] == len("".join(f"{n}\n" for n in range(1, 16)))

    async with events(served.client, run=run_id, log="t0", stream="stderr", offset=0) as stream:
        seen = await stream.until(is_log_end)
    assert logged(seen) == "1\n2\n3\n"
    assert seen[-1]["data"]["stream"] == "stderr"


async def test_reconnecting_with_an_offset_gives_exactly_the_bytes_after_it(
    served: Served, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    await put_task(served.client, "j", f"echo one; {wait_for(gate)}; echo two; echo three")
    run_id = await start(served.client, "j")
    async with events(served.client, run=run_id, log="t0") as stream:
        seen = await stream.until(lambda e: logged([e]).endswith("one\n"))
    end = seen[-1]["data"]["end"]
    gate.touch()
    await until(lambda: not served.daemon.is_driving(run_id))

    async with events(served.client, run=run_id, log="t0", offset=end) as stream:
        rest = await stream.until(is_log_end)
    assert logged(rest) == "two\nthree\n"
    assert next(e["data"]["offset"] for e in rest if e["event"] == "log") == end == 4


async def test_a_character_split_between_two_writes_arrives_whole(
    served: Served, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    await put_task(served.client, "j", rf"printf 'a\n\303'; {wait_for(gate)}; printf '\251\n'")
    run_id = await start(served.client, "j")
    async with events(served.client, run=run_id, log="t0") as stream:
        seen = await stream.until(lambda e: e["event"] == "log")
        assert seen[-1]["data"]["text"] == "a\n"  # the lone first byte of "é" is held back
        assert seen[-1]["data"]["end"] == 2
        gate.touch()
        seen += await stream.until(is_log_end)
    assert logged(seen) == "a\né\n"
    assert [e["data"]["offset"] for e in seen if e["event"] == "log"] == [0, 2]
    assert seen[-1]["data"]["size"] == 5


async def test_a_retry_is_followed_after_the_failed_attempts_log_end(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fastapi.routing, "_PING_INTERVAL", 0.5)
    gate, failed = tmp_path / "gate", shlex.quote(str(tmp_path / "failed"))
    command = (
        f"if [ -e {failed} ]; then echo second; "
        f"else echo first; {wait_for(gate)}; touch {failed}; exit 1; fi"
    )
    await put_task(served.client, "j", command, retries=1)
    run_id = await start(served.client, "j")
    async with events(served.client, run=run_id, log="t0") as stream:
        seen = await stream.until(lambda e: logged([e]).endswith("first\n"))
        gate.touch()
        seen += await stream.until(lambda e: is_log_end(e) and e["data"]["attempt"] == 2)
    followed = [
        (e["event"], e["data"]["attempt"], e["data"].get("text", e["data"].get("size")))
        for e in seen
        if e["event"] in ("log", "log-end")
    ]
    assert followed == [
        ("log", 1, "first\n"),
        ("log-end", 1, 6),
        ("log", 2, "second\n"),
        ("log-end", 2, 7),
    ]

    await until(lambda: not served.daemon.is_driving(run_id))
    async with events(served.client, run=run_id, log="t0", attempt=1) as stream:
        seen = await stream.until(is_log_end)
        assert (await stream.next(comments=True)) == {"comment": "ping"}  # nothing after it
    assert (logged(seen), seen[-1]["data"]["attempt"]) == ("first\n", 1)


async def test_a_task_not_started_yet_is_followed_from_its_first_byte(
    served: Served, tmp_path: Path
) -> None:
    gate = tmp_path / "gate"
    await put(served.client, "j", wait_for(gate), "seq 1 20")
    run_id = await start(served.client, "j")
    async with events(served.client, run=run_id, log="t1") as stream:
        await stream.next()
        gate.touch()
        seen = await stream.until(is_log_end)
    assert logged(seen) == "".join(f"{n}\n" for n in range(1, 21))


async def test_a_client_that_goes_away_leaves_no_task_and_no_open_file(
    served: Served, tmp_path: Path
) -> None:
    await put_task(served.client, "j", f"echo one; {wait_for(tmp_path / 'gate')}")
    run_id = await start(served.client, "j")

    def followers() -> list[asyncio.Task[Any]]:
        return [t for t in asyncio.all_tasks() if t.get_name() == "jobnest events"]

    def open_logs() -> list[str]:
        log = os.path.realpath(served.daemon.log_file(run_id, "t0", "stdout"))
        return [fd.name for fd in Path("/proc/self/fd").iterdir() if os.path.realpath(fd) == log]

    async with events(served.client, run=run_id, log="t0") as stream:
        await stream.until(lambda e: logged([e]).endswith("one\n"))
        assert len(followers()) == 1
    await until(lambda: not followers())
    assert not open_logs()


async def test_a_log_to_follow_is_checked_before_the_stream_starts(served: Served) -> None:
    await put_task(served.client, "j", "echo hi")
    run_id = await start(served.client, "j")
    await until(lambda: not served.daemon.is_driving(run_id))

    async def answer(**params: Any) -> tuple[int, str]:
        response = await served.client.get("/api/events", params=params)
        assert response.headers["content-type"] == "application/json"
        return response.status_code, response.json()["error"]

    status, message = await answer(log="t0")
    assert status == 422 and "log='t0'" in message and "run" in message
    status, message = await answer(run=run_id, log="nope")
    assert status == 404 and "'nope'" in message
    status, message = await answer(run=run_id, log="t0", stream="stdin")
    assert status == 422 and "stream" in message
    status, message = await answer(run=run_id, log="t0", attempt=9)
    assert status == 404 and "attempt 9" in message
    status, message = await answer(run=run_id + 100, log="t0")
    assert status == 404 and str(run_id + 100) in message
    status, message = await answer(run=run_id, log="t0//x")
    assert status == 422
    status, message = await answer(run=run_id, log="t0", offset=-1)
    assert status == 422 and "offset" in message

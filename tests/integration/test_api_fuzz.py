"""Fuzzing the API from its own OpenAPI document: whatever a client sends, never a 5xx.

The daemon runs behind uvicorn in a thread of its own, on loopback, over a real SQLite
store with a few jobs and a failed run to retry, cancel and read logs of. Schemathesis
generates requests that fit the document and requests that do not, from a fixed seed and
a bounded number of examples. ``/api/events`` is left out: it streams until the client
goes, and has tests of its own.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import requests
import schemathesis
import uvicorn
from hypothesis import HealthCheck, given, seed
from hypothesis import settings as hypothesis_settings
from schemathesis import Case, GenerationMode

from jobnest.config import Settings, load_settings
from jobnest.daemon import Daemon
from jobnest.store.sql import SQLStore
from jobnest.web import create_app

pytestmark = pytest.mark.slow  # scripts/test leaves it out; CI runs it

SEED = 20241125
EXAMPLES = 200  # per generation mode, spread over every operation


class BackgroundServer:
    """The daemon and uvicorn in one event loop, in a thread; ``url`` once it listens."""

    def __init__(self, settings: Settings, workdir: Path) -> None:
        self.settings = settings
        self.workdir = workdir
        self.ready = threading.Event()
        self.server: uvicorn.Server | None = None
        self.url = ""
        self.thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    def __enter__(self) -> BackgroundServer:
        self.thread.start()
        assert self.ready.wait(30), "the server did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.should_exit = True
        self.thread.join(60)
        assert not self.thread.is_alive(), "the server did not stop"

    async def _main(self) -> None:
        store = SQLStore.open(self.settings.database_url)
        daemon = Daemon(store, self.settings, workdir=str(self.workdir), zone=ZoneInfo("UTC"))
        await _seed(daemon)
        config = uvicorn.Config(
            create_app(daemon), host="127.0.0.1", port=0, lifespan="off", ws="none",
            log_level="warning",
        )  # fmt: skip
        self.server = uvicorn.Server(config)
        serving = asyncio.create_task(self.server.serve())
        while not self.server.started:
            assert not serving.done(), "uvicorn stopped before it started"
            await asyncio.sleep(0.01)
        self.url = f"http://127.0.0.1:{self.server.servers[0].sockets[0].getsockname()[1]}"
        self.ready.set()
        await serving
        await daemon.close()
        store.close()


async def _seed(daemon: Daemon) -> None:
    """Jobs with a reference, and run 1 failed: retry, cancel and logs have something to do."""
    daemon.put_job({"name": "child", "tasks": [{"name": "say", "command": "echo hi"}]})
    daemon.put_job(
        {
            "name": "parent",
            "tasks": [
                {"name": "c", "job": "child"},
                {"name": "bad", "command": "exit 1", "after": ["c"]},
            ],
        }
    )
    run = daemon.start_run("parent")
    deadline = time.monotonic() + 10
    while daemon.is_driving(run.id):
        assert time.monotonic() < deadline, "the seed run did not end"
        await asyncio.sleep(0.01)


@pytest.fixture
def base_url(home: Path, tmp_path: Path) -> Iterator[str]:
    home.mkdir(parents=True)
    with BackgroundServer(load_settings(), tmp_path) as server:
        yield server.url


@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_no_request_gets_a_server_error(base_url: str, mode: GenerationMode) -> None:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json", timeout=10)
    strategy = schema.exclude(path="/api/events").as_strategy(mode)

    with requests.Session() as session:

        @seed(SEED)
        @hypothesis_settings(
            max_examples=EXAMPLES,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(case=strategy)
        def no_server_error(case: Case[Any]) -> None:
            response = case.call(base_url=base_url, session=session, timeout=10)
            assert response.status_code < 500, (
                f"{response.status_code} for {case.as_curl_command(base_url=base_url)}\n"
                f"{response.text[:500]}"
            )

        no_server_error()

"""The runner on PostgreSQL while the database goes away: tasks go on, results wait.

Each test has a database of its own: cutting its connections (``pg_terminate_backend``)
or shutting it (``ALLOW_CONNECTIONS false``) touches no other test's.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobnest.config import Settings, load_settings
from jobnest.executors.local import LocalExecutor
from jobnest.model.job import parse_job
from jobnest.runner import Event, Runner
from jobnest.store.base import RunRecord
from jobnest.store.sql import SQLStore
from postgres import allow_connections, fresh_database, terminate_connections
from support.polling import until_async

WAIT_FOR_GO = "echo $$ > {name}.pid; while [ ! -f go ]; do sleep 0.02; done"
DEADLINE = 20.0  # seconds a task may take to get where a test waits for it


@pytest.fixture
def database() -> Iterator[str]:
    with fresh_database() as url:
        yield url


@pytest.fixture
def settings(home: Path, database: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    home.mkdir(parents=True)
    monkeypatch.setenv("JOBNEST_DATABASE_URL", database)
    return load_settings()


def runner_of(store: SQLStore, settings: Settings, events: list[Event]) -> Runner:
    executor = LocalExecutor(grace=1.0)
    return Runner(store, executor, settings, observer=events.append, heartbeat=0.1)


JOB = parse_job(
    {
        "name": "outage",
        "tasks": [
            {"name": "first", "command": WAIT_FOR_GO.format(name="first")},
            {"name": "then", "command": "echo then > then.out", "after": ["first"]},
            {"name": "aside", "command": "true"},
        ],
    }
)


def test_a_run_ends_right_when_its_connections_are_cut_mid_run(
    store: SQLStore, settings: Settings, tmp_path: Path
) -> None:
    events: list[Event] = []
    runner = runner_of(store, settings, events)
    record = runner.start(JOB, {JOB.name: JOB}.get, workdir=str(tmp_path))

    async def scenario() -> RunRecord:
        driving = asyncio.create_task(runner.drive(record.id))
        await until_async(lambda: (tmp_path / "first.pid").exists(), DEADLINE)
        assert await asyncio.to_thread(terminate_connections, settings.database_url) >= 1
        (tmp_path / "go").touch()
        return await asyncio.wait_for(driving, 30)

    final = asyncio.run(scenario())
    assert final.status == "succeeded"
    tasks = {task.path: (task.status, task.attempts) for task in store.tasks(record.id)}
    assert tasks == {"first": ("succeeded", 1), "then": ("succeeded", 1), "aside": ("succeeded", 1)}
    assert (tmp_path / "then.out").read_text() == "then\n"


def test_results_of_tasks_that_end_while_the_database_is_away_are_written_once_it_is_back(
    store: SQLStore, settings: Settings, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    events: list[Event] = []
    runner = runner_of(store, settings, events)
    record = runner.start(JOB, {JOB.name: JOB}.get, workdir=str(tmp_path))
    url = settings.database_url

    def ended() -> int:
        return len(list((settings.logs / str(record.id)).glob("*/exit")))

    async def scenario() -> RunRecord:
        driving = asyncio.create_task(runner.drive(record.id))
        await until_async(lambda: (tmp_path / "first.pid").exists(), DEADLINE)
        await asyncio.to_thread(allow_connections, url, False)
        await asyncio.to_thread(terminate_connections, url)
        (tmp_path / "go").touch()  # `first` ends while the database is away
        await until_async(lambda: "the database is away" in caplog.text, DEADLINE)
        await until_async(lambda: ended() == 2, DEADLINE)  # `aside` and `first` have ended
        assert ("first", "succeeded") not in {(e.path, e.status) for e in events}
        assert not (tmp_path / "then.out").exists()  # nothing new starts unrecorded
        await asyncio.to_thread(allow_connections, url, True)
        return await asyncio.wait_for(driving, 30)

    with caplog.at_level(logging.WARNING, logger="jobnest.runner"):
        final = asyncio.run(scenario())
    assert final.status == "succeeded"
    first = store.attempts(record.id, "first")
    assert [(a.number, a.status, a.exit_code) for a in first] == [(1, "succeeded", 0)]
    assert (tmp_path / "then.out").read_text() == "then\n"
    assert "the database is back" in caplog.text
    assert final.owner is None  # released once the database took it

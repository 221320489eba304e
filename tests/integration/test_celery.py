"""Tasks with ``queue:`` on real Celery workers, over the machine's RabbitMQ and Redis.

The runner is the daemon's (``default_executor`` with ``[celery] broker`` set); the workers
are ``jobnest worker`` subprocesses sharing the test's SQLite database. Workers that survive
their tests are shared by the module; a test that kills one starts its own.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from celery_worker import JOBNEST, RABBITMQ, REDIS, Worker, start_worker, unique_queue
from jobnest.config import Settings, load_settings
from jobnest.errors import InvalidInput, NotFound
from jobnest.executors.celery import TASK_NAME, make_app
from jobnest.executors.router import default_executor
from jobnest.model.job import Job, parse_job
from jobnest.runner import Runner
from jobnest.store.base import AttemptRecord, RunRecord, Store, WorkerKey
from jobnest.store.sql import SQLStore, sqlite_url
from support.polling import until, until_async
from support.processes import marker, sleepers

DEADLINE = 15.0  # seconds a worker may take to get where a test waits for it


class Place:
    """The module's database and its long-lived workers."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.url = sqlite_url(folder / "jobnest.db")
        SQLStore.open(self.url).close()
        self.workers: dict[str, Worker] = {}

    def worker(self, name: str, broker: str) -> Worker:
        if name not in self.workers:
            self.workers[name] = self.start(broker, unique_queue(name))
        return self.workers[name]

    def start(self, broker: str, queue: str) -> Worker:
        return start_worker(self.folder, self.url, broker, queue, heartbeat=0.2)


@pytest.fixture(scope="module")
def place(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    shared = Place(tmp_path_factory.mktemp("celery-place"))
    yield shared
    for worker in shared.workers.values():
        worker.stop()


def settings_for(place: Place, home: Path, broker: str) -> Settings:
    home.mkdir(parents=True, exist_ok=True)
    env = {"JOBNEST_HOME": str(home), "JOBNEST_DATABASE_URL": place.url, "JOBNEST_GRACE": "2"}
    return load_settings({**env, "JOBNEST_CELERY_BROKER": broker})


def job(name: str, *tasks: dict[str, Any], **extra: Any) -> Job:
    return parse_job({"name": name, "tasks": list(tasks), **extra})


async def run_job(
    settings: Settings, top: Job, *others: Job, during: Callable[..., Any] | None = None
) -> tuple[RunRecord, Store]:
    """Start ``top`` and drive it to the end; ``during(runner, run_id)`` runs alongside."""
    store = SQLStore.open(settings.database_url)
    runner = Runner(store, default_executor(settings), settings)
    jobs = {j.name: j for j in (top, *others)}
    record = runner.start(top, jobs.get, workdir=str(settings.home))
    driving = asyncio.create_task(runner.drive(record.id))
    try:
        if during is not None:
            await during(runner, record.id)
        return await driving, store
    finally:
        await runner.executor.close()


def log_of(settings: Settings, attempt: AttemptRecord, stream: str = "stdout") -> str:
    path = settings.home / attempt.log_dir / stream
    return path.read_text() if path.exists() else ""


def test_a_nested_job_runs_its_tasks_on_two_worker_queues(place: Place, tmp_path: Path) -> None:
    first, second = place.worker("a", RABBITMQ), place.worker("b", RABBITMQ)
    settings = settings_for(place, tmp_path / "home", RABBITMQ)
    child = job(
        "child", {"name": "stage", "command": "echo stage $JOBNEST_TASK"}, queue=second.queue
    )
    top = job(
        "nested",
        {"name": "extract", "command": "echo extract", "queue": first.queue},
        {"name": "load", "job": "child", "after": ["extract"]},
        {"name": "report", "command": "echo local", "after": ["load"]},
    )

    run, store = asyncio.run(run_job(settings, top, child))

    assert run.status == "succeeded"
    attempts = {a.path: a for a in store.attempts(run.id)}
    assert log_of(settings, attempts["extract"]) == "extract\n"
    assert log_of(settings, attempts["load/stage"]) == "stage load/stage\n"
    assert log_of(settings, attempts["report"]) == "local\n"
    assert f"running attempt {run.id}/extract#1" in first.log_text()
    assert f"running attempt {run.id}/load/stage#1" in second.log_text()
    assert f"{run.id}/load/stage" not in first.log_text()


def test_output_streams_into_the_log_files_while_the_task_runs(
    place: Place, tmp_path: Path
) -> None:
    worker = place.worker("redis", REDIS)
    settings = settings_for(place, tmp_path / "home", REDIS)
    release = tmp_path / "release"
    command = f"echo first; while [ ! -e {release} ]; do sleep 0.02; done; echo second"
    top = job("streaming", {"name": "talk", "command": command, "queue": worker.queue})

    async def watch(runner: Runner, run_id: int) -> None:
        def printed() -> bool:
            found = runner.store.attempts(run_id)
            return bool(found) and log_of(settings, found[0]) == "first\n"

        await until_async(printed, DEADLINE, "timed out waiting for the first line")
        assert runner.store.tasks(run_id)[0].status == "running"
        release.touch()

    run, store = asyncio.run(run_job(settings, top, during=watch))

    assert run.status == "succeeded"
    assert log_of(settings, store.attempts(run.id)[0]) == "first\nsecond\n"


def test_cancel_reaches_the_worker_and_kills_the_process_group(
    place: Place, tmp_path: Path
) -> None:
    worker = place.worker("a", RABBITMQ)
    settings = settings_for(place, tmp_path / "home", RABBITMQ)
    duration = marker()
    top = job(
        "cancelled",
        {"name": "slow", "command": f"sh -c 'sleep {duration} & wait'", "queue": worker.queue},
    )

    async def cancel(runner: Runner, run_id: int) -> None:
        await until_async(lambda: sleepers(duration), DEADLINE, "timed out waiting for the sleep")
        assert runner.cancel(run_id)

    run, store = asyncio.run(run_job(settings, top, during=cancel))

    assert run.status == "cancelled"
    assert not sleepers(duration)
    [attempt] = store.attempts(run.id)
    assert (attempt.status, attempt.reason) == ("cancelled", "cancelled")
    row = store.worker_attempt(WorkerKey(run.id, "slow", 1))
    assert row.status == "finished" and row.outcome is not None
    assert row.outcome["reason"] == "cancelled"


def test_a_worker_killed_mid_task_is_lost_then_retried_once(place: Place, tmp_path: Path) -> None:
    queue = unique_queue("killed")
    doomed = place.start(RABBITMQ, queue)
    settings = settings_for(place, tmp_path / "home", RABBITMQ)
    duration = marker()
    command = (
        f'if [ "$JOBNEST_ATTEMPT" = 1 ]; then echo start; sleep {duration}; else echo done; fi'
    )
    top = job("killed", {"name": "work", "command": command, "queue": queue, "retries": 2})
    spare: list[Worker] = []

    async def kill(runner: Runner, run_id: int) -> None:
        await until_async(lambda: sleepers(duration), DEADLINE, "timed out waiting for attempt 1")
        spare.append(place.start(RABBITMQ, queue))  # idle: gets the redelivered message
        doomed.kill()

    try:
        run, store = asyncio.run(run_job(settings, top, during=kill))
    finally:
        for worker in (doomed, *spare):
            worker.stop()

    assert run.status == "succeeded"
    assert not sleepers(duration), "the killed worker's task lives on"
    lost, retried = store.attempts(run.id)
    assert (lost.status, lost.reason) == ("failed", "lost")
    assert (retried.number, retried.status) == (2, "succeeded")
    assert (log_of(settings, lost), log_of(settings, retried)) == ("start\n", "done\n")
    assert f"dropped attempt {run.id}/work#1" in spare[0].log_text()
    assert store.worker_attempt(WorkerKey(run.id, "work", 1)).status == "lost"


def test_a_redelivered_message_for_a_finished_attempt_is_dropped(
    place: Place, tmp_path: Path
) -> None:
    worker = place.worker("redis", REDIS)
    settings = settings_for(place, tmp_path / "home", REDIS)
    top = job("once", {"name": "count", "command": "echo ran", "queue": worker.queue})
    run, store = asyncio.run(run_job(settings, top))
    [attempt] = store.attempts(run.id)
    before = store.worker_attempt(WorkerKey(run.id, "count", 1))

    app = make_app(REDIS)
    try:
        app.send_task(TASK_NAME, args=[run.id, "count", 1], queue=worker.queue)
    finally:
        app.close()

    dropped = f"dropped attempt {run.id}/count#1"
    until(lambda: dropped in worker.log_text(), DEADLINE, "the worker never dropped the message")
    assert log_of(settings, attempt) == "ran\n"
    assert store.worker_attempt(WorkerKey(run.id, "count", 1)) == before


def test_an_attempt_no_worker_took_yet_is_cancelled_at_once(place: Place, tmp_path: Path) -> None:
    queue = unique_queue("idle")  # nobody consumes it
    settings = settings_for(place, tmp_path / "home", REDIS)
    top = job("unclaimed", {"name": "waits", "command": "true", "queue": queue})

    async def cancel(runner: Runner, run_id: int) -> None:
        key = WorkerKey(run_id, "waits", 1)
        await until_async(
            lambda: _dispatched(runner.store, key), DEADLINE, "timed out waiting for the dispatch"
        )
        assert runner.cancel(run_id)

    try:
        run, store = asyncio.run(run_job(settings, top, during=cancel))
    finally:
        app = make_app(REDIS)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_purge(queue)
        app.close()

    assert run.status == "cancelled"
    assert store.worker_attempt(WorkerKey(run.id, "waits", 1)).status == "cancelled"


def _dispatched(store: Store, key: WorkerKey) -> bool:
    try:
        return store.worker_attempt(key).status == "queued"
    except NotFound:
        return False


def test_a_queued_task_without_a_broker_fails_saying_how_to_set_one(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    settings = load_settings({"JOBNEST_HOME": str(home)})
    top = job("nobroker", {"name": "t", "command": "true", "queue": "q"})

    run, store = asyncio.run(run_job(settings, top))

    [attempt] = store.attempts(run.id)
    assert (run.status, attempt.reason) == ("failed", "error")
    assert "[celery] broker" in log_of(settings, attempt, "stderr")


def test_a_broker_that_is_not_an_amqp_or_redis_url_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text('[celery]\nbroker = "http://example.com"\n')

    with pytest.raises(InvalidInput, match=r"'http://example\.com'"):
        load_settings({"JOBNEST_HOME": str(tmp_path)})


def test_jobnest_worker_without_a_broker_exits_2(tmp_path: Path) -> None:
    env = {**os.environ, "JOBNEST_HOME": str(tmp_path)}
    env.pop("JOBNEST_CELERY_BROKER", None)

    done = subprocess.run(
        [JOBNEST, "worker", "--queue", "q"], env=env, capture_output=True, text=True, timeout=30
    )

    assert done.returncode == 2
    assert "--broker" in done.stderr and "Traceback" not in done.stderr


def test_an_unreachable_broker_fails_the_attempt_with_the_reason(
    place: Place, tmp_path: Path
) -> None:
    settings = settings_for(place, tmp_path / "home", "redis://127.0.0.1:1/0")  # refused
    top = job("unreachable", {"name": "t", "command": "true", "queue": "q"})

    run, store = asyncio.run(run_job(settings, top))

    [attempt] = store.attempts(run.id)
    assert (run.status, attempt.reason) == ("failed", "error")
    assert "cannot send it to queue 'q'" in log_of(settings, attempt, "stderr")
    assert store.worker_attempt(WorkerKey(run.id, "t", 1)).status == "cancelled"

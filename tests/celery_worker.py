"""Real Celery workers for the tests: ``jobnest worker --queue ...`` as a subprocess.

The brokers are the ones the machine runs (RabbitMQ on 5672, Redis on 6379). Every worker
consumes a queue named for this test run only, shares the test's database by URL, and writes
its log to a file the tests can read (``Worker.log_text``). ``start_worker`` returns once the
worker says it is ready.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobnest.executors.celery import make_app
from jobnest.store.sql import SQLStore, sqlite_url

RABBITMQ = "amqp://guest:guest@127.0.0.1:5672//"
REDIS = "redis://127.0.0.1:6379/0"
JOBNEST = str(Path(sys.executable).parent / "jobnest")
DEADLINE = 20.0  # seconds a worker may take to become ready (it imports Celery)


@dataclass
class Worker:
    queue: str
    broker: str
    process: subprocess.Popen[bytes]
    log: Path

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def kill(self) -> None:
        """SIGKILL: the worker dies without a word to the broker or the store."""
        self.process.kill()
        self.process.wait()

    def stop(self) -> None:
        """SIGTERM, then delete the test's queue from the broker (RabbitMQ keeps them)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        app = make_app(self.broker)
        try:
            with app.connection_for_write() as connection:
                connection.default_channel.queue_delete(self.queue)
        finally:
            app.close()


def unique_queue(tag: str) -> str:
    return f"jobnest-test-{tag}-{uuid.uuid4().hex[:8]}"


def start_worker(
    folder: Path,
    database_url: str,
    broker: str,
    queue: str,
    *,
    concurrency: int = 1,
    heartbeat: float = 0.2,
) -> Worker:
    """Start ``jobnest worker`` on ``queue`` and wait until it consumes."""
    folder.mkdir(parents=True, exist_ok=True)
    log = folder / f"worker-{queue}-{uuid.uuid4().hex[:6]}.log"
    env = {**os.environ, "JOBNEST_HOME": str(folder), "JOBNEST_DATABASE_URL": database_url}
    argv = [JOBNEST, "worker", "--queue", queue, "--broker", broker]
    argv += ["--concurrency", str(concurrency), "--heartbeat", str(heartbeat)]
    with open(log, "wb") as out:
        process = subprocess.Popen(
            argv, stdout=out, stderr=subprocess.STDOUT, env={**env, "PYTHONUNBUFFERED": "1"}
        )
    worker = Worker(queue, broker, process, log)
    deadline = time.monotonic() + DEADLINE
    while " ready." not in worker.log_text():
        if process.poll() is not None or time.monotonic() > deadline:
            worker.stop()
            raise AssertionError(f"the worker did not start:\n{worker.log_text()}")
        time.sleep(0.05)
    return worker


@dataclass
class SharedWorker:
    """One worker on Redis for a whole session, with the database it shares with the tests."""

    worker: Worker
    database_url: str


@pytest.fixture(scope="session")
def shared_celery_worker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SharedWorker]:
    """A worker with room for a dozen attempts at once, as the executor contract needs."""
    folder = tmp_path_factory.mktemp("celery")
    url = sqlite_url(folder / "jobnest.db")
    SQLStore.open(url).close()  # the schema exists before the worker opens it
    worker = start_worker(folder, url, REDIS, unique_queue("contract"), concurrency=16)
    yield SharedWorker(worker, url)
    worker.stop()

"""A1: the API under load: 50 clients reading runs and jobs while a run of 200 tasks runs.

Side A is a real ``jobnest serve`` (``bench.daemon``), started for each sample with a fresh
data directory (embedded SQLite) and one job file: ``busy``, 200 independent tasks that each
``sleep 300``, with ``JOBNEST_MAX_PARALLEL=200``. A run of it is started through the API
(``POST /api/jobs/busy/runs``) and the window opens once the run shows all 200 tasks
running; it closes with all 200 still running (checked), and the daemon's SIGTERM ends them.
So "while 200 tasks run" is literal: the daemon watches 200 processes and the run the
clients read holds 200 running tasks. No task starts or ends inside the window: what the
daemon does there is serve, beside its idle scheduler, not start tasks (W1–W5 time that).

In the window, 50 clients, each on a keep-alive connection of its own opened beforehand,
send 60 requests one after the other with no pause, cycling through the runs list
(``/api/runs``), the jobs list (``/api/jobs``) and the run (``/api/runs/1``, its 200
tasks). Every request's latency, from writing it to reading its whole body, is kept; a
sample is their p50 and p99 and the requests per second. With no pause, 50 requests are in
the server at every moment, so the latency is about 50 ÷ the throughput (Little's law): p50
tells how fast the server answers, p99 how evenly. The target is on the median of the
samples' p99, like E1's and U1's: the worst of a few samples on a shared machine measures
the machine's other load more than the server.

Side B is the practical limit of a Python web server under that load: a plain ASGI callable
under the same uvicorn as the daemon's (the same HTTP parser, event loop and log level, a
process of its own), answering each path with the body jobnest gave for it, captured once
from a daemon in the same state, from memory. What A takes above B is jobnest's work per
request: routing, authentication, the store's queries, the models and their JSON.

The clients are plain asyncio streams in this process, writing HTTP/1.1 requests and reading
each response by its ``Content-Length``: they share the two cores with the server they
measure, and on this machine httpx's AsyncClient spent ~1.3 ms of CPU per request (threads
of httpx.Client as much) where these spend ~0.05 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import urllib.request
from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from bench.daemon import free_port, jobnest_serve, served
from bench.report import Row, Target
from bench.sides import BenchError, scratch
from bench.stats import percentile
from bench.workloads.base import Context, Sample, Side, Workload, alternate, row

TARGET = Target("below", 50, "p99 < 50 ms")
BASELINE = "plain ASGI app"
JOB = "busy"
SLEEP = 300  # seconds each task sleeps: longer than any window (LOAD_SECONDS)
LOAD_SECONDS = 120.0  # for the clients' requests, all of them
READY_SECONDS = 60.0  # for the run to have every task running
POLL_SECONDS = 0.05
BODIES = "BENCH_A1_BODIES"  # the file of side B's bodies, for its app factory
ROOT = Path(__file__).resolve().parents[2]  # the folder `bench` is imported from

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


@dataclass(frozen=True)
class Load:
    clients: int
    requests: int  # per client


@dataclass(frozen=True)
class Busy:
    """A daemon whose run has every task running."""

    url: str
    run: str  # the run's path: /api/runs/ID

    @property
    def paths(self) -> list[str]:
        """What the clients read: the runs list, the jobs list, the run."""
        return ["/api/runs", "/api/jobs", self.run]

    def running(self) -> int:
        detail = json.loads(_get(self.url + self.run))
        return sum(task["status"] == "running" for task in detail["tasks"])


def run(ctx: Context) -> list[Row]:
    tasks = ctx.size(200, 20)
    load = Load(ctx.size(50, 5), ctx.size(60, 6))
    jobs = _job_file(ctx.data, tasks)
    bodies = _capture(ctx.data, jobs, tasks)
    file = scratch(ctx.data, "bodies-") / "bodies.json"
    file.write_text(json.dumps(bodies))
    daemon, plain = _jobnest(ctx, jobs, tasks, load), _baseline(ctx, file, list(bodies), load)
    samples = alternate(ctx, daemon, plain)
    case = (
        f"{load.clients} clients × {load.requests} requests (runs, jobs, a run) "
        f"while {tasks} tasks run"
    )
    return [
        row("A1", case, samples, "p50", "ms", b_label=BASELINE),
        row("A1", case, samples, "p99", "ms", TARGET, BASELINE),
        row("A1", case, samples, "throughput", "requests/s", b_label=BASELINE),
    ]


def _job_file(root: Path, tasks: int) -> Path:
    """A folder holding the job file of ``busy``."""
    folder = scratch(root, "jobs-")
    commands = [{"name": f"t{i}", "command": f"sleep {SLEEP}"} for i in range(tasks)]
    (folder / f"{JOB}.json").write_text(json.dumps({"jobs": [{"name": JOB, "tasks": commands}]}))
    return folder


def _capture(root: Path, jobs: Path, tasks: int) -> dict[str, str]:
    """jobnest's answers to the clients' requests, by path, with every task running."""
    with _busy(root, jobs, tasks) as busy:
        return {path: _get(busy.url + path).decode() for path in busy.paths}


def _jobnest(ctx: Context, jobs: Path, tasks: int, load: Load) -> Side:
    def sample() -> Sample:
        with _busy(ctx.data, jobs, tasks) as busy:
            measured = _measure(busy.url, busy.paths, load)
            if busy.running() != tasks:
                raise BenchError(f"tasks of {JOB!r} ended before the clients were done")
        return measured

    return sample


@contextmanager
def _busy(root: Path, jobs: Path, tasks: int) -> Iterator[Busy]:
    """A daemon of ``jobs`` running ``busy``, once all its ``tasks`` are running."""
    env = {"JOBNEST_MAX_PARALLEL": str(tasks), "JOBNEST_GRACE": "1"}
    with jobnest_serve(scratch(root, "sample-"), jobs, env) as server:
        started = _post(f"{server.url}/api/jobs/{JOB}/runs")
        busy = Busy(server.url, f"/api/runs/{started['id']}")
        deadline = time.monotonic() + READY_SECONDS
        while busy.running() < tasks:
            if time.monotonic() > deadline:
                raise BenchError(f"{JOB!r} did not have its {tasks} tasks running in time")
            time.sleep(POLL_SECONDS)
        yield busy


def _baseline(ctx: Context, bodies: Path, paths: list[str], load: Load) -> Side:
    def sample() -> Sample:
        port = free_port()
        argv = [sys.executable, "-m", "uvicorn", "--factory", f"{__name__}:baseline_app"]
        argv += ["--app-dir", str(ROOT), "--port", str(port)]
        argv += ["--log-level", "warning", "--lifespan", "off"]  # as jobnest's uvicorn
        env = {**os.environ, BODIES: str(bodies)}
        with served(argv, port, paths[0], cwd=scratch(ctx.data, "baseline-"), env=env) as server:
            return _measure(server.url, paths, load)

    return sample


def baseline_app() -> ASGIApp:
    """Side B's server (``uvicorn --factory``): the bodies of ``$BENCH_A1_BODIES`` by path."""
    bodies: dict[str, str] = json.loads(Path(os.environ[BODIES]).read_text())
    answers = {path: _answer(body.encode()) for path, body in bodies.items()}

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        start, body = answers[scope["path"]]
        await send(start)
        await send(body)

    return app


def _answer(body: bytes) -> tuple[Message, Message]:
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    start = {"type": "http.response.start", "status": 200, "headers": headers}
    return start, {"type": "http.response.body", "body": body}


def _measure(url: str, paths: list[str], load: Load) -> Sample:
    """The latencies of ``load`` on the server at ``url``: p50, p99, and the throughput."""
    for path in paths:  # first answers (imports, caches) are not the steady state
        _get(url + path)
    port = urlsplit(url).port
    assert port is not None
    latencies, seconds = asyncio.run(_clients(port, paths, load))
    return {
        "p50": percentile(latencies, 50),
        "p99": percentile(latencies, 99),
        "throughput": len(latencies) / seconds,
    }


async def _clients(port: int, paths: list[str], load: Load) -> tuple[list[float], float]:
    """Every request's milliseconds, and the seconds from the first request to the last."""
    async with asyncio.timeout(LOAD_SECONDS):
        connections = [
            await asyncio.open_connection("127.0.0.1", port) for _ in range(load.clients)
        ]
        try:
            started = time.perf_counter()
            each = await asyncio.gather(
                *(_client(r, w, paths, k, load.requests) for k, (r, w) in enumerate(connections))
            )
            seconds = time.perf_counter() - started
        finally:
            for _, writer in connections:
                writer.close()
    return [ms for one in each for ms in one], seconds


async def _client(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    paths: list[str],
    first: int,
    count: int,
) -> list[float]:
    """``count`` requests one after the other, cycling through ``paths`` from ``first``."""
    requests = [f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode() for path in paths]
    latencies = []
    for index in range(first, first + count):
        started = time.perf_counter()
        writer.write(requests[index % len(requests)])
        await _response(reader)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _response(reader: asyncio.StreamReader) -> None:
    """Read one response whole; it must be a 200 with a ``Content-Length``."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
    status, *fields = head.split("\r\n")
    lengths = [
        value
        for name, _, value in (f.partition(":") for f in fields)
        if name.lower() == "content-length"
    ]
    if status.split(" ")[1] != "200" or not lengths:
        raise BenchError(f"unexpected answer: {head!r}")
    await reader.readexactly(int(lengths[0]))


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=30) as answer:
        return bytes(answer.read())


def _post(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=30) as answer:
        posted: dict[str, Any] = json.loads(answer.read())
        return posted


WORKLOAD = Workload("A1", "the API under load, while 200 tasks run", run)

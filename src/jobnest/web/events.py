"""``GET /api/events``: run, task and job changes as server-sent events, and a task's output.

Each change has an id, a type (``run``, ``task``, ``job``; ``ready`` first on a fresh
connection, ``reset`` when a resumed one missed too much) and JSON data. Reconnecting with
``Last-Event-ID`` resumes from the daemon's ring of recent events (see ``jobnest.hub``).
``run`` and ``job`` narrow the stream to one run or one job. With ``run`` and ``log`` (a
task's path) the stream also carries that task's output as ``log`` and ``log-end`` events,
without ids: they resume by byte offset instead (see ``web.log_follow``). FastAPI sends a
keep-alive comment whenever nothing was sent for 15 seconds.

A task of the request moves the hub's events into a one-place queue; the request's own loop
takes them from there, reading the log in between. When the client goes, the task is
cancelled and awaited: it leaves the hub, and no file stays open.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Annotated, Literal, cast

import anyio
from fastapi import APIRouter, Depends, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from jobnest.errors import InvalidInput
from jobnest.hub import EventHub, HubEvent
from jobnest.web.deps import MAX_ID, DaemonDep
from jobnest.web.log_follow import LogFollower
from jobnest.web.models import ERRORS

router = APIRouter(prefix="/api", responses=ERRORS)

_ENDED = HubEvent("", "ended")  # the hub closed, or dropped this watcher


async def run_filter(
    run: Annotated[int | None, Query(ge=1, le=MAX_ID, description="only this run's events")] = None,
) -> int | None:
    """``run``, checked once for the stream and the log follower alike."""
    return run


RunFilter = Annotated[int | None, Depends(run_filter)]


async def log_follower(
    daemon: DaemonDep,
    run: RunFilter,
    log: Annotated[
        str | None, Query(max_length=4096, description="a task of `run`: send its output")
    ] = None,
    stream: Literal["stdout", "stderr"] = "stdout",
    attempt: Annotated[int | None, Query(ge=1, le=10**9, description="default: the latest")] = None,
    offset: Annotated[
        int | None, Query(ge=0, le=2**62, description="byte; default: the last 10 lines")
    ] = None,
) -> LogFollower | None:
    """The follower of ``log``'s output, checked before the stream starts; None without
    ``log``. Raises InvalidInput (no ``run``), InvalidJob, NotFound."""
    if log is None:
        return None
    if run is None:
        raise InvalidInput(f"log={log!r} needs run=ID: the run whose task to follow")
    return await LogFollower.start(daemon, run, log, stream, attempt, offset)


@router.get("/events", tags=["events"], response_class=EventSourceResponse)
async def events(
    daemon: DaemonDep,
    follower: Annotated[LogFollower | None, Depends(log_follower)],
    run: RunFilter,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    job: Annotated[str | None, Query(max_length=128)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events of run, task and job changes, resumable with Last-Event-ID; with
    ``run`` and ``log``, also the task's output (``log``, ``log-end``)."""
    queue: asyncio.Queue[HubEvent] = asyncio.Queue(maxsize=1)
    pump = asyncio.create_task(_pump(daemon.hub, last_event_id, queue), name="jobnest events")
    await asyncio.sleep(0)  # the pump joins the hub before the follower first reads the store
    try:
        while (event := await _next(queue, follower)) is not _ENDED:
            if event is not None and _wanted(event, run, job):
                yield ServerSentEvent(id=event.id, event=event.kind, data=event.data)
            if follower is not None:
                for item in await follower.advance(event):
                    yield item
    finally:
        pump.cancel()
        with anyio.CancelScope(shield=True):
            await asyncio.wait([pump])


async def _pump(hub: EventHub, last_id: str | None, queue: asyncio.Queue[HubEvent]) -> None:
    """The hub's events into ``queue``, then ``_ENDED``; a slow reader holds it up, until
    the hub drops it."""
    # an async generator: closed as the pump ends, so the hub forgets the watcher at once
    watching = cast(AsyncGenerator[HubEvent, None], hub.watch(last_id))
    async with contextlib.aclosing(watching):
        async for event in watching:
            await queue.put(event)
    await queue.put(_ENDED)


async def _next(queue: asyncio.Queue[HubEvent], follower: LogFollower | None) -> HubEvent | None:
    """The next hub event, or None once it is time for the follower to read on."""
    wait = None if follower is None else follower.wait()
    if wait == 0:
        return None if queue.empty() else queue.get_nowait()
    with anyio.move_on_after(wait):
        return await queue.get()
    return None


def _wanted(event: HubEvent, run: int | None, job: str | None) -> bool:
    if event.kind in ("ready", "reset"):
        return True
    data = event.data
    return (run is None or data.get("run_id") == run) and (
        job is None or job in (data.get("job"), data.get("name"))
    )

"""``GET /api/events``: run, task and job changes as server-sent events.

Each event has an id, a type (``run``, ``task``, ``job``; ``ready`` first on a fresh
connection, ``reset`` when a resumed one missed too much) and JSON data. Reconnecting with
``Last-Event-ID`` resumes from the daemon's ring of recent events (see ``jobnest.hub``).
``run`` and ``job`` narrow the stream to one run or one job. FastAPI sends a keep-alive
comment whenever nothing was sent for 15 seconds.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, Header, Query
from fastapi.sse import EventSourceResponse, ServerSentEvent

from jobnest.hub import HubEvent
from jobnest.web.deps import MAX_ID, DaemonDep
from jobnest.web.models import ERRORS

router = APIRouter(prefix="/api", responses=ERRORS)


@router.get("/events", tags=["events"], response_class=EventSourceResponse)
async def events(
    daemon: DaemonDep,
    last_event_id: Annotated[str | None, Header(max_length=64)] = None,
    run: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
    job: Annotated[str | None, Query(max_length=128)] = None,
) -> AsyncIterator[ServerSentEvent]:
    """Server-sent events of run, task and job changes, resumable with Last-Event-ID."""
    async for event in daemon.hub.watch(last_event_id):
        if _wanted(event, run, job):
            yield ServerSentEvent(id=event.id, event=event.kind, data=event.data)


def _wanted(event: HubEvent, run: int | None, job: str | None) -> bool:
    if event.kind in ("ready", "reset"):
        return True
    data = event.data
    return (run is None or data.get("run_id") == run) and (
        job is None or job in (data.get("job"), data.get("name"))
    )

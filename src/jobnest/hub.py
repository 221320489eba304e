"""The event hub: run, task and job changes fanned out to every watcher in this process.

Each published event gets an id ``<boot>:<n>``: ``n`` counts up from 1, ``boot`` tells
this daemon's lifetime from the last one's. The newest events are kept in a bounded ring so
that a watcher that reconnects with the id of the last event it saw gets what it missed.
When that is no longer possible (the id is older than the ring, or from another boot) the
watcher gets a ``reset`` event instead: read the state afresh, then follow the changes.

A watcher that falls too far behind is dropped rather than let grow without bound; it
reconnects and resumes from the ring like any other.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

RING_SIZE = 1000
QUEUE_SIZE = 1000


@dataclass(frozen=True)
class HubEvent:
    """One change: ``kind`` is ``run``, ``task`` or ``job``; or ``ready`` or ``reset``."""

    id: str
    kind: str
    data: dict[str, Any] = field(default_factory=dict)


_CLOSED = HubEvent("", "closed")


class EventHub:
    """Publish events; watchers iterate them from where they left off."""

    def __init__(self, ring_size: int = RING_SIZE, queue_size: int = QUEUE_SIZE) -> None:
        self.boot = secrets.token_hex(4)
        self._count = 0
        self._ring: deque[HubEvent] = deque(maxlen=ring_size)
        self._queue_size = queue_size
        self._watchers: set[asyncio.Queue[HubEvent]] = set()
        self._closed = False
        self.listeners: list[Callable[[HubEvent], object]] = []  # called with each event

    def publish(self, kind: str, data: dict[str, Any]) -> HubEvent:
        """Record the event and hand it to every watcher."""
        self._count += 1
        event = HubEvent(f"{self.boot}:{self._count}", kind, data)
        self._ring.append(event)
        for listener in self.listeners:
            listener(event)
        for queue in list(self._watchers):
            if queue.full():
                self._drop(queue)
            else:
                queue.put_nowait(event)
        return event

    async def watch(self, last_id: str | None = None) -> AsyncIterator[HubEvent]:
        """The events after ``last_id``, then each new one as it comes.

        Without ``last_id`` the first event is ``ready``, sent once the watcher is
        registered: nothing published after it is missed, and its id is where to resume.
        Ends when the hub closes or this watcher fell too far behind.
        """
        queue: asyncio.Queue[HubEvent] = asyncio.Queue(self._queue_size)
        backlog = self._since(last_id)
        if self._closed:
            return
        self._watchers.add(queue)
        try:
            for event in backlog:
                yield event
            while (event := await queue.get()) is not _CLOSED:
                yield event
        finally:
            self._watchers.discard(queue)

    def close(self) -> None:
        """End every watcher's iteration."""
        self._closed = True
        for queue in list(self._watchers):
            self._drop(queue)

    @property
    def last_id(self) -> str:
        """The id of the newest event (``<boot>:0`` before the first)."""
        return f"{self.boot}:{self._count}"

    def _since(self, last_id: str | None) -> list[HubEvent]:
        if last_id is None:
            return [HubEvent(self.last_id, "ready")]
        boot, _, text = last_id.partition(":")
        number = int(text) if boot == self.boot and re.fullmatch("[0-9]{1,18}", text) else -1
        oldest = self._count - len(self._ring)
        if not oldest <= number <= self._count:
            return [HubEvent(self.last_id, "reset")]
        return list(self._ring)[number - oldest :]

    def _drop(self, queue: asyncio.Queue[HubEvent]) -> None:
        """Stop feeding ``queue``: what it holds is replaced by the end marker, so that the
        watcher's last event stays the last one it saw, with no gap before it."""
        self._watchers.discard(queue)
        while not queue.empty():
            queue.get_nowait()
        queue.put_nowait(_CLOSED)

"""``ResponseCache``: the JSON bodies of the busiest reads, kept until something changes.

Dashboards and scripts poll the same few URLs (the runs, the jobs, one run with its tasks);
between two changes every one of those requests would read the database and serialise the
same answer again. A body is kept per URL (path and query) and dropped, all at once:

- when the daemon publishes an event (``EventHub``): a run, task or job changed here (a
  task's change drops only its run's page: the lists show runs, not tasks);
- after every request that may write (any method but GET, HEAD and OPTIONS);
- ``TTL`` seconds after it was made, for what changes without an event of this daemon's:
  another daemon on the same database, the CLI, a notification's delivery.

So a reader sees this daemon's changes at once and anyone else's within ``TTL``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from jobnest.hub import HubEvent

TTL = 1.0  # seconds a body is served without a change being announced
MAX_ENTRIES = 1024  # distinct URLs kept; past it everything is dropped and made anew
READS = frozenset({"GET", "HEAD", "OPTIONS"})


@dataclass(frozen=True)
class _Entry:
    body: bytes
    made: float


class ResponseCache:
    """Bodies by URL, dropped on ``clear`` and ``TTL`` seconds after they were made."""

    def __init__(self, ttl: float = TTL, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.clock = clock
        self._entries: dict[str, _Entry] = {}

    def body(self, url: str, make: Callable[[], bytes]) -> bytes:
        """The kept body of ``url``, or a fresh one from ``make`` (kept if ``make`` succeeds)."""
        now = self.clock()
        entry = self._entries.get(url)
        if entry is not None and now - entry.made < self.ttl:
            return entry.body
        body = make()
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.clear()
        self._entries[url] = _Entry(body, now)
        return body

    def clear(self) -> None:
        """Drop every body."""
        self._entries.clear()

    def hear(self, event: HubEvent) -> None:
        """Drop what ``event`` may have changed: a task's change shows only in its run's
        page (lists carry runs, not tasks); anything else may show anywhere."""
        run_id = event.data.get("run_id")
        if event.kind != "task" or not isinstance(run_id, int):
            self.clear()
            return
        page = f"/api/runs/{run_id}"
        for url in [u for u in self._entries if u == page or u.startswith(f"{page}?")]:
            del self._entries[url]


class ClearAfterWrites:
    """ASGI middleware: once a request that may write has been answered, clear the cache."""

    def __init__(self, app: ASGIApp, cache: ResponseCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in READS:
            await self.app(scope, receive, send)
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.cache.clear()

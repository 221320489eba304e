"""Following one task's output file as server-sent ``log`` and ``log-end`` events.

The task's process writes straight into its attempt's file, so the file is read on from
where the last read stopped: at once after a change of the task, else every ``POLL``
seconds while the attempt runs, one chunk of at most ``logs.CHUNK`` bytes at a time. The
bytes go out as UTF-8 text (undecodable bytes as U+FFFD); the first bytes of a character
not yet whole are held back for the next event. Each ``log`` event's ``offset`` is where
its text starts in the file and ``end`` where the next one starts: a client resumes with
``offset=end``. Once the attempt has ended and its last byte was sent, ``log-end`` gives
the file's ``size``; unless an attempt was asked for, a retry's new attempt follows.

The attempt's status comes from the store: whenever the hub tells of a change of the task,
and every ``REFRESH`` seconds in case it was changed elsewhere (a run driven by another
daemon).
"""

from __future__ import annotations

import codecs
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fastapi.sse import ServerSentEvent
from starlette.concurrency import run_in_threadpool

from jobnest import logs
from jobnest.daemon import Daemon
from jobnest.errors import NotFound, StoreError
from jobnest.hub import HubEvent
from jobnest.model.job import check_name
from jobnest.store.base import AttemptRecord

POLL = 0.25  # seconds between looks at a running attempt's file
REFRESH = 2.0  # seconds between looks at the attempt's status when no event prompts one
TAIL_LINES = 10  # a follow starts this many lines before the end, unless told an offset


def _utf8() -> codecs.IncrementalDecoder:
    return codecs.getincrementaldecoder("utf-8")(errors="replace")


@dataclass
class _Reading:
    """One attempt's file being read: the bytes before ``sent`` went out as text."""

    number: int
    file: Path
    sent: int
    ended: bool  # the attempt has ended: its file grows no more
    finished: bool = False  # its last byte and ``log-end`` went out
    decoder: codecs.IncrementalDecoder = field(default_factory=_utf8)

    @property
    def position(self) -> int:
        """Where the next read starts: after the bytes the decoder holds back."""
        return self.sent + len(self.decoder.getstate()[0])


class LogFollower:
    """Follows the output of one task of a run, one stream, for one event stream."""

    def __init__(
        self, daemon: Daemon, run_id: int, path: str, stream: str, attempt: int | None
    ) -> None:
        self.daemon = daemon
        self.run_id = run_id
        self.path = path
        self.stream = stream
        self.attempt = attempt  # the attempt asked for; None: the latest, whichever it is
        self._reading: _Reading | None = None
        self._stale = True  # the attempt's status is to be read from the store
        self._behind = False  # the last read found bytes: there may be more
        self._due = 0.0  # when to look at the file next (time.monotonic)
        self._refresh_at = 0.0

    @classmethod
    async def start(
        cls,
        daemon: Daemon,
        run_id: int,
        path: str,
        stream: str,
        attempt: int | None,
        offset: int | None,
    ) -> LogFollower:
        """A follower of the task's attempt (default: the latest), from byte ``offset``
        (default: ``TAIL_LINES`` lines before the end). A task that has not started yet is
        followed from its first attempt's first byte.

        Raises:
            InvalidJob: a name along ``path`` is malformed.
            NotFound: no such run, task or attempt.
        """
        for name in path.split("/"):
            check_name(name, "task")
        follower = cls(daemon, run_id, path, stream, attempt)
        record = _pick(daemon.store.attempts(run_id, path), attempt)
        if record is not None:
            follower._reading = await follower._open(record, offset)
        elif attempt is not None:
            daemon.log_file(run_id, path, stream, attempt)  # raises, naming what is missing
        elif path not in {task.path for task in daemon.store.tasks(run_id)}:
            raise NotFound(f"run {run_id} has no task {path!r}")
        return follower

    def wait(self) -> float | None:
        """Seconds until the next look at the file (0: now); None: only a task event can
        give it something to do."""
        if self._stale or self._behind:
            return 0.0
        if self._reading is not None and self._reading.finished:
            return None
        return max(0.0, self._due - time.monotonic())

    async def advance(self, event: HubEvent | None) -> list[ServerSentEvent]:
        """Take note of the hub's ``event`` (None: the wait ran out); when due, read on.

        Returns the ``log`` and ``log-end`` events to send, in order.
        """
        if event is not None and self._concerns(event):
            self._stale = True
        if self.wait() != 0:
            return []
        now = time.monotonic()
        self._due = now + POLL
        if self._stale or now >= self._refresh_at:
            await self._refresh(now)
        reading = self._reading
        if reading is None or reading.finished:
            return []
        data, length = await run_in_threadpool(_read, reading.file, reading.position)
        self._behind = length > 0
        events = self._text(reading, data, length)
        if not length and reading.ended:
            events += self._end(reading)
        return events

    def _concerns(self, event: HubEvent) -> bool:
        data = event.data
        return (
            event.kind == "task"
            and data.get("run_id") == self.run_id
            and data.get("path") == self.path
        )

    async def _refresh(self, now: float) -> None:
        """Read the attempt's status; move on to a newer attempt once this one is sent."""
        self._stale = False
        self._refresh_at = now + REFRESH
        with contextlib.suppress(StoreError):  # the database is away: look again later
            record = _pick(self.daemon.store.attempts(self.run_id, self.path), self.attempt)
            if record is None:
                return
            reading = self._reading
            if reading is None or (reading.finished and record.number != reading.number):
                self._reading = await self._open(record, 0)
            elif record.number == reading.number:
                reading.ended = record.status != "running"
            else:
                reading.ended = True  # a newer attempt started: this one is over

    async def _open(self, record: AttemptRecord, offset: int | None) -> _Reading:
        file = self.daemon.log_file(self.run_id, self.path, self.stream, record.number)
        start = await run_in_threadpool(_start, file, offset)
        return _Reading(record.number, file, start, ended=record.status != "running")

    def _text(
        self, reading: _Reading, data: bytes, length: int, *, final: bool = False
    ) -> list[ServerSentEvent]:
        """The ``log`` event of ``data``, read on from ``length`` bytes of the file, if it
        completes any character."""
        start, end = reading.sent, reading.position + length
        text = reading.decoder.decode(data, final)
        reading.sent = end - len(reading.decoder.getstate()[0])
        if not text:
            return []
        return [self._event("log", reading, offset=start, end=reading.sent, text=text)]

    def _end(self, reading: _Reading) -> list[ServerSentEvent]:
        """The rest of the text, and ``log-end``; then look for a newer attempt."""
        events = self._text(reading, b"", 0, final=True)
        reading.finished = True
        self._stale = self.attempt is None
        return [*events, self._event("log-end", reading, size=reading.sent)]

    def _event(self, kind: str, reading: _Reading, **data: Any) -> ServerSentEvent:
        about = {"run_id": self.run_id, "path": self.path, "attempt": reading.number}
        return ServerSentEvent(event=kind, data=about | {"stream": self.stream} | data)


def _pick(attempts: list[AttemptRecord], number: int | None) -> AttemptRecord | None:
    if number is None:
        return attempts[-1] if attempts else None
    return next((a for a in attempts if a.number == number), None)


def _start(file: Path, offset: int | None) -> int:
    """Where to start reading: ``offset`` (at most the size), else ``TAIL_LINES`` back."""
    if offset is None:
        return logs.tail_offset(file, TAIL_LINES)
    return min(offset, _size(file))


def _read(file: Path, position: int) -> tuple[bytes, int]:
    """At most one chunk of the file from ``position`` (a dropped part whole, as its line),
    and how many of the file's bytes it stands for."""
    return logs.read_piece(file, position)


def _size(file: Path) -> int:
    try:
        return file.stat().st_size
    except FileNotFoundError:  # not written yet, or removed
        return 0

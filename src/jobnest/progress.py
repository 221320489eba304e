"""Live progress of a run on the terminal: coloured with rich on a TTY, plain lines otherwise."""

from __future__ import annotations

import sys
from datetime import datetime
from typing import TYPE_CHECKING, TextIO

from jobnest.runner import Event

if TYPE_CHECKING:
    from rich.console import Console

STYLE = {
    "running": "cyan",
    "succeeded": "green",
    "failed": "bold red",
    "upstream_failed": "yellow",
    "cancelled": "magenta",
    "queued": "blue",
    "skipped": "dim",
}
MARK = {"succeeded": "✓", "failed": "✗", "upstream_failed": "⊘", "cancelled": "■", "running": "▶"}


class Progress:
    """An observer that prints one line per task change, and one for the run's end."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.console: Console | None = None
        if self.stream.isatty():
            from rich.console import Console  # only a terminal needs rich: it loads slowly

            self.console = Console(file=self.stream, highlight=False)

    def __call__(self, event: Event) -> None:
        line = describe(event)
        if self.console is None:
            print(line, file=self.stream, flush=True)
            return
        mark = MARK.get(event.status, "·")
        self.console.print(f"{mark} {line}", style=STYLE.get(event.status, ""), markup=False)


def describe(event: Event) -> str:
    """One line: time, status and what it is about, e.g. ``12:00:01 failed load/stage (exit 3)``."""
    clock = datetime.now().strftime("%H:%M:%S")  # noqa: DTZ005 - the viewer's local time
    if event.path is None:
        return f"{clock} run {event.run_id} {event.status}"
    detail = []
    if event.status == "running" and event.attempt and event.attempt > 1:
        detail.append(f"attempt {event.attempt}")
    if event.exit_code not in (None, 0):
        detail.append(f"exit {event.exit_code}")
    elif event.reason and event.status != "upstream_failed":
        detail.append(event.reason.replace("_", " "))
    suffix = f" ({', '.join(detail)})" if detail else ""
    return f"{clock} {event.status:<15} {event.path}{suffix}"

"""What ``GET /metrics`` tells Prometheus, written in its text exposition format (0.0.4).

Two sources. What the store holds is counted when scraped, so it is right after a restart
and the same whichever daemon answers: runs by status, tasks running, notifications by
status. What only happens in this daemon is observed as it happens, in histograms that
start empty with the process (as Prometheus expects of counters): how long task attempts
ran, how long tasks waited ``queued``, how late the scheduler started scheduled runs.

The format is written here rather than with ``prometheus_client``: a few dozen lines, no
global registry shared across tests and daemons, and nothing to keep in step with the
store's own counts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from jobnest.runner import Event
from jobnest.store.base import StatusCounts

DURATION_BUCKETS = (0.1, 0.5, 1, 5, 15, 60, 300, 900, 3600, 4 * 3600, 24 * 3600)
WAIT_BUCKETS = (0.01, 0.1, 1, 5, 15, 60, 300, 900, 3600)
ENDED = frozenset({"succeeded", "failed", "cancelled"})


@dataclass
class Histogram:
    """Observations counted into cumulative buckets (upper bounds, in seconds)."""

    bounds: Sequence[float]
    counts: list[int] = field(default_factory=list)
    total: float = 0.0
    count: int = 0

    def __post_init__(self) -> None:
        self.counts = [0] * len(self.bounds)

    def observe(self, value: float) -> None:
        value = max(0.0, value)
        for index, bound in enumerate(self.bounds):
            if value <= bound:
                self.counts[index] += 1
        self.total += value
        self.count += 1


class Metrics:
    """The daemon's own observations, fed by its runner's events and scheduler ticks."""

    def __init__(self) -> None:
        self.task_duration = Histogram(DURATION_BUCKETS)
        self.queue_wait = Histogram(WAIT_BUCKETS)
        self.scheduler_lag = Histogram(WAIT_BUCKETS)
        self.last_tick: datetime | None = None
        self._since: dict[tuple[int, str, str], datetime] = {}  # (run, path, status) -> when

    def observe(self, event: Event, now: datetime) -> None:
        """Note a task's change: queued and running start clocks; running and an end stop one."""
        if event.path is None:
            return
        key = (event.run_id, event.path)
        if event.status == "queued":  # queued again for another limit: still waiting
            self._since.setdefault((*key, "queued"), now)
        elif event.status == "running":
            self._since[(*key, "running")] = now
        if event.status == "running":
            self._stop(self.queue_wait, (*key, "queued"), now)
        elif event.status in ENDED:
            self._stop(self.task_duration, (*key, "running"), now)
            self._since.pop((*key, "queued"), None)

    def observe_tick(self, now: datetime, scheduled: Iterable[tuple[datetime, datetime]]) -> None:
        """A scheduler tick at ``now`` that started runs: (scheduled_for, created_at) each."""
        self.last_tick = now
        for slot, created in scheduled:
            self.scheduler_lag.observe((created - slot).total_seconds())

    def _stop(self, histogram: Histogram, key: tuple[int, str, str], now: datetime) -> None:
        began = self._since.pop(key, None)
        if began is not None:
            histogram.observe((now - began).total_seconds())


def render(metrics: Metrics, counts: StatusCounts, now: datetime) -> str:
    """The exposition text of every metric."""
    lines: list[str] = []
    _family(lines, "jobnest_runs", "gauge", "Runs in the store, by status.")
    lines += _by(counts.runs, "jobnest_runs", "status")
    _family(lines, "jobnest_tasks_running", "gauge", "Tasks running now, in every run.")
    lines.append(f"jobnest_tasks_running {counts.tasks.get('running', 0)}")
    _family(lines, "jobnest_tasks_queued", "gauge", "Tasks waiting for a free slot now.")
    lines.append(f"jobnest_tasks_queued {counts.tasks.get('queued', 0)}")
    _family(lines, "jobnest_notifications", "gauge", "Notifications, by status.")
    lines += _by(counts.notifications, "jobnest_notifications", "status")
    _family(lines, "jobnest_notification_failures", "gauge", "Notifications given up on.")
    lines.append(f"jobnest_notification_failures {counts.notifications.get('failed', 0)}")
    _histogram(lines, "jobnest_task_duration_seconds", metrics.task_duration, "Attempt run time.")
    _histogram(lines, "jobnest_queue_wait_seconds", metrics.queue_wait, "Time tasks were queued.")
    _histogram(
        lines, "jobnest_scheduler_lag_seconds", metrics.scheduler_lag, "Scheduled run start delay."
    )
    _family(lines, "jobnest_scheduler_last_tick_age_seconds", "gauge", "Since the last tick.")
    age = (now - metrics.last_tick).total_seconds() if metrics.last_tick else math.nan
    lines.append(f"jobnest_scheduler_last_tick_age_seconds {_number(age)}")
    return "\n".join(lines) + "\n"


def _family(lines: list[str], name: str, kind: str, help_text: str) -> None:
    lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]


def _by(values: Mapping[str, int], name: str, label: str) -> list[str]:
    return [f'{name}{{{label}="{_label(key)}"}} {value}' for key, value in sorted(values.items())]


def _histogram(lines: list[str], name: str, histogram: Histogram, help_text: str) -> None:
    _family(lines, name, "histogram", help_text)
    for bound, count in zip(histogram.bounds, histogram.counts, strict=True):
        lines.append(f'{name}_bucket{{le="{_number(bound)}"}} {count}')
    lines.append(f'{name}_bucket{{le="+Inf"}} {histogram.count}')
    lines.append(f"{name}_sum {_number(histogram.total)}")
    lines.append(f"{name}_count {histogram.count}")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if value != int(value) else str(int(value))


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

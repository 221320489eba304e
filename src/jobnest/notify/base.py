"""The Notifier contract, and the report every notification carries.

A ``Report`` is what people hear about one ending of a run: the job, the outcome, what
started it, when and for how long, and the tasks that failed by their full path, as a tree
of the child jobs they are in, each with why it failed and the end of its stderr. Child
jobs with no failure inside are summarised by counts, not listed. The report is built once,
when the run ends (``jobnest.notify.report``), and stored with each notification: a
delivery retried an hour later still says what was true then, even if the run was retried.

A ``Notifier`` sends a report to one target. Its failures are data for the outbox, never
errors for the run: ``send`` raises ``DeliveryError``, whose ``temporary`` says whether
trying again later may work (a server down, SMTP 4xx, HTTP 5xx/429) or not (SMTP 5xx,
HTTP 4xx, a message that cannot be built).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, ClassVar

FAILED = frozenset({"failed", "cancelled"})  # task statuses a report details


@dataclass(frozen=True)
class Failure:
    """A task that failed, by its full path, with why and the last lines of its stderr."""

    path: str  # "load/inner/x": the references it is inside, then its name
    status: str  # "failed" | "cancelled"
    reason: str | None  # model.run.Reason: "exit_code", "soft_timeout", "lost", ...
    exit_code: int | None
    attempts: int
    stderr: str = ""  # the last lines, cleaned of control characters
    stderr_cut: bool = False  # whether earlier output was left out

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2]


@dataclass(frozen=True)
class Group:
    """The run's job (``path`` "") or a child job expanded in it (the reference's path)."""

    path: str
    job: str
    counts: Mapping[str, int]  # tasks by status, at every depth inside
    failures: tuple[Failure, ...] = ()  # failed tasks directly inside, in plan order
    children: tuple[Group, ...] = ()  # child jobs with a failure inside, in plan order
    quiet: int = 0  # child jobs with no failure inside: summarised, not listed
    quiet_counts: Mapping[str, int] = field(default_factory=dict)  # their tasks by status

    @property
    def name(self) -> str:
        return self.path.rpartition("/")[2] or self.job

    @property
    def tasks(self) -> int:
        return sum(self.counts.values())

    def walk(self) -> Iterator[Failure]:
        """Every failure inside, depth first in plan order."""
        yield from self.failures
        for child in self.children:
            yield from child.walk()


@dataclass(frozen=True)
class Report:
    """One ending of a run, told."""

    run_id: int
    job: str
    outcome: str  # "succeeded" | "failed" | "cancelled"
    trigger: str  # what started the run: "schedule" | "manual"
    retries: int  # 0: the run's first ending; n: the ending of its n-th retry
    started_at: datetime
    finished_at: datetime
    root: Group
    scheduled_for: datetime | None = None
    url: str | None = None  # the run page, when the config names a base_url
    more_failures: int = 0  # failed tasks left out of the report (past the cap)

    @property
    def duration(self) -> timedelta:
        return self.finished_at - self.started_at

    @property
    def event(self) -> str:
        """``run.failed``, ``run.succeeded`` or ``run.cancelled``."""
        return f"run.{self.outcome}"

    @property
    def failures(self) -> list[Failure]:
        return list(self.root.walk())


@dataclass(frozen=True)
class Target:
    """Where one notification goes: an address or URL, its delivery id, a webhook's secret."""

    address: str
    delivery_id: int  # the same for every attempt: receivers can drop duplicates by it
    secret: str | None = field(default=None, repr=False)


class DeliveryError(Exception):
    """Sending failed; ``temporary``: trying again later may work."""

    def __init__(self, message: str, *, temporary: bool) -> None:
        super().__init__(message)
        self.temporary = temporary


class Notifier(ABC):
    """Sends reports over one channel."""

    channel: ClassVar[str]  # "email" | "webhook"
    deadline: float = 60.0  # seconds a whole send may take, connecting included

    @abstractmethod
    async def send(self, report: Report, target: Target) -> None:
        """Deliver the report to the target.

        Raises:
            DeliveryError: it was not delivered; ``temporary`` says whether to try again.
        """


# --- as plain data (stored with each notification, and the body of a webhook) ------------------


def report_to_dict(report: Report) -> dict[str, Any]:
    """The report as JSON-able data: the facts, then the tree of child jobs by path."""
    return {
        "run_id": report.run_id,
        "job": report.job,
        "outcome": report.outcome,
        "trigger": report.trigger,
        "retries": report.retries,
        "started_at": report.started_at.isoformat(),
        "finished_at": report.finished_at.isoformat(),
        "duration_seconds": round(report.duration.total_seconds(), 3),
        "scheduled_for": _instant(report.scheduled_for),
        "url": report.url,
        "tasks": dict(report.root.counts),
        "failed_tasks": [_failure_to_dict(failure) for failure in report.failures],
        "more_failed_tasks": report.more_failures,
        "tree": _group_to_dict(report.root),
    }


def report_from_dict(data: Mapping[str, Any]) -> Report:
    """Read back what ``report_to_dict`` wrote."""
    failures = {raw["path"]: _failure_from_dict(raw) for raw in data["failed_tasks"]}
    scheduled = data.get("scheduled_for")
    return Report(
        run_id=data["run_id"],
        job=data["job"],
        outcome=data["outcome"],
        trigger=data["trigger"],
        retries=data["retries"],
        started_at=datetime.fromisoformat(data["started_at"]),
        finished_at=datetime.fromisoformat(data["finished_at"]),
        root=_group_from_dict(data["tree"], failures),
        scheduled_for=datetime.fromisoformat(scheduled) if scheduled else None,
        url=data.get("url"),
        more_failures=data.get("more_failed_tasks", 0),
    )


def _instant(value: datetime | None) -> str | None:
    return None if value is None else value.isoformat()


def _failure_to_dict(failure: Failure) -> dict[str, Any]:
    return {
        "path": failure.path,
        "status": failure.status,
        "reason": failure.reason,
        "exit_code": failure.exit_code,
        "attempts": failure.attempts,
        "stderr_tail": failure.stderr,
        "stderr_truncated": failure.stderr_cut,
    }


def _failure_from_dict(raw: Mapping[str, Any]) -> Failure:
    return Failure(
        path=raw["path"],
        status=raw["status"],
        reason=raw["reason"],
        exit_code=raw["exit_code"],
        attempts=raw["attempts"],
        stderr=raw["stderr_tail"],
        stderr_cut=raw["stderr_truncated"],
    )


def _group_to_dict(group: Group) -> dict[str, Any]:
    return {
        "path": group.path,
        "job": group.job,
        "tasks": dict(group.counts),
        "failed_tasks": [failure.path for failure in group.failures],
        "children": [_group_to_dict(child) for child in group.children],
        "quiet_children": group.quiet,
        "quiet_tasks": dict(group.quiet_counts),
    }


def _group_from_dict(raw: Mapping[str, Any], failures: Mapping[str, Failure]) -> Group:
    return Group(
        path=raw["path"],
        job=raw["job"],
        counts=dict(raw["tasks"]),
        failures=tuple(failures[path] for path in raw["failed_tasks"]),
        children=tuple(_group_from_dict(child, failures) for child in raw["children"]),
        quiet=raw["quiet_children"],
        quiet_counts=dict(raw["quiet_tasks"]),
    )

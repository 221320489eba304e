"""Run and task statuses, and the allowed transitions between them, as tables."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

RunStatus = Literal["running", "succeeded", "failed", "cancelled"]
TaskStatus = Literal[
    "pending", "queued", "running", "succeeded", "failed", "upstream_failed", "cancelled", "skipped"
]
Reason = Literal[
    "exit_code",
    "signal",
    "soft_timeout",
    "hard_timeout",
    "lost",  # the attempt's end was not seen: its runner died, or its SSH connection dropped
    "cancelled",
    "error",  # the attempt could not start (a missing workdir, ...)
    "host_unreachable",  # its SSH host could not be reached
    "auth_failed",  # its SSH host refused our keys, or its host key is unknown or changed
    "killed",  # a user stopped this one task (SIGTERM, grace, SIGKILL); the run went on
    "run_timeout",  # the run was cancelled after its job's run_timeout
]
# automatic retries cannot fix these, or the user wanted it stopped
UNRETRYABLE: frozenset[str] = frozenset({"auth_failed", "killed"})

TASK_TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"queued", "running", "upstream_failed", "cancelled", "skipped"}),
    "queued": frozenset({"queued", "running", "cancelled"}),  # queued: for another limit
    "running": frozenset({"succeeded", "failed", "queued", "cancelled"}),
    "succeeded": frozenset(),
    "skipped": frozenset(),
    # a retry of the run brings these back to pending
    "failed": frozenset({"pending"}),
    "upstream_failed": frozenset({"pending"}),
    "cancelled": frozenset({"pending"}),
}
RUN_TRANSITIONS: dict[str, frozenset[str]] = {
    "running": frozenset({"succeeded", "failed", "cancelled"}),
    "failed": frozenset({"running"}),
    "cancelled": frozenset(),
    "succeeded": frozenset(),
}
DONE_OK = frozenset({"succeeded", "skipped"})
RETRYABLE_RUN = frozenset({"failed"})


def can_move(old: str, new: str) -> bool:
    """Whether a task may go from status ``old`` to ``new``."""
    return new in TASK_TRANSITIONS[old]


def run_outcome(task_statuses: Iterable[str], *, cancelled: bool = False) -> RunStatus:
    """The status of a run none of whose tasks can move any more."""
    if cancelled:
        return "cancelled"
    return "succeeded" if all(status in DONE_OK for status in task_statuses) else "failed"

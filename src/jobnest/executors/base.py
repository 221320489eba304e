"""The executor contract: how one attempt of a task is run, wherever it runs.

An executor starts an attempt and hands back a ``Handle``; the runner awaits the handle's
``wait()`` for the ``Outcome`` and calls ``terminate()`` to cancel. Output never passes
through the runner's memory: executors write it to the attempt's ``stdout`` and ``stderr``
files in ``AttemptSpec.log_dir``, and the exit code to its ``exit`` file, so that a
restarted daemon can learn how an attempt it lost track of ended.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from jobnest.model.run import Reason

STDOUT = "stdout"
STDERR = "stderr"
EXIT = "exit"  # the exit code, written by the attempt's wrapper when the command ends
PID = "pid"  # the wrapper's pid, which is also the process group id


@dataclass(frozen=True)
class AttemptSpec:
    """Everything an executor needs to run one attempt."""

    command: str
    workdir: str
    log_dir: Path  # absolute; the executor creates it if needed
    env: Mapping[str, str] = field(default_factory=dict)  # added to the daemon's environment
    soft_timeout: float | None = None  # seconds from start: SIGTERM to the process group
    hard_timeout: float | None = None  # seconds from start: SIGKILL to the process group
    host: str | None = None
    queue: str | None = None  # a Celery queue: a worker of that queue runs the attempt


@dataclass(frozen=True)
class Outcome:
    """How an attempt ended. A task's failure is data, not an exception."""

    started_at: datetime
    finished_at: datetime
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None  # None when it succeeded; see model.run.Reason
    stdout_size: int = 0
    stderr_size: int = 0

    @property
    def ok(self) -> bool:
        return self.reason is None


class Handle(ABC):
    """A started attempt."""

    pid: int | None = None

    @abstractmethod
    async def wait(self) -> Outcome:
        """Wait for the attempt to end, enforcing its timeouts."""

    @abstractmethod
    async def terminate(self, grace: float) -> None:
        """SIGTERM to the attempt's whole process group, then SIGKILL after ``grace`` seconds.

        Returns at once; ``wait()`` then reports ``reason="cancelled"``.
        """


class Executor(ABC):
    """Starts attempts."""

    @abstractmethod
    async def start(self, spec: AttemptSpec) -> Handle:
        """Start the attempt. Failing to start at all is an Outcome with reason "error"."""

    def child_pids(self) -> frozenset[int]:
        """Pids of local child processes this executor will wait for itself."""
        return frozenset()

    async def close(self) -> None:  # noqa: B027 - optional for executors
        """Release connections and the like."""


def reason_of(exit_code: int | None, sig: int | None) -> Reason | None:
    """Why an attempt that ended by itself failed; None when it succeeded."""
    if sig is not None:
        return "signal"
    return "exit_code" if exit_code else None


def output_size(path: Path) -> int:
    """The size of an attempt's output file; 0 when it was never written."""
    try:
        return path.stat().st_size
    except OSError:
        return 0


class FailedStart(Handle):
    """An attempt that never started: ``wait()`` gives its outcome, with reason "error"."""

    def __init__(self, outcome: Outcome) -> None:
        self._outcome = outcome

    async def wait(self) -> Outcome:
        return self._outcome

    async def terminate(self, grace: float) -> None:
        """Nothing runs, so nothing to stop."""


def failed_start(spec: AttemptSpec, started_at: datetime, why: str) -> Handle:
    """An attempt refused before it started: ``why`` goes to its stderr file."""
    with suppress(OSError):
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        with open(spec.log_dir / STDERR, "a", encoding="utf-8") as stderr:
            stderr.write(f"jobnest: {why}\n")
    return FailedStart(
        Outcome(
            started_at=started_at,
            finished_at=datetime.now(UTC),
            reason="error",
            stdout_size=output_size(spec.log_dir / STDOUT),
            stderr_size=output_size(spec.log_dir / STDERR),
        )
    )

"""The exception tree of jobnest, translated once at the edges (CLI exit codes, HTTP statuses).

    JobnestError
    ├── InvalidInput            bad input from a user: CLI exit 2, HTTP 422
    │   ├── InvalidJob          a definition is wrong; names the job, the task and the reason
    │   │   ├── TaskCycleError  tasks of one job depend on each other in a cycle (.cycle)
    │   │   └── JobCycleError   jobs reach themselves through references (.path)
    │   ├── PlanTooLarge        expansion passed the depth or size cap
    │   └── InvalidSchedule     a cron expression or time zone that does not parse
    ├── NotFound                an unknown job, run, task or log: HTTP 404
    ├── Conflict                the request clashes with the current state: HTTP 409
    │   ├── RunInProgress       the job already has a run in progress
    │   ├── AlreadyStarted      a manual start's idempotency key started a run already
    │   ├── NotRetryable        only a failed run can be retried
    │   └── JobReferenced       a job others reference cannot be deleted (.referrers)
    ├── HostError               an SSH host is unreachable or refuses us (.host, .reason)
    └── StoreError              the database is unusable (locked by another daemon, bad schema)

A task's own failure (exit code, signal, timeout) is an outcome recorded as data, never an
exception.
"""

from __future__ import annotations


class JobnestError(Exception):
    """The root of every error jobnest raises on purpose."""


class InvalidInput(JobnestError):
    """The user's input is wrong; the message names the offending value."""


class InvalidJob(InvalidInput):
    """A job definition is invalid."""

    def __init__(self, reason: str, *, job: str | None = None, task: str | None = None) -> None:
        self.reason = reason
        self.job = job
        self.task = task
        super().__init__(_locate(reason, job, task))


def _locate(reason: str, job: str | None, task: str | None) -> str:
    where = []
    if job is not None:
        where.append(f"job {job!r}")
    if task is not None:
        where.append(f"task {task!r}")
    return f"{', '.join(where)}: {reason}" if where else reason


class TaskCycleError(InvalidJob):
    """Tasks of one job depend on each other in a cycle."""

    def __init__(self, job: str, cycle: list[str]) -> None:
        self.cycle = cycle
        super().__init__("tasks depend on each other in a cycle: " + " → ".join(cycle), job=job)


class JobCycleError(InvalidJob):
    """A job reaches itself through job references; ``path`` holds the chain."""

    def __init__(self, path: list[str]) -> None:
        self.path = path
        super().__init__("jobs reference each other in a cycle: " + " → ".join(path), job=path[0])


class PlanTooLarge(InvalidInput):
    """Expansion passed the configured depth or size cap."""


class InvalidSchedule(InvalidInput):
    """A cron expression or time zone that does not parse."""


class NotFound(JobnestError):
    """An unknown job, run, task or log."""


class Conflict(JobnestError):
    """The request clashes with the current state."""


class RunInProgress(Conflict):
    """The job already has a run in progress."""

    def __init__(self, job: str, run_id: int) -> None:
        self.job = job
        self.run_id = run_id
        super().__init__(f"job {job!r} already has a run in progress: run {run_id}")


class AlreadyStarted(Conflict):
    """A manual start's idempotency key started a run of the job already (``run_id``)."""

    def __init__(self, job: str, key: str, run_id: int) -> None:
        self.job = job
        self.key = key
        self.run_id = run_id
        super().__init__(f"idempotency key {key!r} started run {run_id} of job {job!r} already")


class NotRetryable(Conflict):
    """Only a failed run can be retried."""

    def __init__(self, run_id: int, status: str) -> None:
        self.run_id = run_id
        self.status = status
        super().__init__(f"run {run_id} is {status}: only a failed run can be retried")


class JobReferenced(Conflict):
    """A job other jobs reference cannot be deleted; ``referrers`` names them."""

    def __init__(self, job: str, referrers: list[str]) -> None:
        self.job = job
        self.referrers = referrers
        super().__init__(f"job {job!r} is referenced by {', '.join(map(repr, referrers))}")


class HostError(JobnestError):
    """An SSH host cannot be used: ``reason`` is "host_unreachable" or "auth_failed".

    "auth_failed" covers both directions: the host refused our keys, or its host key is
    unknown or changed. Retrying does not fix it; reaching a host again may.
    """

    def __init__(self, host: str, reason: str, message: str) -> None:
        self.host = host
        self.reason = reason
        super().__init__(message)


class StoreError(JobnestError):
    """The database cannot be used."""

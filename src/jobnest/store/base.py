"""The store contract: what jobnest keeps, whatever the database.

Every write is one transaction. State transitions of a run are written in batches
(``apply(Changes)``) so that a runner pays one commit per scheduling step, not one per task.
Instants are aware datetimes in UTC. Records are plain frozen dataclasses.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class RunRecord:
    id: int
    job: str
    status: str  # model.run.RunStatus
    trigger: str  # "manual" | "schedule" | "retry"
    workdir: str
    created_at: datetime
    finished_at: datetime | None = None
    scheduled_for: datetime | None = None
    owner: str | None = None  # who drives the run now: "host:pid"; None when nobody does
    heartbeat_at: datetime | None = None
    retries: int = 0  # how many times the run was retried


@dataclass(frozen=True)
class TaskRecord:
    """A task of a run: its current status and the summary of its latest attempt."""

    run_id: int
    path: str
    status: str  # model.run.TaskStatus
    attempts: int = 0
    reason: str | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    command: str | None = None  # a fix made in this run; None: the plan's command


@dataclass(frozen=True)
class AttemptRecord:
    run_id: int
    path: str
    number: int  # 1, 2, ... across retries of the run too
    status: str  # "running" | "succeeded" | "failed" | "cancelled"
    started_at: datetime
    log_dir: str  # relative to the data directory; never derived from the task's path text
    command: str
    host: str | None = None
    finished_at: datetime | None = None
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    pid: int | None = None
    stdout_size: int | None = None
    stderr_size: int | None = None


@dataclass(frozen=True)
class CommandFix:
    run_id: int
    path: str
    old: str
    new: str
    at: datetime


@dataclass(frozen=True)
class ScheduleState:
    """Where the scheduler stands with a job's schedule."""

    job: str
    last_slot: datetime | None = None  # every scheduled instant up to here is handled
    paused: bool = False


@dataclass(frozen=True)
class SkippedSlot:
    """A scheduled instant that got no run, and why."""

    job: str
    scheduled_for: datetime
    reason: str  # "running" | "misfire" | "coalesced" | "paused" | "invalid"
    recorded_at: datetime


@dataclass(frozen=True)
class TaskChange:
    run_id: int
    path: str
    status: str
    reason: str | None = None
    exit_code: int | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


@dataclass(frozen=True)
class AttemptEnd:
    run_id: int
    path: str
    number: int
    status: str
    finished_at: datetime
    exit_code: int | None = None
    signal: int | None = None
    reason: str | None = None
    stdout_size: int | None = None
    stderr_size: int | None = None


@dataclass(frozen=True)
class RunChange:
    run_id: int
    status: str
    finished_at: datetime | None = None


@dataclass(frozen=True)
class Lease:
    """Who writes a batch of a run: ``owner`` must drive the run still; it did at ``at``."""

    run_id: int
    owner: str
    at: datetime


@dataclass
class Changes:
    """A batch of state transitions, written in one transaction by ``Store.apply``."""

    started: list[AttemptRecord] = field(default_factory=list)
    ended: list[AttemptEnd] = field(default_factory=list)
    tasks: list[TaskChange] = field(default_factory=list)
    run: RunChange | None = None
    lease: Lease | None = None  # a driver's batch: fenced by, and renewing, its lease

    def __bool__(self) -> bool:
        return bool(self.started or self.ended or self.tasks or self.run)


@dataclass(frozen=True)
class SessionRecord:
    """A login session; only the sha256 of its cookie value is stored."""

    id_hash: str
    csrf: str  # the token a state-changing request with this session's cookie must carry
    created_at: datetime
    expires_at: datetime


@dataclass(frozen=True)
class TokenRecord:
    """An API token; only the sha256 of the token is stored, never the token."""

    id: int
    name: str
    scope: str  # "read" (GET and HEAD only) | "full"
    created_at: datetime
    revoked_at: datetime | None = None


@dataclass(frozen=True)
class NotificationRecord:
    """One message to one target about one ending of a run (a retried run ends again)."""

    id: int
    run_id: int
    retries: int  # the run's ``retries`` when it ended: which ending this is about
    outcome: str  # how the run ended: "succeeded" | "failed" | "cancelled"
    channel: str  # "email" | "webhook"
    target: str  # an email address or a URL
    status: str  # "pending" | "sending" | "sent" | "failed"
    attempts: int  # sending attempts begun
    created_at: datetime
    next_attempt_at: datetime  # while "pending": when it is due
    lease_until: datetime | None = None  # while "sending": when another worker may take over
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True)
class NewNotification:
    """A target to notify: ``channel`` "email" or "webhook", and a webhook's secret."""

    channel: str
    target: str
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Delivery:
    """A notification claimed for sending, with the report it carries."""

    notification: NotificationRecord
    report: dict[str, Any]
    secret: str | None = field(default=None, repr=False)


class Store(ABC):
    """Runs, their tasks and attempts, and the job catalog."""

    # --- runs ------------------------------------------------------------------------------

    @abstractmethod
    def create_run(
        self,
        *,
        job: str,
        plan: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        task_paths: Sequence[str],
        workdir: str,
        trigger: str,
        owner: str,
        now: datetime,
        scheduled_for: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """Insert a running run with every task ``pending``, in one transaction.

        A run per (job, idempotency_key): the database refuses a second one, even when two
        processes race; the key is free again once its run is deleted.

        Raises:
            AlreadyStarted: ``idempotency_key`` started a run of the job already (running
                or ended); nothing is inserted.
            RunInProgress: the job already has a ``running`` run.
            Conflict: a run for (job, scheduled_for) exists already.
        """

    @abstractmethod
    def get_run(self, run_id: int) -> RunRecord:
        """Raises NotFound."""

    @abstractmethod
    def run_view(self, run_id: int) -> RunView:
        """The run with its tasks, command fixes, notifications and marks, as of one moment
        (one read). Raises NotFound."""

    @abstractmethod
    def list_runs(
        self, job: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunRecord]:
        """Newest first."""

    @abstractmethod
    def running_runs(self) -> list[RunRecord]:
        """Every run whose status is ``running``, oldest first."""

    @abstractmethod
    def get_plan(self, run_id: int) -> dict[str, Any]:
        """The frozen plan stored with the run. Raises NotFound."""

    @abstractmethod
    def get_snapshot(self, run_id: int) -> dict[str, Any]:
        """The job definitions (name -> {"definition", "hash"}) copied at start."""

    @abstractmethod
    def tasks(self, run_id: int) -> list[TaskRecord]:
        """Every task of the run, in plan order. Raises NotFound for an unknown run."""

    @abstractmethod
    def attempts(self, run_id: int, path: str | None = None) -> list[AttemptRecord]:
        """Attempts of the run (of one task when ``path`` is given), oldest first."""

    @abstractmethod
    def apply(self, changes: Changes) -> None:
        """Write a batch of transitions in one transaction.

        With a ``lease``, the batch is written only while ``lease.owner`` drives the run,
        and it renews the lease (the heartbeat becomes ``lease.at``).

        Raises:
            Conflict: the run is driven by someone else (or nobody) now; nothing is written.
        """

    @abstractmethod
    def begin_retry(self, run_id: int, *, owner: str, now: datetime) -> RunRecord:
        """Put a failed run back to ``running``; its unfinished tasks back to ``pending``.

        Succeeded and skipped tasks keep their status. One transaction.

        Raises:
            NotFound: no such run.
            NotRetryable: the run is not ``failed``.
            RunInProgress: another run of the job is in progress.
        """

    @abstractmethod
    def fix_command(self, run_id: int, path: str, command: str, *, now: datetime) -> CommandFix:
        """Replace a task's command for the rest of this run and record the change.

        Raises:
            NotFound: no such run or task.
            Conflict: the run is in progress or the task already succeeded.
        """

    @abstractmethod
    def command_fixes(self, run_id: int) -> list[CommandFix]:
        """Every command fix of the run, oldest first."""

    @abstractmethod
    def heartbeat(self, run_id: int, *, owner: str, now: datetime) -> None:
        """Record that ``owner`` still drives the run."""

    @abstractmethod
    def release(self, run_id: int, *, owner: str) -> None:
        """``owner`` stops driving the run (it has ended)."""

    @abstractmethod
    def claim_runs(
        self, stale: Sequence[RunRecord], *, owner: str, now: datetime
    ) -> list[RunRecord]:
        """Take over running runs whose driver is gone: ``owner`` drives them from ``now``.

        A run is taken only if it is still ``running`` with the owner and heartbeat it has
        in ``stale`` (as the caller read it), so of several processes claiming one run, one
        gets it; a run another transaction holds is skipped, not waited for. One transaction.
        Returns the runs taken, as given (their ``owner`` is the one that lost them).
        """

    # --- schedules ---------------------------------------------------------------------------

    @abstractmethod
    def schedule_states(self) -> dict[str, ScheduleState]:
        """name -> the schedule state of every job the scheduler has seen."""

    @abstractmethod
    def schedule_state(self, job: str) -> ScheduleState | None:
        """The schedule state of ``job``; None when the scheduler has not seen it."""

    @abstractmethod
    def advance_schedules(self, slots: Mapping[str, datetime]) -> None:
        """Move each job's ``last_slot`` forward to the given instant, never back.

        A job without a state gets one. One transaction.
        """

    @abstractmethod
    def forget_schedules(self, jobs: Iterable[str]) -> None:
        """Clear the ``last_slot`` of these jobs (counting starts afresh); ``paused`` stays."""

    @abstractmethod
    def set_schedule_paused(self, job: str, paused: bool) -> None:
        """Pause or resume the job's schedule; a job without a state gets one."""

    @abstractmethod
    def record_skips(self, slots: Sequence[SkippedSlot]) -> None:
        """Record scheduled instants that got no run; a slot recorded before keeps its reason."""

    @abstractmethod
    def skipped_slots(
        self, job: str, *, after: datetime | None = None, limit: int = 50
    ) -> list[SkippedSlot]:
        """The job's skipped slots (only those later than ``after``, when given), newest first."""

    # --- the job catalog ---------------------------------------------------------------------

    @abstractmethod
    def put_job(
        self, name: str, definition: Mapping[str, Any], content_hash: str, *, now: datetime
    ) -> int:
        """Create or replace a job; a new version only when the hash changed.

        Returns the version.
        """

    @abstractmethod
    def get_job(self, name: str) -> dict[str, Any]:
        """The current definition. Raises NotFound."""

    @abstractmethod
    def list_jobs(self) -> dict[str, dict[str, Any]]:
        """name -> current definition, by name."""

    @abstractmethod
    def job_hashes(self) -> dict[str, str]:
        """name -> the current definition's content hash, by name: cheap to ask often."""

    @abstractmethod
    def delete_job(self, name: str) -> None:
        """Raises NotFound. (Whether others refer to it is checked by the caller.)"""

    @abstractmethod
    def job_versions(self, name: str) -> list[tuple[int, str, datetime]]:
        """(version, hash, created_at), oldest first."""

    def close(self) -> None:  # noqa: B027 - optional for a backend, not abstract
        """Release connections."""

    # --- authentication ----------------------------------------------------------------------

    @abstractmethod
    def get_password_hash(self) -> str | None:
        """The stored password hash (set by ``jobnest passwd``); None when there is none."""

    @abstractmethod
    def set_password_hash(self, value: str) -> None:
        """Store the password hash and end every session: a new password logs everybody out."""

    @abstractmethod
    def create_session(
        self, id_hash: str, csrf: str, *, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        """Record a login session under the digest of its cookie value."""

    @abstractmethod
    def find_session(self, id_hash: str, *, now: datetime) -> SessionRecord | None:
        """The session with this digest if it has not expired at ``now``, else None."""

    @abstractmethod
    def delete_session(self, id_hash: str) -> None:
        """End the session (logout); a no-op when there is no such session."""

    @abstractmethod
    def purge_sessions(self, *, now: datetime) -> int:
        """Delete the sessions expired at ``now``; returns how many."""

    @abstractmethod
    def create_token(self, name: str, token_hash: str, scope: str, *, now: datetime) -> TokenRecord:
        """Record an API token under its digest. Names need not be unique; ids are."""

    @abstractmethod
    def find_token(self, token_hash: str) -> TokenRecord | None:
        """The token with this digest unless it was revoked, else None."""

    @abstractmethod
    def revoke_token(self, token_id: int, *, now: datetime) -> TokenRecord:
        """Revoke the token; revoking it again keeps the first instant. Raises NotFound."""

    @abstractmethod
    def list_tokens(self) -> list[TokenRecord]:
        """Every token, revoked ones too, oldest first."""

    # --- notifications -----------------------------------------------------------------------

    @abstractmethod
    def add_notifications(
        self,
        run_id: int,
        *,
        retries: int,
        outcome: str,
        targets: Sequence[NewNotification],
        report: Mapping[str, Any],
        now: datetime,
    ) -> list[NotificationRecord]:
        """Record a ``pending`` notification per target, due at ``now``, in one transaction.

        A target already recorded for (run, retries, channel) is left as it is: recording
        an ending twice adds nothing. Returns the notifications added.

        Raises:
            NotFound: no such run.
        """

    @abstractmethod
    def notifications(self, run_id: int) -> list[NotificationRecord]:
        """The run's notifications, of every ending, oldest first."""

    @abstractmethod
    def claim_notifications(
        self, *, now: datetime, lease_until: datetime, limit: int = 10
    ) -> list[Delivery]:
        """Take the due notifications for sending, oldest first, in one transaction.

        Due: ``pending`` with ``next_attempt_at`` reached, or ``sending`` with the lease
        expired (its worker died; ``last_error`` says the attempt was interrupted). Each
        becomes ``sending`` until ``lease_until`` and its ``attempts`` count one more, so
        two workers never hold the same notification.
        """

    @abstractmethod
    def finish_notification(
        self,
        notification_id: int,
        *,
        attempt: int,
        status: str,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        """Record how attempt ``attempt`` ended: ``sent``, ``failed``, or ``pending`` again
        (due at ``retry_at``), with the error if any.

        Only the worker that holds the claim may: the notification must be ``sending`` at
        that attempt. Returns False, changing nothing, when it is not (the lease expired
        and another worker took it over).
        """

    @abstractmethod
    def unnotified_runs(self, since: datetime) -> list[RunRecord]:
        """The runs that ended at ``since`` or later and have no notification of that ending
        (none with their current ``retries``), oldest ending first."""

    # --- retention and metrics ---------------------------------------------------------------

    @abstractmethod
    def expired_runs(
        self,
        *,
        ended_before: datetime | None,
        keep_per_job: int | None,
        jobs: Collection[str] | None = None,
    ) -> list[RunRecord]:
        """The ended runs a retention policy lets go, oldest first: those that ended before
        ``ended_before``, and those beyond the newest ``keep_per_job`` runs of their job (a
        run in progress counts among the newest but is never returned). None: no such limit.
        Only runs of ``jobs``, when given.
        """

    @abstractmethod
    def delete_runs(self, run_ids: Sequence[int]) -> list[int]:
        """Delete these runs with their tasks, attempts, fixes and notifications, in one
        transaction; a run in progress is left alone. Returns the ids deleted."""

    @abstractmethod
    def status_counts(self) -> StatusCounts:
        """How many runs, tasks and notifications there are, by status."""

    # --- retry with the current definitions ------------------------------------------------

    @abstractmethod
    def retry_with_plan(
        self,
        run_id: int,
        *,
        plan: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        task_paths: Sequence[str],
        owner: str,
        now: datetime,
    ) -> RunRecord:
        """``begin_retry`` in a new plan, in one transaction: the run's plan is kept as its
        next version (``plan_versions``) and replaced. Succeeded and skipped tasks keep their
        status; the others run the new plan's command (a fix was for the old one); tasks new
        in the plan are pending; tasks it dropped end ``skipped`` (reason ``removed``) unless
        they succeeded, and keep their attempts.

        Raises:
            NotFound, NotRetryable, RunInProgress: as ``begin_retry``.
        """

    @abstractmethod
    def plan_versions(self, run_id: int) -> list[PlanVersion]:
        """The plans the run has used, oldest first; the last is the current one. Raises
        NotFound."""

    # --- workers -------------------------------------------------------------------------------
    # Attempts sent to Celery workers: the broker carries only the key; the row holds the
    # attempt's spec, which worker holds it, its heartbeat, a cancel request, and its outcome.

    @abstractmethod
    def dispatch_attempt(
        self, key: WorkerKey, *, queue: str, spec: Mapping[str, Any], now: datetime
    ) -> None:
        """Record the attempt ``queued`` for a worker of ``queue``.

        Raises:
            Conflict: the attempt was dispatched already.
        """

    @abstractmethod
    def claim_attempt(
        self, key: WorkerKey, *, worker: str, heartbeat_every: float, now: datetime
    ) -> dict[str, Any] | None:
        """Take a ``queued`` attempt for ``worker``: it becomes ``running``; returns its spec.

        None, changing nothing, when the attempt is unknown or not ``queued`` (a redelivered
        message for an attempt already running, finished, lost or cancelled).
        """

    @abstractmethod
    def worker_heartbeat(self, key: WorkerKey, *, worker: str, now: datetime) -> float | None:
        """Renew ``worker``'s hold on the attempt; returns the grace of a requested cancel.

        Raises:
            Conflict: the attempt is not ``running`` on ``worker`` any more (it was marked
                lost): the worker must kill its process group.
        """

    @abstractmethod
    def finish_attempt(
        self, key: WorkerKey, *, worker: str, outcome: Mapping[str, Any], now: datetime
    ) -> bool:
        """Record how the attempt ended; False, changing nothing, unless ``worker`` holds it."""

    @abstractmethod
    def cancel_attempt(self, key: WorkerKey, *, grace: float) -> None:
        """Ask the attempt's worker to stop it; one still ``queued`` ends ``cancelled`` now."""

    @abstractmethod
    def lose_attempt(self, key: WorkerKey, *, heartbeat_at: datetime | None) -> bool:
        """Mark a ``running`` attempt ``lost`` if its heartbeat is still ``heartbeat_at``."""

    @abstractmethod
    def worker_attempt(self, key: WorkerKey) -> WorkerAttempt:
        """The attempt's row. Raises NotFound."""

    # --- controls: marking failed tasks (see TaskMark) ------------------------------------------
    @abstractmethod
    def mark_task(self, mark: TaskMark, *, owner: str | None = None) -> TaskMark:
        """Record ``mark`` and set the failed task's status to ``mark.status`` (reason ``marked``).

        With ``owner`` the run must be ``failed``: it goes back to ``running``, driven by
        ``owner``, its other tasks untouched. Without, the run must be ``running`` (its
        driver carries on). One transaction.

        Raises:
            NotFound: no such run or task.
            Conflict: the task has not failed, or the run is not in the state named above.
            RunInProgress: with ``owner``: another run of the job is in progress.
        """

    @abstractmethod
    def task_marks(self, run_id: int) -> list[TaskMark]:
        """Every mark of the run, oldest first."""


@dataclass(frozen=True)
class StatusCounts:
    """What the store holds now: runs, tasks and notifications, by status."""

    runs: Mapping[str, int]
    tasks: Mapping[str, int]
    notifications: Mapping[str, int]


# --- workers -----------------------------------------------------------------------------------

WorkerStatus = str  # "queued" | "running" | "finished" | "lost" | "cancelled"


@dataclass(frozen=True)
class WorkerKey:
    """Which attempt a broker message means: all it carries."""

    run_id: int
    path: str
    attempt: int


@dataclass(frozen=True)
class WorkerAttempt:
    """An attempt sent to a worker, as the store holds it."""

    status: WorkerStatus
    worker: str | None
    heartbeat_at: datetime | None
    heartbeat_every: float | None
    cancel_grace: float | None
    outcome: dict[str, Any] | None


# --- controls ----------------------------------------------------------------------------------

MARKS = ("succeeded", "skipped")  # what a failed task may be marked as


@dataclass(frozen=True)
class TaskMark:
    """A user's verdict on a failed task: it counts as ``status`` from ``at`` on."""

    run_id: int
    path: str
    status: str  # one of MARKS
    by: str  # "local" with no password configured; else "token:NAME" or "session"
    at: datetime


@dataclass(frozen=True)
class PlanVersion:
    """A plan a run used: attempt ``n`` of task ``path`` ran under the first version whose
    ``attempts[path]`` is at least ``n``, else under the current (last) one."""

    version: int  # 1: the plan the run started with
    attempts: Mapping[str, int]  # path -> attempts made under this plan and the ones before
    replaced_at: datetime | None  # None: the current plan


def plan_version_of(versions: Sequence[PlanVersion], path: str, number: int) -> int:
    """The version of the plan attempt ``number`` of ``path`` ran under."""
    for version in versions[:-1]:
        if number <= version.attempts.get(path, 0):
            return version.version
    return versions[-1].version if versions else 1


@dataclass(frozen=True)
class RunView:
    """A run with everything its page shows, read together."""

    run: RunRecord
    tasks: list[TaskRecord]
    fixes: list[CommandFix]
    notifications: list[NotificationRecord]
    marks: list[TaskMark]

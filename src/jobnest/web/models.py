"""The shapes of the API's bodies, for the OpenAPI document.

Responses are pydantic models built from the store's records. The job definition is not:
it is the design's JSON schema (``JOB_SCHEMA``), validated by ``model.job.parse_job``,
which names the job, the task and the reason of every error.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from jobnest.model.changes import JobDiff
from jobnest.model.expand import PlanGraph, plan_to_dict
from jobnest.model.job import MAX_NAME, MISFIRE_POLICIES, NOTIFY_EVENTS
from jobnest.store.base import (
    AttemptRecord,
    CommandFix,
    NotificationRecord,
    RunRecord,
    TaskMark,
    TaskRecord,
)

_NAME: dict[str, Any] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_NAME,
    "pattern": "^[^/\\u0000-\\u001f\\u007f-\\u009f]+$",
    "description": "1–128 characters; no '/' and no control characters",
}
_SECONDS = {"type": "number", "minimum": 0}
_WEBHOOK: dict[str, Any] = {
    "description": "a URL that gets a JSON POST of the report; signed with 'secret' if given",
    "oneOf": [
        {"type": "string", "pattern": "^https?://"},
        {
            "type": "object",
            "required": ["url"],
            "additionalProperties": False,
            "properties": {
                "url": {"type": "string", "pattern": "^https?://"},
                "secret": {"type": "string", "minLength": 1},
            },
        },
    ],
}
TASK_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Exactly one of 'command' or 'job'.",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "command": {"type": "string", "minLength": 1, "description": "a shell command"},
        "job": {**_NAME, "description": "a reference: this task is that job"},
        "after": {"type": "array", "items": _NAME, "description": "tasks of the same job"},
        "soft_timeout": {"type": "number", "exclusiveMinimum": 0, "description": "SIGTERM"},
        "hard_timeout": {"type": "number", "exclusiveMinimum": 0, "description": "SIGKILL"},
        "retries": {"type": "integer", "minimum": 0, "maximum": 100},
        "retry_delay": _SECONDS,
        "backoff": {"type": "number", "minimum": 1},
        "host": {"type": "string", "minLength": 1, "description": "run over SSH"},
        "pool": {"type": "string", "minLength": 1, "description": "a named pool's slot"},
        "queue": {"type": "string", "minLength": 1, "description": "run on a Celery worker"},
    },
}
JOB_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "A job definition, as in job files. In a PUT, 'name' may be left out.",
    "additionalProperties": False,
    "properties": {
        "name": _NAME,
        "tasks": {"type": "array", "items": TASK_SCHEMA},
        "schedule": {"type": "string", "description": "cron, 5 fields, or @daily-style"},
        "timezone": {"type": "string", "description": "IANA name; default: the daemon's"},
        "misfire": {"type": "string", "enum": list(MISFIRE_POLICIES)},
        "notify": {
            "type": "object",
            "additionalProperties": False,
            "properties": {
                "email": {"type": "array", "items": {"type": "string"}},
                "on": {"type": "array", "items": {"type": "string", "enum": list(NOTIFY_EVENTS)}},
                "webhooks": {"type": "array", "items": _WEBHOOK},
            },
        },
        "workdir": {"type": "string"},
        "notes": {"type": "string"},
        "max_parallel": {"type": "integer", "minimum": 1, "description": "tasks at once"},
        "run_timeout": {"type": "number", "exclusiveMinimum": 0, "description": "cancel after"},
        "keep_runs": {"type": "integer", "minimum": 1, "description": "retention: newest runs"},
        "keep_days": {"type": "number", "exclusiveMinimum": 0, "description": "retention: days"},
        "queue": {"type": "string", "minLength": 1, "description": "its tasks' Celery queue"},
    },
}
JOB_REF = {"$ref": "#/components/schemas/JobDefinition"}


class ErrorOut(BaseModel):
    """Every error: a message naming the offending value, and details where there are."""

    model_config = ConfigDict(extra="allow")
    error: str


class RunBrief(BaseModel):
    id: int
    status: str
    created_at: datetime
    finished_at: datetime | None


class JobSummary(BaseModel):
    name: str
    schedule: str | None
    schedule_words: str | None  # the schedule in English, in the job's time zone
    timezone: str | None
    next_run: datetime | None
    last_run: RunBrief | None
    tasks: int
    paused: bool = False  # the schedule is paused: its slots are skipped


class JobList(BaseModel):
    jobs: list[JobSummary]


class RunOut(BaseModel):
    id: int
    job: str
    status: str
    trigger: str
    workdir: str
    created_at: datetime
    finished_at: datetime | None
    scheduled_for: datetime | None
    retries: int

    @classmethod
    def of(cls, run: RunRecord) -> RunOut:
        return cls(
            id=run.id,
            job=run.job,
            status=run.status,
            trigger=run.trigger,
            workdir=run.workdir,
            created_at=run.created_at,
            finished_at=run.finished_at,
            scheduled_for=run.scheduled_for,
            retries=run.retries,
        )


class TaskOut(BaseModel):
    path: str
    status: str
    reason: str | None
    exit_code: int | None
    attempts: int
    started_at: datetime | None
    finished_at: datetime | None
    command: str | None  # the command as fixed in this run; None: the plan's

    @classmethod
    def of(cls, task: TaskRecord) -> TaskOut:
        return cls(
            path=task.path,
            status=task.status,
            reason=task.reason,
            exit_code=task.exit_code,
            attempts=task.attempts,
            started_at=task.started_at,
            finished_at=task.finished_at,
            command=task.command,
        )


class AttemptOut(BaseModel):
    """One attempt of a task: the command it ran, where, how it ended, its output's sizes."""

    number: int
    status: str
    reason: str | None
    exit_code: int | None
    signal: int | None
    started_at: datetime
    finished_at: datetime | None
    host: str | None
    command: str
    stdout_size: int | None
    stderr_size: int | None
    plan_version: int = 1  # the run's plan it ran under (see /api/runs/{id}/plans)

    @classmethod
    def of(cls, attempt: AttemptRecord) -> AttemptOut:
        return cls(
            number=attempt.number,
            status=attempt.status,
            reason=attempt.reason,
            exit_code=attempt.exit_code,
            signal=attempt.signal,
            started_at=attempt.started_at,
            finished_at=attempt.finished_at,
            host=attempt.host,
            command=attempt.command,
            stdout_size=attempt.stdout_size,
            stderr_size=attempt.stderr_size,
        )


class FixOut(BaseModel):
    path: str
    old: str
    new: str
    at: datetime

    @classmethod
    def of(cls, fix: CommandFix) -> FixOut:
        return cls(path=fix.path, old=fix.old, new=fix.new, at=fix.at)


class MarkOut(BaseModel):
    """A failed task a user marked ``succeeded`` or ``skipped``: who and when."""

    path: str
    status: str
    by: str
    at: datetime

    @classmethod
    def of(cls, mark: TaskMark) -> MarkOut:
        return cls(path=mark.path, status=mark.status, by=mark.by, at=mark.at)


class NotificationOut(BaseModel):
    """A notification of the run's ending ``retries`` (0: the first), and how its delivery went."""

    id: int
    retries: int
    outcome: str
    channel: str  # "email" | "webhook"
    target: str
    status: str  # "pending" | "sending" | "sent" | "failed"
    attempts: int
    last_error: str | None
    next_attempt_at: datetime | None  # while pending
    sent_at: datetime | None

    @classmethod
    def of(cls, note: NotificationRecord) -> NotificationOut:
        return cls(
            id=note.id,
            retries=note.retries,
            outcome=note.outcome,
            channel=note.channel,
            target=note.target,
            status=note.status,
            attempts=note.attempts,
            last_error=note.last_error,
            next_attempt_at=note.next_attempt_at if note.status == "pending" else None,
            sent_at=note.sent_at,
        )


class RunDetail(RunOut):
    """A run with every task's status, times, exit code and attempts, its command fixes, and
    the notifications of its endings."""

    tasks: list[TaskOut]
    fixes: list[FixOut]
    notifications: list[NotificationOut]
    marks: list[MarkOut] = []

    @classmethod
    def of_all(
        cls,
        run: RunRecord,
        tasks: list[TaskRecord],
        fixes: list[CommandFix],
        notifications: list[NotificationRecord],
        marks: Sequence[TaskMark] = (),
    ) -> RunDetail:
        return cls(
            **RunOut.of(run).model_dump(),
            tasks=[TaskOut.of(task) for task in tasks],
            fixes=[FixOut.of(fix) for fix in fixes],
            notifications=[NotificationOut.of(note) for note in notifications],
            marks=[MarkOut.of(mark) for mark in marks],
        )


class RunPage(BaseModel):
    """A page of runs, newest first; ask for the next with ``offset=next_offset``."""

    runs: list[RunOut]
    limit: int
    offset: int
    next_offset: int | None


class PlanNodeOut(BaseModel):
    """A task (``kind`` task, with its command and options) or a group's start or end marker."""

    model_config = ConfigDict(extra="allow")
    id: str
    kind: Literal["task", "start", "end"]
    job: str


class GroupOut(BaseModel):
    """An expanded job reference: its nodes lie between markers ``id`` and ``end``."""

    id: str
    job: str
    end: str
    parent: str | None


class PlanOut(BaseModel):
    job: str
    nodes: list[PlanNodeOut]
    edges: list[tuple[str, str]]
    groups: list[GroupOut]
    hashes: dict[str, str]

    @classmethod
    def of(cls, plan: PlanGraph) -> PlanOut:
        data = plan_to_dict(plan)
        starts = {node.id for node in plan.nodes if node.kind == "start"}
        groups = [
            GroupOut(id=node.id, job=node.job, end=node.id + "/", parent=_parent(node.id, starts))
            for node in plan.nodes
            if node.kind == "start"
        ]
        return cls(
            job=plan.job,
            nodes=[PlanNodeOut(**node) for node in data["nodes"]],
            edges=[(a, b) for a, b in plan.edges],
            groups=groups,
            hashes=dict(plan.hashes),
        )


def _parent(group: str, starts: set[str]) -> str | None:
    parent = group.rpartition("/")[0]
    return parent if parent in starts else None


class Health(BaseModel):
    status: str
    last_tick: datetime | None = None  # the scheduler's latest tick; None: none yet


# --- day-to-day controls: pause and resume, retention ------------------------------------------


class ScheduleOut(BaseModel):
    """A job's schedule after pause or resume, and the run a catch-up started."""

    job: str
    paused: bool
    run: RunOut | None = None


class FieldDiffOut(BaseModel):
    name: str
    before: Any
    after: Any


class TaskDiffOut(BaseModel):
    name: str
    change: Literal["added", "removed", "changed"]
    fields: list[FieldDiffOut]


class JobDiffOut(BaseModel):
    job: str
    change: Literal["added", "removed", "changed"]
    tasks: list[TaskDiffOut]
    fields: list[FieldDiffOut]  # job-level: schedule, workdir, ...


class ChangesOut(BaseModel):
    """The jobs that changed since a run's snapshot; empty when none did."""

    run_id: int
    jobs: list[JobDiffOut]

    @classmethod
    def of(cls, run_id: int, diffs: list[JobDiff]) -> ChangesOut:
        return cls.model_validate({"run_id": run_id, "jobs": [asdict(d) for d in diffs]})


class PlanVersionOut(BaseModel):
    """A plan the run used; the last one is current (``replaced_at`` null)."""

    version: int
    replaced_at: datetime | None
    attempts: dict[str, int]  # path -> attempts made under this plan and those before


class RetentionOut(BaseModel):
    """What a retention sweep removed (or, dry, would remove), and the logs' disk usage."""

    dry_run: bool
    runs: list[RunOut]
    freed_bytes: int
    log_bytes: int  # every log folder, before the sweep
    max_age_days: float | None
    max_runs_per_job: int | None


# Declared on every /api route: 401 too, which the authentication middleware answers.
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Not logged in: no valid session or token"},
    404: {"model": ErrorOut, "description": "No such job, run, task or log"},
    409: {"model": ErrorOut, "description": "The request clashes with the current state"},
    422: {"model": ErrorOut, "description": "Invalid input, naming the job, task and reason"},
}

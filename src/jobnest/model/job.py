"""Job definitions: parse a mapping (from YAML, JSON or the API) into a validated ``Job``.

A ``Job`` can only exist valid: its own graph is checked when it is built. Whether the
jobs it references exist, and whether references form a cycle, is a property of a set of
jobs: see ``jobnest.model.catalog``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Literal
from urllib.parse import urlsplit

from jobnest.errors import InvalidJob, InvalidSchedule
from jobnest.model import graph, schedule
from jobnest.model.gcpause import paused_gc

MAX_NAME = 128
CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")  # Unicode category Cc, exactly
_GOOD_NAME = re.compile(f"[^/\x00-\x1f\x7f-\x9f]{{1,{MAX_NAME}}}")  # what check_name accepts
MAX_URL = 2048
_TEXT = {str}
Misfire = Literal["skip", "run_once", "run_all"]
MISFIRE_POLICIES: tuple[Misfire, ...] = ("skip", "run_once", "run_all")
NOTIFY_EVENTS = ("failure", "success")

_TASK_KEYS = {
    "name",
    "command",
    "job",
    "after",
    "soft_timeout",
    "hard_timeout",
    "retries",
    "retry_delay",
    "backoff",
    "host",
    "pool",
    "queue",
}
_JOB_KEYS = {
    "name",
    "tasks",
    "schedule",
    "timezone",
    "notify",
    "workdir",
    "misfire",
    "notes",
    "max_parallel",
    "run_timeout",
    "queue",
    "keep_runs",
    "keep_days",
}


def check_name(value: object, what: str) -> str:
    """Return ``value`` if it is a valid job or task name, else raise naming the problem."""
    if not isinstance(value, str):
        raise InvalidJob(f"{what} name must be a string, got {value!r}")
    if not 1 <= len(value) <= MAX_NAME:
        raise InvalidJob(
            f"{what} name must be 1–{MAX_NAME} characters, got {len(value)}: {value[:40]!r}"
        )
    if "/" in value:
        raise InvalidJob(f"{what} name {value!r} contains '/', which joins expanded names")
    if CONTROL.search(value):
        raise InvalidJob(f"{what} name {value!r} contains a control character")
    return value


@dataclass(frozen=True)
class TaskOptions:
    """How a task is run: shared by command tasks and, for ``host``, job references."""

    soft_timeout: float | None = None
    hard_timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    backoff: float = 1.0
    host: str | None = None
    pool: str | None = None  # the named pool whose slot the task takes while it runs
    queue: str | None = None  # the Celery queue whose workers run the task

    def delay_before(self, attempt: int) -> float:
        """Seconds to wait before attempt number ``attempt`` (2 is the first re-attempt)."""
        return self.retry_delay * self.backoff ** max(0, attempt - 2)


DEFAULT_OPTIONS = TaskOptions()
OPTION_NAMES = tuple(f.name for f in fields(TaskOptions))
_OPTION_SET = set(OPTION_NAMES)


@dataclass(frozen=True)
class CommandTask:
    """A task that runs a shell command."""

    name: str
    command: str
    after: tuple[str, ...] = ()
    options: TaskOptions = DEFAULT_OPTIONS


@dataclass(frozen=True)
class JobRef:
    """A task that *is* another job, expanded inline when a run starts."""

    name: str
    job: str
    after: tuple[str, ...] = ()
    options: TaskOptions = DEFAULT_OPTIONS


Task = CommandTask | JobRef


@dataclass(frozen=True)
class Webhook:
    """A URL that gets a JSON POST of the run's report, signed when it has a ``secret``."""

    url: str
    secret: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Notify:
    """Who hears about a run's end, and on which outcomes."""

    email: tuple[str, ...] = ()
    on: tuple[str, ...] = ("failure",)
    webhooks: tuple[Webhook, ...] = ()


@dataclass(frozen=True)
class Job:
    """A named DAG of tasks, optionally scheduled. Built only valid."""

    name: str
    tasks: tuple[Task, ...] = ()
    schedule: str | None = None
    timezone: str | None = None
    notify: Notify | None = None
    workdir: str | None = None
    misfire: Misfire = "run_once"
    notes: str = ""
    max_parallel: int | None = None  # at most this many of the run's tasks at once
    run_timeout: float | None = None  # seconds after which a run still going is cancelled
    queue: str | None = None  # the Celery queue of the tasks that name none themselves
    keep_runs: int | None = None  # retention: the newest runs kept; None: the config's
    keep_days: float | None = None  # retention: days an ended run is kept; None: the config's

    def __post_init__(self) -> None:
        _check_tasks(self)
        _check_schedule(self)

    @cached_property
    def by_name(self) -> dict[str, Task]:
        return {task.name: task for task in self.tasks}

    @cached_property
    def references(self) -> tuple[JobRef, ...]:
        return tuple(t for t in self.tasks if isinstance(t, JobRef))

    @cached_property
    def content_hash(self) -> str:
        """A stable hash of the definition: equal for equal jobs, whatever the key order."""
        text = json.dumps(job_to_dict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


def _check_tasks(job: Job) -> None:
    check_name(job.name, "job")
    for task in job.tasks:
        if not isinstance(task.name, str) or not _GOOD_NAME.fullmatch(task.name):
            try:
                check_name(task.name, "task")
            except InvalidJob as exc:
                raise InvalidJob(exc.reason, job=job.name) from None
    after = {task.name: task.after for task in job.tasks}
    if len(after) < len(job.tasks):
        raise InvalidJob("duplicate task name", job=job.name, task=_first_duplicate(job.tasks))
    for task in job.tasks:
        for before in task.after:
            if before not in after:
                raise InvalidJob(
                    f"unknown task {before!r} in 'after'", job=job.name, task=task.name
                )
    graph.check_acyclic(job.name, after)


def _first_duplicate(tasks: tuple[Task, ...]) -> str:
    seen: set[str] = set()
    for task in tasks:
        if task.name in seen:
            return task.name
        seen.add(task.name)
    raise ValueError("no duplicate task name")


def _check_schedule(job: Job) -> None:
    try:
        if job.schedule is not None:
            schedule.check(job.schedule)
        if job.timezone is not None:
            schedule.zone(job.timezone)
    except InvalidSchedule as exc:
        raise InvalidJob(str(exc), job=job.name) from None
    if job.misfire not in MISFIRE_POLICIES:
        raise InvalidJob(
            f"misfire must be one of {', '.join(MISFIRE_POLICIES)}, got {job.misfire!r}",
            job=job.name,
        )


# --- parsing -------------------------------------------------------------------------------


def parse_job(data: object) -> Job:
    """Build a ``Job`` from a decoded YAML/JSON mapping.

    Raises:
        InvalidJob: the message names the job, the task and the reason.
    """
    if not isinstance(data, Mapping):
        raise InvalidJob(f"a job must be a mapping with a 'name', got {_kind(data)}")
    with paused_gc():
        return _parse_job(data)


def _parse_job(data: Mapping[str, Any]) -> Job:
    name = check_name(data.get("name"), "job")
    _refuse_unknown(data, _JOB_KEYS, job=name)
    raw_tasks = data.get("tasks") or []
    if not isinstance(raw_tasks, list):
        raise InvalidJob(f"'tasks' must be a list, got {_kind(raw_tasks)}", job=name)
    return Job(
        name=name,
        tasks=tuple(_parse_task(name, raw, i) for i, raw in enumerate(raw_tasks)),
        schedule=_optional_str(data, "schedule", name),
        timezone=_optional_str(data, "timezone", name),
        notify=_parse_notify(data.get("notify"), name),
        workdir=_optional_str(data, "workdir", name),
        misfire=data.get("misfire", "run_once"),
        notes=_optional_str(data, "notes", name) or "",
        max_parallel=_optional_count(data, "max_parallel", name),
        run_timeout=_number(data, "run_timeout", name, None, positive=True),
        queue=_queue(data, name, None),
        keep_runs=_optional_count(data, "keep_runs", name),
        keep_days=_days(data, "keep_days", name),
    )


def _days(data: Mapping[str, Any], key: str, job: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value <= 0:
        raise InvalidJob(f"{key!r} must be a positive number of days, got {value!r}", job=job)
    return float(value)


def _optional_count(data: Mapping[str, Any], key: str, job: str) -> int | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidJob(f"{key!r} must be a positive whole number, got {value!r}", job=job)
    return value


def _parse_task(job: str, raw: object, index: int) -> Task:
    if not isinstance(raw, Mapping):
        raise InvalidJob(f"task #{index + 1} must be a mapping, got {_kind(raw)}", job=job)
    try:
        name = check_name(raw.get("name"), "task")
    except InvalidJob as exc:
        raise InvalidJob(f"task #{index + 1}: {exc.reason}", job=job) from None
    _refuse_unknown(raw, _TASK_KEYS, job=job, task=name)
    after = _parse_after(raw.get("after"), job, name)
    options = _parse_options(raw, job, name)
    has_command, has_job = raw.get("command") is not None, raw.get("job") is not None
    if has_command == has_job:
        which = "both" if has_command else "neither"
        raise InvalidJob(
            f"a task needs exactly one of 'command' or 'job', got {which}", job=job, task=name
        )
    if has_job and options.pool is not None:
        raise InvalidJob(
            "'pool' is for command tasks: a job reference never holds a slot; set it on "
            "the child job's tasks",
            job=job,
            task=name,
        )
    if has_job:
        target = raw["job"]
        if not isinstance(target, str):
            raise InvalidJob(f"'job' must be a job name, got {target!r}", job=job, task=name)
        return JobRef(name, target, after, options)
    command = raw["command"]
    if not isinstance(command, str) or not command.strip():
        raise InvalidJob(
            f"'command' must be a non-empty string, got {command!r}", job=job, task=name
        )
    if "\x00" in command:
        raise InvalidJob("'command' contains a NUL character", job=job, task=name)
    return CommandTask(name, command, after, options)


def _parse_after(value: object, job: str, task: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not _all_text(value):
        raise InvalidJob(f"'after' must be a list of task names, got {value!r}", job=job, task=task)
    return tuple(dict.fromkeys(value))


def _all_text(values: list[Any]) -> bool:
    """Whether every value is a string; ``map(type, …)`` keeps the common case in C."""
    return _TEXT.issuperset(map(type, values)) or all(isinstance(v, str) for v in values)


def _parse_options(raw: Mapping[str, Any], job: str, task: str) -> TaskOptions:
    if _OPTION_SET.isdisjoint(raw):
        return DEFAULT_OPTIONS
    soft = _number(raw, "soft_timeout", job, task, positive=True)
    hard = _number(raw, "hard_timeout", job, task, positive=True)
    if soft is not None and hard is not None and hard < soft:
        raise InvalidJob(
            f"hard_timeout ({hard:g}) must not be shorter than soft_timeout ({soft:g})",
            job=job,
            task=task,
        )
    retries = raw.get("retries", 0)
    if not isinstance(retries, int) or isinstance(retries, bool) or not 0 <= retries <= 100:
        raise InvalidJob(
            f"'retries' must be a whole number 0–100, got {retries!r}", job=job, task=task
        )
    backoff = _number(raw, "backoff", job, task)
    backoff = 1.0 if backoff is None else backoff
    if backoff < 1:
        raise InvalidJob(f"'backoff' must be at least 1, got {backoff!r}", job=job, task=task)
    host = raw.get("host")
    if host is not None and (not isinstance(host, str) or not host.strip()):
        raise InvalidJob(f"'host' must be a host name, got {host!r}", job=job, task=task)
    pool = raw.get("pool")
    if pool is not None and (not isinstance(pool, str) or not pool.strip()):
        raise InvalidJob(f"'pool' must be a pool name, got {pool!r}", job=job, task=task)
    return TaskOptions(
        soft,
        hard,
        retries,
        _number(raw, "retry_delay", job, task) or 0.0,
        backoff,
        host,
        pool,
        _queue(raw, job, task),
    )


def _queue(raw: Mapping[str, Any], job: str, task: str | None) -> str | None:
    queue = raw.get("queue")
    if queue is not None and (not isinstance(queue, str) or not queue.strip()):
        raise InvalidJob(f"'queue' must be a queue name, got {queue!r}", job=job, task=task)
    return queue


def _number(
    raw: Mapping[str, Any], key: str, job: str, task: str | None, *, positive: bool = False
) -> float | None:
    value = raw.get(key)
    if value is None:
        return None
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or value < 0 or (positive and value == 0):
        sign = "a positive" if positive else "a non-negative"
        raise InvalidJob(
            f"{key!r} must be {sign} number of seconds, got {value!r}", job=job, task=task
        )
    return float(value)


def _parse_notify(value: object, job: str) -> Notify | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise InvalidJob(f"'notify' must be a mapping, got {_kind(value)}", job=job)
    value = {"on" if key is True else key: v for key, v in value.items()}  # YAML 1.1: on == True
    _refuse_unknown(value, {"email", "on", "webhooks"}, job=job)
    email = value.get("email") or []
    if isinstance(email, str):
        email = [email]
    on = value.get("on") or ["failure"]
    if isinstance(on, str):
        on = [on]
    if not isinstance(email, list) or not all(isinstance(e, str) and "@" in e for e in email):
        raise InvalidJob(f"'notify.email' must be a list of addresses, got {email!r}", job=job)
    if any(ch in "".join(email) for ch in "\r\n"):
        raise InvalidJob("'notify.email' must not contain line breaks", job=job)
    if not isinstance(on, list) or not all(e in NOTIFY_EVENTS for e in on):
        raise InvalidJob(
            f"'notify.on' must list {' and/or '.join(NOTIFY_EVENTS)}, got {on!r}", job=job
        )
    return Notify(tuple(email), tuple(on), _parse_webhooks(value.get("webhooks"), job))


def _parse_webhooks(value: object, job: str) -> tuple[Webhook, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidJob(f"'notify.webhooks' must be a list, got {_kind(value)}", job=job)
    hooks = tuple(_parse_webhook(raw, job) for raw in value)
    urls = [hook.url for hook in hooks]
    for url in urls:
        if urls.count(url) > 1:
            raise InvalidJob(f"'notify.webhooks' lists {url!r} twice", job=job)
    return hooks


def _parse_webhook(raw: object, job: str) -> Webhook:
    """A webhook from ``{url, secret?}``, or from a bare URL."""
    if isinstance(raw, str):
        raw = {"url": raw}
    if not isinstance(raw, Mapping):
        raise InvalidJob(
            f"a webhook must be a URL or a mapping with 'url', got {_kind(raw)}", job=job
        )
    _refuse_unknown(raw, {"url", "secret"}, job=job)
    secret = raw.get("secret")
    if secret is not None and (not isinstance(secret, str) or not secret):
        raise InvalidJob("a webhook's 'secret' must be a non-empty string", job=job)
    return Webhook(_check_url(raw.get("url"), job), secret)


def _check_url(url: object, job: str) -> str:
    """An absolute http(s) URL with a host, without spaces or control characters."""
    if not isinstance(url, str) or not 1 <= len(url) <= MAX_URL:
        raise InvalidJob(f"a webhook 'url' must be text of 1–{MAX_URL} characters", job=job)
    if any(ch.isspace() or unicodedata.category(ch) == "Cc" for ch in url):
        raise InvalidJob(
            f"webhook URL {url!r} contains a line break, space or control character", job=job
        )
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError as exc:
        raise InvalidJob(f"webhook URL {url!r} does not parse: {exc}", job=job) from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidJob(
            f"webhook URL {url!r} must start with http:// or https:// and name a host", job=job
        )
    return url


def _optional_str(data: Mapping[str, Any], key: str, job: str) -> str | None:
    value = data.get(key)
    if value is not None and not isinstance(value, str):
        raise InvalidJob(f"{key!r} must be a string, got {value!r}", job=job)
    return value


def _refuse_unknown(
    data: Mapping[str, Any], known: set[str], *, job: str, task: str | None = None
) -> None:
    if known.issuperset(data):
        return
    unknown = sorted(str(k) for k in data if k not in known)
    if unknown:
        raise InvalidJob(
            f"unknown field {unknown[0]!r} (known: {', '.join(sorted(known))})", job=job, task=task
        )


def _kind(value: object) -> str:
    return "nothing" if value is None else type(value).__name__


# --- back to plain data --------------------------------------------------------------------


def job_to_dict(job: Job) -> dict[str, Any]:
    """The definition as plain data, defaults left out: ``parse_job`` reads it back equal."""
    out: dict[str, Any] = {"name": job.name}
    for key in ("schedule", "timezone", "workdir"):
        if getattr(job, key) is not None:
            out[key] = getattr(job, key)
    if job.misfire != "run_once":
        out["misfire"] = job.misfire
    if job.notes:
        out["notes"] = job.notes
    for key in ("max_parallel", "run_timeout", "queue", "keep_runs", "keep_days"):
        if getattr(job, key) is not None:
            out[key] = getattr(job, key)
    if job.notify is not None:
        out["notify"] = {"email": list(job.notify.email), "on": list(job.notify.on)}
        if job.notify.webhooks:
            out["notify"]["webhooks"] = [_webhook_to_dict(hook) for hook in job.notify.webhooks]
    out["tasks"] = [task_to_dict(task) for task in job.tasks]
    return out


def _webhook_to_dict(hook: Webhook) -> dict[str, str]:
    out = {"url": hook.url}
    if hook.secret is not None:
        out["secret"] = hook.secret
    return out


def task_to_dict(task: Task) -> dict[str, Any]:
    out: dict[str, Any] = {"name": task.name}
    if isinstance(task, CommandTask):
        out["command"] = task.command
    else:
        out["job"] = task.job
    if task.after:
        out["after"] = list(task.after)
    if task.options is not DEFAULT_OPTIONS:
        for key in OPTION_NAMES:
            value = getattr(task.options, key)
            if value != getattr(DEFAULT_OPTIONS, key):
                out[key] = value
    return out

"""dagobah job exports → jobs: ``convert_exports``, pure.

An export is the JSON that dagobah's ``/api/export_job`` and its web UI's export button
write (``Job._serialize``)::

    {"name": "nightly", "cron_schedule": "0 2 * * *", "notes": "...",
     "tasks": [{"name": "extract", "command": "./extract.sh", "soft_timeout": 600,
                "hard_timeout": 0, "hostname": "db-box"},
               {"name": "load", "job_name": "warehouse-load"}],
     "dependencies": {"extract": ["load"], "load": []},
     "job_id": ..., "parent_id": ..., "status": "waiting", "next_run": ...}

A file may also hold a list of such jobs (``/api/jobs``) or a whole instance (``{"jobs":
[...]}``). ``dependencies`` maps a task to its *downstream* tasks: it becomes ``after`` on
each of those. ``hostname`` becomes ``host``; a timeout of 0 or null means none; a task with
``job_name`` is a reference to that job, resolved among all the files whatever their order
(a job in none of them is refused). dagobah ran its schedules in UTC, so jobs get
``timezone: UTC`` unless told otherwise. Run state (ids, status, next run, last run's
times and logs) is not part of a definition and is left out silently; anything else
unknown or that does not map is left out with a note.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobnest.errors import InvalidInput, InvalidJob, InvalidSchedule
from jobnest.importers.base import Imported, UniqueNames, clean_name
from jobnest.model import schedule as cron
from jobnest.model.catalog import check_catalog
from jobnest.model.job import Job, Notify, parse_job

JOB_FIELDS = frozenset(("name", "cron_schedule", "notes", "tasks", "dependencies"))
JOB_STATE = frozenset(("job_id", "parent_id", "status", "next_run"))
TASK_FIELDS = frozenset(("name", "command", "soft_timeout", "hard_timeout", "hostname", "job_name"))
TASK_STATE = frozenset(("started_at", "completed_at", "success", "run_log"))


def convert_exports(
    exports: Sequence[tuple[str, object]],
    *,
    timezone: str = "UTC",
    notify: Notify | None = None,
) -> Imported:
    """The jobs of dagobah exports, given as (file name, decoded JSON) pairs.

    Args:
        timezone: the zone of the schedules (dagobah's were UTC).
        notify: who every job notifies (from dagobah's Email settings), if anyone.

    Raises:
        InvalidInput: an export that is not a job, a job in two files, a task with neither
            a command nor a job, a reference to a job in none of the files, a cycle; the
            message names the file, the job and the task.
    """
    cron.zone(timezone)
    found = _job_mappings(exports)
    notes: list[str] = []
    names = _jobnest_names(found, notes)
    jobs = [
        _JobExport(source, raw, names, notes).convert(timezone, notify) for source, raw in found
    ]
    _check_references(jobs, found, names)
    return Imported(tuple(jobs), tuple(notes))


def _job_mappings(exports: Sequence[tuple[str, object]]) -> list[tuple[str, Mapping[str, Any]]]:
    """Every exported job with its file; a job name in two files is refused."""
    found: list[tuple[str, Mapping[str, Any]]] = []
    origin: dict[str, str] = {}
    for source, data in exports:
        for raw in _jobs_in(source, data):
            name = raw["name"]
            if name in origin:
                raise InvalidInput(f"{source}: job {name!r} is also in {origin[name]}")
            origin[name] = source
            found.append((source, raw))
    return found


def _jobs_in(source: str, data: object) -> list[Mapping[str, Any]]:
    if isinstance(data, Mapping) and "name" not in data and isinstance(data.get("jobs"), list):
        data = data["jobs"]
    items = data if isinstance(data, list) else [data]
    for item in items:
        if not isinstance(item, Mapping) or not isinstance(item.get("name"), str):
            raise InvalidInput(
                f"{source}: expected a dagobah job export (a JSON object with 'name' and "
                f"'tasks'), got {_describe(item)}"
            )
    return list(items)


def _jobnest_names(
    found: Sequence[tuple[str, Mapping[str, Any]]], notes: list[str]
) -> dict[str, str]:
    """dagobah job name → a valid, unique jobnest name (renames noted)."""
    unique = UniqueNames()
    names: dict[str, str] = {}
    for source, raw in found:
        old = raw["name"]
        names[old] = unique.claim(clean_name(old, "job"))
        if names[old] != old:
            notes.append(
                f"{source}: job {old!r} renamed {names[old]!r} (names are 1–128 characters, no '/')"
            )
    return names


def _check_references(
    jobs: Sequence[Job], found: Sequence[tuple[str, Mapping[str, Any]]], names: Mapping[str, str]
) -> None:
    source_of = {names[raw["name"]]: source for source, raw in found}
    try:
        check_catalog({job.name: job for job in jobs})
    except InvalidJob as exc:
        raise InvalidInput(f"{source_of.get(exc.job or '', 'dagobah')}: {exc}") from None


@dataclass
class _JobExport:
    """One exported dagobah job, converted with notes on what did not map."""

    source: str
    raw: Mapping[str, Any]
    names: Mapping[str, str]  # dagobah job name → jobnest job name
    notes: list[str]

    def convert(self, timezone: str, notify: Notify | None) -> Job:
        self._drop_unknown(self.raw, JOB_FIELDS | JOB_STATE)
        tasks = self._tasks()
        definition: dict[str, Any] = {"name": self.names[self.raw["name"]]}
        when = self._schedule()
        if when is not None:
            definition.update(schedule=when, timezone=timezone)
        definition["notes"] = self._text("notes")
        if notify is not None:
            definition["notify"] = {"email": list(notify.email), "on": list(notify.on)}
        definition["tasks"] = tasks
        try:
            return parse_job(definition)
        except InvalidInput as exc:
            raise InvalidInput(f"{self.source}: {exc}") from None

    def note(self, message: str, task: str | None = None) -> None:
        self.notes.append(f"{self.source}: {self._where(task)}: {message}")

    def fail(self, message: str, task: str | None = None) -> InvalidInput:
        return InvalidInput(f"{self.source}: {self._where(task)}: {message}")

    def _where(self, task: str | None) -> str:
        where = f"job {self.raw['name']!r}"
        return where if task is None else f"{where}, task {task!r}"

    def _drop_unknown(
        self, raw: Mapping[str, Any], known: frozenset[str], task: str | None = None
    ) -> None:
        for key in sorted(map(str, raw)):
            if key not in known:
                self.note(f"unknown field {key!r} not carried over: {raw[key]!r:.60}", task)

    # --- tasks ---------------------------------------------------------------------------------

    def _tasks(self) -> list[dict[str, Any]]:
        raw_tasks = self.raw.get("tasks") or []
        if not isinstance(raw_tasks, list):
            raise self.fail(f"'tasks' must be a list, got {_describe(raw_tasks)}")
        renamed = self._task_names(raw_tasks)
        tasks = {raw["name"]: self._task(raw, renamed[raw["name"]]) for raw in raw_tasks}
        for upstream, downstream in self._edges(renamed):
            tasks[downstream].setdefault("after", []).append(renamed[upstream])
        return list(tasks.values())

    def _task_names(self, raw_tasks: list[Any]) -> dict[str, str]:
        unique = UniqueNames()
        renamed: dict[str, str] = {}
        for index, raw in enumerate(raw_tasks, 1):
            if not isinstance(raw, Mapping) or not isinstance(raw.get("name"), str):
                raise self.fail(
                    f"task #{index} must be an object with a 'name', got {_describe(raw)}"
                )
            old = raw["name"]
            if old in renamed:
                raise self.fail("two tasks have this name", old)
            renamed[old] = unique.claim(clean_name(old, f"task-{index}"))
            if renamed[old] != old:
                self.note(f"renamed {renamed[old]!r} (names are 1–128 characters, no '/')", old)
        return renamed

    def _task(self, raw: Mapping[str, Any], name: str) -> dict[str, Any]:
        task = raw["name"]
        self._drop_unknown(raw, TASK_FIELDS | TASK_STATE, task)
        target = raw.get("job_name")
        if target:
            if raw.get("command"):
                self.note("has a job_name and a command: a job reference, as in dagobah", task)
            return {"name": name, "job": self._target(target, task)}
        command = raw.get("command")
        if not isinstance(command, str) or not command.strip():
            raise self.fail("a task needs a 'command' or a 'job_name'", task)
        return {
            "name": name,
            "command": command,
            **self._timeouts(raw, task),
            **self._host(raw, task),
        }

    def _target(self, target: object, task: str) -> str:
        if not isinstance(target, str) or target not in self.names:
            raise self.fail(
                f"references job {target!r}, which is in none of the files: give its export too",
                task,
            )
        return self.names[target]

    def _timeouts(self, raw: Mapping[str, Any], task: str) -> dict[str, float]:
        soft = self._seconds(raw, "soft_timeout", task)
        hard = self._seconds(raw, "hard_timeout", task)
        if soft is not None and hard is not None and hard < soft:
            self.note(
                f"soft_timeout {soft:g} comes after hard_timeout {hard:g}: dagobah killed the "
                "task first, so only hard_timeout is kept",
                task,
            )
            soft = None
        found = {"soft_timeout": soft, "hard_timeout": hard}
        return {key: value for key, value in found.items() if value is not None}

    def _seconds(self, raw: Mapping[str, Any], key: str, task: str) -> float | None:
        value = raw.get(key)
        if value is None or (value == 0 and not isinstance(value, bool)):
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            self.note(f"{key} {value!r} is not a number of seconds: left out", task)
            return None
        if not math.isfinite(value) or value < 0:
            self.note(f"{key} {value!r} is not a number of seconds: left out", task)
            return None
        return float(value)

    def _host(self, raw: Mapping[str, Any], task: str) -> dict[str, str]:
        host = raw.get("hostname")
        if host is None or host == "":
            return {}
        if not isinstance(host, str) or not host.strip():
            self.note(f"hostname {host!r} is not a host name: left out", task)
            return {}
        return {"host": host}

    def _edges(self, renamed: Mapping[str, str]) -> list[tuple[str, str]]:
        """(upstream, downstream) pairs of ``dependencies``, by dagobah task name."""
        dependencies = self.raw.get("dependencies") or {}
        if not isinstance(dependencies, Mapping):
            self.note(
                "'dependencies' is not a map of task → downstream tasks: left out: "
                f"{dependencies!r:.60}"
            )
            return []
        edges: list[tuple[str, str]] = []
        for upstream, downstream in dependencies.items():
            if not isinstance(downstream, list):
                self.note(
                    f"dependencies of {upstream!r} are not a list: left out: {downstream!r:.60}"
                )
                continue
            for task in downstream:
                if upstream in renamed and task in renamed:
                    edges.append((upstream, task))
                else:
                    self.note(
                        f"dependency {upstream!r} → {task!r} names a task the job does not "
                        "have: left out"
                    )
        return list(dict.fromkeys(edges))

    # --- job settings ----------------------------------------------------------------------

    def _schedule(self) -> str | None:
        when = self.raw.get("cron_schedule")
        if when is None or when == "":
            return None
        try:
            if not isinstance(when, str):
                raise InvalidSchedule(f"cron_schedule must be text, got {when!r}")
            cron.check(when)
        except InvalidSchedule as exc:
            self.note(f"{exc}: left out, the job runs on demand only")
            return None
        return when

    def _text(self, key: str) -> str:
        value = self.raw.get(key)
        if value is None or isinstance(value, str):
            return value or ""
        self.note(f"{key!r} is not text: left out: {value!r:.60}")
        return ""


def _describe(value: object) -> str:
    return "nothing" if value is None else f"{type(value).__name__} {value!r:.40}"

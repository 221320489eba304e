"""Building the ``Report`` of a run that ended, from the store and the attempts' stderr files.

The tree follows the frozen plan: every start marker is a child job (its id the reference's
path, its ``job`` the job it expands), and a task belongs to the child job its path is
inside (``load/inner/x`` to ``load/inner``). Everything read is bounded: at most
``MAX_FAILURES`` failed tasks are detailed (the rest are counted), and of each only the
last ``TAIL_LINES`` lines of stderr, read from at most the file's last ``TAIL_BYTES``.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from jobnest import logs
from jobnest.config import Settings
from jobnest.executors.base import STDERR
from jobnest.notify.base import FAILED, Failure, Group, Report
from jobnest.store.base import RunRecord, Store, TaskRecord

MAX_FAILURES = 20
TAIL_LINES = 20
TAIL_BYTES = 4096
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b[@-_]")  # terminal colours and moves
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


def build_report(store: Store, settings: Settings, run: RunRecord) -> Report:
    """The report of the run's latest ending."""
    tasks = store.tasks(run.id)
    chosen = [t for t in tasks if t.status in FAILED][:MAX_FAILURES]
    failures = {t.path: _failure(store, settings, t) for t in chosen}
    tree = _Tree(store.get_plan(run.id), tasks, failures)
    return Report(
        run_id=run.id,
        job=run.job,
        outcome=run.status,
        trigger=run.trigger,
        retries=run.retries,
        started_at=run.created_at,
        finished_at=run.finished_at or run.created_at,
        root=tree.group(""),
        scheduled_for=run.scheduled_for,
        url=f"{settings.base_url}/runs/{run.id}" if settings.base_url else None,
        more_failures=sum(1 for t in tasks if t.status in FAILED) - len(chosen),
    )


def _failure(store: Store, settings: Settings, task: TaskRecord) -> Failure:
    attempts = store.attempts(task.run_id, task.path)
    text, cut = stderr_tail(settings.home / attempts[-1].log_dir / STDERR) if attempts else ("", 0)
    return Failure(
        task.path, task.status, task.reason, task.exit_code, task.attempts, text, bool(cut)
    )


def stderr_tail(path: Path) -> tuple[str, bool]:
    """The last lines of a stderr file, cleaned; and whether earlier output was left out."""
    data = b"".join(logs.read_range(path, -TAIL_BYTES))
    size = path.stat().st_size if path.exists() else 0
    cut = size > len(data)
    if cut and b"\n" in data:
        data = data[data.index(b"\n") + 1 :]  # drop the partial first line
    lines = clean(data.decode("utf-8", "replace")).rstrip("\n").split("\n")
    return "\n".join(lines[-TAIL_LINES:]), cut or len(lines) > TAIL_LINES


def clean(text: str) -> str:
    """Text fit for a message: no terminal escapes, carriage returns or control characters."""
    text = _ESCAPES.sub("", text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("\ufffd", text)


class _Tree:
    """The groups of a plan, with their tasks' statuses and failures."""

    def __init__(
        self, plan: Mapping[str, Any], tasks: Sequence[TaskRecord], failures: dict[str, Failure]
    ) -> None:
        self.jobs = {"": str(plan["job"])}
        self.children: dict[str, list[str]] = {"": []}
        for node in plan["nodes"]:
            if node["kind"] == "start":
                self.jobs[node["id"]] = node["job"]
                self.children.setdefault(_parent(node["id"]), []).append(node["id"])
                self.children.setdefault(node["id"], [])
        self.counts: dict[str, Counter[str]] = {path: Counter() for path in self.jobs}
        self.direct: dict[str, list[Failure]] = {path: [] for path in self.jobs}
        self.noisy: set[str] = set()
        for task in tasks:
            self._add(task, failures.get(task.path))

    def _add(self, task: TaskRecord, failure: Failure | None) -> None:
        for group in _ancestors(task.path):
            self.counts[group][task.status] += 1
            if task.status in FAILED:
                self.noisy.add(group)
        if failure is not None:
            self.direct[_parent(task.path)].append(failure)

    def group(self, path: str) -> Group:
        """The group at ``path``, its noisy children in full and its quiet ones counted."""
        noisy = [child for child in self.children[path] if child in self.noisy]
        quiet = [child for child in self.children[path] if child not in self.noisy]
        return Group(
            path=path,
            job=self.jobs[path],
            counts=dict(self.counts[path]),
            failures=tuple(self.direct[path]),
            children=tuple(self.group(child) for child in noisy),
            quiet=len(quiet),
            quiet_counts=dict(_total(self.counts[child] for child in quiet)),
        )


def _parent(path: str) -> str:
    return path.rpartition("/")[0]


def _ancestors(path: str) -> list[str]:
    """The groups a task is inside, the run's own job ("") first: "a/b/t" → "", "a", "a/b"."""
    parts = path.split("/")[:-1]
    return [""] + ["/".join(parts[: i + 1]) for i in range(len(parts))]


def _total(counters: Iterable[Counter[str]]) -> Counter[str]:
    total: Counter[str] = Counter()
    for counter in counters:
        total.update(counter)
    return total

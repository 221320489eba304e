"""Retention: ended runs past their job's policy go, with their log folders.

A policy keeps runs by age (``max_age_days``: runs that ended longer ago go) and by count
(``max_runs_per_job``: a job keeps its newest runs). Both come from ``[retention]`` of the
config file (``config.RetentionSettings``: 90 days and 500 runs unless set), so history
never fills a disk silently; a job's ``keep_days`` and ``keep_runs`` replace them for it.
The stored definitions are read as data: one that no longer parses still has its limits.
A run in progress is never touched: the store deletes only ended runs, in the same
transaction that checks it. Log folders (``logs/<run id>``) go after their rows: a crash
between the two leaves a folder behind (counted in the logs' size), never a run whose logs
are gone.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from jobnest.config import RetentionSettings, Settings
from jobnest.store.base import RunRecord, Store


@dataclass(frozen=True)
class Sweep:
    """What a sweep removed (or, dry, would remove), and the logs' size before it."""

    runs: list[RunRecord]
    freed_bytes: int  # the size of the removed runs' log folders
    log_bytes: int  # the size of every log folder, before the sweep


def sweep(store: Store, settings: Settings, *, now: datetime, dry_run: bool = False) -> Sweep:
    """Remove the ended runs ``settings.retention`` lets go, and their log folders."""
    doomed = expired(store, settings.retention, now)
    sizes = log_sizes(settings.logs)
    if dry_run:
        return Sweep(doomed, sum(sizes.get(run.id, 0) for run in doomed), sum(sizes.values()))
    gone = set(store.delete_runs([run.id for run in doomed]))
    removed = [run for run in doomed if run.id in gone]
    freed = sum(_remove(settings.logs / str(run.id)) for run in removed)
    return Sweep(removed, freed, sum(sizes.values()))


def expired(store: Store, policy: RetentionSettings, now: datetime) -> list[RunRecord]:
    """The ended runs the policy lets go at ``now``, oldest first: ``policy`` for most jobs,
    a job's own ``keep_days``/``keep_runs`` in place of the limit it sets."""
    own = _own_policies(store, policy)
    found = [run for run in _query(store, policy, now, None) if run.job not in own]
    for name, job_policy in own.items():
        found += _query(store, job_policy, now, [name])
    return sorted(found, key=lambda run: run.id)


def _own_policies(store: Store, policy: RetentionSettings) -> dict[str, RetentionSettings]:
    """The jobs that set a limit of their own, with the policy that makes for them."""
    own = {}
    for name, definition in store.list_jobs().items():
        days, count = definition.get("keep_days"), definition.get("keep_runs")
        if days is not None or count is not None:
            own[name] = RetentionSettings(
                days if days is not None else policy.max_age_days,
                count if count is not None else policy.max_runs_per_job,
            )
    return own


def _query(
    store: Store, policy: RetentionSettings, now: datetime, jobs: list[str] | None
) -> list[RunRecord]:
    before = now - timedelta(days=policy.max_age_days) if policy.max_age_days else None
    return store.expired_runs(ended_before=before, keep_per_job=policy.max_runs_per_job, jobs=jobs)


def log_sizes(logs: Path) -> dict[int, int]:
    """Run id -> bytes of its log folder, for every run folder under ``logs``."""
    return {int(folder.name): _size(folder) for folder in _run_folders(logs)}


def _run_folders(logs: Path) -> Iterator[Path]:
    if logs.is_dir():
        yield from (p for p in logs.iterdir() if p.is_dir() and p.name.isdigit())


def _size(folder: Path) -> int:
    """The disk space the folder's files take: a capped log's punched-out middle takes none."""
    return sum(_on_disk(path.stat()) for path in folder.rglob("*") if path.is_file())


def _on_disk(stat: os.stat_result) -> int:
    return min(stat.st_size, stat.st_blocks * 512)


def _remove(folder: Path) -> int:
    if not folder.exists():
        return 0
    size = _size(folder)
    shutil.rmtree(folder, ignore_errors=True)
    return size

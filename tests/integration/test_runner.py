"""The runner with real processes and a real SQLite store."""

from __future__ import annotations

import asyncio
import itertools
import socket
from pathlib import Path
from typing import Any

import pytest

from jobnest import recovery
from jobnest.config import Settings, load_settings
from jobnest.errors import RunInProgress
from jobnest.executors.local import LocalExecutor
from jobnest.model.job import Job, parse_job
from jobnest.runner import Event, Runner
from jobnest.store.base import AttemptRecord, Changes, Store, TaskChange, WorkerKey
from support.polling import until, until_async
from support.processes import dead_pid, is_dead


def make_runner(
    store: Store, settings: Settings, events: list[Event] | None = None, **kw: Any
) -> Runner:
    observer = events.append if events is not None else None
    return Runner(store, LocalExecutor(grace=1.0), settings, observer=observer, **kw)


def job(name: str, *tasks: dict[str, Any]) -> Job:
    return parse_job({"name": name, "tasks": list(tasks)})


def start_and_drive(runner: Runner, top: Job, workdir: Path, *others: Job) -> Any:
    jobs = {j.name: j for j in (top, *others)}
    record = runner.start(top, jobs.get, workdir=str(workdir))
    return asyncio.run(runner.drive(record.id))


def test_cancel_stops_running_tasks_and_skips_the_rest(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    runner = make_runner(store, settings)
    top = job(
        "j",
        {"name": "slow", "command": "echo $$ > slow.pid; exec sleep 300"},
        {"name": "next", "command": "true", "after": ["slow"]},
    )

    async def scenario() -> Any:
        record = runner.start(top, {"j": top}.get, workdir=str(tmp_path))
        driving = asyncio.create_task(runner.drive(record.id))
        await until_async(lambda: (tmp_path / "slow.pid").exists())
        assert runner.cancel(record.id)
        return await driving

    final = asyncio.run(scenario())
    assert final.status == "cancelled"
    statuses = {t.path: t.status for t in store.tasks(final.id)}
    assert statuses == {"slow": "cancelled", "next": "cancelled"}


def test_independent_branches_go_on_after_a_failure(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    top = job(
        "j",
        {"name": "bad", "command": "exit 2"},
        {"name": "below", "command": "true", "after": ["bad"]},
        {"name": "other", "command": "true"},
        {"name": "other2", "command": "true", "after": ["other"]},
    )
    final = start_and_drive(make_runner(store, settings), top, tmp_path)
    statuses = {t.path: (t.status, t.reason) for t in store.tasks(final.id)}
    assert final.status == "failed"
    assert statuses == {
        "bad": ("failed", "exit_code"),
        "below": ("upstream_failed", None),
        "other": ("succeeded", None),
        "other2": ("succeeded", None),
    }


def test_retry_delay_with_backoff_spaces_attempts(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    top = job(
        "j", {"name": "t", "command": "false", "retries": 2, "retry_delay": 0.2, "backoff": 2}
    )
    final = start_and_drive(make_runner(store, settings), top, tmp_path)
    attempts = store.attempts(final.id, "t")
    assert [a.number for a in attempts] == [1, 2, 3]
    gaps = [(b.started_at - a.finished_at).total_seconds() for a, b in itertools.pairwise(attempts)]
    assert gaps[0] >= 0.2
    assert gaps[1] >= 0.4
    assert store.tasks(final.id)[0].attempts == 3


def test_parallel_limit_is_respected(
    store: Store, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBNEST_MAX_PARALLEL", "2")
    settings = load_settings()
    command = "mkdir -p live; touch live/$$; ls live | wc -l >> peaks; sleep 0.2; rm live/$$"
    top = job("j", *({"name": f"t{i}", "command": command} for i in range(6)))
    final = start_and_drive(make_runner(store, settings), top, tmp_path)
    assert final.status == "succeeded"
    assert max(int(x) for x in (tmp_path / "peaks").read_text().split()) <= 2


def test_a_second_run_of_a_running_job_is_refused(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    runner = make_runner(store, settings)
    top = job("j", {"name": "t", "command": "true"})
    first = runner.start(top, {"j": top}.get, workdir=str(tmp_path))
    with pytest.raises(RunInProgress, match=f"run {first.id}"):
        runner.start(top, {"j": top}.get, workdir=str(tmp_path))


def test_a_run_whose_driver_died_is_reconciled(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    dead = make_runner(store, settings, owner=f"{socket.gethostname()}:{dead_pid()}")
    top = job("j", {"name": "t", "command": "true"})
    stale = dead.start(top, {"j": top}.get, workdir=str(tmp_path))
    assert recovery.reconcile_stale(store, settings, job="j") == [stale.id]
    assert store.get_run(stale.id).status == "failed"
    fresh = make_runner(store, settings).start(top, {"j": top}.get, workdir=str(tmp_path))
    assert fresh.id != stale.id


def test_reconcile_takes_the_real_exit_code_of_a_finished_attempt(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    owner = f"{socket.gethostname()}:{dead_pid()}"
    runner = make_runner(store, settings, owner=owner)
    top = job("j", *({"name": name, "command": "true"} for name in ("ended", "vanished", "later")))
    run = runner.start(top, {"j": top}.get, workdir=str(tmp_path))
    now = runner.clock()
    started = []
    for index, path in enumerate(("ended", "vanished")):
        log_dir = settings.logs / str(run.id) / f"{index}.1"
        log_dir.mkdir(parents=True)
        started.append(
            AttemptRecord(
                run.id, path, 1, "running", now, str(log_dir.relative_to(settings.home)), "true"
            )
        )
        changes_tasks = TaskChange(run.id, path, "running", started_at=now)
        store.apply(Changes(started=[started[-1]], tasks=[changes_tasks]))
    (settings.logs / str(run.id) / "0.1" / "exit").write_text("5\n")
    on_worker = WorkerKey(run.id, "vanished", 1)  # as if a Celery worker ran it
    store.dispatch_attempt(on_worker, queue="q", spec={}, now=now)

    assert recovery.reconcile_stale(store, settings) == [run.id]
    assert store.worker_attempt(on_worker).cancel_grace == settings.grace
    tasks = {t.path: (t.status, t.reason, t.exit_code) for t in store.tasks(run.id)}
    assert tasks == {
        "ended": ("failed", "exit_code", 5),
        "vanished": ("failed", "lost", None),
        "later": ("pending", None, None),
    }
    assert store.get_run(run.id).status == "failed"


def test_a_runner_that_loses_its_lease_kills_its_task(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    runner = make_runner(store, settings, heartbeat=0.05)
    top = job("j", {"name": "slow", "command": "echo $$ > slow.pid; exec sleep 300"})

    async def scenario() -> int:
        record = runner.start(top, {"j": top}.get, workdir=str(tmp_path))
        driving = asyncio.create_task(runner.drive(record.id))
        await until_async(lambda: (tmp_path / "slow.pid").exists())
        store.release(record.id, owner=runner.owner)  # as a recovering daemon does
        await asyncio.wait_for(driving, 10)
        return int((tmp_path / "slow.pid").read_text())

    pid = asyncio.run(scenario())
    until(lambda: is_dead(pid), message=f"process {pid} lives on")

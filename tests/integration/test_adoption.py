"""Runs whose driver died, adopted and driven on by a daemon; drivers that lost their run.

Real task processes and a real SQLite store; "another host" is an owner with another host
name, as a daemon on another machine sharing a PostgreSQL database would write it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobnest import recovery
from jobnest.config import Settings, load_settings
from jobnest.daemon import Daemon
from jobnest.executors.local import LocalExecutor
from jobnest.model.job import Job, parse_job
from jobnest.runner import Runner, utc_now
from jobnest.store.base import AttemptRecord, Changes, RunRecord, Store, TaskChange
from support.polling import until, until_async
from support.processes import dead_pid, is_dead

WAIT_FOR_GO = "echo $$ > {name}.pid; while [ ! -f go ]; do sleep 0.02; done"


def job(name: str, *tasks: dict[str, object]) -> Job:
    return parse_job({"name": name, "tasks": list(tasks)})


def orphan(
    store: Store,
    settings: Settings,
    workdir: Path,
    owner: str,
    tasks: dict[str, str | None],
    pending: tuple[str, ...] = (),
) -> RunRecord:
    """A run left by ``owner`` with one running attempt per task of ``tasks``: its exit
    code, None if it never recorded one; and the ``pending`` tasks, not started."""
    top = job("j", *({"name": path, "command": "true"} for path in (*tasks, *pending)))
    run = Runner(store, LocalExecutor(), settings, owner=owner).start(
        top, {"j": top}.get, workdir=str(workdir)
    )
    now = utc_now()
    for index, (path, code) in enumerate(tasks.items()):
        log_dir = settings.logs / str(run.id) / f"{index}.1"
        log_dir.mkdir(parents=True)
        if code is not None:
            (log_dir / "exit").write_text(f"{code}\n")
        relative = str(log_dir.relative_to(settings.home))
        store.apply(
            Changes(
                started=[AttemptRecord(run.id, path, 1, "running", now, relative, "true")],
                tasks=[TaskChange(run.id, path, "running", started_at=now)],
            )
        )
    return store.get_run(run.id)


def test_a_daemon_adopts_a_dead_drivers_run_and_drives_it_on(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    run = orphan(
        store,
        settings,
        tmp_path,
        f"{socket.gethostname()}:{dead_pid()}",
        {"ended": "0", "failed": "3", "vanished": None},
    )
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))

    async def scenario() -> list[RunRecord]:
        adopted = daemon.adopt_orphans()
        await until_async(lambda: store.get_run(run.id).status != "running")
        await daemon.close()
        return adopted

    adopted = asyncio.run(scenario())
    assert [(r.id, r.owner) for r in adopted] == [(run.id, daemon.runner.owner)]
    assert store.get_run(run.id).status == "succeeded"
    attempts = {
        (a.path, a.number): (a.status, a.exit_code, a.reason) for a in store.attempts(run.id)
    }
    assert attempts == {
        ("ended", 1): ("succeeded", 0, None),  # finished while nobody watched: kept
        ("failed", 1): ("failed", 3, "exit_code"),
        ("failed", 2): ("succeeded", 0, None),  # run again, as a retry would
        ("vanished", 1): ("failed", None, "lost"),
        ("vanished", 2): ("succeeded", 0, None),
    }


def test_a_run_that_was_being_stopped_is_not_driven_on_but_ends_failed(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    owner = f"{socket.gethostname()}:{dead_pid()}"
    run = orphan(store, settings, tmp_path, owner, {"stopping": None}, pending=("later",))
    store.apply(Changes(tasks=[TaskChange(run.id, "later", "cancelled", "cancelled")]))
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))

    async def scenario() -> list[RunRecord]:
        adopted = daemon.adopt_orphans()
        assert not daemon.is_driving(run.id)
        await daemon.close()
        return adopted

    assert [(r.id, r.status, r.owner) for r in asyncio.run(scenario())] == [
        (run.id, "failed", None)
    ]
    assert [(a.path, a.reason) for a in store.attempts(run.id)] == [("stopping", "lost")]
    assert {t.path: t.status for t in store.tasks(run.id)} == {
        "stopping": "failed",
        "later": "cancelled",
    }


def test_a_daemon_never_adopts_the_runs_it_drives_itself(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))
    daemon.put_job({"name": "j", "tasks": [{"name": "w", "command": WAIT_FOR_GO.format(name="w")}]})
    long_ago = utc_now() - timedelta(hours=1)

    async def scenario() -> list[RunRecord]:
        record = daemon.start_run("j")
        await until_async(lambda: (tmp_path / "w.pid").exists())
        store.heartbeat(record.id, owner=daemon.runner.owner, now=long_ago)  # as after an outage
        adopted = daemon.adopt_orphans()
        (tmp_path / "go").touch()
        await until_async(lambda: store.get_run(record.id).status != "running")
        await daemon.close()
        return adopted

    assert asyncio.run(scenario()) == []
    assert [run.status for run in store.list_runs()] == ["succeeded"]


def test_an_attempt_on_another_host_is_marked_lost_never_killed_from_here(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    run = orphan(store, settings, tmp_path, "elsewhere.example:4242", {"remote": None})
    bystander = subprocess.Popen(["sleep", "60"], start_new_session=True)  # pid == pgid
    (settings.logs / str(run.id) / "0.1" / "pid").write_text(f"{bystander.pid}\n")
    stale = utc_now() + timedelta(seconds=settings.lease_seconds + 1)
    try:
        assert recovery.reconcile_stale(store, settings, now=stale) == [run.id]
        assert bystander.poll() is None  # same pid number, another machine's process
    finally:
        os.killpg(bystander.pid, signal.SIGKILL)
        bystander.wait()
    task = store.tasks(run.id)[0]
    assert (task.status, task.reason) == ("failed", "lost")
    assert store.get_run(run.id).status == "failed"


def test_a_run_on_another_host_is_stale_only_once_its_lease_expired(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    run = orphan(store, settings, tmp_path, "elsewhere.example:4242", {"t": None})
    assert run.heartbeat_at is not None
    lease = timedelta(seconds=settings.lease_seconds)
    assert recovery.reconcile_stale(store, settings, now=run.heartbeat_at + lease / 2) == []
    assert recovery.reconcile_stale(store, settings, now=run.heartbeat_at + lease) == [run.id]


def test_a_driver_whose_run_was_taken_over_writes_nothing_more_and_kills_its_task(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    runner = Runner(store, LocalExecutor(grace=1.0), settings, heartbeat=3600)  # batches only
    top = job(
        "j",
        {"name": "slow", "command": "echo $$ > slow.pid; exec sleep 300"},
        {"name": "quick", "command": WAIT_FOR_GO.format(name="quick")},
    )

    async def scenario() -> RunRecord:
        record = runner.start(top, {"j": top}.get, workdir=str(tmp_path))
        driving = asyncio.create_task(runner.drive(record.id))
        await until_async(
            lambda: (tmp_path / "slow.pid").exists() and (tmp_path / "quick.pid").exists()
        )
        store.claim_runs([store.get_run(record.id)], owner="adopter:1", now=utc_now())
        (tmp_path / "go").touch()  # `quick` ends: its batch finds the run taken
        await asyncio.wait_for(driving, 10)
        return store.get_run(record.id)

    after = asyncio.run(scenario())
    assert (after.status, after.owner) == ("running", "adopter:1")  # left to the adopter
    assert {t.path: t.status for t in store.tasks(after.id)} == {
        "slow": "running",
        "quick": "running",
    }
    slow = int((tmp_path / "slow.pid").read_text())
    until(lambda: is_dead(slow), message=f"process {slow} lives on")


def test_the_lease_is_a_setting_and_heartbeats_come_every_third_of_it(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert Runner(store, LocalExecutor(), load_settings()).heartbeat == 10.0
    monkeypatch.setenv("JOBNEST_LEASE_SECONDS", "12")
    settings = load_settings()
    assert settings.lease_seconds == 12.0
    assert Runner(store, LocalExecutor(), settings).heartbeat == 4.0

"""Three real `jobnest serve` daemons on one PostgreSQL database.

Every test gets a database of its own and three daemon subprocesses on free loopback ports
sharing it (and one $JOBNEST_HOME, as daemons on one machine would). Their leases last 3 s.
The schedules are driven by the test hook $JOBNEST_TEST_SCHEDULER_CLOCK: the daemons'
scheduler time runs 12 times as fast as the wall clock, so a `* * * * *` job fires every
5 s; the rest of the daemons (leases, heartbeats, timestamps) keeps the wall clock.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from daemon_process import DEADLINE, Daemon

from jobnest.store.base import RunRecord, SkippedSlot
from jobnest.store.sql import SQLStore
from postgres import fresh_database, terminate_connections
from support.polling import until
from support.ports import free_port
from support.processes import is_dead

pytestmark = pytest.mark.slow  # scripts/test leaves it out; CI runs it

SPEED = 12  # scheduler seconds per wall-clock second: a cron minute lasts 5 s
LEASE = 3.0
MINUTE = timedelta(minutes=1)


class Cluster:
    """Daemons sharing one database and home; ``store`` reads the database as they write it."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.home = tmp_path / "home"
        self.workdir = tmp_path / "work"
        self.workdir.mkdir()
        anchor = time.time()
        self.env = {
            "JOBNEST_DATABASE_URL": url,
            "JOBNEST_LEASE_SECONDS": str(LEASE),
            "JOBNEST_TEST_SCHEDULER_CLOCK": f"{anchor},{SPEED}",
            "TZ": "UTC",
        }
        self.anchor = anchor
        self.store = SQLStore.open(url)
        self.daemons: list[Daemon] = []

    def start(self, count: int, *args: str) -> list[Daemon]:
        started = [
            Daemon(self.home, self.workdir, *args, env=self.env, wait=False) for _ in range(count)
        ]
        self.daemons += started
        for daemon in started:
            daemon.wait_up()
        return started

    def scheduler_now(self) -> datetime:
        """The daemons' scheduler time (see ``server.SchedulerClock``)."""
        return datetime.fromtimestamp(self.anchor + (time.time() - self.anchor) * SPEED, UTC)

    def close(self) -> None:
        for daemon in self.daemons:
            daemon.close()
        self.store.close()


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with fresh_database() as url:
        started = Cluster(url, tmp_path)
        try:
            yield started
        finally:
            started.close()


def next_minute(instant: datetime) -> datetime:
    return instant.replace(second=0, microsecond=0) + MINUTE


def every_minute_jobs(count: int, command: str) -> dict[str, Any]:
    names = [f"minutely-{i:02}" for i in range(count)]
    return {
        "jobs": [
            {"name": name, "schedule": "* * * * *", "tasks": [{"name": "t", "command": command}]}
            for name in names
        ]
    }


def scheduled(store: SQLStore, job: str, until: datetime) -> tuple[list[RunRecord], set[Any]]:
    runs = [run for run in store.list_runs(job, limit=1000) if run.scheduled_for is not None]
    skips: list[SkippedSlot] = store.skipped_slots(job, limit=1000)
    in_window = [
        run for run in runs if run.scheduled_for is not None and run.scheduled_for <= until
    ]
    return in_window, {(s.scheduled_for, s.reason) for s in skips if s.scheduled_for <= until}


def test_three_daemons_run_every_job_and_instant_once_and_adopt_a_killed_ones_runs(
    cluster: Cluster,
) -> None:
    jobs = every_minute_jobs(20, "sleep 0.2")
    (cluster.workdir / "jobs.yml").write_text(yaml.safe_dump(jobs))
    names = [job["name"] for job in jobs["jobs"]]
    daemons = cluster.start(3, "--jobs", "jobs.yml")
    first = next_minute(cluster.scheduler_now() + timedelta(seconds=SPEED))  # all have ticked

    kill_slot = first + MINUTE
    until(lambda: cluster.scheduler_now() > kill_slot, 30)
    victim = until(lambda: _driving_daemon(cluster, daemons), DEADLINE)
    orphans = [run for run in cluster.store.running_runs() if run.owner == victim.owner]
    victim.stop(signal.SIGKILL)
    terminate_connections(cluster.env["JOBNEST_DATABASE_URL"])  # the others reconnect

    last = next_minute(cluster.scheduler_now()) + MINUTE
    until(lambda: cluster.scheduler_now() > last + MINUTE / 2, 30)
    until(
        lambda: not [r for r in cluster.store.running_runs() if r.scheduled_for <= last], DEADLINE
    )

    slots = [first + i * MINUTE for i in range(int((last - first) / MINUTE) + 1)]
    for name in names:
        runs, skips = scheduled(cluster.store, name, last)
        by_slot = {run.scheduled_for: run for run in runs}
        assert len(by_slot) == len(runs)  # never two runs for one instant
        for slot in slots:
            if slot not in by_slot:  # only while a killed daemon's run waited to be adopted
                assert slot > kill_slot, (name, slot, _timeline(runs))
                assert (slot, "running") in skips, (name, slot, sorted(skips))
        assert {run.status for run in runs if run.scheduled_for >= first} == {"succeeded"}
        driven_once = [run for run in runs if run.id not in {o.id for o in orphans}]
        assert {len(cluster.store.attempts(run.id)) for run in driven_once} == {1}
    assert orphans, "the killed daemon drove no run"
    for orphan in orphans:
        adopted = cluster.store.get_run(orphan.id)
        assert adopted.status == "succeeded"  # written by a daemon alive after the kill
        assert adopted.finished_at is not None and adopted.owner is None


def _timeline(runs: list[RunRecord]) -> list[str]:
    """When each run was due, created and finished: what an assertion shows on failure."""
    return [f"{r.scheduled_for:%H:%M} {r.created_at:%X.%f} {r.finished_at:%X.%f}" for r in runs]


def _driving_daemon(cluster: Cluster, daemons: list[Daemon]) -> Daemon | None:
    owners = {run.owner for run in cluster.store.running_runs()}
    return next((daemon for daemon in daemons if daemon.owner in owners), None)


WAIT_FOR_GO = 'echo $$ >> "$JOBNEST_JOB.pids"; while [ ! -f go ]; do sleep 0.05; done'


def test_a_killed_daemons_runs_are_adopted_once_and_finish(cluster: Cluster) -> None:
    jobs = {"jobs": [_waiting_job(f"job-{i}") for i in range(6)]}
    (cluster.workdir / "jobs.yml").write_text(yaml.safe_dump(jobs))
    doomed, steady, other = cluster.start(3, "--jobs", "jobs.yml")
    ids = {}
    for index, job in enumerate(jobs["jobs"]):
        daemon = doomed if index < 4 else steady
        started = daemon.client.post(f"/api/jobs/{job['name']}/runs")
        assert started.status_code == 201, started.text
        ids[started.json()["id"]] = daemon
    names = [job["name"] for job in jobs["jobs"]]
    until(lambda: all(_pids(cluster.workdir, name) for name in names), DEADLINE)
    assert other.client.get(f"/api/runs/{next(iter(ids))}").json()["status"] == "running"

    doomed.stop(signal.SIGKILL)
    killed = time.monotonic()
    orphans = [run_id for run_id, daemon in ids.items() if daemon is doomed]
    until(
        lambda: all(_owner(cluster, run_id) in {steady.owner, other.owner} for run_id in orphans),
        DEADLINE,
    )
    assert time.monotonic() - killed < 2 * LEASE  # the sweep: every lease/3, once up a lease
    for name in names[:4]:  # their tasks: killed (this host), then started again
        until(lambda name=name: len(_pids(cluster.workdir, name)) == 2, DEADLINE)
        assert is_dead(_pids(cluster.workdir, name)[0])
    assert [len(_pids(cluster.workdir, name)) for name in names[4:]] == [1, 1]

    (cluster.workdir / "go").touch()
    until(
        lambda: all(cluster.store.get_run(run_id).status == "succeeded" for run_id in ids), DEADLINE
    )
    for run_id, daemon in ids.items():
        attempts = [(a.number, a.status, a.reason) for a in cluster.store.attempts(run_id)]
        if daemon is doomed:
            assert attempts == [(1, "failed", "lost"), (2, "succeeded", None)]
        else:
            assert attempts == [(1, "succeeded", None)]


def _waiting_job(name: str) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": "wait", "command": WAIT_FOR_GO}]}


def _pids(workdir: Path, job: str) -> list[int]:
    path = workdir / f"{job}.pids"
    return [int(line) for line in path.read_text().split()] if path.exists() else []


def _owner(cluster: Cluster, run_id: int) -> str | None:
    return cluster.store.get_run(run_id).owner


@pytest.mark.parametrize(
    ("revision", "fix"),
    [
        ("0001", "run `jobnest db upgrade`"),
        ("9999", "install the jobnest version that upgraded it"),
    ],
)
def test_a_daemon_refuses_a_schema_older_or_newer_than_its_own(
    tmp_path: Path, revision: str, fix: str
) -> None:
    with fresh_database() as url:
        store = SQLStore.open(url)
        with store.engine.begin() as conn:
            conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
        store.close()
        env = {**os.environ, "JOBNEST_HOME": str(tmp_path / "home"), "JOBNEST_DATABASE_URL": url}
        refused = subprocess.run(
            [sys.executable, "-m", "jobnest", "serve", "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert refused.returncode == 3
    assert f"revision {revision}" in refused.stderr
    assert fix in refused.stderr
    assert "Traceback" not in refused.stderr

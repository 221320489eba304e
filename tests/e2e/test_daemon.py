"""The real daemon as a subprocess over HTTP: start, crash with SIGKILL, restart, reconcile."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from daemon_process import DEADLINE, Daemon

from support.polling import until
from support.ports import free_port
from support.processes import is_dead


def test_sigkill_mid_run_then_restart_reconciles_the_run(
    daemons: Callable[..., Daemon], workdir: Path
) -> None:
    jobs = {
        "name": "crash",
        "tasks": [
            {
                "name": "quick",
                "command": "echo $$ > quick.pid; while [ ! -f go ]; do sleep 0.05; done; exit 3",
            },
            {"name": "slow", "command": "echo $$ > slow.pid; exec sleep 300"},
            {"name": "after", "command": "true", "after": ["quick", "slow"]},
        ],
    }
    (workdir / "jobs.yml").write_text(yaml.safe_dump(jobs))
    first = daemons("--jobs", "jobs.yml")
    started = first.client.post("/api/jobs/crash/runs")
    assert started.status_code == 201, started.text
    run_id = started.json()["id"]
    until(lambda: (workdir / "quick.pid").exists() and (workdir / "slow.pid").exists(), DEADLINE)
    slow_pid = int((workdir / "slow.pid").read_text())

    first.stop(signal.SIGKILL)
    (workdir / "go").touch()  # `quick` ends while no daemon watches it
    until(lambda: is_dead(int((workdir / "quick.pid").read_text())), DEADLINE)

    second = daemons("--jobs", "jobs.yml")
    run = until(lambda: _finished(second.client.get(f"/api/runs/{run_id}").json()), DEADLINE)
    tasks = {t["path"]: t for t in run["tasks"]}
    assert run["status"] == "failed"
    assert (tasks["quick"]["status"], tasks["quick"]["exit_code"]) == ("failed", 3)
    assert (tasks["slow"]["status"], tasks["slow"]["reason"]) == ("failed", "lost")
    assert tasks["after"]["status"] in {"pending", "upstream_failed"}
    until(lambda: is_dead(slow_pid), DEADLINE)
    assert second.client.post(f"/api/runs/{run_id}/retry").status_code == 200


def _finished(run: dict[str, Any]) -> dict[str, Any] | None:
    return run if run.get("status") != "running" else None


def test_second_daemon_on_the_same_database_refuses_to_start(
    daemons: Callable[..., Daemon], tmp_path: Path, workdir: Path
) -> None:
    daemons()
    env = {**os.environ, "JOBNEST_HOME": str(tmp_path / "home")}
    second = subprocess.run(
        [sys.executable, "-m", "jobnest", "serve", "--port", str(free_port())],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert second.returncode != 0
    assert "another jobnest daemon" in second.stderr
    assert "Traceback" not in second.stderr


def test_sigterm_stops_the_daemon_cleanly(daemons: Callable[..., Daemon]) -> None:
    daemon = daemons()
    assert daemon.stop(signal.SIGTERM) == 0


def test_non_loopback_bind_without_password_is_refused(tmp_path: Path, workdir: Path) -> None:
    env = {**os.environ, "JOBNEST_HOME": str(tmp_path / "home")}
    refused = subprocess.run(
        [sys.executable, "-m", "jobnest", "serve", "--host", "0.0.0.0", "--port", str(free_port())],
        cwd=workdir,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert refused.returncode == 2
    assert "'0.0.0.0'" in refused.stderr
    assert "password" in refused.stderr

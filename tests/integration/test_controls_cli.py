"""``jobnest kill`` and ``jobnest mark`` against a real daemon over loopback HTTP: the
daemon's app with its authentication, served by uvicorn in a thread, asked with a token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result
from test_controls import most_at_once

from jobnest.cli import cli
from jobnest.config import Settings, load_settings
from jobnest.credentials import hash_password, issue_token
from jobnest.runner import utc_now
from jobnest.store.sql import SQLStore
from support.polling import until
from support.served import ServedDaemon

GATE = "while [ ! -e open ]; do sleep 0.02; done"
DEADLINE = 20.0  # seconds a task or a run may take to get where a test waits for it


@pytest.fixture
def client(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[httpx.Client]:
    """A client of a daemon that wants a token; $JOBNEST_TOKEN holds one named ``ops``."""
    store = SQLStore.open(settings.database_url)
    try:
        store.set_password_hash(hash_password("a long enough password"))
        token, _ = issue_token(store, "ops", "full", now=utc_now())
    finally:
        store.close()
    monkeypatch.setenv("JOBNEST_TOKEN", token)
    headers = {"Authorization": f"Bearer {token}"}
    with (
        ServedDaemon(settings, tmp_path, auth=True) as served,
        httpx.Client(base_url=served.url, headers=headers, timeout=10) as http,
    ):
        yield http


def jobnest(client: httpx.Client, *args: str) -> Result:
    command = [*args, "--url", str(client.base_url)]
    return CliRunner().invoke(cli, command, catch_exceptions=False)


def start(client: httpx.Client, name: str, *tasks: dict[str, Any]) -> int:
    saved = client.put(f"/api/jobs/{name}", json={"name": name, "tasks": list(tasks)})
    assert saved.status_code in (200, 201), saved.text
    started = client.post(f"/api/jobs/{name}/runs")
    assert started.status_code == 201, started.text
    return int(started.json()["id"])


def tasks(client: httpx.Client, run_id: int) -> dict[str, dict[str, Any]]:
    return {task["path"]: task for task in client.get(f"/api/runs/{run_id}").json()["tasks"]}


def ended(client: httpx.Client, run_id: int) -> dict[str, Any]:
    def run() -> dict[str, Any] | None:
        answer: dict[str, Any] = client.get(f"/api/runs/{run_id}").json()
        return answer if answer["status"] != "running" else None

    return until(run, DEADLINE)


def test_kill_stops_one_task_and_the_run_goes_on(client: httpx.Client, tmp_path: Path) -> None:
    run_id = start(
        client,
        "k",
        {"name": "slow", "command": "sleep 30"},
        {"name": "other", "command": GATE},
    )
    until(lambda: tasks(client, run_id)["slow"]["status"] == "running", DEADLINE)
    killed = jobnest(client, "kill", str(run_id), "slow")
    assert killed.exit_code == 0, killed.output
    assert f"task 'slow' of run {run_id}" in killed.stdout
    until(lambda: tasks(client, run_id)["slow"]["reason"] == "killed", DEADLINE)
    assert tasks(client, run_id)["other"]["status"] == "running"
    (tmp_path / "open").touch()
    assert ended(client, run_id)["status"] == "failed"
    assert tasks(client, run_id)["other"]["status"] == "succeeded"


def test_mark_skipped_continues_the_failed_run_and_records_the_token(
    client: httpx.Client,
) -> None:
    run_id = start(
        client,
        "m",
        {"name": "broken", "command": "false"},
        {"name": "next", "command": "true", "after": ["broken"]},
    )
    assert ended(client, run_id)["status"] == "failed"
    marked = jobnest(client, "mark", str(run_id), "broken", "--skipped")
    assert marked.exit_code == 0, marked.output
    assert "marked task 'broken'" in marked.stdout
    run = ended(client, run_id)
    assert run["status"] == "succeeded"
    assert [(m["path"], m["status"], m["by"]) for m in run["marks"]] == [
        ("broken", "skipped", "token:ops")
    ]


def test_kill_and_mark_refusals_exit_2_quoting_the_task(client: httpx.Client) -> None:
    run_id = start(client, "fine", {"name": "ok", "command": "true"})
    ended(client, run_id)
    mark = jobnest(client, "mark", str(run_id), "ok")
    assert mark.exit_code == 2
    assert "'ok'" in mark.stderr and "409" in mark.stderr
    kill = jobnest(client, "kill", str(run_id), "ok")
    assert kill.exit_code == 2
    assert f"run {run_id} is succeeded" in kill.stderr


# --- limits and the run timeout in a foreground `jobnest run` ------------------------------


def foreground(home: Path, tmp_path: Path, *jobs: dict[str, Any]) -> Path:
    """Job files in ``tmp_path``; the home's config gives a one-slot pool ``one``."""
    home.mkdir()
    (home / "config.toml").write_text("[pools]\none = 1\n")
    path = tmp_path / "jobs.yml"
    path.write_text(yaml.safe_dump({"jobs": list(jobs)}))
    return path


def test_run_keeps_a_pool_and_max_parallel_and_records_it(home: Path, tmp_path: Path) -> None:
    pooled = [{"name": f"p{i}", "command": "sleep 0.1", "pool": "one"} for i in range(3)]
    free = [{"name": f"f{i}", "command": "sleep 0.1"} for i in range(3)]
    parent = {
        "name": "parent",
        "max_parallel": 2,
        "tasks": [*free, {"name": "kid", "job": "child"}, {**pooled[0], "name": "own"}],
    }
    path = foreground(home, tmp_path, {"name": "child", "tasks": pooled}, parent)
    result = CliRunner().invoke(cli, ["run", str(path), "--job", "parent", "--json"])
    assert result.exit_code == 0, result.output
    store = SQLStore.open(load_settings().database_url)
    try:
        attempts = store.attempts(json.loads(result.stdout)["run_id"])
    finally:
        store.close()
    assert len(attempts) == 7
    assert most_at_once(attempts) == 2
    in_pool = {"kid/p0", "kid/p1", "kid/p2", "own"}
    assert most_at_once([a for a in attempts if a.path in in_pool]) == 1


def test_run_past_its_run_timeout_ends_cancelled(home: Path, tmp_path: Path) -> None:
    slow = {"name": "slow", "run_timeout": 0.3, "tasks": [{"name": "t", "command": "sleep 30"}]}
    path = foreground(home, tmp_path, slow)
    result = CliRunner().invoke(cli, ["run", str(path), "--job", "slow", "--json"])
    assert result.exit_code == 1
    summary = json.loads(result.stdout)
    assert summary["status"] == "cancelled"
    assert summary["tasks"]["t"]["status"] == "cancelled"

"""What is particular to SSH hosts, against a real sshd: host keys, failures to connect, dropped
connections, and jobs run through the CLI with tasks on a host.

The executor contract itself (output, exit codes, timeouts, cancel) is tests/contract's.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import asyncssh
import pytest
import yaml
from click.testing import CliRunner, Result

from jobnest.cli import cli
from jobnest.config import load_settings
from jobnest.daemon import Daemon
from jobnest.executors.base import AttemptSpec, Outcome
from jobnest.executors.ssh import SSHExecutor
from jobnest.executors.ssh_hosts import SSHHosts
from jobnest.store.sql import SQLStore
from ssh_server import ALIAS, OTHER_ALIAS, SSHServer
from support.attempts import run_attempt
from support.polling import DEADLINE, until, until_async
from support.processes import marker, sleepers, until_running


def hosts_of(server: SSHServer, tmp_path: Path, known: str | None = None) -> SSHHosts:
    """Hosts from the server's client config; ``known`` is the user's known_hosts content."""
    user_known = tmp_path / "user_known_hosts"
    user_known.write_text(server.known_line() if known is None else known)
    return SSHHosts(server.client_config, (user_known,), tmp_path / "trusted_known_hosts")


def spec(server: SSHServer, tmp_path: Path, command: str, host: str = ALIAS) -> AttemptSpec:
    return AttemptSpec(command, str(server.workdir()), tmp_path / "log", host=host)


def stderr_of(tmp_path: Path) -> str:
    return (tmp_path / "log" / "stderr").read_text()


# --- host keys and failures to connect ---------------------------------------------------------


def test_an_unknown_alias_fails_naming_it(ssh_server: SSHServer, tmp_path: Path) -> None:
    executor = SSHExecutor(hosts_of(ssh_server, tmp_path))

    outcome = run_attempt(
        executor, spec(ssh_server, tmp_path, "true", host="no-such-alias.invalid")
    )

    assert (outcome.reason, outcome.exit_code) == ("host_unreachable", None)
    assert "unknown host 'no-such-alias.invalid': no 'Host no-such-alias.invalid'" in (
        stderr_of(tmp_path)
    )


def test_an_unknown_host_key_is_refused_naming_the_way_to_trust_it(
    ssh_server: SSHServer, tmp_path: Path
) -> None:
    executor = SSHExecutor(hosts_of(ssh_server, tmp_path, known=""))

    outcome = run_attempt(executor, spec(ssh_server, tmp_path, "echo ran"))

    assert outcome.reason == "auth_failed"
    message = stderr_of(tmp_path)
    assert f"host 'testhost' ([127.0.0.1]:{ssh_server.port}) is unknown" in message
    assert "`jobnest hosts trust testhost`" in message
    assert (tmp_path / "log" / "stdout").read_text() == ""


def test_a_changed_host_key_is_refused(ssh_server: SSHServer, tmp_path: Path) -> None:
    other_key = asyncssh.generate_private_key("ssh-ed25519")
    hosts = hosts_of(ssh_server, tmp_path, known=ssh_server.known_line(other_key))

    outcome = run_attempt(SSHExecutor(hosts), spec(ssh_server, tmp_path, "echo ran"))

    assert outcome.reason == "auth_failed"
    assert "showed a host key that differs from the one recorded in" in stderr_of(tmp_path)
    assert str(hosts.known_hosts[0]) in stderr_of(tmp_path)


def test_a_trusted_key_in_jobnest_known_hosts_lets_tasks_run(
    ssh_server: SSHServer, tmp_path: Path
) -> None:
    hosts = hosts_of(ssh_server, tmp_path, known="")
    hosts.trusted.write_text(ssh_server.known_line())

    outcome = run_attempt(SSHExecutor(hosts), spec(ssh_server, tmp_path, "echo ran"))

    assert outcome.ok and (tmp_path / "log" / "stdout").read_text() == "ran\n"


def test_refused_keys_are_auth_failed(ssh_server: SSHServer, tmp_path: Path) -> None:
    stranger = tmp_path / "stranger_key"
    asyncssh.generate_private_key("ssh-ed25519").write_private_key(str(stranger))
    config = tmp_path / "ssh_config"
    config.write_text(
        ssh_server.client_config.read_text().replace(str(ssh_server.user_key), str(stranger))
    )
    hosts = hosts_of(ssh_server, tmp_path)

    outcome = run_attempt(
        SSHExecutor(SSHHosts(config, hosts.known_hosts, hosts.trusted)),
        spec(ssh_server, tmp_path, "echo ran"),
    )

    assert outcome.reason == "auth_failed"
    where = f"{ssh_server.user.pw_name}@127.0.0.1:{ssh_server.port}"
    assert f"host 'testhost' ({where}) refused our keys" in stderr_of(tmp_path)


def test_a_missing_identity_file_is_auth_failed(ssh_server: SSHServer, tmp_path: Path) -> None:
    config = tmp_path / "ssh_config"
    missing = tmp_path / "no_such_key"
    config.write_text(
        ssh_server.client_config.read_text().replace(str(ssh_server.user_key), str(missing))
    )

    outcome = run_attempt(
        SSHExecutor(SSHHosts(config, (ssh_server.known_hosts,), tmp_path / "trusted")),
        spec(ssh_server, tmp_path, "true"),
    )

    assert outcome.reason == "auth_failed"
    assert "host 'testhost': cannot load its SSH settings or keys" in stderr_of(tmp_path)
    assert str(missing) in stderr_of(tmp_path)


def test_a_refused_connection_is_host_unreachable(
    fresh_ssh_server: SSHServer, tmp_path: Path
) -> None:
    fresh_ssh_server.stop()

    outcome = run_attempt(
        SSHExecutor(hosts_of(fresh_ssh_server, tmp_path)),
        spec(fresh_ssh_server, tmp_path, "true"),
    )

    assert outcome.reason == "host_unreachable"
    assert f"cannot reach host 'testhost' (127.0.0.1:{fresh_ssh_server.port})" in (
        stderr_of(tmp_path)
    )


@pytest.fixture
def silent_host(ssh_server: SSHServer, tmp_path: Path) -> Iterator[SSHHosts]:
    """A host whose port takes connections and never says a word."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        config = tmp_path / "silent_config"
        config.write_text(
            f"Host {ALIAS}\n  HostName 127.0.0.1\n  Port {listener.getsockname()[1]}\n"
        )
        yield SSHHosts(config, (), tmp_path / "known_hosts")


def test_a_connect_timeout_is_host_unreachable(silent_host: SSHHosts, tmp_path: Path) -> None:
    attempt = AttemptSpec("true", str(tmp_path), tmp_path / "log", host=ALIAS)

    outcome = run_attempt(SSHExecutor(silent_host, connect_timeout=0.3), attempt)

    assert outcome.reason == "host_unreachable" and "timed out" in stderr_of(tmp_path)


def test_a_cancel_while_connecting_ends_the_attempt_at_once(
    silent_host: SSHHosts, tmp_path: Path
) -> None:
    attempt = AttemptSpec("true", str(tmp_path), tmp_path / "log", host=ALIAS)
    executor = SSHExecutor(silent_host, connect_timeout=30)

    async def cancel() -> tuple[float, Outcome]:
        try:
            handle = await executor.start(attempt)
            await asyncio.sleep(0.2)  # let it connect; the host never answers
            before = time.monotonic()
            await handle.terminate(grace=10)
            outcome = await handle.wait()
            return time.monotonic() - before, outcome
        finally:
            await executor.close()

    took, outcome = asyncio.run(cancel())

    assert took < 1.0
    assert outcome.reason == "cancelled" and "before it started" in stderr_of(tmp_path)


def jump_config(server: SSHServer, tmp_path: Path, jump: str) -> Path:
    """The server's config plus ``jumped``: the same server, reached through ``jump``."""
    config = tmp_path / "jump_config"
    entry = server.client_config.read_text().split("\n\n")[0].replace(f"Host {ALIAS}\n", "")
    config.write_text(
        f"{server.client_config.read_text()}\nHost jumped\n{entry}\n  ProxyJump {jump}\n"
    )
    return config


def test_proxyjump_hosts_are_checked_like_the_target(ssh_server: SSHServer, tmp_path: Path) -> None:
    hosts = hosts_of(ssh_server, tmp_path, known="")
    hosts.trusted.write_text(ssh_server.known_line())  # trusted through jobnest only
    via_jump = SSHHosts(jump_config(ssh_server, tmp_path, ALIAS), (), hosts.trusted)
    logins = ssh_server.log.read_text().count("Accepted publickey")

    outcome = run_attempt(
        SSHExecutor(via_jump), spec(ssh_server, tmp_path, "echo ran", host="jumped")
    )

    assert outcome.ok and (tmp_path / "log" / "stdout").read_text() == "ran\n"
    assert ssh_server.log.read_text().count("Accepted publickey") == logins + 2  # jump, target


def test_an_unknown_proxyjump_host_is_named(ssh_server: SSHServer, tmp_path: Path) -> None:
    config = jump_config(ssh_server, tmp_path, "no-such-jump.invalid")
    hosts = SSHHosts(config, (), tmp_path / "trusted")

    outcome = run_attempt(SSHExecutor(hosts), spec(ssh_server, tmp_path, "true", host="jumped"))

    assert outcome.reason == "host_unreachable"
    assert "unknown host 'no-such-jump.invalid'" in stderr_of(tmp_path)


def test_timeouts_count_from_the_start_connecting_included(
    silent_host: SSHHosts, tmp_path: Path
) -> None:
    attempt = AttemptSpec("true", str(tmp_path), tmp_path / "log", soft_timeout=0.2, host=ALIAS)

    started = time.monotonic()
    outcome = run_attempt(SSHExecutor(silent_host, connect_timeout=30), attempt)

    assert (outcome.reason, outcome.exit_code, outcome.signal) == ("soft_timeout", None, None)
    assert time.monotonic() - started < 2.0
    assert "stopped (soft_timeout) before it started on 'testhost'" in stderr_of(tmp_path)


# --- connections that drop while a task runs ---------------------------------------------------


def run_and_disturb(
    server: SSHServer, tmp_path: Path, disturb: Callable[[list[int]], None], **options: Any
) -> tuple[Outcome, str]:
    """Run a long sleep on ``server``; once it runs, ``disturb`` its sshd session processes."""
    duration = marker()
    executor = SSHExecutor(hosts_of(server, tmp_path), **options)

    async def main() -> Outcome:
        try:
            handle = await executor.start(spec(server, tmp_path, f"sleep {duration}"))
            await until_running(duration)
            disturb(server.sessions())
            return await asyncio.wait_for(handle.wait(), DEADLINE)
        finally:
            await executor.close()

    return asyncio.run(main()), duration


def test_a_dropped_connection_is_lost_and_its_task_killed(
    fresh_ssh_server: SSHServer, tmp_path: Path
) -> None:
    def kill(pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)

    outcome, duration = run_and_disturb(fresh_ssh_server, tmp_path, kill)

    assert (outcome.reason, outcome.exit_code) == ("lost", None)
    assert "lost the connection to host 'testhost' while the task ran" in stderr_of(tmp_path)
    until(lambda: not sleepers(duration), message="the remote task lives on")


def test_keepalives_notice_a_peer_that_went_silent(
    fresh_ssh_server: SSHServer, tmp_path: Path
) -> None:
    stopped: list[int] = []

    def freeze(pids: list[int]) -> None:
        for pid in pids:
            os.kill(pid, signal.SIGSTOP)
            stopped.append(pid)

    try:
        started = time.monotonic()
        outcome, duration = run_and_disturb(
            fresh_ssh_server, tmp_path, freeze, keepalive_interval=0.2, keepalive_count_max=2
        )
        took = time.monotonic() - started
    finally:
        for pid in stopped:
            os.kill(pid, signal.SIGKILL)

    assert outcome.reason == "lost" and took < 5
    assert "lost the connection to host 'testhost'" in stderr_of(tmp_path)
    until(lambda: not sleepers(duration), message="the remote task lives on")


# --- the CLI: jobs with tasks on a host --------------------------------------------------------


@pytest.fixture
def cli_home(
    home: Path, tmp_path: Path, ssh_server: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """A jobnest home whose SSH config names the test server, whose key the user knows."""
    user_home = tmp_path / "user"
    (user_home / ".ssh").mkdir(parents=True)
    (user_home / ".ssh" / "known_hosts").write_text(ssh_server.known_line())
    monkeypatch.setenv("HOME", str(user_home))
    monkeypatch.setenv("JOBNEST_SSH_CONFIG", str(ssh_server.client_config))
    monkeypatch.delenv("SSH_CONNECTION", raising=False)
    monkeypatch.chdir(ssh_server.workdir())
    return home


def jobnest(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_job(folder: Path, *jobs: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    path = folder / "jobs.yml"
    path.write_text(yaml.safe_dump({"jobs": list(jobs)}, sort_keys=False))
    result = jobnest("run", str(path), "--job", jobs[-1]["name"], "--json")
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def test_a_task_on_a_host_has_its_output_captured_like_a_local_one(
    cli_home: Path, tmp_path: Path
) -> None:
    task = {
        "name": "report",
        "host": ALIAS,
        "command": 'echo "over ${SSH_CONNECTION:+ssh} as $JOBNEST_TASK"; echo warn >&2; exit 3',
    }

    code, summary = run_job(tmp_path, {"name": "remote", "tasks": [task]})

    assert code == 1
    assert summary["tasks"]["report"] == {"status": "failed", "exit_code": 3, "attempts": 1}
    run_id = str(summary["run_id"])
    assert jobnest("logs", run_id, "report").stdout == "over ssh as report\n"
    assert jobnest("logs", run_id, "report", "--stderr").stdout == "warn\n"


def test_a_job_reference_with_a_host_runs_the_childs_tasks_there(
    cli_home: Path, tmp_path: Path
) -> None:
    where = 'if [ -n "$SSH_CONNECTION" ]; then echo remote; else echo local; fi'
    child = {
        "name": "child",
        "tasks": [
            {"name": "inherits", "command": where},
            {"name": "own", "command": where, "host": OTHER_ALIAS},
        ],
    }
    parent = {
        "name": "parent",
        "tasks": [
            {"name": "here", "command": where},
            {"name": "there", "job": "child", "host": ALIAS},
        ],
    }

    code, summary = run_job(tmp_path, child, parent)

    assert code == 0, summary
    run_id = summary["run_id"]
    outputs = {path: jobnest("logs", str(run_id), path).stdout for path in summary["tasks"]}
    assert outputs == {"here": "local\n", "there/inherits": "remote\n", "there/own": "remote\n"}
    store = SQLStore.open(load_settings().database_url)
    try:
        hosts = {path: store.attempts(run_id, path)[-1].host for path in summary["tasks"]}
    finally:
        store.close()
    assert hosts == {"here": None, "there/inherits": ALIAS, "there/own": OTHER_ALIAS}


def test_auth_failures_are_not_retried_but_unreachable_hosts_are(
    cli_home: Path, tmp_path: Path, ssh_server: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe is closed
    config = tmp_path / "ssh_config"
    down = f"Host down\n  HostName 127.0.0.1\n  Port {port}\n"
    config.write_text(ssh_server.client_config.read_text() + "\n" + down)
    monkeypatch.setenv("JOBNEST_SSH_CONFIG", str(config))
    (Path(os.environ["HOME"]) / ".ssh" / "known_hosts").write_text("")  # testhost unknown now
    tasks = [
        {"name": "refused", "command": "true", "host": ALIAS, "retries": 3},
        {"name": "unreachable", "command": "true", "host": "down", "retries": 1},
    ]

    code, summary = run_job(tmp_path, {"name": "flaky", "tasks": tasks})

    assert code == 1
    assert summary["tasks"]["refused"]["attempts"] == 1
    assert summary["tasks"]["unreachable"]["attempts"] == 2
    refused = jobnest("logs", str(summary["run_id"]), "refused", "--stderr").stdout
    assert "is unknown" in refused and "jobnest hosts trust testhost" in refused


def test_the_daemon_runs_tasks_on_hosts_over_ssh(cli_home: Path, ssh_server: SSHServer) -> None:
    cli_home.mkdir(parents=True)
    settings = load_settings()
    store = SQLStore.open(settings.database_url)
    task = {"name": "t", "host": ALIAS, "command": 'echo "${SSH_CONNECTION:+over ssh}"'}

    async def main() -> str:
        daemon = Daemon(store, settings, workdir=str(ssh_server.workdir()), zone=ZoneInfo("UTC"))
        try:
            daemon.put_job({"name": "remote", "tasks": [task]})
            run_id = daemon.start_run("remote").id
            await until_async(
                lambda: store.get_run(run_id).status != "running", message="the run never ended"
            )
            return daemon.log_file(run_id, "t", "stdout").read_text()
        finally:
            await daemon.close()

    try:
        assert asyncio.run(main()) == "over ssh\n"
    finally:
        store.close()

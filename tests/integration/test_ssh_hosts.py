"""`jobnest hosts` and `jobnest hosts trust`: the SSH config's aliases and their host keys."""

from __future__ import annotations

import json
from pathlib import Path

import asyncssh
import pytest
from click.testing import CliRunner, Result

from jobnest.cli import cli
from jobnest.config import load_settings
from jobnest.errors import InvalidInput
from jobnest.executors.base import AttemptSpec, Outcome
from jobnest.executors.ssh import SSHExecutor
from ssh_server import ALIAS, SSHServer
from support.attempts import run_attempt


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``$HOME``, with an empty ``~/.ssh/known_hosts``."""
    path = tmp_path / "user"
    (path / ".ssh").mkdir(parents=True)
    (path / ".ssh" / "known_hosts").write_text("")
    monkeypatch.setenv("HOME", str(path))
    return path


@pytest.fixture
def server_config(
    home: Path, user_home: Path, ssh_server: SSHServer, monkeypatch: pytest.MonkeyPatch
) -> SSHServer:
    """jobnest's SSH config is the test server's; the user knows no host key yet."""
    monkeypatch.setenv("JOBNEST_SSH_CONFIG", str(ssh_server.client_config))
    return ssh_server


def jobnest(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def run_on_host(server: SSHServer, tmp_path: Path) -> Outcome:
    executor = SSHExecutor.from_settings(load_settings())
    attempt = AttemptSpec("echo ran", str(server.workdir()), tmp_path / "log", host=ALIAS)
    return run_attempt(executor, attempt)


def fingerprint(key: asyncssh.SSHKey) -> str:
    return f"ssh-ed25519 {key.get_fingerprint('sha256')}"


# --- listing -----------------------------------------------------------------------------------


def test_hosts_lists_each_alias_with_how_it_is_reached_and_its_key(
    home: Path, user_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    (user_home / ".ssh" / "known_hosts").write_text(f"[10.0.0.1]:2200 {key}\n")
    home.mkdir()
    (home / "known_hosts").write_text(f"10.0.0.2 {key}\n")
    (user_home / ".ssh" / "more.conf").write_text("Host included\n  HostName 10.0.0.3\n")
    config = tmp_path / "ssh_config"
    config.write_text(
        "Include more.conf\n"
        "Host known-box\n  HostName 10.0.0.1\n  Port 2200\n  User alice\n"
        "Host trusted-box other-name\n  HostName=10.0.0.2\n  ProxyJump known-box\n"
        "Host *.example !skip.example\n  User bob\n"
        "Host *\n  User carol\n"
    )
    monkeypatch.setenv("JOBNEST_SSH_CONFIG", str(config))

    listed = jobnest("hosts", "--json")
    shown = jobnest("hosts")

    assert listed.exit_code == 0 and shown.exit_code == 0
    assert json.loads(listed.stdout) == [
        {
            "alias": "included",
            "hostname": "10.0.0.3",
            "user": "carol",
            "port": 22,
            "proxy_jump": None,
            "key": "unknown",
        },
        {
            "alias": "known-box",
            "hostname": "10.0.0.1",
            "user": "alice",
            "port": 2200,
            "proxy_jump": None,
            "key": "known",
        },
        {
            "alias": "trusted-box",
            "hostname": "10.0.0.2",
            "user": "carol",
            "port": 22,
            "proxy_jump": "known-box",
            "key": "trusted",
        },
        {
            "alias": "other-name",
            "hostname": "10.0.0.2",
            "user": "carol",
            "port": 22,
            "proxy_jump": "known-box",
            "key": "trusted",
        },
    ]
    assert shown.stdout.splitlines() == [
        "included     carol@10.0.0.3:22  key unknown",
        "known-box    alice@10.0.0.1:2200  key known",
        "trusted-box  carol@10.0.0.2:22  key trusted  via known-box",
        "other-name   carol@10.0.0.2:22  key trusted  via known-box",
    ]


def test_hosts_without_a_config_says_so(
    home: Path, user_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("JOBNEST_SSH_CONFIG", str(tmp_path / "missing"))

    result = jobnest("hosts")

    assert result.exit_code == 0 and result.stdout == ""
    assert f"no hosts: {tmp_path / 'missing'} defines no Host alias" in result.stderr


def test_a_config_line_that_does_not_parse_is_named(
    home: Path, user_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "ssh_config"
    config.write_text('Host "unclosed\n')
    monkeypatch.setenv("JOBNEST_SSH_CONFIG", str(config))

    result = jobnest("hosts")

    assert result.exit_code == 2
    assert f"{config}: cannot read the line 'Host \"unclosed'" in result.stderr


def test_the_ssh_config_comes_from_the_config_file_or_the_environment(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBNEST_SSH_CONFIG", raising=False)
    home.mkdir()
    (home / "config.toml").write_text('ssh_config = "/etc/jobnest/ssh_config"\n')
    assert load_settings().ssh_config == Path("/etc/jobnest/ssh_config")

    monkeypatch.setenv("JOBNEST_SSH_CONFIG", "/elsewhere")
    assert load_settings().ssh_config == Path("/elsewhere")

    (home / "config.toml").write_text("ssh_config = 3\n")
    monkeypatch.delenv("JOBNEST_SSH_CONFIG")
    with pytest.raises(InvalidInput, match="ssh_config must be the path of a file, got 3"):
        load_settings()


# --- trusting a host's key ---------------------------------------------------------------------


def test_trust_shows_the_fingerprint_records_the_key_and_tasks_then_run(
    server_config: SSHServer, home: Path, tmp_path: Path
) -> None:
    assert run_on_host(server_config, tmp_path).reason == "auth_failed"

    result = jobnest("hosts", "trust", ALIAS, stdin="y\n")

    assert result.exit_code == 0, result.output
    assert fingerprint(server_config.host_key) in result.stdout
    assert f"trusted: recorded in {home / 'known_hosts'}" in result.stdout
    assert (home / "known_hosts").read_text() == server_config.known_line()
    assert f"{ALIAS}  " in jobnest("hosts").stdout
    assert "key trusted" in jobnest("hosts").stdout.splitlines()[0]
    assert run_on_host(server_config, tmp_path).ok


def test_trust_declined_records_nothing(server_config: SSHServer, home: Path) -> None:
    result = jobnest("hosts", "trust", ALIAS, stdin="n\n")

    assert result.exit_code == 1
    assert fingerprint(server_config.host_key) in result.stdout
    assert f"host {ALIAS!r} not trusted: nothing was recorded" in result.stderr
    assert not (home / "known_hosts").exists()


def test_trust_with_yes_asks_nothing(server_config: SSHServer, home: Path) -> None:
    result = jobnest("hosts", "trust", ALIAS, "--yes")

    assert result.exit_code == 0 and "Trust this key?" not in result.output
    assert (home / "known_hosts").read_text() == server_config.known_line()


def test_trust_of_a_known_key_records_nothing(
    server_config: SSHServer, home: Path, user_home: Path
) -> None:
    (user_home / ".ssh" / "known_hosts").write_text(server_config.known_line())

    result = jobnest("hosts", "trust", ALIAS, "--yes")

    assert result.exit_code == 0
    assert f"is known already: {fingerprint(server_config.host_key)}" in result.stdout
    assert not (home / "known_hosts").exists()


def test_trust_refuses_a_changed_key(server_config: SSHServer, home: Path, user_home: Path) -> None:
    other = asyncssh.generate_private_key("ssh-ed25519")
    (user_home / ".ssh" / "known_hosts").write_text(server_config.known_line(other))

    result = jobnest("hosts", "trust", ALIAS, "--yes")

    assert result.exit_code == 2
    assert "showed a host key that differs from the one recorded in" in result.stderr
    assert f"ssh-keygen -R '[127.0.0.1]:{server_config.port}'" in result.stderr
    assert not (home / "known_hosts").exists()


def test_trust_of_an_unknown_alias_names_it(server_config: SSHServer) -> None:
    result = jobnest("hosts", "trust", "no-such-alias.invalid", "--yes")

    assert result.exit_code == 2
    assert "unknown host 'no-such-alias.invalid': no 'Host no-such-alias.invalid'" in (
        result.stderr
    )

"""``jobnest passwd`` and ``jobnest token``, in process over a real SQLite home."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from jobnest.cli import cli
from jobnest.config import load_settings
from jobnest.credentials import find_token, hash_password, verify_password
from jobnest.store.base import Store
from jobnest.store.sql import SQLStore

PASSWORD = "correct horse battery"


def jobnest(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


@pytest.fixture
def store(home: Path) -> Iterator[Store]:
    """The home's store, opened the way the CLI opens it."""
    home.mkdir(parents=True, exist_ok=True)
    opened = SQLStore.open(load_settings().database_url)
    yield opened
    opened.close()


def assert_refused(result: Result, *words: str) -> None:
    """Exit 2 with one line on stderr holding ``words``."""
    assert result.exit_code == 2, result.output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for word in words:
        assert word in result.stderr


def created_token(*args: str) -> str:
    result = jobnest("token", "create", *args)
    assert result.exit_code == 0, result.stderr
    return result.stdout.strip()


# --- passwd ------------------------------------------------------------------------------------


def test_passwd_asks_twice_and_stores_a_hash(store: Store) -> None:
    result = jobnest("passwd", stdin=f"{PASSWORD}\n{PASSWORD}\n")
    assert result.exit_code == 0, result.stderr
    stored = store.get_password_hash()
    assert stored is not None
    assert PASSWORD not in stored
    assert verify_password(PASSWORD, stored)


def test_passwd_refuses_two_different_answers(store: Store) -> None:
    result = jobnest("passwd", stdin=f"{PASSWORD}\nsomething else\n")
    assert_refused(result, "differ")
    assert store.get_password_hash() is None


def test_passwd_reads_stdin(store: Store) -> None:
    result = jobnest("passwd", "--password-stdin", stdin=f"{PASSWORD}\r\n")
    assert result.exit_code == 0, result.stderr
    stored = store.get_password_hash()
    assert stored is not None
    assert verify_password(PASSWORD, stored)


def test_passwd_refuses_a_short_password(store: Store) -> None:
    assert_refused(jobnest("passwd", "--password-stdin", stdin="short\n"), "8 characters", "5")
    assert_refused(jobnest("passwd", "--password-stdin", stdin=""), "8 characters")
    assert store.get_password_hash() is None


def test_passwd_logs_every_session_out(store: Store) -> None:
    now = datetime.now(UTC)
    store.create_session("s1", "c", now=now, expires_at=now + timedelta(hours=1))
    assert jobnest("passwd", "--password-stdin", stdin=PASSWORD).exit_code == 0
    assert store.find_session("s1", now=now) is None


def test_passwd_print_hash_prints_what_the_config_file_takes(home: Path, store: Store) -> None:
    result = jobnest("passwd", "--print-hash", "--password-stdin", stdin=PASSWORD)
    assert result.exit_code == 0, result.stderr
    printed = result.stdout.strip()
    assert verify_password(PASSWORD, printed)
    assert store.get_password_hash() is None
    (home / "config.toml").write_text(f'password_hash = "{printed}"\n')
    assert load_settings().password_hash == printed


def test_passwd_refuses_when_the_config_file_sets_the_password(home: Path, store: Store) -> None:
    (home / "config.toml").write_text(f'password_hash = "{hash_password(PASSWORD)}"\n')
    result = jobnest("passwd", "--password-stdin", stdin="another password")
    assert_refused(result, "config file", "--print-hash")
    assert store.get_password_hash() is None


# --- tokens ------------------------------------------------------------------------------------


def test_token_create_prints_the_token_once_and_stores_its_hash(store: Store) -> None:
    result = jobnest("token", "create", "ci")
    assert result.exit_code == 0, result.stderr
    secret = result.stdout.strip()
    assert len(result.stdout.splitlines()) == 1
    found = find_token(store, secret)
    assert found is not None
    assert (found.name, found.scope) == ("ci", "read")
    assert "not shown again" in result.stderr
    assert secret not in json.dumps([vars(t) for t in store.list_tokens()], default=str)


def test_token_create_takes_a_scope(store: Store) -> None:
    found = find_token(store, created_token("deploy", "--scope", "full"))
    assert found is not None
    assert found.scope == "full"


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["ci", "--scope", "admin"], ["'admin'", "read, full"]),
        ([""], ["''", "1 to 128"]),
        (["a" * 129], ["1 to 128"]),
        (["bad\nname"], ["control"]),
    ],
)
def test_token_create_refuses_bad_input(store: Store, args: list[str], words: list[str]) -> None:
    assert_refused(jobnest("token", "create", *args), *words)
    assert store.list_tokens() == []


def test_token_list_shows_every_token_but_never_the_token(store: Store) -> None:
    secret = created_token("ci")
    created_token("deploy", "--scope", "full")
    jobnest("token", "revoke", "1")
    result = jobnest("token", "list")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    assert "ci" in lines[0]
    assert "revoked" in lines[0]
    assert "deploy" in lines[1]
    assert "full" in lines[1]
    assert "active" in lines[1]
    assert secret not in result.stdout


def test_token_list_json(store: Store) -> None:
    created_token("ci")
    listed = json.loads(jobnest("token", "list", "--json").stdout)
    assert [(t["id"], t["name"], t["scope"], t["revoked_at"]) for t in listed] == [
        (1, "ci", "read", None)
    ]


def test_token_revoke_stops_the_token(store: Store) -> None:
    secret = created_token("ci")
    result = jobnest("token", "revoke", "1")
    assert result.exit_code == 0
    assert "revoked" in result.stdout
    assert find_token(store, secret) is None


@pytest.mark.parametrize(("token_id", "words"), [("7", ["7"]), ("seven", ["'seven'"])])
def test_token_revoke_refuses_a_bad_id(store: Store, token_id: str, words: list[str]) -> None:
    assert_refused(jobnest("token", "revoke", token_id), *words)

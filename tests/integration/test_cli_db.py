"""`jobnest db`: schema upgrades on PostgreSQL, and moving a SQLite installation into it."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml
from click.testing import CliRunner, Result

from jobnest.cli import cli
from jobnest.process import DaemonLock
from jobnest.store import migrations
from jobnest.store.base import SkippedSlot
from jobnest.store.schema import metadata
from jobnest.store.sql import SQLStore, sqlite_url
from postgres import POSTGRES_URL, admin, fresh_schema, schema_url

T0 = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)
FILLED = (  # the tables ``sqlite_installation`` puts rows in; every table is compared
    "jobs",
    "job_versions",
    "runs",
    "task_runs",
    "attempts",
    "command_fixes",
    "schedules",
    "skipped_slots",
    "auth_settings",
    "auth_sessions",
    "api_tokens",
)


def jobnest(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args))


@pytest.fixture
def empty_schema(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A PostgreSQL schema with no tables, configured as the database: its URL."""
    name = f"jobnest_test_empty_{datetime.now(UTC):%H%M%S%f}"
    with admin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    url = schema_url(POSTGRES_URL, name)
    monkeypatch.setenv("JOBNEST_DATABASE_URL", url)
    try:
        yield url
    finally:
        with admin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA "{name}" CASCADE')


def test_commands_on_a_postgres_database_without_the_schema_exit_3_with_the_fix(
    home: Path, empty_schema: str
) -> None:
    refused = jobnest("runs")
    assert refused.exit_code == 3
    assert "has no jobnest schema yet" in refused.stderr
    assert "run `jobnest db upgrade`" in refused.stderr


def test_db_upgrade_brings_an_empty_postgres_database_to_the_newest_revision(
    home: Path, empty_schema: str
) -> None:
    first = jobnest("db", "upgrade")
    assert first.exit_code == 0, first.output
    assert f"upgraded from nothing to revision {migrations.head()}" in first.stdout
    again = jobnest("db", "upgrade")
    assert f"at revision {migrations.head()} already" in again.stdout
    assert jobnest("runs").exit_code == 0


def test_db_upgrade_works_on_sqlite_too(home: Path) -> None:
    upgraded = jobnest("db", "upgrade")
    assert upgraded.exit_code == 0, upgraded.output
    assert f"revision {migrations.head()}" in upgraded.stdout
    assert (home / "jobnest.db").exists()


# --- migrate-from ----------------------------------------------------------------------------


def sqlite_installation(work: Path, home: Path) -> str:
    """A SQLite home with a bit of everything in it: its database URL."""
    jobs = {
        "jobs": [
            {"name": "child", "tasks": [{"name": "c", "command": "echo child"}]},
            {
                "name": "nightly",
                "tasks": [
                    {"name": "load", "job": "child"},
                    {"name": "flaky", "command": "false", "after": ["load"]},
                ],
            },
        ]
    }
    (work / "jobs.yml").write_text(yaml.safe_dump(jobs))
    assert jobnest("run", "jobs.yml", "--job", "nightly").exit_code == 1
    assert jobnest("retry", "1", "--fix", "flaky", "echo fixed").exit_code == 0
    url = sqlite_url(home / "jobnest.db")
    store = SQLStore.open(url)
    try:
        for version in (1, 2):
            store.put_job("nightly", {"name": "nightly", "v": version}, f"h{version}", now=T0)
        store.advance_schedules({"nightly": T0})
        store.set_schedule_paused("child", True)
        store.record_skips([SkippedSlot("nightly", T0 - timedelta(hours=1), "running", T0)])
        store.set_password_hash("$scrypt$not-a-real-hash")
        store.create_session("sess", "csrf", now=T0, expires_at=T0 + timedelta(days=1))
        token = store.create_token("ci", "digest", "full", now=T0)
        store.revoke_token(token.id, now=T0)
    finally:
        store.close()
    return url


def contents(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, in primary key order, as the column types read them."""
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {
                table.name: [
                    tuple(row)
                    for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
                ]
                for table in metadata.sorted_tables
            }
    finally:
        engine.dispose()


@pytest.fixture
def target(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with fresh_schema() as url:
        monkeypatch.setenv("JOBNEST_DATABASE_URL", url)
        yield url


def test_migrate_from_copies_a_sqlite_installation_whole(
    work: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBNEST_DATABASE_URL", raising=False)
    source = sqlite_installation(work, home)
    with fresh_schema() as url:
        monkeypatch.setenv("JOBNEST_DATABASE_URL", url)
        moved = jobnest("db", "migrate-from", source)
        assert moved.exit_code == 0, moved.output
        assert "1 runs" in moved.stdout
        assert f"it stays in {home / 'logs'}" in moved.stderr
        assert contents(url) == contents(source)
        copied = contents(url)
        assert all(copied[name] for name in FILLED), {name: len(copied[name]) for name in FILLED}

        logs = jobnest("logs", "1", "flaky")  # log references: the same home reads them
        assert (logs.exit_code, logs.stdout) == (0, "fixed\n")
        assert jobnest("run", "jobs.yml", "--job", "child").exit_code == 0
        store = SQLStore.open(url)
        assert [run.id for run in store.list_runs()] == [2, 1]  # ids go on
        store.close()


def test_migrate_from_refuses_a_target_with_data_unless_forced(
    work: Path, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("JOBNEST_DATABASE_URL", raising=False)
    source = sqlite_installation(work, home)
    with fresh_schema() as url:
        monkeypatch.setenv("JOBNEST_DATABASE_URL", url)
        assert jobnest("db", "migrate-from", source).exit_code == 0
        again = jobnest("db", "migrate-from", source)
        assert again.exit_code == 2
        assert "the target database is not empty" in again.stderr
        assert "--force" in again.stderr
        forced = jobnest("db", "migrate-from", "--force", str(home / "jobnest.db"))
        assert forced.exit_code == 0, forced.output
        assert contents(url) == contents(source)


def test_migrate_from_refuses_while_a_daemon_serves_the_sqlite_database(
    work: Path, home: Path, target: str
) -> None:
    home.mkdir()
    source = sqlite_url(home / "jobnest.db")
    SQLStore.open(source).close()
    lock = DaemonLock(home / "jobnest.db.daemon-lock")
    lock.acquire()
    try:
        refused = jobnest("db", "migrate-from", source)
    finally:
        lock.release()
    assert refused.exit_code == 3
    assert "another jobnest daemon" in refused.stderr


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("sqlite:///nowhere/jobnest.db", "no SQLite database at 'nowhere/jobnest.db'"),
        ("postgresql://elsewhere/db", "migrate-from copies a SQLite database"),
    ],
)
def test_migrate_from_refuses_a_source_that_is_no_sqlite_file(
    work: Path, target: str, source: str, message: str
) -> None:
    refused = jobnest("db", "migrate-from", source)
    assert refused.exit_code == 2
    assert message in refused.stderr


def test_migrate_from_refuses_a_sqlite_target(work: Path, home: Path) -> None:
    source = sqlite_installation(work, home)
    refused = jobnest("db", "migrate-from", source)
    assert refused.exit_code == 2
    assert "the configured database is SQLite" in refused.stderr

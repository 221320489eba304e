"""``jobnest db``: schema upgrades, and moving a SQLite installation into PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import click

from jobnest import process
from jobnest.cli.edge import Context, pass_context
from jobnest.errors import InvalidInput
from jobnest.store.sql import SQLStore


@click.group()
def db() -> None:
    """The database: upgrade its schema; copy a SQLite installation into PostgreSQL."""


@db.command(name="upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Bring the database's schema to this jobnest's revision (back it up first).

    A SQLite database is upgraded whenever jobnest opens it; a PostgreSQL one only by
    this command, since older daemons may share it: stop them first.
    """
    from jobnest.store import migrations, transfer

    url = ctx.settings.database_url
    ctx.settings.home.mkdir(parents=True, exist_ok=True)
    before, after = SQLStore.upgrade(url), migrations.head()
    where = transfer.display_url(url)
    if before == after:
        click.echo(f"{where}: the schema is at revision {after} already")
    else:
        click.echo(f"{where}: schema upgraded from {before or 'nothing'} to revision {after}")


@db.command(name="migrate-from")
@click.argument("source", metavar="sqlite:///PATH")
@click.option("--force", is_flag=True, help="Replace whatever the target database holds.")
@pass_context
def db_migrate_from(ctx: Context, source: str, force: bool) -> None:
    """Copy a SQLite installation into the configured (PostgreSQL) database.

    Jobs and their versions, run history with plans, snapshots, tasks, attempts and command
    fixes, schedules, skipped slots, the password and API tokens: all of it, in one
    transaction. The target must be empty unless --force. Task output stays where it is:
    its folders are relative to $JOBNEST_HOME. No daemon may run on the source meanwhile.
    """
    from jobnest.store import transfer
    from jobnest.store.sql import upgrades_on_open

    source_url = transfer.sqlite_source(source)
    target_url = ctx.settings.database_url
    if upgrades_on_open(target_url):
        raise InvalidInput(
            f"the configured database is SQLite ({transfer.display_url(target_url)}): set "
            "JOBNEST_DATABASE_URL (or database_url in config.toml) to the PostgreSQL database"
        )
    lock_path = process.sqlite_lock_path(source_url)
    lock = process.DaemonLock(lock_path) if lock_path else None
    if lock is not None:
        lock.acquire()
    try:
        counts = _copy_installation(source_url, target_url, force)
    finally:
        if lock is not None:
            lock.release()
    copied = ", ".join(f"{count} {table}" for table, count in counts.items() if count)
    click.echo(f"copied into {transfer.display_url(target_url)}: {copied or 'nothing'}")
    click.echo(_logs_note(source_url), err=True)


def _copy_installation(source_url: str, target_url: str, force: bool) -> dict[str, int]:
    from jobnest.store import transfer

    SQLStore.upgrade(target_url)
    source, target = SQLStore.open(source_url), SQLStore.open(target_url)
    try:
        return transfer.copy_database(source, target, force=force)
    finally:
        source.close()
        target.close()


def _logs_note(source_url: str) -> str:
    home = Path(source_url.partition(":///")[2]).parent
    return (
        f"note: task output was not copied: it stays in {home / 'logs'}. Attempts name their "
        f"log folders relative to $JOBNEST_HOME: run the daemons with JOBNEST_HOME={home}, or "
        "copy that logs folder into their home"
    )

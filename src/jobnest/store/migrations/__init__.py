"""Schema migrations of the SQL store (Alembic), run from code: no ``alembic.ini`` needed.

``upgrade(engine)`` brings a database to the newest revision. The whole upgrade runs in
one transaction of the engine it is given, so two processes opening a new database at the
same time take turns instead of both creating the tables (on PostgreSQL, whose DDL takes no
lock that would make the second wait, an advisory lock makes them).

``check(connection)`` refuses a database whose schema is not the one this code knows, with
the fix in the message: ``jobnest db upgrade`` for an older one, a newer jobnest for a newer.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from alembic.util import CommandError
from sqlalchemy.engine import Connection, Engine

from jobnest.errors import StoreError

HERE = Path(__file__).parent
UPGRADE_LOCK = 0x6A6F626E65737400  # pg_advisory_xact_lock key: "jobnest\0"


def alembic_config() -> Config:
    """An Alembic configuration pointing at this folder, built in memory."""
    config = Config()
    config.set_main_option("script_location", str(HERE).replace("%", "%%"))
    config.set_main_option("path_separator", "os")
    return config


def upgrade(engine: Engine) -> str | None:
    """Bring the database of ``engine`` to the newest revision, in one transaction.

    Returns the revision it was at (None: it had no jobnest schema).

    Raises:
        StoreError: its schema is newer than this code knows.
    """
    config = alembic_config()
    with engine.begin() as connection:
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(UPGRADE_LOCK)))
        before = current(connection)
        if before is not None and not _is_known(before):
            raise StoreError(_newer(before))
        config.attributes["connection"] = connection
        try:
            command.upgrade(config, "head")
        except CommandError as error:
            raise StoreError(f"cannot upgrade the schema: {error}") from error
    return before


def head() -> str:
    """The newest revision this code knows."""
    found = _scripts().get_current_head()
    assert found is not None  # the versions folder ships with the package
    return found


def current(connection: Connection) -> str | None:
    """The revision the database is at; None when it has no jobnest schema yet."""
    return MigrationContext.configure(connection).get_current_revision()


def check(connection: Connection) -> None:
    """Refuse a schema older or newer than this code's, saying how to fix it.

    Raises:
        StoreError: the database is not at ``head()``.
    """
    at, newest = current(connection), head()
    if at == newest:
        return
    if at is not None and not _is_known(at):
        raise StoreError(_newer(at))
    state = "has no jobnest schema yet" if at is None else f"is at revision {at}"
    raise StoreError(
        f"the database {state}; this jobnest needs revision {newest}: "
        "run `jobnest db upgrade` (back it up first; stop older daemons on it)"
    )


def _newer(revision: str) -> str:
    return (
        f"the database schema is at revision {revision}, newer than this jobnest knows "
        f"({head()}): install the jobnest version that upgraded it (pip install -U jobnest)"
    )


def _is_known(revision: str) -> bool:
    return any(known.revision == revision for known in _scripts().walk_revisions())


@cache
def _scripts() -> ScriptDirectory:
    """The revisions shipped with this code, read once."""
    return ScriptDirectory.from_config(alembic_config())

"""Opening a database, and the transactions every part of the store works in.

SQLite is opened in WAL mode with ``synchronous=NORMAL``, a 30 s busy timeout and foreign
keys on. pysqlite's own transaction handling is switched off and every write transaction
starts with ``BEGIN IMMEDIATE``: a read-then-write transaction that began deferred has to
upgrade its lock and fails with "database is locked" when another process got there first,
while an immediate one waits its turn. Reads begin deferred and never block writers.

Dialect specifics live in ``_create_engine`` and ``_on_sqlite_*``. ``SQLBase`` holds the
engine and opens the transactions (``_read``, ``_write``, ``_driver_write``) the mixins of
``SQLStore`` work in; an unusable database comes out of them as ``StoreError``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from jobnest.errors import StoreError
from jobnest.store.schema import REVISION

BUSY_TIMEOUT_SECONDS = 30
_WRITE = "jobnest_write"  # execution option: this transaction will write


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The URL of the SQLite database file at ``path``."""
    return f"sqlite+pysqlite:///{Path(path).absolute()}"


@dataclass(frozen=True)
class Batch:
    """An open write transaction on the driver's connection (``SQLBase._driver_write``)."""

    cursor: Any  # the driver's cursor
    dialect: sa.Dialect


class SQLBase:
    """The engine of a store and its transactions; open it with ``SQLStore.open(url)``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})

    @classmethod
    def open(cls, url: str, *, upgrade: bool | None = None) -> Self:
        """Connect to ``url``, whose schema must be the newest revision.

        ``upgrade`` brings an older schema (or an empty database) to it first; by default
        only a SQLite file is upgraded on open (see ``upgrades_on_open``).

        Raises:
            StoreError: the database cannot be opened or migrated, or its schema is older
                (without ``upgrade``) or newer than this code's; the message says what to do.
        """
        with _opening(url):
            store = cls(_create_engine(url))
            try:
                store._prepare(url, upgrade)
            except exc.SQLAlchemyError as error:
                store.close()
                raise StoreError(f"cannot open the database {_safe(url)}: {error}") from error
            except StoreError as error:
                store.close()
                raise StoreError(f"{_safe(url)}: {error}") from error
        return store

    def _prepare(self, url: str, upgrade: bool | None) -> None:
        """Check the schema; Alembic is loaded only when it is not at ``REVISION``."""
        with self._engine.connect() as conn:
            if _revision(conn) == REVISION:
                return
        from jobnest.store import migrations  # Alembic takes a tenth of a second to load

        if upgrades_on_open(url) if upgrade is None else upgrade:
            migrations.upgrade(self._writer)
        with self._engine.connect() as conn:
            migrations.check(conn)

    @classmethod
    def upgrade(cls, url: str) -> str | None:
        """Bring the schema of ``url`` to the newest revision (``jobnest db upgrade``).

        Returns the revision it was at; None when it had no jobnest schema.

        Raises:
            StoreError: the database cannot be reached or migrated, or is newer than known.
        """
        from jobnest.store import migrations

        store = cls(_create_engine(url))
        try:
            return migrations.upgrade(store._writer)
        except exc.SQLAlchemyError as error:
            raise StoreError(f"cannot upgrade the database {_safe(url)}: {error}") from error
        except StoreError as error:
            raise StoreError(f"{_safe(url)}: {error}") from error
        finally:
            store.close()

    @property
    def engine(self) -> Engine:
        """The engine the store works on (``jobnest db`` copies and inspects through it)."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # --- transactions ------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with _translated(), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with _translated(), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _driver_write(self) -> Iterator[Batch]:
        """A write transaction on the driver's own connection, for ``batch``'s statements.

        It begins IMMEDIATE on SQLite and turns an unusable database into StoreError, as
        ``_write`` does; what is not committed is rolled back by the pool on check-in.
        """
        dialect = self._engine.dialect
        dbapi = dialect.loaded_dbapi
        try:
            with _translated():
                raw = self._engine.raw_connection()
        except (dbapi.OperationalError, dbapi.InterfaceError) as error:  # the pool's, unwrapped
            raise StoreError(f"the database cannot be used: {error}") from error
        cursor = None
        try:
            cursor = raw.cursor()
            if dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            yield Batch(cursor, dialect)
            raw.commit()
        except (dbapi.OperationalError, dbapi.InterfaceError) as error:
            if dialect.is_disconnect(error, raw.dbapi_connection, cursor):
                raw.invalidate(error)  # the pool connects afresh next time
            raise StoreError(f"the database cannot be used: {error}") from error
        finally:
            raw.close()


# --- opening -----------------------------------------------------------------------------------


@contextmanager
def _opening(url: str) -> Iterator[None]:
    """Hold a lock beside a SQLite file while it is opened and migrated.

    Switching a new file to WAL and migrating it take the database whole: two processes
    opening one fresh home at once would otherwise see "database is locked" (the busy
    timeout does not cover a journal-mode switch). Nothing to do for other databases.
    """
    path = _sqlite_file(url)
    if path is None or not path.parent.is_dir():  # no file: opening it fails, unlocked
        yield
        return
    fd = os.open(f"{path}.open-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _revision(conn: Connection) -> str | None:
    """The schema's Alembic revision, read without Alembic; None if it has none."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrades_on_open(url: str) -> bool:
    """Whether ``SQLStore.open`` migrates the database of ``url`` by itself: SQLite only.

    A SQLite file belongs to one installation (one daemon holds its lock), so jobnest keeps
    it current as it always has. A PostgreSQL database may be shared by several daemons,
    some of them still older: changing its schema under them is the operator's decision,
    taken with ``jobnest db upgrade`` (after a backup).
    """
    return _backend(url) == "sqlite"


def _backend(url: str) -> str:
    try:
        return sa.make_url(url).get_backend_name()
    except exc.ArgumentError as error:
        raise StoreError(f"database URL {url!r} is not a SQLAlchemy URL: {error}") from None


# --- engines -----------------------------------------------------------------------------------


def _create_engine(url: str) -> Engine:
    """An engine for ``url``, with SQLite's transaction control taken over.

    PostgreSQL connections are checked before use (``pool_pre_ping``): one the server
    dropped (a restart, ``pg_terminate_backend``) is replaced instead of failing a write.
    """
    if _backend(url) != "sqlite":
        try:
            return sa.create_engine(url, pool_pre_ping=True)
        except ImportError as error:
            raise StoreError(
                f"no driver for {_safe(url)} ({error.name} is not installed): "
                "for PostgreSQL, pip install 'jobnest[postgres]'"
            ) from None
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Stop pysqlite from emitting BEGIN itself, and set the pragmas of every connection."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    """Begin a write transaction IMMEDIATE (take the write lock now), a read one deferred."""
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


# --- errors ------------------------------------------------------------------------------------


@contextmanager
def _translated() -> Iterator[None]:
    """Turn an unusable database into StoreError, and a naive datetime into ValueError."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise StoreError(f"the database cannot be used: {error.orig}") from error
    except exc.StatementError as error:
        if isinstance(error, exc.DBAPIError) or not isinstance(error.orig, ValueError):
            raise
        raise error.orig from error


def _safe(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)

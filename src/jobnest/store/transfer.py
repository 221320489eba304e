"""Copying an installation's database into another: ``jobnest db migrate-from``.

Every table of the schema (``schema.metadata``: jobs and their versions, runs with their
plans and snapshots, tasks, attempts, command fixes, schedules, skipped slots, the password,
sessions and tokens, and whatever later revisions add) is copied, parents first, in one
transaction on the target: a copy either happens whole or not at all. The source is read in
one transaction, so the copy is one consistent moment of it.

Ids are kept, since log folders are named after run ids; on PostgreSQL the id sequences are
moved past the copied ids. Log files are not copied: an attempt's ``log_dir`` is relative to
``$JOBNEST_HOME``, so the daemons on the new database read them from a home that has them.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.engine import Connection

from jobnest.errors import Conflict, InvalidInput, StoreError
from jobnest.store.schema import metadata
from jobnest.store.sql import SQLStore

CHUNK = 1000  # rows per INSERT batch


def copy_database(source: SQLStore, target: SQLStore, *, force: bool = False) -> dict[str, int]:
    """Copy every row of ``source`` into ``target``; return how many rows, by table.

    Raises:
        Conflict: ``target`` holds rows already and ``force`` is not set (with ``force``
            they are deleted first).
        StoreError: either database cannot be used.
    """
    tables = metadata.sorted_tables
    with _translated(), source.engine.connect() as reader, target.engine.begin() as writer:
        full = [table.name for table in tables if _has_rows(writer, table)]
        if full and not force:
            raise Conflict(
                f"the target database is not empty (rows in {', '.join(full)}): "
                "pass --force to replace what it holds"
            )
        for table in reversed(tables):
            writer.execute(sa.delete(table))
        counts = {table.name: _copy_table(reader, writer, table) for table in tables}
        if writer.dialect.name == "postgresql":
            _move_sequences(writer, tables)
    return counts


def sqlite_source(text: str) -> str:
    """The URL of an existing SQLite database, from its URL (``sqlite:///PATH``) or path.

    Raises:
        InvalidInput: not a SQLite URL, or no file there.
    """
    url = sa.make_url(text if "://" in text else f"sqlite:///{Path(text).absolute()}")
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise InvalidInput(f"migrate-from copies a SQLite database (sqlite:///PATH), got {text!r}")
    if not Path(url.database).is_file():
        raise InvalidInput(f"no SQLite database at {url.database!r} (from {text!r})")
    return url.render_as_string(hide_password=False)


def display_url(url: str) -> str:
    """``url`` with its password hidden, for messages."""
    return sa.make_url(url).render_as_string(hide_password=True)


def _has_rows(conn: Connection, table: sa.Table) -> bool:
    return conn.execute(sa.select(sa.literal(1)).select_from(table).limit(1)).first() is not None


def _copy_table(reader: Connection, writer: Connection, table: sa.Table) -> int:
    """Copy the rows of ``table`` in batches; its column types convert on the way."""
    copied = 0
    result = reader.execution_options(yield_per=CHUNK).execute(sa.select(table))
    for rows in result.partitions():
        writer.execute(sa.insert(table), [row._asdict() for row in rows])
        copied += len(rows)
    return copied


def _move_sequences(writer: Connection, tables: list[sa.Table]) -> None:
    """Make PostgreSQL hand out ids after the copied ones."""
    for table in tables:
        key = table.autoincrement_column
        highest = None if key is None else writer.execute(sa.select(sa.func.max(key))).scalar()
        if key is not None and highest is not None:
            sequence = sa.func.pg_get_serial_sequence(table.name, key.name)
            writer.execute(sa.select(sa.func.setval(sequence, highest)))


@contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise StoreError(f"the database cannot be used: {error.orig}") from error

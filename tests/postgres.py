"""The PostgreSQL server the tests use, and fresh places on it.

The server is ``$JOBNEST_TEST_POSTGRES_URL`` (default: database ``test`` on 127.0.0.1:5432
as ``postgres``, trust auth). A schema of its own is enough for most tests; a test that cuts
connections or shuts the database gets a database of its own, so that no other test (or
person) sharing the server loses theirs.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from jobnest.store.sql import SQLStore

POSTGRES_URL = os.environ.get(
    "JOBNEST_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


@contextmanager
def admin() -> Iterator[sa.Connection]:
    """A connection to the server's own database, outside any transaction."""
    engine = sa.create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            yield conn
    finally:
        engine.dispose()


@contextmanager
def fresh_schema() -> Iterator[str]:
    """A new schema with jobnest's tables (as `jobnest db upgrade` makes them): its URL."""
    name = f"jobnest_test_{uuid.uuid4().hex[:12]}"
    with admin() as conn:
        conn.exec_driver_sql(f'CREATE SCHEMA "{name}"')
    try:
        url = schema_url(POSTGRES_URL, name)
        SQLStore.upgrade(url)
        yield url
    finally:
        with admin() as conn:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')


@contextmanager
def fresh_database() -> Iterator[str]:
    """A new database with jobnest's tables: its URL. Dropped after, connections and all."""
    name = f"jobnest_test_{uuid.uuid4().hex[:12]}"
    with admin() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        url = sa.make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        SQLStore.upgrade(url)
        yield url
    finally:
        with admin() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def schema_url(server_url: str, schema: str) -> str:
    """``server_url`` with every connection's ``search_path`` set to ``schema``."""
    url = sa.make_url(server_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return url.render_as_string(hide_password=False)


def terminate_connections(url: str) -> int:
    """Cut every connection to the database of ``url``, as a server restart would."""
    with admin() as conn:
        return len(
            conn.execute(
                sa.text(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = :name AND pid <> pg_backend_pid()"
                ),
                {"name": sa.make_url(url).database},
            ).all()
        )


def allow_connections(url: str, allowed: bool) -> None:
    """Open or shut the database of ``url`` to new connections (existing ones stay)."""
    name = sa.make_url(url).database
    with admin() as conn:
        conn.exec_driver_sql(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS {str(allowed).lower()}')

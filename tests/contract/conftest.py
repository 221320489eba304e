"""Fixtures of the store contract suite: a fresh ``store`` for every backend in ``BACKENDS``.

Adding a backend is one more name in ``BACKENDS`` and one branch in ``backend_url``, which
hands out the URL of a fresh database of that backend with jobnest's tables (SQLite makes
them when the file is first opened).

PostgreSQL is the server ``tests/postgres.py`` names (``$JOBNEST_TEST_POSTGRES_URL``); every
test gets a schema of its own there, named in the URL's ``search_path`` and dropped after.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobnest.store.base import Store
from jobnest.store.sql import SQLStore, sqlite_url
from postgres import fresh_schema

BACKENDS = ["sqlite", "postgresql"]


def backend_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database of ``backend``, private to one test."""
    if backend == "sqlite":
        yield sqlite_url(tmp_path / "jobnest.db")
    elif backend == "postgresql":
        with fresh_schema() as url:
            yield url
    else:
        raise ValueError(f"unknown store backend {backend!r}")


def open_store(url: str) -> Store:
    """The store of ``url``."""
    return SQLStore.open(url)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh database, once per backend."""
    yield from backend_url(request.param, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store, once per backend."""
    opened = open_store(store_url)
    yield opened
    opened.close()

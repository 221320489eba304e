"""Fixtures of the store contract suite: a fresh ``store`` for every backend in ``BACKENDS``.

Adding a backend (PostgreSQL) is one more name in ``BACKENDS`` and one branch in
``backend_url``, which hands out the URL of a fresh, empty database of that backend.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobnest.store.base import Store
from jobnest.store.sql import SQLStore, sqlite_url

BACKENDS = ["sqlite"]


def backend_url(backend: str, tmp_path: Path) -> str:
    """The URL of a fresh, empty database of ``backend``, private to one test."""
    if backend == "sqlite":
        return sqlite_url(tmp_path / "jobnest.db")
    raise ValueError(f"unknown store backend {backend!r}")


def open_store(url: str) -> Store:
    """The store of ``url``, its schema migrated to the newest revision."""
    return SQLStore.open(url)


@pytest.fixture(params=BACKENDS)
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of a fresh database, once per backend."""
    return backend_url(request.param, tmp_path)


@pytest.fixture
def store(store_url: str) -> Iterator[Store]:
    """A fresh store, once per backend."""
    opened = open_store(store_url)
    yield opened
    opened.close()

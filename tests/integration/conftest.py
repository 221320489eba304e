"""Fixtures shared by the integration tests: a home with its settings and store, a folder
to work in, and the event loop of the async tests. A test module that needs other settings
(or another store) defines its own ``settings`` (or ``store``); the other fixture here then
builds on it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from jobnest.config import Settings, load_settings
from jobnest.store.sql import SQLStore


@pytest.fixture
def anyio_backend() -> str:
    """The async tests (``pytest.mark.anyio``) run on asyncio."""
    return "asyncio"


@pytest.fixture
def settings(home: Path) -> Settings:
    """The settings of a fresh home: a SQLite store in it, nothing configured."""
    home.mkdir(parents=True)
    return load_settings()


@pytest.fixture
def store(settings: Settings) -> Iterator[SQLStore]:
    """The store ``settings`` name, closed after the test."""
    opened = SQLStore.open(settings.database_url)
    yield opened
    opened.close()


@pytest.fixture
def work(tmp_path: Path, home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The current folder of the test, a fresh one; ``$JOBNEST_HOME`` is ``home``."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder

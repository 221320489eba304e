"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$JOBNEST_HOME`` for the test, with no config file and no database."""
    path = tmp_path / "home"
    monkeypatch.setenv("JOBNEST_HOME", str(path))
    monkeypatch.delenv("JOBNEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("JOBNEST_GRACE", "2")
    return path

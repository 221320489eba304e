"""Fixtures shared by every test folder."""

from __future__ import annotations

from pathlib import Path

import pytest

# A real sshd for the SSH executor's tests: one per session, or one of the test's own.
from ssh_server import fresh_ssh_server, ssh_server  # noqa: F401


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh ``$JOBNEST_HOME`` for the test, with no config file and no database."""
    path = tmp_path / "home"
    monkeypatch.setenv("JOBNEST_HOME", str(path))
    monkeypatch.delenv("JOBNEST_DATABASE_URL", raising=False)
    monkeypatch.setenv("JOBNEST_GRACE", "2")
    return path

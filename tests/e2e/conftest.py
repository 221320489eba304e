"""Fixtures of the end-to-end tests: a working directory and real daemons to start."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_process import Daemon


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


@pytest.fixture
def daemons(tmp_path: Path, workdir: Path) -> Iterator[Callable[..., Daemon]]:
    started: list[Daemon] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Daemon:
        daemon = Daemon(tmp_path / "home", workdir, *args, env=env)
        started.append(daemon)
        return daemon

    yield start
    for daemon in started:
        daemon.close()

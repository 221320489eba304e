"""Settings: the one place that reads the environment and the config file.

Precedence: environment variables, then ``$JOBNEST_HOME/config.toml``, then defaults.

    JOBNEST_HOME            the data directory (default: the platform's user data directory)
    JOBNEST_DATABASE_URL    a SQLAlchemy URL (default: SQLite file ``jobnest.db`` in the home)
    JOBNEST_MAX_PARALLEL    tasks running at once per run (default: 4 × CPU count, at least 8)
    JOBNEST_GRACE           seconds between SIGTERM and SIGKILL on cancel (default 10)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import platformdirs

from jobnest.errors import InvalidInput
from jobnest.model.expand import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TASKS, Limits

CONFIG_FILE = "config.toml"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    max_parallel: int
    grace: float
    limits: Limits

    @property
    def logs(self) -> Path:
        return self.home / "logs"


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read the settings from ``env`` (default: ``os.environ``) and the config file."""
    env = os.environ if env is None else env
    home = Path(env.get("JOBNEST_HOME") or platformdirs.user_data_dir("jobnest")).absolute()
    file = _read_config(home / CONFIG_FILE)
    limits = file.get("limits", {})
    return Settings(
        home=home,
        database_url=env.get("JOBNEST_DATABASE_URL") or file.get("database_url") or _sqlite(home),
        max_parallel=_positive_int(
            env.get("JOBNEST_MAX_PARALLEL")
            or file.get("max_parallel")
            or max(8, 4 * (os.cpu_count() or 1)),
            "max_parallel",
        ),
        grace=float(env.get("JOBNEST_GRACE") or file.get("grace") or 10.0),
        limits=Limits(
            max_depth=_positive_int(limits.get("max_depth", DEFAULT_MAX_DEPTH), "limits.max_depth"),
            max_tasks=_positive_int(limits.get("max_tasks", DEFAULT_MAX_TASKS), "limits.max_tasks"),
        ),
    )


def _sqlite(home: Path) -> str:
    return f"sqlite:///{home / 'jobnest.db'}"


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: invalid config file: {exc}") from None


def _positive_int(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidInput(f"{name} must be a positive whole number, got {value!r}") from None
    if number < 1:
        raise InvalidInput(f"{name} must be a positive whole number, got {value!r}")
    return number

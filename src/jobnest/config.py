"""Settings: the one place that reads the environment and the config file.

Precedence: environment variables, then ``$JOBNEST_HOME/config.toml``, then defaults.

    JOBNEST_HOME            the data directory (default: the platform's user data directory)
    JOBNEST_DATABASE_URL    a SQLAlchemy URL (default: SQLite file ``jobnest.db`` in the home)
    JOBNEST_MAX_PARALLEL    tasks running at once per run (default: 4 × CPU count, at least 8)
    JOBNEST_GRACE           seconds between SIGTERM and SIGKILL on cancel (default 10)
    TZ                      the daemon's time zone for schedules without one (default: the
                            system's, from /etc/localtime or /etc/timezone, else UTC)
    JOBNEST_PASSWORD_HASH   the web password's hash, from ``jobnest passwd --print-hash``
                            (file key ``password_hash``; default: the one ``jobnest passwd``
                            stored in the database, if any)
    JOBNEST_SSH_CONFIG      the OpenSSH client config that names the hosts of ``host:`` tasks
                            (file key ``ssh_config``; default ``~/.ssh/config``)
"""

from __future__ import annotations

import contextlib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import platformdirs

from jobnest.errors import InvalidInput, InvalidSchedule
from jobnest.model import schedule
from jobnest.model.expand import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TASKS, Limits

CONFIG_FILE = "config.toml"


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    max_parallel: int
    grace: float
    limits: Limits
    password_hash: str | None = None  # from the config file or the environment
    ssh_config: Path | None = None  # None: ~/.ssh/config

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
        password_hash=_password_hash(env.get("JOBNEST_PASSWORD_HASH") or file.get("password_hash")),
        ssh_config=_ssh_config(env.get("JOBNEST_SSH_CONFIG") or file.get("ssh_config")),
    )


def _ssh_config(value: object) -> Path | None:
    if value is None:
        return None
    if isinstance(value, str) and value:
        return Path(value).expanduser()
    raise InvalidInput(f"ssh_config must be the path of a file, got {value!r}")


def _sqlite(home: Path) -> str:
    return f"sqlite:///{home / 'jobnest.db'}"


def local_zone(env: Mapping[str, str] | None = None, etc: Path = Path("/etc")) -> ZoneInfo:
    """The daemon's time zone: ``$TZ``, else the system's, else UTC.

    The system's is the zone ``/etc/localtime`` links to, else the one ``/etc/timezone``
    names. ``$TZ`` may be a name (``Europe/Paris``, ``:Europe/Paris``) or a zoneinfo path.

    Raises:
        InvalidInput: ``$TZ`` names no IANA time zone.
    """
    env = os.environ if env is None else env
    name = env.get("TZ", "")
    if not name:
        return _system_zone(etc) or ZoneInfo("UTC")
    found = _named_zone(name)
    if found is None:
        raise InvalidInput(f"TZ={name!r} is not an IANA time zone name such as 'Europe/Paris'")
    return found


def _system_zone(etc: Path) -> ZoneInfo | None:
    names = []
    with contextlib.suppress(OSError):
        names.append(os.readlink(etc / "localtime"))
    with contextlib.suppress(OSError, UnicodeDecodeError):
        names.append((etc / "timezone").read_text(encoding="utf-8"))
    return next(filter(None, map(_named_zone, names)), None)


def _named_zone(text: str) -> ZoneInfo | None:
    """The zone of a name or a zoneinfo path (``/usr/share/zoneinfo/Europe/Paris``), if any."""
    name = text.strip().removeprefix(":")
    _, inside, key = name.rpartition("zoneinfo/")
    try:
        return schedule.zone(key if inside else name)
    except InvalidSchedule:
        return None


def _read_config(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: invalid config file: {exc}") from None


def _password_hash(value: object) -> str | None:
    if value is None or (isinstance(value, str) and value):
        return value
    raise InvalidInput(
        f"password_hash must be the text `jobnest passwd --print-hash` prints, got {value!r}"
    )


def _positive_int(value: object, name: str) -> int:
    try:
        number = int(str(value))
    except ValueError:
        raise InvalidInput(f"{name} must be a positive whole number, got {value!r}") from None
    if number < 1:
        raise InvalidInput(f"{name} must be a positive whole number, got {value!r}")
    return number

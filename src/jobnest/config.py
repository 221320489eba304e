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
    JOBNEST_BASE_URL        the daemon's address as people reach it, for links to run pages in
                            notifications (file key ``base_url``; default: no links)
    JOBNEST_SMTP_PASSWORD   the SMTP password (file key ``[smtp] password``)
    JOBNEST_LEASE_SECONDS   how long a daemon's hold on a run outlasts its last heartbeat before
                            another daemon may adopt the run (file key ``lease_seconds``;
                            default 30; heartbeats come every third of it)
    JOBNEST_LOG_CAP_BYTES   the disk space a task's stdout, and its stderr, may take in bytes
                            (file key ``log_cap_bytes``; default 1 GiB; 0: no cap): beyond it
                            the first and the last half of the cap are kept, the middle goes
    JOBNEST_TEST_SCHEDULER_CLOCK
                            a test hook, never for production: ``ANCHOR,FACTOR`` makes the
                            daemon's scheduler read the time as ANCHOR + (now − ANCHOR) × FACTOR
                            (Unix seconds), so that tests see many cron slots in a few seconds

The ``[smtp]`` section sets up email notifications (none without it):

    host        the mail server (required)
    port        default 465 with ``tls``, 587 with ``starttls``, else 25
    starttls    upgrade the plain connection with STARTTLS (default false)
    tls         TLS from the first byte (default false; not both)
    username    log in with this user (and ``password``); default: no login
    password
    from        the sender address (default ``jobnest@<this host's name>``)
    timeout     seconds to wait for the server at each step (default 30)

The ``[retention]`` section bounds the run history (``jobnest gc``, and ``serve`` hourly):

    max_age_days        ended runs older than this go, logs and all (default 90; 0: keep)
    max_runs_per_job    a job keeps its newest this many runs (default 500; 0: no limit)
"""

from __future__ import annotations

import contextlib
import os
import socket
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

import platformdirs

from jobnest.errors import InvalidInput, InvalidSchedule
from jobnest.model import schedule
from jobnest.model.expand import DEFAULT_MAX_DEPTH, DEFAULT_MAX_TASKS, Limits

CONFIG_FILE = "config.toml"
DEFAULT_LOG_CAP = 2**30  # bytes per stream of an attempt's output
SMTP_KEYS = frozenset(
    ("host", "port", "starttls", "tls", "username", "password", "from", "timeout")
)


@dataclass(frozen=True)
class SMTPSettings:
    """How to reach the mail server that sends notifications (``[smtp]``)."""

    host: str
    port: int
    sender: str  # the file key ``from``
    starttls: bool = False
    tls: bool = False
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0


@dataclass(frozen=True)
class RetentionSettings:
    """How much run history to keep (``[retention]``); None keeps without that limit."""

    max_age_days: float | None = 90.0  # runs that ended longer ago go
    max_runs_per_job: int | None = 500  # beyond a job's newest this many, ended runs go


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    max_parallel: int
    grace: float
    limits: Limits
    password_hash: str | None = None  # from the config file or the environment
    ssh_config: Path | None = None  # None: ~/.ssh/config
    smtp: SMTPSettings | None = None  # None: no email notifications
    base_url: str | None = None  # e.g. "https://jobnest.example.com"; None: no links
    lease_seconds: float = 30.0  # a run's driver renews its hold every third of this
    scheduler_clock: ClockWarp | None = None  # a test hook: None is the wall clock
    pools: Mapping[str, int] = field(default_factory=dict)  # named pools: name -> slots
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    celery_broker: str | None = None  # [celery] broker: amqp:// or redis:// URL of the workers
    log_cap_bytes: int = DEFAULT_LOG_CAP  # per stream of an attempt's output; 0: no cap

    @property
    def logs(self) -> Path:
        return self.home / "logs"


@dataclass(frozen=True)
class ClockWarp:
    """The test hook ``$JOBNEST_TEST_SCHEDULER_CLOCK``: scheduler time that runs ``factor``
    times as fast as the wall clock from ``anchor`` (Unix seconds) on. Daemons given the same
    values agree on the time, as daemons on synchronized clocks do."""

    anchor: float
    factor: float


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
        smtp=_smtp(file.get("smtp"), env.get("JOBNEST_SMTP_PASSWORD")),
        base_url=_base_url(env.get("JOBNEST_BASE_URL") or file.get("base_url")),
        lease_seconds=_lease(env.get("JOBNEST_LEASE_SECONDS") or file.get("lease_seconds") or 30),
        scheduler_clock=_clock_warp(env.get("JOBNEST_TEST_SCHEDULER_CLOCK")),
        pools=_pools(file.get("pools", {})),
        retention=_retention(file.get("retention", {})),
        celery_broker=_broker(env.get("JOBNEST_CELERY_BROKER") or _file_broker(file)),
        log_cap_bytes=_byte_count(
            env.get("JOBNEST_LOG_CAP_BYTES") or file.get("log_cap_bytes", DEFAULT_LOG_CAP),
            "log_cap_bytes",
        ),
    )


def _retention(raw: object) -> RetentionSettings:
    """``[retention]``: ``max_age_days`` and ``max_runs_per_job``; 0 turns a limit off."""
    if not isinstance(raw, dict) or set(raw) - {"max_age_days", "max_runs_per_job"}:
        raise InvalidInput(
            f"[retention] takes max_age_days and max_runs_per_job (0: no limit), got {raw!r}"
        )
    age = _limit(raw.get("max_age_days", 90), "max_age_days", (int, float))
    count = _limit(raw.get("max_runs_per_job", 500), "max_runs_per_job", (int,))
    return RetentionSettings(float(age) or None, int(count) or None)


def _limit(value: object, key: str, kinds: tuple[type[int | float], ...]) -> float:
    """A ``[retention]`` limit: a number (an integer for counts) of at least 0."""
    if isinstance(value, bool) or not isinstance(value, kinds) or value < 0:
        raise InvalidInput(
            f"[retention] {key} must be a {kinds[-1].__name__} of at least 0 (0: no limit), "
            f"got {value!r}"
        )
    return value


def _pools(raw: object) -> dict[str, int]:
    """``[pools]`` of the config file: each name with its number of slots."""
    if not isinstance(raw, dict):
        raise InvalidInput(f"[pools] must be a table of name = slots, got {raw!r}")
    return {str(name): _positive_int(slots, f"pools.{name}") for name, slots in raw.items()}


def _lease(value: object) -> float:
    """Seconds, from 0.3 (tests) to a day."""
    try:
        seconds = float(str(value))
    except ValueError:
        seconds = -1.0
    if isinstance(value, bool) or not 0.3 <= seconds <= 86400:
        raise InvalidInput(f"lease_seconds must be a number of seconds (0.3–86400), got {value!r}")
    return seconds


def _byte_count(value: object, name: str) -> int:
    """A whole number of bytes, 0 or more."""
    try:
        number = -1 if isinstance(value, bool | float) else int(str(value))
    except ValueError:
        number = -1
    if number < 0:
        raise InvalidInput(f"{name} must be a whole number of bytes (0: no cap), got {value!r}")
    return number


def _clock_warp(value: str | None) -> ClockWarp | None:
    if not value:
        return None
    anchor, _, factor = value.partition(",")
    try:
        warp = ClockWarp(float(anchor), float(factor))
    except ValueError:
        warp = None
    if warp is None or warp.factor <= 0:
        raise InvalidInput(
            f"JOBNEST_TEST_SCHEDULER_CLOCK must be ANCHOR,FACTOR (Unix seconds, a speed-up "
            f"above 0), got {value!r}"
        )
    return warp


def _smtp(section: object, password: str | None) -> SMTPSettings | None:
    """The ``[smtp]`` section, checked; None when there is none."""
    if section is None:
        return None
    if not isinstance(section, dict):
        raise InvalidInput(f"[smtp] must be a section (a table), got {section!r}")
    unknown = sorted(set(section) - SMTP_KEYS)
    if unknown:
        raise InvalidInput(f"[smtp] has unknown key {unknown[0]!r} (known: {sorted(SMTP_KEYS)})")
    tls = _flag(section, "tls")
    starttls = _flag(section, "starttls")
    if tls and starttls:
        raise InvalidInput("[smtp] tls and starttls exclude each other: set one of them")
    host = _smtp_text(section, "host")
    if host is None:
        raise InvalidInput("[smtp] needs host: the name or address of the mail server")
    username = _smtp_text(section, "username")
    password = password or _smtp_text(section, "password")
    if (username is None) != (password is None):
        raise InvalidInput(
            "[smtp] username and password go together: set both or neither "
            "(the password may come from JOBNEST_SMTP_PASSWORD)"
        )
    default_port = 465 if tls else 587 if starttls else 25
    return SMTPSettings(
        host=host,
        port=_port(section.get("port", default_port)),
        sender=_smtp_text(section, "from") or f"jobnest@{socket.gethostname()}",
        starttls=starttls,
        tls=tls,
        username=username,
        password=password,
        timeout=_seconds(section.get("timeout", 30.0), "[smtp] timeout"),
    )


def _smtp_text(section: dict[str, Any], key: str) -> str | None:
    """A text value of ``[smtp]``, None when unset: no line breaks or control characters."""
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value:
        raise InvalidInput(f"[smtp] {key} must be non-empty text, got {value!r}")
    if any(ord(ch) < 0x20 or ord(ch) == 0x7F for ch in value):
        raise InvalidInput(f"[smtp] {key} {value!r} contains a line break or control character")
    return value


def _flag(section: dict[str, Any], key: str) -> bool:
    value = section.get(key, False)
    if not isinstance(value, bool):
        raise InvalidInput(f"[smtp] {key} must be true or false, got {value!r}")
    return value


def _port(value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 65535:
        return value
    raise InvalidInput(f"[smtp] port must be a whole number 1–65535, got {value!r}")


def _seconds(value: object, name: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool) and 0 < value <= 3600:
        return float(value)
    raise InvalidInput(f"{name} must be a number of seconds (0–3600], got {value!r}")


def _base_url(value: object) -> str | None:
    """An http(s) URL the links of notifications start with, without a trailing slash."""
    if value is None:
        return None
    parts = urlsplit(value) if isinstance(value, str) else None
    if parts is None or parts.scheme not in ("http", "https") or not parts.netloc:
        raise InvalidInput(f"base_url must be an http:// or https:// URL, got {value!r}")
    if any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in str(value)):
        raise InvalidInput(f"base_url {value!r} contains a space or control character")
    return str(value).rstrip("/")


BROKER_SCHEMES = ("amqp", "pyamqp", "redis", "rediss")


def _file_broker(file: Mapping[str, Any]) -> object:
    """``[celery] broker`` of the config file, refusing a ``celery`` that is not a table."""
    section = file.get("celery", {})
    if not isinstance(section, Mapping):
        raise InvalidInput(f"[celery] must be a table with 'broker', got {section!r}")
    return section.get("broker")


def _broker(value: object) -> str | None:
    """``[celery] broker``: the URL of a RabbitMQ (``amqp://``) or Redis (``redis://``) broker."""
    if value is None:
        return None
    if isinstance(value, str) and value.partition("://")[0] in BROKER_SCHEMES:
        return value
    raise InvalidInput(f"celery broker must be an amqp:// or redis:// URL, got {value!r}")


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

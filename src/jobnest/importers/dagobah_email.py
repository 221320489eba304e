"""dagobah's mail settings (the ``Email:`` section of ``dagobahd.yml``) → jobnest's: pure.

    dagobah (Email:)                    jobnest
    host, port                          [smtp] host, port
    use_tls (STARTTLS on a plain link)  [smtp] starttls (tls = false)
    auth_required, user / auth_username [smtp] username (none when auth_required is false)
    password / auth_password            [smtp] password
    from_address ({HOSTNAME} expanded)  [smtp] from
    recipients                          notify.email of every imported job
    send_on_failure, send_on_success    notify.on of every imported job

dagobah's server-wide recipients become each job's ``notify:``, since jobnest says per job
who hears about it. YAML's ``None`` text (dagobah's templates write ``user: None``) counts
as unset. Mail that dagobah had switched off (``Dagobahd: email: None``) gives the
``[smtp]`` section but no ``notify:``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from jobnest.errors import InvalidInput
from jobnest.importers.smtp import Value
from jobnest.model.job import Notify

EMAIL_FIELDS = frozenset(
    (
        "host", "port", "use_tls", "auth_required", "user", "auth_username", "password",
        "auth_password", "from_address", "recipients", "send_on_success", "send_on_failure",
    )
)  # fmt: skip
IMPLICIT_TLS_PORT = 465


@dataclass(frozen=True)
class EmailSettings:
    """The ``[smtp]`` values, who every job notifies (None: no one), and notes."""

    source: str  # the file they were read from
    smtp: dict[str, Value]
    notify: Notify | None
    notes: tuple[str, ...] = ()


def convert_email(config: object, *, source: str, hostname: str) -> EmailSettings:
    """jobnest's mail settings for a decoded ``dagobahd.yml``.

    Args:
        source: how notes and errors name the file.
        hostname: what dagobah's ``{HOSTNAME}`` in ``from_address`` stands for.

    Raises:
        InvalidInput: the file has no ``Email:`` section.
    """
    if not isinstance(config, Mapping) or not isinstance(config.get("Email"), Mapping):
        raise InvalidInput(f"{source}: no 'Email:' section (dagobah's mail settings) in it")
    reader = _EmailReader(source, config["Email"])
    smtp = reader.smtp(hostname)
    notify = reader.notify() if _mail_enabled(config) else None
    if not _mail_enabled(config):
        reader.note("mail was off in dagobah (Dagobahd: email: None): no job notifies anyone")
    return EmailSettings(source, smtp, notify, tuple(reader.notes))


def _mail_enabled(config: Mapping[str, Any]) -> bool:
    daemon = config.get("Dagobahd")
    return not isinstance(daemon, Mapping) or not _unset(daemon.get("email"))


@dataclass
class _EmailReader:
    source: str
    email: Mapping[str, Any]
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(f"{self.source}: Email: {message}")

    def smtp(self, hostname: str) -> dict[str, Value]:
        for key in sorted(map(str, self.email)):
            if key not in EMAIL_FIELDS:
                self.note(f"unknown setting {key!r} not carried over")
        values: dict[str, Value] = {}
        values.update(self._server())
        values.update(self._login())
        sender = self._text("from_address")
        if sender is not None:
            values["from"] = sender.replace("{HOSTNAME}", hostname)
            if "{HOSTNAME}" in sender:
                self.note(f"from_address {sender!r}: {{HOSTNAME}} written as {hostname!r}")
        return values

    def notify(self) -> Notify | None:
        wanted = {
            "failure": self._flag("send_on_failure", True),
            "success": self._flag("send_on_success", False),
        }
        on = [event for event, yes in wanted.items() if yes]
        email = self._recipients()
        if not email or not on:
            self.note("no recipients or no send_on_* set: no job notifies anyone")
            return None
        return Notify(tuple(email), tuple(on))

    def _server(self) -> dict[str, Value]:
        values: dict[str, Value] = {}
        host = self._text("host")
        if host is None:
            self.note("no host: set 'host' in [smtp] yourself")
        else:
            values["host"] = host
        port = self.email.get("port")
        if isinstance(port, int | str) and not isinstance(port, bool) and str(port).isdecimal():
            values["port"] = int(port)
        elif not _unset(port):
            self.note(f"port {port!r} is not a port number: left out")
        values["starttls"] = self._flag("use_tls", False)
        values["tls"] = False
        if values.get("port") == IMPLICIT_TLS_PORT and values["starttls"]:
            self.note(
                "port 465 usually means TLS from the start: consider tls = true, starttls = false"
            )
        return values

    def _login(self) -> dict[str, Value]:
        username = self._text("auth_username") or self._text("user")
        password = self._text("auth_password") or self._text("password")
        if not self._flag("auth_required", True):
            if username or password:
                self.note("auth_required is false: the username and password are left out")
            return {}
        login: dict[str, Value] = {}
        if username:
            login["username"] = username
        if password:
            login["password"] = password
        return login

    def _recipients(self) -> list[str]:
        value = self.email.get("recipients")
        if _unset(value):
            return []
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            self.note(f"recipients {value!r} is not a list of addresses: left out")
            return []
        good = [item for item in items if isinstance(item, str) and "@" in item]
        for item in items:
            if item not in good:
                self.note(f"recipient {item!r} is not an address: left out")
        return good

    def _text(self, key: str) -> str | None:
        value = self.email.get(key)
        if _unset(value):
            return None
        if isinstance(value, str | int) and not isinstance(value, bool):
            return str(value)
        self.note(f"{key} {value!r} is not text: left out")
        return None

    def _flag(self, key: str, default: bool) -> bool:
        value = self.email.get(key)
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if not _unset(value):
            self.note(f"{key} {value!r} is not true or false: taken as {str(default).lower()}")
        return default


def _unset(value: object) -> bool:
    """None, empty, or YAML's ``None`` text, which dagobah's templates use for "not set"."""
    return value is None or (
        isinstance(value, str) and value.strip().lower() in ("", "none", "null")
    )

"""The ``[smtp]`` section of jobnest's config file (``$JOBNEST_HOME/config.toml``), as TOML.

Keys, in this order: ``host``, ``port``, ``starttls`` (upgrade a plain connection, usually
port 587), ``tls`` (TLS from the first byte, usually port 465), ``username``, ``password``,
``from``. Who gets mail is per job (``notify:``), not here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

SMTP_KEYS = ("host", "port", "starttls", "tls", "username", "password", "from")
Value = str | int | bool


def smtp_section(values: Mapping[str, Value], comments: Sequence[str] = ()) -> str:
    """TOML text: ``comments`` as ``#`` lines, then ``[smtp]`` with ``values`` in key order."""
    lines = [f"# {line}".rstrip() for line in comments]
    lines.append("[smtp]")
    lines += [f"{key} = {_toml(values[key])}" for key in SMTP_KEYS if key in values]
    return "\n".join(lines) + "\n"


def _toml(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + "".join(_escape(ch) for ch in value) + '"'


def _escape(ch: str) -> str:
    if ch in '"\\':
        return "\\" + ch
    if ord(ch) < 0x20 or ord(ch) == 0x7F:
        return f"\\u{ord(ch):04X}"
    return ch

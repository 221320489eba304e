"""The SSH hosts tasks may name: aliases of the user's OpenSSH config, and their host keys.

``host: NAME`` is resolved the way ``ssh NAME`` would be, through the OpenSSH client config
(``~/.ssh/config``, or ``ssh_config`` in jobnest's settings): HostName, User, Port,
IdentityFile, ProxyJump and the rest asyncssh supports. A host's key must already be known:

- ``~/.ssh/known_hosts``, the user's own file (read only), or
- ``$JOBNEST_HOME/known_hosts``, where ``jobnest hosts trust NAME`` records a key the user
  accepted after seeing its fingerprint.

An unknown key is refused; a key that differs from the recorded one (a changed key) is refused
too, and ``trust`` will not replace it: the user removes the old key first, as with ``ssh``.
"""

from __future__ import annotations

import glob
import re
import shlex
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh

from jobnest.config import Settings
from jobnest.errors import HostError, InvalidInput

TRUSTED_FILE = "known_hosts"  # in $JOBNEST_HOME
DEFAULT_PORT = 22
MAX_INCLUDE_DEPTH = 16  # as ssh
KeyStatus = Literal["known", "trusted", "unknown"]
_KEYWORD = re.compile(r"\s*([A-Za-z]+)(?:\s*=\s*|\s+)(.*)")


@dataclass(frozen=True)
class HostEntry:
    """A host alias of the SSH config, as ``ssh ALIAS`` would reach it."""

    alias: str
    hostname: str
    user: str
    port: int
    proxy_jump: str | None
    key: KeyStatus  # in the user's known_hosts, trusted through jobnest, or neither


@dataclass(frozen=True)
class SSHHosts:
    """Where host definitions and host keys live."""

    config: Path  # the OpenSSH client config
    known_hosts: tuple[Path, ...]  # the user's files of known keys (read only)
    trusted: Path  # jobnest's own known_hosts, which `jobnest hosts trust` appends to

    @classmethod
    def from_settings(cls, settings: Settings) -> SSHHosts:
        return cls(
            config=settings.ssh_config or Path("~/.ssh/config").expanduser(),
            known_hosts=(Path("~/.ssh/known_hosts").expanduser(),),
            trusted=settings.home / TRUSTED_FILE,
        )

    def config_paths(self) -> list[str] | None:
        """What asyncssh's ``config=`` takes: the file, or None (load none) if it is missing."""
        return [str(self.config)] if self.config.is_file() else None

    def options(
        self, alias: str, connect_timeout: float | None = None
    ) -> asyncssh.SSHClientConnectionOptions:
        """The config's settings for ``alias``, without loading keys or agents."""
        try:
            return asyncssh.SSHClientConnectionOptions(
                config=self.config_paths(),
                host=alias,
                client_keys=None,
                agent_path=None,
                known_hosts=None,
                connect_timeout=connect_timeout,
            )
        except (asyncssh.ConfigParseError, ValueError) as exc:
            raise InvalidInput(f"{self.config}: cannot read the SSH config: {exc}") from None

    def aliases(self) -> list[str]:
        """The host aliases the config defines (``Host`` names without wildcards), in order."""
        return list(dict.fromkeys(_aliases_in(self.config)))

    def entries(self) -> list[HostEntry]:
        """Every alias of the config, resolved, with the state of its host key."""
        return [self.entry(alias) for alias in self.aliases()]

    def entry(self, alias: str) -> HostEntry:
        options = self.options(alias)
        tunnel = options.tunnel
        return HostEntry(
            alias=alias,
            hostname=options.host,
            user=options.username,
            port=options.port,
            proxy_jump=tunnel if isinstance(tunnel, str) else None,
            key=self.key_status(key_name(options), options.port),
        )

    def host_keys(self) -> asyncssh.SSHKnownHosts:
        """Every recorded host key, from the user's files and jobnest's."""
        return _read_known_hosts([*self.known_hosts, self.trusted])

    def key_status(self, name: str, port: int) -> KeyStatus:
        if _keys_for(_read_known_hosts(self.known_hosts), name, port):
            return "known"
        return "trusted" if _keys_for(_read_known_hosts([self.trusted]), name, port) else "unknown"

    def knows(self, shown: ShownKey) -> bool:
        """Whether the key a host showed is the one recorded for it.

        Raises:
            HostError: another key is recorded for it: the host key changed.
        """
        recorded = _keys_for(self.host_keys(), shown.name, shown.port)
        if any(known.public_data == shown.key.public_data for known in recorded):
            return True
        if recorded:
            raise self.key_refused(shown.alias, shown.name, shown.port)
        return False

    def key_refused(self, alias: str, name: str, port: int) -> HostError:
        """Why the host key of ``alias`` (recorded as ``name`` on ``port``) was refused."""
        pattern = host_pattern(name, port)
        files = [
            str(file)
            for file in (*self.known_hosts, self.trusted)
            if _keys_for(_read_known_hosts([file]), name, port)
        ]
        if files:
            message = (
                f"host {alias!r} ({pattern}) showed a host key that differs from the one "
                f"recorded in {', '.join(files)}: refused. If the change is expected, remove the "
                f"old key (ssh-keygen -R '{pattern}' -f FILE), then run "
                f"`jobnest hosts trust {alias}`"
            )
        else:
            message = (
                f"host {alias!r} ({pattern}) is unknown: its host key is in no known_hosts "
                f"file. Check its fingerprint and accept it with `jobnest hosts trust {alias}`"
            )
        return HostError(alias, "auth_failed", message)

    def unresolved(self, alias: str, hostname: str, exc: OSError) -> HostError:
        """Why ``alias`` could not be reached: its HostName, or an alias unknown to the config."""
        if alias in self.aliases() or hostname != alias:
            message = f"host {alias!r}: cannot resolve {hostname!r}: {describe(exc)}"
        else:
            message = (
                f"unknown host {alias!r}: no 'Host {alias}' in the SSH config "
                f"{str(self.config)!r}, and no machine of that name ({describe(exc)})"
            )
        return HostError(alias, "host_unreachable", message)

    def record(self, shown: ShownKey) -> None:
        """Append the key a host showed to jobnest's known_hosts: from now on it is trusted."""
        self.trusted.parent.mkdir(parents=True, exist_ok=True)
        key = shown.key.export_public_key().decode().strip()
        line = f"{host_pattern(shown.name, shown.port)} {key}\n"
        with self.trusted.open("a", encoding="utf-8") as file:
            file.write(line)
        self.trusted.chmod(0o600)


@dataclass(frozen=True)
class ShownKey:
    """The host key a host showed, and the name and port it is recorded under."""

    alias: str
    name: str
    port: int
    key: asyncssh.SSHKey

    @property
    def fingerprint(self) -> str:
        return f"{self.key.get_algorithm()} {self.key.get_fingerprint('sha256')}"


async def fetch_host_key(hosts: SSHHosts, alias: str, timeout: float = 20.0) -> ShownKey:
    """Connect to ``alias`` only far enough to learn its host key. Raises HostError."""
    options = hosts.options(alias, connect_timeout=timeout)
    try:
        key = await asyncssh.get_server_host_key(
            alias, config=hosts.config_paths(), options=options
        )
    except socket.gaierror as exc:
        raise hosts.unresolved(alias, options.host, exc) from None
    except (OSError, TimeoutError, asyncssh.Error) as exc:
        where = f"{options.host}:{options.port}"
        message = f"cannot reach host {alias!r} ({where}): {describe(exc)}"
        raise HostError(alias, "host_unreachable", message) from None
    if key is None:
        raise HostError(alias, "auth_failed", f"host {alias!r} showed no host key")
    return ShownKey(alias, key_name(options), options.port, key)


def describe(exc: BaseException) -> str:
    """An exception of a connection, in words."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    if isinstance(exc, asyncssh.DisconnectError):
        return exc.reason
    return str(exc) or type(exc).__name__


def key_name(options: asyncssh.SSHClientConnectionOptions) -> str:
    """The name a host's key is recorded under: HostKeyAlias, else HostName."""
    return options.host_key_alias or options.host


def host_pattern(name: str, port: int) -> str:
    """How known_hosts writes a host: ``name``, or ``[name]:port`` off the default port."""
    return name if port == DEFAULT_PORT else f"[{name}]:{port}"


def _read_known_hosts(paths: list[Path] | tuple[Path, ...]) -> asyncssh.SSHKnownHosts:
    text = "".join(path.read_text(encoding="utf-8") for path in paths if path.is_file())
    try:
        return asyncssh.import_known_hosts(text)
    except (ValueError, asyncssh.KeyImportError) as exc:
        files = ", ".join(str(path) for path in paths)
        raise InvalidInput(f"cannot read the known hosts in {files}: {exc}") from None


def _keys_for(known: asyncssh.SSHKnownHosts, name: str, port: int) -> list[asyncssh.SSHKey]:
    """The host keys recorded for ``name`` on ``port`` (or, as ssh does, on any port)."""
    return list(known.match(name, "", None if port == DEFAULT_PORT else port)[0])


def _aliases_in(path: Path, depth: int = 0) -> list[str]:
    """The ``Host`` names without wildcards of a config file, and of those it includes, in the
    order ssh reads them."""
    if not path.is_file() or depth > MAX_INCLUDE_DEPTH:
        return []
    names: list[str] = []
    for keyword, args in _lines(path):
        if keyword == "host":
            names.extend(arg for arg in args if not any(c in arg for c in "*?!"))
            continue
        for pattern in args:
            for included in _included(pattern):
                names.extend(_aliases_in(included, depth + 1))
    return names


def _included(pattern: str) -> list[Path]:
    base = Path(pattern).expanduser()
    if not base.is_absolute():
        base = Path("~/.ssh").expanduser() / base  # as ssh resolves a user config's Include
    return [Path(match) for match in sorted(glob.glob(str(base)))]


def _lines(path: Path) -> list[tuple[str, list[str]]]:
    """The ``Host`` and ``Include`` lines of a config file, as (keyword, arguments)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot read the SSH config: {exc}") from None
    lines = []
    for line in text.splitlines():
        found = _KEYWORD.match(line)
        if found and found[1].lower() in ("host", "include"):
            try:
                lines.append((found[1].lower(), shlex.split(found[2], comments=True)))
            except ValueError as exc:
                raise InvalidInput(f"{path}: cannot read the line {line!r}: {exc}") from None
    return lines

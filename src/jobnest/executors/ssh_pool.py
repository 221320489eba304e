"""Connections to SSH hosts, shared by the attempts that run there; why a connection failed.

Attempts on one host share a connection, one channel each; a connection carries at most
``max_channels`` of them (sshd's ``MaxSessions`` is 10 by default), and more attempts open more
connections. Connecting to a host is done by one attempt at a time, so that ten tasks starting
together make one connection. A connection that died is dropped and the next lease connects
again. Keepalives notice a dead peer within ``keepalive_interval × keepalive_count_max`` seconds.

A failure to connect is a ``HostError`` whose ``reason`` says whether retrying may help:
``host_unreachable`` (it may) or ``auth_failed`` (it will not: keys refused, a host key that is
unknown or changed, a key file that cannot be read).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass

import asyncssh

from jobnest.errors import HostError, InvalidInput
from jobnest.executors.ssh_hosts import SSHHosts, describe, key_name

DEFAULT_CONNECT_TIMEOUT = 20.0
DEFAULT_KEEPALIVE_INTERVAL = 15.0
DEFAULT_KEEPALIVE_COUNT_MAX = 3
DEFAULT_MAX_CHANNELS = 8


@dataclass
class Lease:
    """A pooled connection and the channels leased on it; ``release()`` gives one back."""

    connection: asyncssh.SSHClientConnection
    users: int = 1

    def release(self) -> None:
        self.users -= 1


class SSHConnections:
    """A small pool of connections per host alias."""

    def __init__(
        self,
        hosts: SSHHosts,
        *,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        keepalive_interval: float = DEFAULT_KEEPALIVE_INTERVAL,
        keepalive_count_max: int = DEFAULT_KEEPALIVE_COUNT_MAX,
        max_channels: int = DEFAULT_MAX_CHANNELS,
    ) -> None:
        self.hosts = hosts
        self.connect_timeout = connect_timeout
        self.keepalive_interval = keepalive_interval
        self.keepalive_count_max = keepalive_count_max
        self.max_channels = max_channels
        self._leases: dict[str, list[Lease]] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    async def lease(self, alias: str) -> Lease:
        """A connection to ``alias`` with room for one more channel. Raises HostError."""
        async with self._locks.setdefault(alias, asyncio.Lock()):
            leases = self._leases.setdefault(alias, [])
            leases[:] = [lease for lease in leases if not lease.connection.is_closed()]
            for lease in leases:
                if lease.users < self.max_channels:
                    lease.users += 1
                    return lease
            lease = Lease(await self.connect(alias))
            leases.append(lease)
            return lease

    async def run(self, alias: str, command: str) -> int | None:
        """Run a short command on ``alias``; its exit status, or None if that cannot be done."""
        try:
            lease = await self.lease(alias)
        except HostError:
            return None
        try:
            result = await asyncio.wait_for(
                lease.connection.run(command, check=False), self.connect_timeout
            )
        except (OSError, TimeoutError, asyncssh.Error):
            return None
        finally:
            lease.release()
        return result.exit_status

    async def connect(self, alias: str) -> asyncssh.SSHClientConnection:
        """A new connection to ``alias``, through its ProxyJump hosts. Raises HostError."""
        options = self._options(alias)
        return await self._chain(alias, options, await self._jump(options.tunnel))

    async def _jump(self, hops: object) -> asyncssh.SSHClientConnection | None:
        """A connection through ProxyJump's ``[user@]host[:port],...``, each hop's host key
        checked like the target's (asyncssh alone would check them in ~/.ssh only)."""
        if not isinstance(hops, str) or hops.lower() == "none":
            return None
        jump = None
        for hop in hops.split(","):
            user, _, address = hop.rpartition("@")
            host, _, port = address.partition(":")
            options = self._options(host, username=user, port=int(port) if port.isdigit() else 0)
            jump = await self._chain(host, options, jump)
        return jump

    async def _chain(
        self,
        host: str,
        options: asyncssh.SSHClientConnectionOptions,
        jump: asyncssh.SSHClientConnection | None,
    ) -> asyncssh.SSHClientConnection:
        """Connect to ``host`` through ``jump``, which closes with the new connection."""
        try:
            connection = await self._open(host, options, jump)
        except HostError:
            if jump is not None:
                jump.close()
            raise
        connection.set_tunnel(jump)
        return connection

    async def _open(
        self,
        alias: str,
        options: asyncssh.SSHClientConnectionOptions,
        jump: asyncssh.SSHClientConnection | None,
    ) -> asyncssh.SSHClientConnection:
        """One SSH connection. Raises HostError saying what failed."""
        config = self.hosts.config_paths()
        try:
            return await asyncssh.connect(
                alias, options.port, options=options, tunnel=jump, config=config
            )
        except asyncssh.HostKeyNotVerifiable:
            raise self.hosts.key_refused(alias, key_name(options), options.port) from None
        except asyncssh.PermissionDenied as exc:
            where = f"{options.username}@{options.host}:{options.port}"
            message = f"host {alias!r} ({where}) refused our keys: {exc.reason}"
            raise HostError(alias, "auth_failed", message) from None
        except socket.gaierror as exc:
            raise self.hosts.unresolved(alias, options.host, exc) from None
        except (OSError, TimeoutError, asyncssh.Error) as exc:
            where = f"{options.host}:{options.port}"
            message = f"cannot reach host {alias!r} ({where}): {describe(exc)}"
            raise HostError(alias, "host_unreachable", message) from None

    async def close(self) -> None:
        """Close every connection."""
        connections = [lease.connection for leases in self._leases.values() for lease in leases]
        self._leases.clear()
        for connection in connections:
            connection.close()
        for connection in connections:
            await connection.wait_closed()

    def _options(
        self, alias: str, username: str = "", port: int = 0
    ) -> asyncssh.SSHClientConnectionOptions:
        """The config's settings for ``alias`` with ours; reading its keys. Raises HostError."""
        try:
            return asyncssh.SSHClientConnectionOptions(
                config=self.hosts.config_paths(),
                host=alias,
                username=username or (),
                port=port or (),
                known_hosts=self.hosts.host_keys(),
                connect_timeout=self.connect_timeout,
                keepalive_interval=self.keepalive_interval,
                keepalive_count_max=self.keepalive_count_max,
            )
        except (OSError, ValueError, asyncssh.Error, InvalidInput) as exc:
            message = f"host {alias!r}: cannot load its SSH settings or keys: {describe(exc)}"
            raise HostError(alias, "auth_failed", message) from None

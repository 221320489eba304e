"""Sends each attempt to the executor for where it runs: ``spec.host`` set → SSH, else local."""

from __future__ import annotations

from jobnest.config import Settings
from jobnest.executors.base import AttemptSpec, Executor, Handle
from jobnest.executors.local import LocalExecutor
from jobnest.executors.ssh import SSHExecutor


class RoutingExecutor(Executor):
    """One executor in front of the local one and the SSH one."""

    def __init__(self, local: Executor, ssh: Executor) -> None:
        self.local = local
        self.ssh = ssh

    async def start(self, spec: AttemptSpec) -> Handle:
        executor = self.local if spec.host is None else self.ssh
        return await executor.start(spec)

    def child_pids(self) -> frozenset[int]:
        return self.local.child_pids()  # remote processes are nobody's children here

    async def close(self) -> None:
        try:
            await self.ssh.close()
        finally:
            await self.local.close()


def default_executor(settings: Settings) -> RoutingExecutor:
    """Local processes, and SSH hosts from the user's SSH config, with the settings' grace."""
    return RoutingExecutor(LocalExecutor(grace=settings.grace), SSHExecutor.from_settings(settings))

"""Sends each attempt to the executor for where it runs: ``spec.queue`` set → Celery,
``spec.host`` set → SSH, else local."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from jobnest.config import Settings
from jobnest.executors.base import AttemptSpec, Executor, Handle, failed_start
from jobnest.executors.local import LocalExecutor

NO_BROKER = (
    "the task names queue {queue!r} but no Celery broker is configured: set [celery] broker "
    "in the config file (and pip install 'jobnest[celery]')"
)


class RoutingExecutor(Executor):
    """One executor in front of the local one, the SSH one and, if configured, Celery's.

    The SSH executor is made by ``ssh`` when a task first names a host: most runs have
    none, and SSH's library takes a tenth of a second to load.
    """

    def __init__(
        self, local: Executor, ssh: Callable[[], Executor], celery: Executor | None = None
    ) -> None:
        self.local = local
        self.celery = celery
        self._make_ssh = ssh
        self._ssh: Executor | None = None

    @property
    def ssh(self) -> Executor:
        if self._ssh is None:
            self._ssh = self._make_ssh()
        return self._ssh

    async def start(self, spec: AttemptSpec) -> Handle:
        if spec.queue is not None:
            return await self._start_queued(spec)
        executor = self.local if spec.host is None else self.ssh
        return await executor.start(spec)

    async def _start_queued(self, spec: AttemptSpec) -> Handle:
        if self.celery is None:
            return failed_start(spec, datetime.now(UTC), NO_BROKER.format(queue=spec.queue))
        return await self.celery.start(spec)

    def child_pids(self) -> frozenset[int]:
        return self.local.child_pids()  # remote processes are nobody's children here

    async def close(self) -> None:
        try:
            if self.celery is not None:
                await self.celery.close()
            if self._ssh is not None:
                await self._ssh.close()
        finally:
            await self.local.close()


def default_executor(settings: Settings) -> RoutingExecutor:
    """Local processes, SSH hosts from the user's SSH config and, with ``[celery] broker``
    set, Celery workers, with the settings' grace."""
    local = LocalExecutor(grace=settings.grace)
    return RoutingExecutor(local, lambda: ssh_executor(settings), celery_executor(settings))


def ssh_executor(settings: Settings) -> Executor:
    """The SSH executor, hosts read from the user's SSH config."""
    from jobnest.executors.ssh import SSHExecutor  # asyncssh loads only when a task needs it

    return SSHExecutor.from_settings(settings)


def celery_executor(settings: Settings) -> Executor | None:
    """The Celery executor on the configured broker and database; None without a broker."""
    if settings.celery_broker is None:
        return None
    from jobnest.executors.celery import CeleryExecutor, make_app  # celery is an optional extra
    from jobnest.store.sql import SQLStore

    store = SQLStore.open(settings.database_url)
    app = make_app(settings.celery_broker)
    return CeleryExecutor(store, app, grace=settings.grace, owns_store=True)

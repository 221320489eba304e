"""Sends each attempt to the executor for where it runs: ``spec.queue`` set → Celery,
``spec.host`` set → SSH, else local."""

from __future__ import annotations

from contextlib import suppress
from datetime import UTC, datetime

from jobnest.config import Settings
from jobnest.executors.base import STDERR, AttemptSpec, Executor, Handle, Outcome
from jobnest.executors.local import FailedStart, LocalExecutor
from jobnest.executors.ssh import SSHExecutor

NO_BROKER = (
    "the task names queue {queue!r} but no Celery broker is configured: set [celery] broker "
    "in the config file (and pip install 'jobnest[celery]')"
)


class RoutingExecutor(Executor):
    """One executor in front of the local one, the SSH one and, if configured, Celery's."""

    def __init__(self, local: Executor, ssh: Executor, celery: Executor | None = None) -> None:
        self.local = local
        self.ssh = ssh
        self.celery = celery

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
            await self.ssh.close()
        finally:
            await self.local.close()


def default_executor(settings: Settings) -> RoutingExecutor:
    """Local processes, SSH hosts from the user's SSH config and, with ``[celery] broker``
    set, Celery workers, with the settings' grace."""
    local = LocalExecutor(grace=settings.grace)
    ssh = SSHExecutor.from_settings(settings)
    return RoutingExecutor(local, ssh, celery_executor(settings))


def celery_executor(settings: Settings) -> Executor | None:
    """The Celery executor on the configured broker and database; None without a broker."""
    if settings.celery_broker is None:
        return None
    from jobnest.executors.celery import CeleryExecutor, make_app  # celery is an optional extra
    from jobnest.store.sql import SQLStore

    store = SQLStore.open(settings.database_url)
    app = make_app(settings.celery_broker)
    return CeleryExecutor(store, app, grace=settings.grace, owns_store=True)


def failed_start(spec: AttemptSpec, started_at: datetime, why: str) -> Handle:
    """An attempt refused before it started: ``why`` goes to its stderr file."""
    stderr = spec.log_dir / STDERR
    with suppress(OSError):
        spec.log_dir.mkdir(parents=True, exist_ok=True)
        with open(stderr, "a", encoding="utf-8") as file:
            file.write(f"jobnest: {why}\n")
    size = stderr.stat().st_size if stderr.exists() else 0
    outcome = Outcome(started_at, datetime.now(UTC), reason="error", stderr_size=size)
    return FailedStart(outcome)

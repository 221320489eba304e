"""``jobnest serve``: the scheduler, the runner and the web server in one event loop.

Start-up, in order: refuse an unsafe bind, take the database's daemon lock, become the
child subreaper, open the store, reconcile runs a previous daemon left behind, load job
files, then serve HTTP while the scheduler ticks. SIGTERM or SIGINT stops it cleanly:
the web server closes, runs still in progress are stopped (their tasks get SIGTERM, then
SIGKILL after the grace period) and left failed, ready to retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
from collections.abc import Generator, Sequence
from datetime import timedelta

import uvicorn

from jobnest import process, recovery
from jobnest.config import Settings
from jobnest.daemon import Daemon
from jobnest.errors import InvalidInput
from jobnest.runner import utc_now
from jobnest.scheduler import Scheduler
from jobnest.store.base import Store
from jobnest.web.app import create_app
from jobnest.web.auth import install_auth

log = logging.getLogger(__name__)
MAX_SLEEP = timedelta(seconds=30)
REAP_SECONDS = 5.0


def check_bind(host: str, has_password: bool, force: bool) -> None:
    """Refuse a non-loopback address when no password protects the daemon."""
    if has_password or force or _is_loopback(host):
        return
    raise InvalidInput(
        f"refusing to serve on {host!r} without a password: anyone who reaches it could run "
        "commands. Set one with `jobnest passwd`, bind to 127.0.0.1, or pass --insecure-bind"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Server(uvicorn.Server):
    """uvicorn without its own signal handling: the daemon stops it itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(
    store: Store, settings: Settings, *, host: str, port: int, jobs: Sequence[str]
) -> None:
    """Run the daemon until SIGTERM or SIGINT."""
    process.become_subreaper()
    recovery.reconcile_stale(store, settings)
    daemon = Daemon(store, settings)
    if jobs:
        daemon.load_files(jobs)
    app = create_app(daemon)
    install_auth(app, store, settings)
    server = _Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off"))
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, _request_exit, server, daemon)
    background = [
        asyncio.create_task(_schedule(daemon, _scheduler(daemon))),
        asyncio.create_task(_reap(daemon)),
    ]
    print(f"jobnest is serving http://{_display(host)}:{port}/", flush=True)
    try:
        await server.serve()
    finally:
        for task in background:
            task.cancel()
        await daemon.close()


def _scheduler(daemon: Daemon) -> Scheduler:
    return Scheduler(daemon.runner, workdir=daemon.workdir, zone=daemon.zone)


def _request_exit(server: uvicorn.Server, daemon: Daemon) -> None:
    """Stop serving; end the event streams first, or an open one would hold the server."""
    daemon.hub.close()
    server.should_exit = True


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


async def _schedule(daemon: Daemon, scheduler: Scheduler) -> None:
    """Tick at every due instant (at least every 30 s) and drive the runs it creates."""
    while True:
        now = utc_now()
        try:
            for record in scheduler.tick(now):
                daemon.drive(record)
        except Exception:
            log.exception("scheduler tick at %s failed; retrying at the next tick", now)
        wake = scheduler.next_wakeup(utc_now())
        limit = utc_now() + MAX_SLEEP
        delay = ((min(wake, limit) if wake else limit) - utc_now()).total_seconds()
        await asyncio.sleep(max(0.05, delay))


async def _reap(daemon: Daemon) -> None:
    """Reap orphaned descendants of tasks that were re-parented to the daemon."""
    while True:
        await asyncio.sleep(REAP_SECONDS)
        process.reap_orphans(daemon.runner.executor.child_pids())

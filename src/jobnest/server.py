"""``jobnest serve``: the scheduler, the runner and the web server in one event loop.

Start-up, in order: refuse an unsafe bind, take the database's daemon lock (SQLite only),
become the child subreaper, open the store, reconcile runs a previous daemon left behind,
load job files, then serve HTTP while the scheduler ticks. SIGTERM or SIGINT stops it
cleanly: the web server closes, runs still in progress are stopped (their tasks get
SIGTERM, then SIGKILL after the grace period) and left failed, ready to retry.

Several daemons may share one PostgreSQL database: the store's unique keys give each
scheduled instant one run, whoever ticks first; a periodic sweep adopts the runs of a
daemon that died (see ``_adopt``). A tick or sweep that fails (the database is away) is
logged and tried again, a failed tick with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import signal
import time
from collections.abc import Generator, Sequence
from datetime import UTC, datetime, timedelta

import uvicorn

from jobnest import process, recovery
from jobnest.config import ClockWarp, Settings
from jobnest.daemon import Daemon
from jobnest.errors import InvalidInput, StoreError
from jobnest.runner import utc_now
from jobnest.scheduler import Scheduler
from jobnest.store.base import Store
from jobnest.web.app import create_app
from jobnest.web.auth import install_auth

log = logging.getLogger(__name__)
MAX_SLEEP = timedelta(seconds=30)
REAP_SECONDS = 5.0
RETAIN_FIRST = 60.0  # seconds after start-up before the first retention sweep
RETAIN_SECONDS = 3600.0


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
    clock = SchedulerClock(settings.scheduler_clock)
    background = [
        asyncio.create_task(_schedule(daemon, daemon.scheduler, clock)),
        asyncio.create_task(_retain(daemon)),
        asyncio.create_task(_adopt(daemon, settings.lease_seconds)),
        asyncio.create_task(_reap(daemon)),
        asyncio.create_task(daemon.outbox.run_forever()),
    ]
    print(f"jobnest is serving http://{_display(host)}:{port}/", flush=True)
    try:
        await server.serve()
    finally:
        for task in background:
            task.cancel()
        await daemon.close()


def _request_exit(server: uvicorn.Server, daemon: Daemon) -> None:
    """Stop serving; end the event streams first, or an open one would hold the server."""
    daemon.hub.close()
    server.should_exit = True


def _display(host: str) -> str:
    return f"[{host}]" if ":" in host else host


class SchedulerClock:
    """The scheduler's time: the wall clock, or the faster one of the test hook."""

    def __init__(self, warp: ClockWarp | None = None) -> None:
        self.warp = warp

    def now(self) -> datetime:
        wall = utc_now()
        if self.warp is None:
            return wall
        anchor = self.warp.anchor
        return datetime.fromtimestamp(anchor + (wall.timestamp() - anchor) * self.warp.factor, UTC)

    def seconds(self, span: timedelta) -> float:
        """How many seconds of the wall clock ``span`` of scheduler time lasts."""
        return span.total_seconds() / (self.warp.factor if self.warp else 1.0)


async def _schedule(daemon: Daemon, scheduler: Scheduler, clock: SchedulerClock) -> None:
    """Tick at every due instant (at least every 30 s) and drive the runs it creates.

    A tick that fails is tried again after 1 s, then 2, 4, ... up to 30 s.
    """
    failures = 0
    while True:
        try:
            delay = clock.seconds(_tick(daemon, scheduler, clock))
            failures = 0
        except Exception:
            delay = min(2.0**failures, MAX_SLEEP.total_seconds())
            failures += 1
            log.exception("scheduler tick failed; trying again in %.0f s", delay)
        await asyncio.sleep(max(0.05, delay))


def _tick(daemon: Daemon, scheduler: Scheduler, clock: SchedulerClock) -> timedelta:
    """Tick, drive the runs created; return the scheduler time until the next tick is due."""
    ticked = clock.now()
    created = scheduler.tick(ticked)
    for record in created:
        daemon.drive(record)
    daemon.metrics.observe_tick(
        ticked, [(run.scheduled_for, run.created_at) for run in created if run.scheduled_for]
    )
    now = clock.now()
    wake = scheduler.next_wakeup(now)
    limit = now + MAX_SLEEP
    return (min(wake, limit) if wake else limit) - clock.now()


async def _adopt(daemon: Daemon, lease: float) -> None:
    """Every third of the lease, adopt the runs whose driver died (``Daemon.adopt_orphans``).

    Only once this daemon has reached the database for a whole lease: after an outage every
    driver's heartbeat is old, and the drivers still alive need up to a third of a lease to
    renew theirs. A run is adopted at most about 1⅓ leases after its driver's last heartbeat.
    """
    reachable_since: float | None = None
    while True:
        await asyncio.sleep(lease / 3)
        try:
            if reachable_since is None:
                daemon.store.running_runs()  # the database answers: start counting
                reachable_since = time.monotonic()
            elif time.monotonic() - reachable_since >= lease:
                daemon.adopt_orphans()
        except StoreError as error:
            reachable_since = None
            log.warning("cannot look for runs to adopt: %s", error)
        except Exception:
            log.exception("looking for runs to adopt failed")


async def _retain(daemon: Daemon) -> None:
    """Sweep run history by the retention policy: soon after start-up, then hourly."""
    while True:
        await asyncio.sleep(RETAIN_FIRST)
        try:
            swept = daemon.sweep()
            if swept.runs:
                removed, freed = len(swept.runs), swept.freed_bytes
                log.info("retention: removed %d runs, %d bytes of logs", removed, freed)
        except Exception:
            log.exception("the retention sweep failed; trying again in an hour")
        await asyncio.sleep(RETAIN_SECONDS - RETAIN_FIRST)


async def _reap(daemon: Daemon) -> None:
    """Reap orphaned descendants of tasks that were re-parented to the daemon."""
    while True:
        await asyncio.sleep(REAP_SECONDS)
        process.reap_orphans(daemon.runner.executor.child_pids())

"""``jobnest serve`` and ``worker``: the long-running processes, the daemon and its workers."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import click

from jobnest import credentials, process
from jobnest.cli.edge import Context, pass_context
from jobnest.errors import InvalidInput


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--jobs", "paths", multiple=True, help="Job files or folders to load at start.")
@click.option(
    "--insecure-bind", is_flag=True, help="Allow a non-loopback address without a password."
)
@pass_context
def serve(ctx: Context, host: str, port: int, paths: Sequence[str], insecure_bind: bool) -> None:
    """The daemon: scheduler, REST API and web UI in one process."""
    from jobnest import server  # the web stack loads only for the daemon

    lock_path = process.sqlite_lock_path(ctx.settings.database_url)
    lock = process.DaemonLock(lock_path) if lock_path else None
    server.check_bind(
        host, credentials.password_hash(ctx.store, ctx.settings) is not None, insecure_bind
    )
    if lock is not None:
        lock.acquire()
    try:
        asyncio.run(server.serve(ctx.store, ctx.settings, host=host, port=port, jobs=paths))
    finally:
        if lock is not None:
            lock.release()


@click.command()
@click.option("--queue", required=True, help="The queue whose tasks this worker runs.")
@click.option("--broker", default=None, help="amqp:// or redis:// URL (default: [celery] broker).")
@click.option("--concurrency", default=1, show_default=True, type=click.IntRange(1, 1000))
@click.option(
    "--heartbeat",
    default=2.0,
    show_default=True,
    type=click.FloatRange(0.05, 3600),
    help="Seconds between the heartbeats of a running attempt; 3 missed ones lose it.",
)
@pass_context
def worker(
    ctx: Context, queue: str, broker: str | None, concurrency: int, heartbeat: float
) -> None:
    """Run a Celery worker for the tasks of QUEUE (needs the same database as the daemon)."""
    url = broker or ctx.settings.celery_broker
    if url is None:
        raise InvalidInput("no Celery broker: pass --broker or set [celery] broker in the config")
    if not queue.strip():
        raise InvalidInput(f"--queue must be a queue name, got {queue!r}")
    try:
        from jobnest.executors import celery
    except ImportError as exc:
        raise InvalidInput(
            f"Celery is not installed ({exc}): pip install 'jobnest[celery]'"
        ) from None
    app = celery.worker_app(url, ctx.store, heartbeat=heartbeat)
    celery.run_worker(app, queue, concurrency=concurrency)

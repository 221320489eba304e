"""``jobnest runs`` and ``logs``: what the store recorded of past runs, and their output."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from jobnest import logs
from jobnest.cli.edge import Context, pass_context
from jobnest.errors import NotFound
from jobnest.store.base import RunRecord


@click.command()
@click.option("--job", "name", default=None, help="Only runs of this job.")
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 1000))
@click.option("--json", "as_json", is_flag=True)
@pass_context
def runs(ctx: Context, name: str | None, limit: int, as_json: bool) -> None:
    """Run history, newest first."""
    records = ctx.store.list_runs(name, limit=limit)
    if as_json:
        click.echo(json.dumps([_run_json(r) for r in records]))
        return
    for r in records:
        ended = f"{r.finished_at:%Y-%m-%d %H:%M:%S}Z" if r.finished_at else "-"
        started = f"{r.created_at:%Y-%m-%d %H:%M:%S}Z"
        click.echo(f"{r.id:>6}  {r.status:<10} {r.job}  started {started}  ended {ended}")


@click.command(name="logs")
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr instead of stdout.")
@click.option("--attempt", type=int, default=None, help="Which attempt (default: the latest).")
@click.option("--head", type=click.IntRange(min=0), default=None, help="Only the first N lines.")
@click.option("--tail", type=click.IntRange(min=0), default=None, help="Only the last N lines.")
@pass_context
def logs_command(
    ctx: Context,
    run_id: int,
    task: str,
    use_stderr: bool,
    attempt: int | None,
    head: int | None,
    tail: int | None,
) -> None:
    """Print a task's output (stdout by default)."""
    path = _log_file(ctx, run_id, task, attempt, "stderr" if use_stderr else "stdout")
    out = sys.stdout.buffer
    if head is not None:
        out.write(logs.head(path, head))
    elif tail is not None:
        out.write(logs.tail(path, tail))
    else:
        for chunk in logs.read_range(path):
            out.write(chunk)
    out.flush()


def _log_file(ctx: Context, run_id: int, task: str, number: int | None, stream: str) -> Path:
    attempts = ctx.store.attempts(run_id, task)
    if not attempts:
        ctx.store.get_run(run_id)
        raise NotFound(f"run {run_id} has no attempts of task {task!r}")
    chosen = (
        attempts[-1] if number is None else next((a for a in attempts if a.number == number), None)
    )
    if chosen is None:
        raise NotFound(f"task {task!r} of run {run_id} has no attempt {number}")
    return ctx.settings.home / chosen.log_dir / stream


def _run_json(r: RunRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "status": r.status,
        "trigger": r.trigger,
        "created_at": r.created_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
    }

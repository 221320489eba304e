"""``jobnest run``, ``retry`` and ``fix``: a run in the foreground, and its second chances."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

import click

from jobnest import recovery
from jobnest.cli.edge import EXIT_FAILED, Context, pass_context, pick
from jobnest.errors import InvalidInput
from jobnest.files import load_jobs
from jobnest.model.changes import JobDiff
from jobnest.model.job import Job, parse_job
from jobnest.progress import Progress
from jobnest.runner import Runner, utc_now
from jobnest.store.base import RunRecord, Store


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--job", "name", required=True, help="The job to run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary at the end.")
@pass_context
def run(ctx: Context, paths: Sequence[str], name: str, as_json: bool) -> None:
    """Load job files and run the job NAME in the foreground."""
    jobs = load_jobs(paths)
    job = pick(jobs, name)
    runner = ctx.runner(Progress(sys.stderr if as_json else sys.stdout))
    recovery.reconcile_stale(ctx.store, ctx.settings, job=name)
    record = runner.start(job, jobs.get, workdir=os.getcwd())
    _finish(ctx, runner, record, as_json)


@click.command()
@click.argument("run_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary at the end.")
@click.option(
    "--fix",
    "fixes",
    nargs=2,
    multiple=True,
    metavar="TASK COMMAND",
    help="Replace a failed task's command in this run before retrying (recorded).",
)
@click.option(
    "--current",
    is_flag=True,
    help="Run what has not succeeded with the current definitions (shown first), "
    "not the run's frozen plan.",
)
@click.option(
    "--from",
    "sources",
    multiple=True,
    metavar="PATH",
    help="With --current: the job files to take the definitions from (default: the daemon's).",
)
@pass_context
def retry(
    ctx: Context,
    run_id: int,
    as_json: bool,
    fixes: Sequence[tuple[str, str]],
    current: bool,
    sources: Sequence[str],
) -> None:
    """Retry a failed run from its failures, in the same plan (or, --current, a new one)."""
    if sources and not current:
        raise InvalidInput("--from is for --current: give --current too")
    if fixes and current:
        raise InvalidInput("--fix is for the frozen plan; with --current edit the job instead")
    runner = ctx.runner(Progress(sys.stderr if as_json else sys.stdout))
    recovery.reconcile_stale(ctx.store, ctx.settings, job=ctx.store.get_run(run_id).job)
    for path, command in fixes:
        runner.store.fix_command(run_id, path, command, now=runner.clock())
    if current:
        record = _retry_current(ctx, runner, run_id, sources, err=as_json)
    else:
        record = runner.begin_retry(run_id)
    _finish(ctx, runner, record, as_json)


@click.command()
@click.argument("run_id", type=int)
@click.argument("task")
@click.argument("command")
@pass_context
def fix(ctx: Context, run_id: int, task: str, command: str) -> None:
    """Replace TASK's command in a failed run (then `jobnest retry RUN_ID`)."""
    change = ctx.store.fix_command(run_id, task, command, now=utc_now())
    click.echo(f"run {run_id}: {task}: {change.old!r} → {change.new!r}")


def _retry_current(
    ctx: Context, runner: Runner, run_id: int, sources: Sequence[str], *, err: bool
) -> RunRecord:
    """Show what changed since the run's snapshot, then retry in the current plan."""
    from jobnest import replan

    jobs = load_jobs(sources) if sources else _stored_jobs(ctx.store)
    for line in _change_lines(replan.changes(runner, run_id, jobs)):
        click.echo(line, err=err)
    return replan.retry_current(runner, run_id, jobs)


def _stored_jobs(store: Store) -> dict[str, Job]:
    return {name: parse_job(definition) for name, definition in store.list_jobs().items()}


def _change_lines(diffs: Sequence[JobDiff]) -> list[str]:
    """The per-job diff as people read it: a line per job, then one per task."""
    if not diffs:
        return ["no job changed since the run's snapshot"]
    lines = []
    for job in diffs:
        lines.append(f"job {job.job!r} {job.change}")
        lines += [f"  {field.name}: {field.before!r} → {field.after!r}" for field in job.fields]
        for task in job.tasks:
            shown = ", ".join(f"{f.name}: {f.before!r} → {f.after!r}" for f in task.fields)
            lines.append(f"  task {task.name!r} {task.change}" + (f": {shown}" if shown else ""))
    return lines


def _finish(ctx: Context, runner: Runner, record: RunRecord, as_json: bool) -> None:
    final = asyncio.run(_drive(runner, record.id))
    if as_json:
        click.echo(json.dumps(_summary(ctx.store, final), ensure_ascii=False))
    sys.exit(0 if final.status == "succeeded" else EXIT_FAILED)


async def _drive(runner: Runner, run_id: int) -> RunRecord:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, runner.cancel, run_id)
    try:
        return await runner.drive(run_id)
    finally:
        await runner.executor.close()


def _summary(store: Store, run: RunRecord) -> dict[str, Any]:
    tasks = {
        t.path: {"status": t.status, "exit_code": t.exit_code, "attempts": t.attempts}
        for t in store.tasks(run.id)
    }
    return {"run_id": run.id, "job": run.job, "status": run.status, "tasks": tasks}

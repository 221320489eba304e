"""Day-to-day control: ``pause``, ``resume``, ``kill``, ``mark`` and ``gc``.

The first four ask the running daemon, over its API, to pause or resume a job's schedule,
stop a task or count a failed one as done; ``gc`` applies the retention policy to the store.
"""

from __future__ import annotations

from collections.abc import Callable

import click

from jobnest.cli.edge import DEFAULT_DAEMON_URL, Context, pass_context
from jobnest.runner import utc_now


def _daemon_options(command: Callable[..., None]) -> Callable[..., None]:
    url = click.option("--url", default=DEFAULT_DAEMON_URL, show_default=True, help="The daemon.")
    token = click.option("--token", envvar="JOBNEST_TOKEN", show_envvar=True, help="API token.")
    return url(token(command))


@click.command()
@click.argument("job")
@_daemon_options
def pause(job: str, url: str, token: str | None) -> None:
    """Pause JOB's schedule in the running daemon: its slots are skipped until resumed."""
    from jobnest.remote import call_daemon  # an HTTP client only for the daemon's commands

    call_daemon(url, token, "POST", f"/api/jobs/{_quoted(job)}/pause")
    click.echo(f"paused job {job!r}: its scheduled runs are skipped until `jobnest resume`")


@click.command()
@click.argument("job")
@click.option("--catch-up", is_flag=True, help="Run the newest slot missed while paused, now.")
@_daemon_options
def resume(job: str, catch_up: bool, url: str, token: str | None) -> None:
    """Resume JOB's schedule in the running daemon, from now on."""
    from jobnest.remote import call_daemon

    path = f"/api/jobs/{_quoted(job)}/resume"
    answer = call_daemon(url, token, "POST", path, params={"catch_up": catch_up})
    click.echo(f"resumed job {job!r}")
    if answer.get("run"):
        run = answer["run"]
        click.echo(f"started run {run['id']} for the slot of {run['scheduled_for']}")
    elif catch_up:
        click.echo("nothing to catch up: no slot was missed while paused")


@click.command()
@click.argument("run_id", type=int)
@click.argument("task")
@_daemon_options
def kill(run_id: int, task: str, url: str, token: str | None) -> None:
    """Stop TASK of run RUN_ID in the daemon; it fails (killed), the rest of the run goes on."""
    from jobnest.remote import call_daemon

    call_daemon(url, token, "POST", f"/api/runs/{run_id}/tasks/{_quoted_path(task)}/kill")
    click.echo(f"killing task {task!r} of run {run_id}: it ends failed (killed)")


@click.command()
@click.argument("run_id", type=int)
@click.argument("task")
@click.option("--skipped", is_flag=True, help="Mark it skipped rather than succeeded.")
@_daemon_options
def mark(run_id: int, task: str, skipped: bool, url: str, token: str | None) -> None:
    """Count failed TASK of run RUN_ID as succeeded (or skipped); what depends on it runs."""
    from jobnest.remote import call_daemon

    status = "skipped" if skipped else "succeeded"
    path = f"/api/runs/{run_id}/tasks/{_quoted_path(task)}/mark"
    run = call_daemon(url, token, "POST", path, json={"status": status})
    click.echo(f"marked task {task!r} of run {run_id} {status}; the run is {run['status']}")


@click.command()
@click.option("--dry-run", is_flag=True, help="Only show what would go, and the logs' size.")
@pass_context
def gc(ctx: Context, dry_run: bool) -> None:
    """Remove ended runs and their logs past the retention policy ([retention])."""
    from jobnest import retention

    policy = ctx.settings.retention
    swept = retention.sweep(ctx.store, ctx.settings, now=utc_now(), dry_run=dry_run)
    for run in swept.runs:
        ended = run.finished_at.isoformat() if run.finished_at else "?"
        click.echo(
            f"{'would remove' if dry_run else 'removed'} run {run.id} of {run.job!r} "
            f"({run.status}, ended {ended})"
        )
    click.echo(
        f"{len(swept.runs)} run(s), {swept.freed_bytes} bytes of logs "
        f"{'would be ' if dry_run else ''}freed; logs use {swept.log_bytes} bytes in all; "
        f"policy: max_age_days={policy.max_age_days}, max_runs_per_job={policy.max_runs_per_job}"
    )


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


def _quoted_path(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")

"""``jobnest import`` and ``export``: jobs from a crontab or dagobah, and back out as YAML."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import click

from jobnest.cli.edge import DEFAULT_DAEMON_URL, Context, pass_context
from jobnest.errors import InvalidInput
from jobnest.files import load_jobs
from jobnest.importers import sources
from jobnest.importers.base import Imported
from jobnest.importers.crontab import convert_crontab
from jobnest.importers.dagobah import convert_exports
from jobnest.importers.dagobah_email import EmailSettings, convert_email
from jobnest.importers.export import dump_jobs, select_jobs
from jobnest.importers.smtp import smtp_section
from jobnest.model.job import parse_job

CONFIG_HINT = "add it to $JOBNEST_HOME/config.toml"


@dataclass(frozen=True)
class Destination:
    """Where imported jobs go: a YAML file (else stdout), and/or the running daemon."""

    output: str | None
    apply: bool
    url: str
    token: str | None
    replace: bool

    @property
    def is_stdout(self) -> bool:
        return self.output is None and not self.apply


def _destination_options(command: Callable[..., None]) -> Callable[..., None]:
    options = [
        click.option("-o", "--output", metavar="FILE", help="Write the jobs' YAML to FILE."),
        click.option(
            "--apply", "apply_", is_flag=True, help="Save the jobs in the running daemon."
        ),
        click.option(
            "--url", default=DEFAULT_DAEMON_URL, show_default=True, help="The daemon, for --apply."
        ),
        click.option(
            "--token", envvar="JOBNEST_TOKEN", show_envvar=True, help="API token for --apply."
        ),
        click.option(
            "--replace", is_flag=True, help="With --apply, replace jobs the daemon already has."
        ),
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(name="import")
def import_group() -> None:
    """Turn a crontab or dagobah exports into jobs: YAML to review, or --apply."""


@import_group.command(name="crontab")
@click.argument("path", default=sources.STDIN, metavar="[FILE|-]")
@click.option("--group", is_flag=True, help="One job per schedule, a task per line.")
@click.option("--system", is_flag=True, help="Lines carry a user field (/etc/crontab).")
@click.option("--timezone", metavar="ZONE", help="Without CRON_TZ (default: the daemon's).")
@_destination_options
def import_crontab(
    path: str, group: bool, system: bool, timezone: str | None, **where: Any
) -> None:
    """Turn crontab lines into jobs, one per line (`crontab -l | jobnest import crontab`).

    A `# jobnest: NAME` comment right above a line names its job. MAILTO, CRON_TZ, SHELL,
    PATH and other variables, @daily-style schedules and % carry over; @reboot does not.
    With --group, lines sharing a schedule become one job, their && and ; chains tasks.
    """
    source = "stdin" if path == sources.STDIN else path
    imported = convert_crontab(
        sources.read_text(path), source=source, system=system, group=group, timezone=timezone
    )
    _deliver(imported, _destination(where))


@import_group.command(name="dagobah")
@click.argument("files", nargs=-1)
@click.option("--timezone", metavar="ZONE", default="UTC", show_default=True, help="Of schedules.")
@click.option("--config", "config", metavar="DAGOBAHD_YML", help="Also convert its Email: part.")
@click.option("--config-out", metavar="FILE", help="Write the [smtp] TOML there, not stdout.")
@_destination_options
def import_dagobah(
    files: Sequence[str],
    timezone: str,
    config: str | None,
    config_out: str | None,
    **where: Any,
) -> None:
    """Turn dagobah job exports (JSON) into jobs; job references resolve across FILES.

    With --config, dagobahd.yml's Email: settings become an [smtp] section for jobnest's
    config file, and its recipients every job's notify.
    """
    destination = _destination(where)
    if not files and config is None:
        raise InvalidInput("give dagobah job exports, --config dagobahd.yml, or both")
    if files and config is not None and config_out is None and destination.is_stdout:
        raise InvalidInput(
            "the jobs and the [smtp] section would both go to stdout: "
            "give -o FILE, --config-out FILE or --apply"
        )
    email = _dagobah_email(config) if config is not None else None
    exports = [(file, sources.read_json(file)) for file in files]
    imported = convert_exports(exports, timezone=timezone, notify=email.notify if email else None)
    if email is not None:
        _deliver_smtp(email, config_out)
    if files:
        _deliver(imported, destination)


@click.command(name="export")
@click.argument("names", nargs=-1)
@click.option("--from", "paths", multiple=True, metavar="PATH", help="Job files, not the store.")
@click.option("-o", "--output", metavar="FILE", help="Write to FILE instead of stdout.")
@pass_context
def export_command(
    ctx: Context, names: Sequence[str], paths: Sequence[str], output: str | None
) -> None:
    """Write jobs as YAML that `run`, `validate` and `serve --jobs` load back unchanged.

    The jobs NAMES (default: all) and every job they reference, from the daemon's store
    or from the job files given with --from.
    """
    if paths:
        jobs = load_jobs(paths)
    else:
        jobs = {name: parse_job(data) for name, data in ctx.store.list_jobs().items()}
    chosen = select_jobs(jobs, names)
    also = sorted({job.name for job in chosen} - set(names)) if names else []
    if also:
        click.echo(f"note: also exported, as referenced: {', '.join(also)}", err=True)
    _write_text(output, dump_jobs(chosen))


def _destination(where: dict[str, Any]) -> Destination:
    return Destination(
        where["output"], where["apply_"], where["url"], where["token"], where["replace"]
    )


def _deliver(imported: Imported, destination: Destination) -> None:
    for note in imported.notes:
        click.echo(f"note: {note}", err=True)
    if not destination.apply or destination.output is not None:
        _write_text(destination.output, dump_jobs(imported.jobs))
    if destination.apply:
        _apply(imported, destination)
    names = ", ".join(job.name for job in imported.jobs) or "none"
    click.echo(f"{len(imported.jobs)} job(s) imported: {names}", err=True)


def _apply(imported: Imported, destination: Destination) -> None:
    import httpx  # only --apply needs an HTTP client

    from jobnest.importers.apply import apply_jobs

    headers = {"Authorization": f"Bearer {destination.token}"} if destination.token else {}
    try:
        client = httpx.Client(base_url=destination.url, headers=headers, timeout=30)
    except httpx.InvalidURL as exc:
        raise InvalidInput(f"--url {destination.url!r}: {exc}") from None
    with client:
        for applied in apply_jobs(imported.jobs, client, replace=destination.replace):
            verb = "created" if applied.created else "replaced"
            click.echo(f"{verb} job {applied.name!r} on {destination.url}")


def _dagobah_email(config: str) -> EmailSettings:
    email = convert_email(sources.read_yaml(config), source=config, hostname=socket.gethostname())
    for note in email.notes:
        click.echo(f"note: {note}", err=True)
    return email


def _deliver_smtp(email: EmailSettings, output: str | None) -> None:
    secret = "password" in email.smtp
    comments = [f"Mail settings from {email.source} (dagobah's Email: section): {CONFIG_HINT}."]
    if secret:
        comments.append("It holds the SMTP password: keep the file private.")
    _write_text(output, smtp_section(email.smtp, comments), private=secret)
    if output is not None:
        click.echo(f"wrote the [smtp] section to {output}: {CONFIG_HINT}", err=True)


def _write_text(path: str | None, text: str, *, private: bool = False) -> None:
    """``text`` to the file ``path`` (only its owner may read it if ``private``), else stdout."""
    if path is None or path == sources.STDIN:
        click.echo(text, nl=False)
        return
    try:
        mode = 0o600 if private else 0o666
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with open(descriptor, "w", encoding="utf-8") as out:
            out.write(text)
    except OSError as exc:
        raise InvalidInput(f"cannot write {path!r}: {exc.strerror}") from None

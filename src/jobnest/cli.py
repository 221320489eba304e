"""The ``jobnest`` command line: a thin layer over the runner and the store.

Exit codes: 0 success, 1 a run failed, 2 invalid input (bad file, unknown run, a run that
cannot be retried, ...), 3 the database cannot be used. Errors are one line on stderr.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, NoReturn

import click

from jobnest import credentials, logs, process, recovery
from jobnest.config import Settings, load_settings
from jobnest.errors import InvalidInput, JobnestError, NotFound, StoreError
from jobnest.files import load_jobs
from jobnest.importers import sources
from jobnest.importers.base import Imported
from jobnest.importers.crontab import convert_crontab
from jobnest.importers.dagobah import convert_exports
from jobnest.importers.dagobah_email import EmailSettings, convert_email
from jobnest.importers.export import dump_jobs, select_jobs
from jobnest.importers.smtp import smtp_section
from jobnest.model.changes import JobDiff
from jobnest.model.expand import expand, plan_to_dict
from jobnest.model.job import Job, parse_job
from jobnest.progress import Progress
from jobnest.runner import Runner, utc_now
from jobnest.store.base import RunRecord, Store, TokenRecord
from jobnest.store.sql import SQLStore

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_STORE = 3


class JobnestGroup(click.Group):
    """Translates jobnest's errors into one line on stderr and an exit code, once."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            _fail(str(exc), EXIT_STORE)
        except JobnestError as exc:
            _fail(str(exc), EXIT_INVALID)


def _fail(message: str, code: int) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@dataclass
class Context:
    """What commands share: settings read once, the store opened on first use."""

    settings: Settings

    @cached_property
    def store(self) -> Store:
        self.settings.home.mkdir(parents=True, exist_ok=True)
        return SQLStore.open(self.settings.database_url)

    def runner(self, observer: Progress | None) -> Runner:
        from jobnest.executors.router import default_executor  # asyncssh loads only to run

        executor = default_executor(self.settings)
        return Runner(self.store, executor, self.settings, observer=observer)

    def close(self) -> None:
        """Release the store's connections, if it was opened."""
        if "store" in self.__dict__:
            self.store.close()


pass_context = click.make_pass_decorator(Context)


@click.group(cls=JobnestGroup)
@click.version_option(package_name="jobnest")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """jobnest: jobs of shell commands, jobs inside jobs, retry from failure."""
    ctx.obj = Context(load_settings())
    ctx.call_on_close(ctx.obj.close)


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--job", "name", required=True, help="The job to run.")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON summary at the end.")
@pass_context
def run(ctx: Context, paths: Sequence[str], name: str, as_json: bool) -> None:
    """Load job files and run the job NAME in the foreground."""
    jobs = load_jobs(paths)
    job = _pick(jobs, name)
    runner = ctx.runner(Progress(sys.stderr if as_json else sys.stdout))
    recovery.reconcile_stale(ctx.store, ctx.settings, job=name)
    record = runner.start(job, jobs.get, workdir=os.getcwd())
    _finish(ctx, runner, record, as_json)


@cli.command()
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


@cli.command()
@click.argument("run_id", type=int)
@click.argument("task")
@click.argument("command")
@pass_context
def fix(ctx: Context, run_id: int, task: str, command: str) -> None:
    """Replace TASK's command in a failed run (then `jobnest retry RUN_ID`)."""
    change = ctx.store.fix_command(run_id, task, command, now=utc_now())
    click.echo(f"run {run_id}: {task}: {change.old!r} → {change.new!r}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: Sequence[str]) -> None:
    """Check every job in the files: graphs, references, cycles, schedules."""
    jobs = load_jobs(paths)
    click.echo(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} valid: {', '.join(sorted(jobs))}")


@cli.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--job", "name", required=True, help="The job to expand.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_context
def plan(ctx: Context, paths: Sequence[str], name: str, as_json: bool) -> None:
    """Print the expanded plan of NAME: its tasks and their dependencies."""
    jobs = load_jobs(paths)
    graph = expand(_pick(jobs, name), jobs.get, ctx.settings.limits)
    data = plan_to_dict(graph)
    if as_json:
        click.echo(json.dumps({k: data[k] for k in ("job", "nodes", "edges")}, ensure_ascii=False))
        return
    before: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
    for a, b in graph.edges:
        before[b].append(a)
    for node in graph.nodes:
        if node.is_task:
            after = (
                f"  after {', '.join(_task_preds(node.id, before, graph))}"
                if before[node.id]
                else ""
            )
            click.echo(f"{node.id}: {node.command}{after}")


def _task_preds(node_id: str, before: dict[str, list[str]], graph: Any) -> list[str]:
    """The task predecessors of a node, looking through group markers."""
    kinds = {node.id: node.kind for node in graph.nodes}
    found: list[str] = []
    stack = list(before[node_id])
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if kinds[current] == "task":
            found.append(current)
        else:
            stack.extend(before[current])
    return sorted(found)


@cli.command()
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


@cli.command(name="logs")
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


# --- authentication: the web password and API tokens --------------------------------------


@cli.command()
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin's first line.")
@click.option(
    "--print-hash",
    is_flag=True,
    help="Print the hash, for password_hash in config.toml, instead of storing it.",
)
@pass_context
def passwd(ctx: Context, password_stdin: bool, print_hash: bool) -> None:
    """Set the password of the web UI and API; every session is logged out."""
    if ctx.settings.password_hash is not None and not print_hash:
        raise InvalidInput(
            "the password is set by password_hash in the config file or $JOBNEST_PASSWORD_HASH:"
            " change it there (`jobnest passwd --print-hash` makes one)"
        )
    password = _new_password(password_stdin)
    credentials.check_new_password(password)
    hashed = credentials.hash_password(password)
    if print_hash:
        click.echo(hashed)
        return
    ctx.store.set_password_hash(hashed)
    click.echo("password set; every session was logged out")


def _new_password(from_stdin: bool) -> str:
    if from_stdin:
        return sys.stdin.readline().removesuffix("\n").removesuffix("\r")
    first = click.prompt("New password", hide_input=True)
    if click.prompt("Repeat it", hide_input=True) != first:
        raise InvalidInput("the two passwords differ: nothing was changed")
    return str(first)


@cli.group()
def token() -> None:
    """API tokens for scripts: send one as `Authorization: Bearer <token>`."""


@token.command(name="create")
@click.argument("name")
@click.option(
    "--scope",
    default="read",
    show_default=True,
    metavar="read|full",
    help="read: GET and HEAD only; full: everything.",
)
@pass_context
def token_create(ctx: Context, name: str, scope: str) -> None:
    """Create an API token called NAME and print it: it is shown this once only."""
    secret, record = credentials.issue_token(ctx.store, name, scope, now=utc_now())
    click.echo(secret)
    click.echo(
        f"token {record.id} {name!r} (scope {scope}): keep it now, it is not shown again", err=True
    )


@token.command(name="list")
@click.option("--json", "as_json", is_flag=True)
@pass_context
def token_list(ctx: Context, as_json: bool) -> None:
    """Every API token, revoked ones too (never the tokens themselves)."""
    records = ctx.store.list_tokens()
    if as_json:
        click.echo(json.dumps([_token_json(t) for t in records], ensure_ascii=False))
        return
    for t in records:
        state = f"revoked {t.revoked_at:%Y-%m-%d %H:%M:%S}Z" if t.revoked_at else "active"
        created = f"{t.created_at:%Y-%m-%d %H:%M:%S}Z"
        click.echo(f"{t.id:>5}  {t.scope:<4}  created {created}  {state:<28} {t.name}")


@token.command(name="revoke")
@click.argument("token_id", metavar="ID")
@pass_context
def token_revoke(ctx: Context, token_id: str) -> None:
    """Revoke the API token ID (see `jobnest token list`): it stops working at once."""
    if not token_id.isdecimal():
        raise InvalidInput(
            f"a token id is a whole number (see `jobnest token list`), got {token_id!r}"
        )
    record = ctx.store.revoke_token(int(token_id), now=utc_now())
    click.echo(f"token {record.id} {record.name!r} revoked")


def _token_json(t: TokenRecord) -> dict[str, Any]:
    return {
        "id": t.id,
        "name": t.name,
        "scope": t.scope,
        "created_at": t.created_at.isoformat(),
        "revoked_at": t.revoked_at.isoformat() if t.revoked_at else None,
    }


@cli.command()
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


# --- switching to jobnest: import from cron and dagobah, export as code ----------------------

DEFAULT_DAEMON_URL = "http://127.0.0.1:8080"
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


@cli.group(name="import")
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


@cli.command(name="export")
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


# --- SSH hosts: where `host: NAME` tasks run ----------------------------------------------


@cli.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print the hosts as JSON.")
@click.pass_context
def hosts(click_ctx: click.Context, as_json: bool) -> None:
    """The SSH hosts tasks may name (`host: NAME`): the aliases of your SSH config.

    Each shows how it is reached and whether its host key is known (in ~/.ssh/known_hosts),
    trusted (with `jobnest hosts trust NAME`) or unknown, in which case tasks on it fail.
    """
    if click_ctx.invoked_subcommand is not None:
        return
    from jobnest.executors.ssh_hosts import SSHHosts  # asyncssh loads only when needed

    ctx: Context = click_ctx.obj
    known = SSHHosts.from_settings(ctx.settings)
    entries = known.entries()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(entry) for entry in entries]))
        return
    if not entries:
        click.echo(f"no hosts: {known.config} defines no Host alias", err=True)
    width = max((len(entry.alias) for entry in entries), default=0)
    for entry in entries:
        via = f"  via {entry.proxy_jump}" if entry.proxy_jump else ""
        where = f"{entry.user}@{entry.hostname}:{entry.port}"
        click.echo(f"{entry.alias:<{width}}  {where}  key {entry.key}{via}")


@hosts.command(name="trust")
@click.argument("name")
@click.option("--yes", is_flag=True, help="Trust the key without asking.")
@pass_context
def hosts_trust(ctx: Context, name: str, yes: bool) -> None:
    """Connect to NAME, show its host key's fingerprint and, once you accept it, trust it.

    The key is recorded in jobnest's known_hosts file (in the data directory). A host whose
    key differs from a recorded one is refused: remove the old key first.
    """
    from jobnest.executors.ssh_hosts import SSHHosts, fetch_host_key, host_pattern

    known = SSHHosts.from_settings(ctx.settings)
    shown = asyncio.run(fetch_host_key(known, name))
    where = host_pattern(shown.name, shown.port)
    if known.knows(shown):
        click.echo(f"host {name!r} ({where}) is known already: {shown.fingerprint}")
        return
    click.echo(f"host {name!r} ({where}) shows the host key {shown.fingerprint}")
    if not yes and not click.confirm("Trust this key?", default=False):
        _fail(f"host {name!r} not trusted: nothing was recorded", EXIT_FAILED)
    known.record(shown)
    click.echo(f"trusted: recorded in {known.trusted}")


# --- the database: schema upgrades, moving from SQLite to PostgreSQL --------------------------


@cli.group()
def db() -> None:
    """The database: upgrade its schema; copy a SQLite installation into PostgreSQL."""


@db.command(name="upgrade")
@pass_context
def db_upgrade(ctx: Context) -> None:
    """Bring the database's schema to this jobnest's revision (back it up first).

    A SQLite database is upgraded whenever jobnest opens it; a PostgreSQL one only by
    this command, since older daemons may share it: stop them first.
    """
    from jobnest.store import migrations, transfer

    url = ctx.settings.database_url
    ctx.settings.home.mkdir(parents=True, exist_ok=True)
    before, after = SQLStore.upgrade(url), migrations.head()
    where = transfer.display_url(url)
    if before == after:
        click.echo(f"{where}: the schema is at revision {after} already")
    else:
        click.echo(f"{where}: schema upgraded from {before or 'nothing'} to revision {after}")


@db.command(name="migrate-from")
@click.argument("source", metavar="sqlite:///PATH")
@click.option("--force", is_flag=True, help="Replace whatever the target database holds.")
@pass_context
def db_migrate_from(ctx: Context, source: str, force: bool) -> None:
    """Copy a SQLite installation into the configured (PostgreSQL) database.

    Jobs and their versions, run history with plans, snapshots, tasks, attempts and command
    fixes, schedules, skipped slots, the password and API tokens: all of it, in one
    transaction. The target must be empty unless --force. Task output stays where it is:
    its folders are relative to $JOBNEST_HOME. No daemon may run on the source meanwhile.
    """
    from jobnest.store import transfer
    from jobnest.store.sql import upgrades_on_open

    source_url = transfer.sqlite_source(source)
    target_url = ctx.settings.database_url
    if upgrades_on_open(target_url):
        raise InvalidInput(
            f"the configured database is SQLite ({transfer.display_url(target_url)}): set "
            "JOBNEST_DATABASE_URL (or database_url in config.toml) to the PostgreSQL database"
        )
    lock_path = process.sqlite_lock_path(source_url)
    lock = process.DaemonLock(lock_path) if lock_path else None
    if lock is not None:
        lock.acquire()
    try:
        counts = _copy_installation(source_url, target_url, force)
    finally:
        if lock is not None:
            lock.release()
    copied = ", ".join(f"{count} {table}" for table, count in counts.items() if count)
    click.echo(f"copied into {transfer.display_url(target_url)}: {copied or 'nothing'}")
    click.echo(_logs_note(source_url), err=True)


def _copy_installation(source_url: str, target_url: str, force: bool) -> dict[str, int]:
    from jobnest.store import transfer

    SQLStore.upgrade(target_url)
    source, target = SQLStore.open(source_url), SQLStore.open(target_url)
    try:
        return transfer.copy_database(source, target, force=force)
    finally:
        source.close()
        target.close()


def _logs_note(source_url: str) -> str:
    home = Path(source_url.partition(":///")[2]).parent
    return (
        f"note: task output was not copied: it stays in {home / 'logs'}. Attempts name their "
        f"log folders relative to $JOBNEST_HOME: run the daemons with JOBNEST_HOME={home}, or "
        "copy that logs folder into their home"
    )


# --- day-to-day control: pause and resume schedules, retention ---------------------------------


def _daemon_options(command: Callable[..., None]) -> Callable[..., None]:
    url = click.option("--url", default=DEFAULT_DAEMON_URL, show_default=True, help="The daemon.")
    token = click.option("--token", envvar="JOBNEST_TOKEN", show_envvar=True, help="API token.")
    return url(token(command))


@cli.command()
@click.argument("job")
@_daemon_options
def pause(job: str, url: str, token: str | None) -> None:
    """Pause JOB's schedule in the running daemon: its slots are skipped until resumed."""
    from jobnest.remote import call_daemon  # an HTTP client only for the daemon's commands

    call_daemon(url, token, "POST", f"/api/jobs/{_quoted(job)}/pause")
    click.echo(f"paused job {job!r}: its scheduled runs are skipped until `jobnest resume`")


@cli.command()
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


@cli.command()
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


def _quoted(name: str) -> str:
    from urllib.parse import quote

    return quote(name, safe="")


# --- workers: running tasks with `queue:` on Celery --------------------------------------------


@cli.command()
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


# --- day-to-day control: kill one task, mark a failed task --------------------------------------


@cli.command()
@click.argument("run_id", type=int)
@click.argument("task")
@_daemon_options
def kill(run_id: int, task: str, url: str, token: str | None) -> None:
    """Stop TASK of run RUN_ID in the daemon; it fails (killed), the rest of the run goes on."""
    from jobnest.remote import call_daemon

    call_daemon(url, token, "POST", f"/api/runs/{run_id}/tasks/{_quoted_path(task)}/kill")
    click.echo(f"killing task {task!r} of run {run_id}: it ends failed (killed)")


@cli.command()
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


def _quoted_path(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")


# --- helpers ---------------------------------------------------------------------------------


def _pick(jobs: dict[str, Job], name: str) -> Job:
    if name not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise InvalidInput(f"no job named {name!r} in the files (jobs: {known})")
    return jobs[name]


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


def _run_json(r: RunRecord) -> dict[str, Any]:
    return {
        "id": r.id,
        "job": r.job,
        "status": r.status,
        "trigger": r.trigger,
        "created_at": r.created_at.isoformat(),
        "finished_at": r.finished_at.isoformat() if r.finished_at else None,
    }


def main() -> None:
    cli(prog_name="jobnest")

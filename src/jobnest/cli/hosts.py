"""``jobnest hosts``: the SSH hosts that `host: NAME` tasks run on, and trusting their keys."""

from __future__ import annotations

import asyncio
import dataclasses
import json

import click

from jobnest.cli.edge import EXIT_FAILED, Context, fail, pass_context


@click.group(invoke_without_command=True)
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
        fail(f"host {name!r} not trusted: nothing was recorded", EXIT_FAILED)
    known.record(shown)
    click.echo(f"trusted: recorded in {known.trusted}")

"""The ``jobnest`` command line: a thin layer over the runner and the store.

The group here names every command and the module that holds it; a module is imported
only when its command runs (or ``--help`` lists them all), so ``jobnest run``, started by
cron, loads neither the importers nor the web stack. Exit codes and the translation of
errors into them are in :mod:`jobnest.cli.edge`.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, Mapping, MutableMapping

import click

from jobnest.cli.edge import Context, JobnestGroup
from jobnest.config import load_settings

COMMANDS = {
    "run": "jobnest.cli.run:run",
    "retry": "jobnest.cli.run:retry",
    "fix": "jobnest.cli.run:fix",
    "validate": "jobnest.cli.plan:validate",
    "plan": "jobnest.cli.plan:plan",
    "runs": "jobnest.cli.history:runs",
    "logs": "jobnest.cli.history:logs_command",
    "passwd": "jobnest.cli.auth:passwd",
    "token": "jobnest.cli.auth:token",
    "serve": "jobnest.cli.serve:serve",
    "worker": "jobnest.cli.serve:worker",
    "import": "jobnest.cli.transfer:import_group",
    "export": "jobnest.cli.transfer:export_command",
    "hosts": "jobnest.cli.hosts:hosts",
    "db": "jobnest.cli.db:db",
    "pause": "jobnest.cli.controls:pause",
    "resume": "jobnest.cli.controls:resume",
    "kill": "jobnest.cli.controls:kill",
    "mark": "jobnest.cli.controls:mark",
    "gc": "jobnest.cli.controls:gc",
}
"""Every command's name and where it is defined, as ``module:attribute``."""


class LazyCommands(MutableMapping[str, click.Command]):
    """A group's commands by name, each imported from its ``module:attribute`` when looked up.

    Listing the names (``--help``, "did you mean" suggestions) imports nothing.
    """

    def __init__(self, places: Mapping[str, str]) -> None:
        self._entries: dict[str, str | click.Command] = dict(places)

    def __getitem__(self, name: str) -> click.Command:
        entry = self._entries[name]
        if not isinstance(entry, str):
            return entry
        module, _, attribute = entry.partition(":")
        command: click.Command = getattr(importlib.import_module(module), attribute)
        self._entries[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self._entries[name] = command

    def __delitem__(self, name: str) -> None:
        del self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)


@click.group(cls=JobnestGroup, commands=LazyCommands(COMMANDS))
@click.version_option(package_name="jobnest")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """jobnest: jobs of shell commands, jobs inside jobs, retry from failure."""
    ctx.obj = Context(load_settings())
    ctx.call_on_close(ctx.obj.close)


def main() -> None:
    cli(prog_name="jobnest")

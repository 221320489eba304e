"""What every command shares: exit codes, errors turned into them, settings and the store.

Exit codes: 0 success, 1 a run failed, 2 invalid input (bad file, unknown run, a run that
cannot be retried, ...), 3 the database cannot be used. Errors are one line on stderr,
written here and nowhere else.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any, NoReturn

import click

from jobnest.config import Settings
from jobnest.errors import InvalidInput, JobnestError, StoreError

if TYPE_CHECKING:
    from jobnest.model.job import Job
    from jobnest.progress import Progress
    from jobnest.runner import Runner
    from jobnest.store.base import Store

EXIT_FAILED = 1
EXIT_INVALID = 2
EXIT_STORE = 3

DEFAULT_DAEMON_URL = "http://127.0.0.1:8080"


class JobnestGroup(click.Group):
    """Translates jobnest's errors into one line on stderr and an exit code, once."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except StoreError as exc:
            fail(str(exc), EXIT_STORE)
        except JobnestError as exc:
            fail(str(exc), EXIT_INVALID)


def fail(message: str, code: int) -> NoReturn:
    """End the command: ``message`` as one ``error:`` line on stderr, exit status ``code``."""
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


@dataclass
class Context:
    """What commands share: settings read once, the store opened on first use."""

    settings: Settings

    @cached_property
    def store(self) -> Store:
        from jobnest.store.sql import SQLStore  # SQLAlchemy loads only for commands using it

        self.settings.home.mkdir(parents=True, exist_ok=True)
        return SQLStore.open(self.settings.database_url)

    def runner(self, observer: Progress | None) -> Runner:
        from jobnest.executors.router import default_executor  # asyncssh loads only to run
        from jobnest.runner import Runner

        executor = default_executor(self.settings)
        return Runner(self.store, executor, self.settings, observer=observer)

    def close(self) -> None:
        """Release the store's connections, if it was opened."""
        if "store" in self.__dict__:
            self.store.close()


pass_context = click.make_pass_decorator(Context)


def pick(jobs: dict[str, Job], name: str) -> Job:
    """The job ``name`` among those loaded from files."""
    if name not in jobs:
        known = ", ".join(sorted(jobs)) or "none"
        raise InvalidInput(f"no job named {name!r} in the files (jobs: {known})")
    return jobs[name]

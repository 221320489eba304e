"""The executor contract, one suite for every backend in ``BACKENDS``.

Every backend runs the same attempts and must give the same outcomes, files and kills. The
"remote" side of the ssh backend is a real sshd on this machine, run by another user, so the
tests can look for its leftover processes in /proc. The celery backend sends every attempt to a
real ``jobnest worker`` on Redis, on this machine (so its processes are in /proc too). Adding a
backend is one more name in ``BACKENDS`` and one branch in ``make_backend``.
"""

from __future__ import annotations

import asyncio
import itertools
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TypeVar

import pytest

from celery_worker import REDIS, SharedWorker, shared_celery_worker  # noqa: F401
from jobnest.executors.base import AttemptSpec, Executor, Handle, Outcome
from jobnest.executors.celery import CeleryExecutor, make_app
from jobnest.executors.local import LocalExecutor
from jobnest.executors.ssh import SSHExecutor
from jobnest.executors.ssh_hosts import SSHHosts
from jobnest.executors.wrapper import read_exit
from jobnest.store.sql import SQLStore
from ssh_server import ALIAS, SSHServer
from support.polling import DEADLINE, until
from support.processes import marker, rss_kib, sleepers, until_running

BACKENDS = ["local", "ssh", "celery"]
_attempts = itertools.count(int(time.time() * 1000))  # celery: a fresh attempt key each time
T = TypeVar("T")


@dataclass
class Backend:
    """How to reach one backend: an executor factory, the host to name, a workdir to use."""

    name: str
    make: Callable[[float], Executor]  # grace -> executor
    host: str | None
    workdir: Path  # the task's user may write here
    warm_up: Path | None = None  # log dir of a first attempt, run before the test's own

    def spec(
        self,
        log_dir: Path,
        command: str,
        *,
        workdir: str | None = None,
        env: dict[str, str] | None = None,
        soft_timeout: float | None = None,
        hard_timeout: float | None = None,
    ) -> AttemptSpec:
        return AttemptSpec(
            command=command,
            workdir=workdir or str(self.workdir),
            log_dir=log_dir,
            env=env or {},
            soft_timeout=soft_timeout,
            hard_timeout=hard_timeout,
            host=self.host,
        )

    def run(self, spec: AttemptSpec, grace: float = 10.0) -> Outcome:
        async def attempt(executor: Executor) -> Outcome:
            return await (await executor.start(spec)).wait()

        return self.use(attempt, grace)

    def use(self, work: Callable[[Executor], Awaitable[T]], grace: float = 10.0) -> T:
        """Run ``work`` with a new executor in a new event loop, then close the executor."""

        async def main() -> T:
            executor = self.make(grace)
            try:
                if self.warm_up is not None:  # connect first: timeouts count from start()
                    await (await executor.start(self.spec(self.warm_up, "true"))).wait()
                return await work(executor)
            finally:
                await executor.close()

        return asyncio.run(main())


def make_backend(name: str, request: pytest.FixtureRequest, tmp_path: Path) -> Backend:
    if name == "local":
        workdir = tmp_path / "work"
        workdir.mkdir()
        return Backend(name, lambda grace: LocalExecutor(grace=grace), None, workdir)
    if name == "ssh":
        server: SSHServer = request.getfixturevalue("ssh_server")
        hosts = SSHHosts(server.client_config, (server.known_hosts,), tmp_path / "known_hosts")
        return Backend(
            name,
            lambda grace: SSHExecutor(hosts, grace=grace),
            ALIAS,
            server.workdir(),
            warm_up=tmp_path / "warm-up",
        )
    if name == "celery":
        shared: SharedWorker = request.getfixturevalue("shared_celery_worker")
        workdir = tmp_path / "work"
        workdir.mkdir()
        queue = shared.worker.queue
        return Backend(name, lambda grace: Keyed(shared.database_url, queue, grace), None, workdir)
    raise ValueError(f"unknown executor backend {name!r}")


class Keyed(CeleryExecutor):
    """The Celery executor, for specs built here: each gets a queue and an attempt number of
    its own (the runner's specs carry their run, task and attempt in the environment)."""

    def __init__(self, database_url: str, queue: str, grace: float) -> None:
        super().__init__(SQLStore.open(database_url), make_app(REDIS), grace=grace, poll=0.02)
        self.owns_store = True
        self.queue = queue

    async def start(self, spec: AttemptSpec) -> Handle:
        env = {"JOBNEST_RUN_ID": "0", "JOBNEST_TASK": "contract", **spec.env}
        env["JOBNEST_ATTEMPT"] = str(next(_attempts))
        return await super().start(replace(spec, env=env, queue=self.queue))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    yield make_backend(request.param, request, tmp_path)


def test_exit_code_zero_succeeds_with_stdout_and_stderr_in_separate_files(
    backend: Backend, tmp_path: Path
) -> None:
    log = tmp_path / "log"

    outcome = backend.run(backend.spec(log, "echo out; echo error >&2"))

    assert outcome.ok and outcome.reason is None and outcome.exit_code == 0
    assert (log / "stdout").read_text() == "out\n"
    assert (log / "stderr").read_text() == "error\n"
    assert (outcome.stdout_size, outcome.stderr_size) == (4, 6)
    assert read_exit(log) == 0
    assert outcome.started_at <= outcome.finished_at


def test_a_nonzero_exit_code_is_the_outcome_and_the_exit_file(
    backend: Backend, tmp_path: Path
) -> None:
    outcome = backend.run(backend.spec(tmp_path / "log", "echo partial; exit 3"))

    assert (outcome.reason, outcome.exit_code, outcome.signal) == ("exit_code", 3, None)
    assert read_exit(tmp_path / "log") == 3
    assert (tmp_path / "log" / "stdout").read_text() == "partial\n"


def test_a_command_killed_by_a_signal_reports_the_signal(backend: Backend, tmp_path: Path) -> None:
    outcome = backend.run(backend.spec(tmp_path / "log", "kill -KILL $$"))

    assert (outcome.reason, outcome.signal) == ("signal", signal.SIGKILL)
    assert read_exit(tmp_path / "log") == 128 + signal.SIGKILL


def test_env_reaches_the_task_and_is_never_spliced_into_the_command(
    backend: Backend, tmp_path: Path
) -> None:
    env = {"JOBNEST_TASK": "load/stage; echo injected 'quoted' $HOME", "JOBNEST_RUN_ID": "7"}
    command = """printf '%s|%s|%s' "$JOBNEST_TASK" "$JOBNEST_RUN_ID" "${PATH:+inherited}" """

    outcome = backend.run(backend.spec(tmp_path / "log", command, env=env))

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == (
        "load/stage; echo injected 'quoted' $HOME|7|inherited"
    )


def test_quotes_in_the_command_reach_the_shell_intact(backend: Backend, tmp_path: Path) -> None:
    command = """printf '%s\\n' "it's \\"quoted\\" \\$HOME" '$1' "$(echo a; echo b)" """

    outcome = backend.run(backend.spec(tmp_path / "log", command))

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == 'it\'s "quoted" $HOME\n$1\na\nb\n'


def test_no_positional_parameters_and_stdin_is_empty(backend: Backend, tmp_path: Path) -> None:
    outcome = backend.run(
        backend.spec(tmp_path / "log", """printf '%s|%s|' "$#" "$0"; cat; echo end""")
    )

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == "0|jobnest-attempt|end\n"


def test_the_task_runs_in_its_workdir(backend: Backend, tmp_path: Path) -> None:
    outcome = backend.run(backend.spec(tmp_path / "log", "pwd; echo made >here"))

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == f"{backend.workdir}\n"
    assert (backend.workdir / "here").read_text() == "made\n"


def test_a_missing_workdir_is_an_error_outcome_explained_in_stderr(
    backend: Backend, tmp_path: Path
) -> None:
    missing = backend.workdir / "nowhere"

    outcome = backend.run(backend.spec(tmp_path / "log", "true", workdir=str(missing)))

    assert (outcome.reason, outcome.exit_code, outcome.signal) == ("error", None, None)
    assert str(missing) in (tmp_path / "log" / "stderr").read_text()
    assert outcome.stderr_size > 0 and read_exit(tmp_path / "log") is None


def test_the_task_leads_its_own_process_group(backend: Backend, tmp_path: Path) -> None:
    command = "ps -o pgid= -p $$; ps -o sid= -p $$; echo $$"

    outcome = backend.run(backend.spec(tmp_path / "log", command))

    pgid, sid, pid = (tmp_path / "log" / "stdout").read_text().split()
    assert outcome.ok and pgid == pid == sid


def test_soft_timeout_kills_the_whole_process_group(backend: Backend, tmp_path: Path) -> None:
    duration = marker()
    command = f"sh -c 'sleep {duration} & wait'; echo not reached"

    outcome = backend.run(backend.spec(tmp_path / "log", command, soft_timeout=0.5))

    assert (outcome.reason, outcome.signal) == ("soft_timeout", signal.SIGTERM)
    until(lambda: not sleepers(duration), message="a sleep was left behind")
    assert "not reached" not in (tmp_path / "log" / "stdout").read_text()


def test_soft_timeout_is_followed_by_sigkill_after_the_grace(
    backend: Backend, tmp_path: Path
) -> None:
    duration = marker()
    command = f"trap '' TERM; sleep {duration}"

    started = time.monotonic()
    outcome = backend.run(backend.spec(tmp_path / "log", command, soft_timeout=0.2), grace=0.4)

    assert (outcome.reason, outcome.signal) == ("soft_timeout", signal.SIGKILL)
    assert time.monotonic() - started >= 0.6
    until(lambda: not sleepers(duration), message="a sleep was left behind")


def test_leftovers_that_outlive_the_group_leader_are_killed_after_the_grace(
    backend: Backend, tmp_path: Path
) -> None:
    duration = marker()
    command = f"sh -c 'trap \"\" TERM; sleep {duration}' >/dev/null 2>&1 & wait"

    outcome = backend.run(backend.spec(tmp_path / "log", command, soft_timeout=0.3), grace=0.3)

    assert outcome.reason == "soft_timeout"
    until(lambda: not sleepers(duration), message="a sleep was left behind")


def test_hard_timeout_sigkills_a_task_that_ignores_sigterm(
    backend: Backend, tmp_path: Path
) -> None:
    duration = marker()
    spec = backend.spec(
        tmp_path / "log", f"trap '' TERM; sleep {duration}", soft_timeout=0.1, hard_timeout=0.4
    )

    started = time.monotonic()
    outcome = backend.run(spec, grace=30)

    assert (outcome.reason, outcome.signal) == ("hard_timeout", signal.SIGKILL)
    assert time.monotonic() - started < DEADLINE
    until(lambda: not sleepers(duration), message="a sleep was left behind")


def test_terminate_returns_at_once_and_wait_reports_cancelled(
    backend: Backend, tmp_path: Path
) -> None:
    duration = marker()
    spec = backend.spec(tmp_path / "log", f"sleep {duration}")

    async def cancel(executor: Executor) -> tuple[float, Outcome]:
        handle = await executor.start(spec)
        await until_running(duration)
        before = time.monotonic()
        await handle.terminate(grace=30)
        took = time.monotonic() - before
        return took, await handle.wait()

    took, outcome = backend.use(cancel)

    assert took < 1.0  # nowhere near the grace
    assert (outcome.reason, outcome.signal) == ("cancelled", signal.SIGTERM)
    assert not sleepers(duration)


def test_terminate_sigkills_a_task_that_ignores_sigterm_after_the_grace(
    backend: Backend, tmp_path: Path
) -> None:
    duration = marker()
    spec = backend.spec(tmp_path / "log", f"trap '' TERM; sleep {duration}")

    async def cancel(executor: Executor) -> Outcome:
        handle = await executor.start(spec)
        await until_running(duration)
        await handle.terminate(grace=0.3)
        return await handle.wait()

    outcome = backend.use(cancel)

    assert (outcome.reason, outcome.signal) == ("cancelled", signal.SIGKILL)
    until(lambda: not sleepers(duration), message="a sleep was left behind")


def test_attempts_run_side_by_side(backend: Backend, tmp_path: Path) -> None:
    async def together(executor: Executor) -> list[Outcome]:
        handles: list[Handle] = [
            await executor.start(backend.spec(tmp_path / str(i), f"sleep 0.3; echo {i}"))
            for i in range(12)
        ]
        return [await handle.wait() for handle in handles]

    started = time.monotonic()
    outcomes = backend.use(together)

    assert all(outcome.ok for outcome in outcomes)
    assert [(tmp_path / str(i) / "stdout").read_text() for i in range(12)] == [
        f"{i}\n" for i in range(12)
    ]
    assert time.monotonic() - started < 0.3 * 12 / 2


def test_a_reused_log_dir_forgets_the_earlier_attempt(backend: Backend, tmp_path: Path) -> None:
    backend.run(backend.spec(tmp_path / "log", "echo first; echo oops >&2; exit 4"))

    outcome = backend.run(backend.spec(tmp_path / "log", "echo second"))

    assert outcome.ok and read_exit(tmp_path / "log") == 0
    assert (tmp_path / "log" / "stdout").read_text() == "second\n"
    assert (tmp_path / "log" / "stderr").read_text() == ""


def test_large_output_goes_to_the_file_not_to_our_memory(backend: Backend, tmp_path: Path) -> None:
    size = 50_000_000
    before = rss_kib()

    outcome = backend.run(backend.spec(tmp_path / "log", f"head -c {size} /dev/zero"))

    grown = rss_kib() - before
    (tmp_path / "log" / "stdout").unlink()
    assert outcome.ok and outcome.stdout_size == size
    assert grown < 20_000  # KiB

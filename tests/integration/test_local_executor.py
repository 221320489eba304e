"""LocalExecutor and the attempt wrapper, with real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from datetime import UTC
from pathlib import Path

import pytest

from jobnest import recovery
from jobnest.config import Settings
from jobnest.executors.base import AttemptSpec, Handle, Outcome
from jobnest.executors.escapees import VARIABLE, new_key
from jobnest.executors.local import LocalExecutor
from jobnest.executors.wrapper import (
    group_alive,
    pid_alive,
    read_exit,
    read_pid,
    reap_group,
    split_status,
    write_exit,
)
from jobnest.model.job import parse_job
from jobnest.runner import Runner, utc_now
from jobnest.store.base import AttemptRecord, Changes, Store, TaskChange
from support.attempts import run_attempt
from support.polling import until, until_async
from support.processes import dead_pid, is_dead, rss_kib

DEADLINE = 5.0  # seconds any poll may take before the test fails
# a process that leaves the task's group and session, and says its pid
ESCAPE = "setsid sh -c '{trap}echo $$ >escaped.pid; exec sleep 1000' &"
STUBBORN = 'trap "" TERM; '  # for ESCAPE: ignore SIGTERM (sleep inherits that)


def run(spec: AttemptSpec, grace: float = 10.0) -> Outcome:
    return run_attempt(LocalExecutor(grace=grace), spec)


def spec(
    tmp_path: Path,
    command: str,
    env: dict[str, str] | None = None,
    soft_timeout: float | None = None,
    hard_timeout: float | None = None,
) -> AttemptSpec:
    return AttemptSpec(
        command=command,
        workdir=str(tmp_path),
        log_dir=tmp_path / "log",
        env=env or {},
        soft_timeout=soft_timeout,
        hard_timeout=hard_timeout,
    )


async def started(handle: Handle, log_dir: Path) -> None:
    """Poll until the wrapper has written its pid file."""
    await until_async(
        lambda: read_pid(log_dir) == handle.pid, DEADLINE, "the attempt never started"
    )


def test_exit_code_zero_succeeds_with_stdout_and_stderr_in_separate_files(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "echo out; echo error >&2"))

    assert outcome.ok and outcome.reason is None and outcome.exit_code == 0
    assert (tmp_path / "log" / "stdout").read_text() == "out\n"
    assert (tmp_path / "log" / "stderr").read_text() == "error\n"
    assert (outcome.stdout_size, outcome.stderr_size) == (4, 6)
    assert outcome.started_at.tzinfo is UTC and outcome.started_at <= outcome.finished_at


def test_exit_3_is_recorded_in_the_outcome_and_the_exit_file(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "exit 3"))

    assert (outcome.reason, outcome.exit_code, outcome.signal) == ("exit_code", 3, None)
    assert read_exit(tmp_path / "log") == 3


def test_a_failing_last_command_records_its_code(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "true; sh -c 'exit 5'"))

    assert outcome.exit_code == 5 and read_exit(tmp_path / "log") == 5


def test_pid_file_holds_the_process_group_leader(tmp_path: Path) -> None:
    async def attempt() -> tuple[Handle, Outcome]:
        handle = await LocalExecutor().start(spec(tmp_path, "ps -o pgid= -p $$ >pgid"))
        return handle, await handle.wait()

    handle, outcome = asyncio.run(attempt())

    assert outcome.ok
    assert read_pid(tmp_path / "log") == handle.pid
    assert int((tmp_path / "pgid").read_text()) == handle.pid


def test_a_command_killing_its_shell_reports_the_signal(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "kill -KILL $$"))

    assert (outcome.reason, outcome.signal, outcome.exit_code) == ("signal", 9, None)
    assert read_exit(tmp_path / "log") == 128 + 9  # written by the executor for the wrapper


def test_a_command_killed_by_a_signal_reports_the_signal(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "sh -c 'kill -TERM $$'"))

    assert (outcome.reason, outcome.signal, outcome.exit_code) == ("signal", 15, 143)
    assert read_exit(tmp_path / "log") == 143


def test_env_reaches_the_task_and_is_never_spliced_into_the_command(tmp_path: Path) -> None:
    env = {"JOBNEST_TASK": "load/stage; echo injected", "JOBNEST_RUN_ID": "7"}
    command = """printf '%s|%s|%s' "$JOBNEST_TASK" "$JOBNEST_RUN_ID" "${PATH:+inherited}" """

    outcome = run(spec(tmp_path, command, env=env))

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == "load/stage; echo injected|7|inherited"


def test_quotes_in_the_command_reach_the_shell_intact(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, """printf '%s\\n' "it's \\"quoted\\" \\$HOME" '$1'"""))

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == 'it\'s "quoted" $HOME\n$1\n'


def test_no_positional_parameters_and_stdin_is_empty(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, """printf '%s|%s|' "$#" "$0"; cat; echo end"""))

    assert outcome.ok
    assert (tmp_path / "log" / "stdout").read_text() == "0|jobnest-attempt|end\n"


def test_the_task_runs_in_its_workdir(tmp_path: Path) -> None:
    workdir = tmp_path / "work dir"
    workdir.mkdir()

    outcome = run(AttemptSpec("pwd", str(workdir), tmp_path / "log"))

    assert outcome.ok and (tmp_path / "log" / "stdout").read_text() == f"{workdir}\n"


def test_a_missing_workdir_is_an_error_outcome_explained_in_stderr(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere"

    outcome = run(AttemptSpec("true", str(missing), tmp_path / "log"))

    assert (outcome.reason, outcome.exit_code, outcome.signal) == ("error", None, None)
    assert str(missing) in (tmp_path / "log" / "stderr").read_text()
    assert outcome.stderr_size > 0


def test_soft_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    command = "sh -c 'sleep 100 & echo $! >child; wait'"

    outcome = run(spec(tmp_path, command, soft_timeout=0.5))

    assert (outcome.reason, outcome.signal) == ("soft_timeout", signal.SIGTERM)
    until(lambda: is_dead(int((tmp_path / "child").read_text())), DEADLINE)


def test_soft_timeout_kills_leftovers_after_the_grace_even_when_the_wrapper_is_gone(
    tmp_path: Path,
) -> None:
    command = "sh -c 'trap \"\" TERM; sleep 100' & echo $! >child; wait"

    started = time.monotonic()
    outcome = run(spec(tmp_path, command, soft_timeout=0.5), grace=0.3)

    assert outcome.reason == "soft_timeout"
    assert outcome.signal == signal.SIGTERM  # the wrapper itself died of the SIGTERM
    assert time.monotonic() - started >= 0.8  # wait() covered the grace for the leftover
    until(lambda: is_dead(int((tmp_path / "child").read_text())), DEADLINE)


def test_soft_timeout_alone_is_followed_by_sigkill_after_the_grace(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "trap '' TERM; sleep 100", soft_timeout=0.1), grace=0.2)

    assert (outcome.reason, outcome.signal) == ("soft_timeout", signal.SIGKILL)


def test_hard_timeout_sigkills_a_task_that_ignores_sigterm(tmp_path: Path) -> None:
    attempt = spec(tmp_path, "trap '' TERM; sleep 100", soft_timeout=0.1, hard_timeout=0.3)

    started = time.monotonic()
    outcome = run(attempt, grace=30)

    assert (outcome.reason, outcome.signal) == ("hard_timeout", signal.SIGKILL)
    assert time.monotonic() - started < DEADLINE


def test_terminate_returns_at_once_and_wait_reports_cancelled(tmp_path: Path) -> None:
    attempt = spec(tmp_path, "sleep 100")

    async def cancel() -> tuple[float, Outcome]:
        handle = await LocalExecutor().start(attempt)
        await started(handle, attempt.log_dir)
        before = time.monotonic()
        await handle.terminate(grace=30)
        took = time.monotonic() - before
        return took, await handle.wait()

    took, outcome = asyncio.run(cancel())

    assert took < 1.0  # nowhere near the grace
    assert (outcome.reason, outcome.signal) == ("cancelled", signal.SIGTERM)


def test_terminate_sigkills_a_task_that_ignores_sigterm_after_the_grace(tmp_path: Path) -> None:
    attempt = spec(tmp_path, "trap '' TERM; sleep 100")

    async def cancel() -> Outcome:
        handle = await LocalExecutor().start(attempt)
        await started(handle, attempt.log_dir)
        await handle.terminate(grace=0.3)
        return await handle.wait()

    outcome = asyncio.run(cancel())

    assert (outcome.reason, outcome.signal) == ("cancelled", signal.SIGKILL)


def test_large_output_goes_to_the_file_not_to_our_memory(tmp_path: Path) -> None:
    size = 200_000_000
    before = rss_kib()

    outcome = run(spec(tmp_path, f"head -c {size} /dev/zero"))

    grown = rss_kib() - before
    (tmp_path / "log" / "stdout").unlink()
    assert outcome.ok and outcome.stdout_size == size
    assert grown < 20_000  # KiB


def test_a_reused_log_dir_forgets_the_earlier_attempt(tmp_path: Path) -> None:
    run(spec(tmp_path, "echo first; exit 4"))

    outcome = run(spec(tmp_path, "echo second"))

    assert outcome.ok and read_exit(tmp_path / "log") == 0
    assert (tmp_path / "log" / "stdout").read_text() == "second\n"


def test_exit_file_is_written_for_a_command_that_execs(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, "exec sh -c 'exit 6'"))

    assert outcome.exit_code == 6 and read_exit(tmp_path / "log") == 6


def test_readers_give_none_for_missing_or_garbled_files(tmp_path: Path) -> None:
    assert read_pid(tmp_path) is None and read_exit(tmp_path) is None
    (tmp_path / "exit").write_text("")
    (tmp_path / "pid").write_text("12x\n")
    assert read_exit(tmp_path) is None and read_pid(tmp_path) is None


def test_write_exit_keeps_what_the_wrapper_wrote(tmp_path: Path) -> None:
    write_exit(tmp_path, -signal.SIGKILL)
    write_exit(tmp_path, 0)

    assert read_exit(tmp_path) == 137


def test_split_status_reads_signals_out_of_statuses() -> None:
    assert split_status(0) == (0, None)
    assert split_status(3) == (3, None)
    assert split_status(-9) == (None, 9)
    assert split_status(137) == (137, 9)
    assert split_status(255) == (255, None)


def test_group_alive_follows_a_group_and_treats_zombies_as_dead() -> None:
    process = subprocess.Popen(["sleep", "100"], start_new_session=True)
    try:
        assert group_alive(process.pid) and pid_alive(process.pid)
        os.killpg(process.pid, signal.SIGKILL)
        until(lambda: is_dead(process.pid), DEADLINE)  # a zombie until we reap it
        assert not group_alive(process.pid) and not pid_alive(process.pid)
    finally:
        process.kill()
        process.wait()
    assert not group_alive(process.pid) and not pid_alive(process.pid)


def escaped_pid(workdir: Path) -> int | None:
    """The pid the escaped process wrote, once it has written it whole."""
    text = (workdir / "escaped.pid").read_text() if (workdir / "escaped.pid").exists() else ""
    return int(text) if text.endswith("\n") else None


async def cancel_escaping(
    attempt: AttemptSpec, folder: Path, *, grace: float
) -> tuple[float, Outcome, int]:
    """Start ``attempt``, wait for its process to escape, cancel it: how long the stop took,
    the outcome and the escaped pid."""
    handle = await LocalExecutor().start(attempt)
    escaped = await until_async(lambda: escaped_pid(folder), DEADLINE, "never escaped")
    before = time.monotonic()
    await handle.terminate(grace=grace)
    outcome = await handle.wait()
    return time.monotonic() - before, outcome, escaped


@pytest.fixture
def bystanders(tmp_path: Path) -> Iterator[list[int]]:
    """``sleep 1000`` in sessions of their own, like the escaped ones, but not of the
    attempt: one without a key, one with the key of an earlier attempt in the same log dir."""
    keys = [{}, {VARIABLE: new_key(tmp_path / "log")}]
    started = [
        subprocess.Popen(
            ["sh", "-c", "exec sleep 1000"], env={**os.environ, **key}, start_new_session=True
        )
        for key in keys
    ]
    yield [process.pid for process in started]
    for process in started:
        process.kill()
        process.wait()


def test_terminate_kills_what_escaped_the_group_and_nothing_else(
    tmp_path: Path, bystanders: list[int]
) -> None:
    attempt = spec(tmp_path, ESCAPE.format(trap="") + " wait")

    took, outcome, escaped = asyncio.run(cancel_escaping(attempt, tmp_path, grace=30))

    assert (outcome.reason, outcome.signal) == ("cancelled", signal.SIGTERM)
    assert took < 10  # it died of the SIGTERM: nowhere near the grace
    until(lambda: is_dead(escaped), DEADLINE)
    assert not any(is_dead(pid) for pid in bystanders)


def test_an_escaped_process_that_ignores_sigterm_is_sigkilled_after_the_grace(
    tmp_path: Path,
) -> None:
    attempt = spec(tmp_path, ESCAPE.format(trap=STUBBORN) + " wait")

    took, outcome, escaped = asyncio.run(cancel_escaping(attempt, tmp_path, grace=0.5))

    assert outcome.signal == signal.SIGTERM  # the wrapper died at once; the escaped one lived on
    assert took >= 0.5  # wait() covered the grace for it
    until(lambda: is_dead(escaped), DEADLINE)


@pytest.mark.parametrize("timeout", ["soft_timeout", "hard_timeout"])
def test_timeouts_kill_what_escaped_the_group(tmp_path: Path, timeout: str) -> None:
    command = ESCAPE.format(trap="") + " while [ ! -s escaped.pid ]; do :; done; wait"
    attempt = spec(tmp_path, command, **{timeout: 0.5})

    outcome = run(attempt)

    escaped = escaped_pid(tmp_path)  # written before the timeout: the command waited for it
    assert outcome.reason == timeout and escaped is not None
    until(lambda: is_dead(escaped), DEADLINE)


def test_an_attempt_that_ends_by_itself_leaves_what_escaped_running(tmp_path: Path) -> None:
    outcome = run(spec(tmp_path, ESCAPE.format(trap="")))

    escaped = until(lambda: escaped_pid(tmp_path), DEADLINE, "never escaped")
    try:
        assert outcome.ok and not is_dead(escaped)  # like a daemon a cron job starts
    finally:
        os.kill(escaped, signal.SIGKILL)


def test_recovery_kills_what_escaped_an_attempt_of_a_dead_daemon(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    top = parse_job({"name": "j", "tasks": [{"name": "t", "command": "true"}]})
    owner = f"{socket.gethostname()}:{dead_pid()}"
    run = Runner(store, LocalExecutor(), settings, owner=owner).start(
        top, {"j": top}.get, workdir=str(tmp_path)
    )
    log_dir = settings.logs / str(run.id) / "0.1"
    log_dir.mkdir(parents=True)
    relative = str(log_dir.relative_to(settings.home))
    store.apply(
        Changes(
            started=[AttemptRecord(run.id, "t", 1, "running", utc_now(), relative, "true")],
            tasks=[TaskChange(run.id, "t", "running", started_at=utc_now())],
        )
    )
    env = {**os.environ, VARIABLE: new_key(log_dir)}  # what the dead daemon gave the attempt
    escaped = subprocess.Popen(["sleep", "1000"], env=env, start_new_session=True)
    try:
        assert recovery.reconcile_stale(store, settings) == [run.id]
        until(lambda: is_dead(escaped.pid), DEADLINE)
    finally:
        escaped.kill()
        escaped.wait()
    assert store.tasks(run.id)[0].reason == "lost"


def test_the_exited_members_of_a_stopped_group_are_reaped_so_it_is_seen_over() -> None:
    """A subreaper daemon adopts a killed task's orphans: their zombies are reaped by group,
    so that ``group_alive`` answers from one ``killpg`` instead of a look through /proc."""
    pid = os.posix_spawn("/bin/sh", ["sh", "-c", "exit 0"], os.environ, setsid=True)
    until(lambda: is_dead(pid), message=f"process {pid} never ended")

    reap_group(pid)

    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    assert not group_alive(pid)

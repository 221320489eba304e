"""Finding an attempt's processes by the key in their environment, with real processes."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from jobnest.executors.escapees import (
    VARIABLE,
    Census,
    Escapees,
    key_of,
    kill_left_by,
    new_key,
    scan,
)
from support.polling import until
from support.processes import dead_pid, is_dead


class Carriers:
    """Processes of a test's own, each carrying an attempt key or none; all killed after it."""

    def __init__(self) -> None:
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, key: str | None, *, new_group: bool = True) -> int:
        env = {**os.environ, **({VARIABLE: key} if key else {})}
        process = subprocess.Popen(["sleep", "1000"], env=env, start_new_session=new_group)
        self.processes.append(process)
        return process.pid

    def close(self) -> None:
        for process in self.processes:
            process.kill()
            process.wait()


@pytest.fixture
def carriers() -> Iterator[Carriers]:
    started = Carriers()
    yield started
    started.close()


def test_a_key_names_the_log_dir_and_a_fresh_random_token(tmp_path: Path) -> None:
    first, second = new_key(tmp_path / "log"), new_key(tmp_path / "log")

    assert re.fullmatch(f"{re.escape(str(tmp_path / 'log'))}:[0-9a-f]{{16}}", first)
    assert first != second


def test_key_of_reads_the_variable_out_of_a_processs_environment(
    carriers: Carriers, tmp_path: Path
) -> None:
    key = new_key(tmp_path)
    with_key, without = carriers.start(key), carriers.start(None)

    assert key_of(with_key) == key
    assert key_of(without) is None
    assert key_of(dead_pid()) is None


def test_a_scan_finds_every_carrier_by_key_but_never_the_scanning_process(
    carriers: Carriers, tmp_path: Path
) -> None:
    key, other = new_key(tmp_path), new_key(tmp_path)
    pids = [carriers.start(key), carriers.start(key, new_group=False)]
    elsewhere = carriers.start(other)
    script = "import json, os; from jobnest.executors.escapees import scan; "
    script += "print(json.dumps([os.getpid(), scan()]))"
    itself = subprocess.run(
        [sys.executable, "-c", script],
        env={**os.environ, VARIABLE: key},
        capture_output=True,
        check=True,
    )

    found = scan()
    assert sorted(found[key]) == sorted(pids) and found[other] == [elsewhere]
    pid, seen = json.loads(itself.stdout)
    assert sorted(seen[key]) == sorted(pids) and pid not in seen[key]


def test_a_census_scans_once_per_turn_of_the_event_loop(carriers: Carriers, tmp_path: Path) -> None:
    key = new_key(tmp_path)
    first = carriers.start(key)

    async def turns() -> tuple[list[int], list[int], list[int], int]:
        census = Census()
        before = census.carriers(key)
        second = carriers.start(key)
        same_turn = census.carriers(key)
        await asyncio.sleep(0)  # the census forgets its scan in the next turn
        await asyncio.sleep(0)
        return before, same_turn, census.carriers(key), second

    before, same_turn, later, second = asyncio.run(turns())

    assert before == same_turn == [first]
    assert sorted(later) == sorted([first, second])


def test_escapees_are_the_carriers_outside_the_group_and_none_other(
    carriers: Carriers, tmp_path: Path
) -> None:
    key = new_key(tmp_path)
    leader = carriers.start(key)  # leads a group of its own: the attempt's, here
    escaped = carriers.start(key)
    unrelated = [carriers.start(None), carriers.start(new_key(tmp_path))]
    escapees = Escapees(key, leader, Census())

    async def stop() -> None:
        escapees.signal(signal.SIGKILL)

    asyncio.run(stop())

    until(lambda: is_dead(escaped))
    assert not escapees.any_alive()
    assert not is_dead(leader)  # the group is signalled by its own means
    assert not any(is_dead(pid) for pid in unrelated)


def test_any_alive_follows_those_the_last_signal_reached(
    carriers: Carriers, tmp_path: Path
) -> None:
    key = new_key(tmp_path)
    escaped = carriers.start(key)
    escapees = Escapees(key, dead_pid(), Census())

    async def stop() -> None:
        escapees.signal(signal.SIGCONT)  # reaches it, harmlessly

    asyncio.run(stop())

    assert escapees.any_alive()
    os.kill(escaped, signal.SIGKILL)
    until(lambda: not escapees.any_alive())


def test_kill_left_by_kills_an_attempts_carriers_whatever_their_token(
    carriers: Carriers, tmp_path: Path
) -> None:
    log_dir, other = tmp_path / "logs" / "1" / "0.1", tmp_path / "logs" / "1" / "1.1"
    left = [carriers.start(new_key(log_dir)), carriers.start(new_key(log_dir), new_group=False)]
    spared = [carriers.start(new_key(other)), carriers.start(None)]

    kill_left_by([log_dir])

    until(lambda: all(is_dead(pid) for pid in left))
    assert not any(is_dead(pid) for pid in spared)

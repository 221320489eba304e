"""A task's output over its cap, with real processes: the runner keeps each stream under it."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from jobnest import logs
from jobnest.config import Settings, load_settings
from jobnest.executors.local import LocalExecutor
from jobnest.model.job import Job, parse_job
from jobnest.runner import Runner
from jobnest.store.base import Store
from support.polling import until_async

CAP = 64 * 1024
SLACK = 4 * 4096  # the kept ends are widened to whole blocks


@pytest.fixture
def settings(home: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """A fresh home whose outputs are capped at ``CAP`` bytes a stream."""
    home.mkdir(parents=True)
    monkeypatch.setenv("JOBNEST_LOG_CAP_BYTES", str(CAP))
    return load_settings()


def one_task(command: str) -> Job:
    return parse_job({"name": "j", "tasks": [{"name": "t", "command": command}]})


def seq(first: int, last: int) -> bytes:
    return b"".join(b"%d\n" % n for n in range(first, last + 1))


def disk_usage(path: Path) -> int:
    return os.stat(path).st_blocks * 512


def hole_of(path: Path) -> tuple[int, int]:
    """Where the file's hole begins and ends."""
    with path.open("rb") as file:
        start = os.lseek(file.fileno(), 0, os.SEEK_HOLE)
        return start, os.lseek(file.fileno(), start, os.SEEK_DATA)


def test_output_of_a_finished_task_is_cut_to_head_and_tail(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    printed = seq(1, 60_000)  # about 5 caps
    runner = Runner(store, LocalExecutor(grace=1.0), settings)
    top = one_task("seq 1 60000; seq 1 60000 >&2")
    record = runner.start(top, {"j": top}.get, workdir=str(tmp_path))

    final = asyncio.run(runner.drive(record.id))

    assert final.status == "succeeded"
    attempt = store.attempts(final.id, "t")[0]
    assert (attempt.stdout_size, attempt.stderr_size) == (len(printed), len(printed))
    for stream in ("stdout", "stderr"):
        file = settings.home / attempt.log_dir / stream
        assert os.stat(file).st_size == len(printed)
        assert disk_usage(file) <= CAP + SLACK
        start, end = hole_of(file)
        assert start >= CAP // 2 and len(printed) - end >= CAP // 2
        cut = b"" if printed[start - 1 : start] == b"\n" else b"\n"
        shown = printed[:start] + cut + logs.DROPPED.format(end - start).encode() + printed[end:]
        assert b"".join(logs.read_range(file)) == shown


def test_output_of_a_running_task_is_cut_and_read_on_by_offset(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    go = tmp_path / "go"
    os.mkfifo(go)
    first = seq(1, 60_000)
    runner = Runner(store, LocalExecutor(grace=1.0), settings)
    top = one_task(f"seq 1 60000; read _ < {go}; seq 60001 61000")

    async def scenario() -> bytes:
        record = runner.start(top, {"j": top}.get, workdir=str(tmp_path))
        driving = asyncio.create_task(runner.drive(record.id))
        attempts = await until_async(lambda: store.attempts(record.id, "t"))
        file = settings.home / attempts[0].log_dir / "stdout"
        await until_async(lambda: file.exists() and os.stat(file).st_size == len(first))
        await until_async(lambda: disk_usage(file) <= CAP + SLACK)  # while it runs
        await asyncio.to_thread(go.write_text, "go\n")
        assert (await driving).status == "succeeded"
        return b"".join(logs.read_range(file, len(first)))

    assert asyncio.run(scenario()) == seq(60_001, 61_000)  # from where a follower had got to

"""The Daemon's own services: jobs as code, driving runs, and a clean close."""

from __future__ import annotations

import asyncio
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from jobnest.config import Settings
from jobnest.daemon import Daemon
from jobnest.errors import Conflict, InvalidInput
from jobnest.runner import Runner
from jobnest.store.base import Store
from support.polling import until_async
from support.processes import is_dead


def make_daemon(store: Store, settings: Settings, workdir: Path) -> Daemon:
    return Daemon(store, settings, workdir=str(workdir), zone=ZoneInfo("UTC"))


def test_job_files_are_loaded_into_the_catalog(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    folder = tmp_path / "jobs"
    folder.mkdir()
    (folder / "a.yml").write_text("name: leaf\ntasks:\n  - {name: t, command: 'true'}\n")
    (folder / "b.yaml").write_text(
        "jobs:\n  - name: top\n    tasks:\n      - {name: l, job: leaf}\n"
    )
    daemon = make_daemon(store, settings, tmp_path)

    saved = daemon.load_files([folder])

    assert sorted((s.job.name, s.created) for s in saved) == [("leaf", True), ("top", True)]
    assert sorted(daemon.jobs()) == ["leaf", "top"]
    assert [n.id for n in daemon.plan("top").nodes] == ["l", "l/t", "l/"]
    assert not any(s.created for s in daemon.load_files([folder]))


def test_an_invalid_job_file_is_refused_with_the_reason_and_nothing_is_saved(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    (tmp_path / "good.yml").write_text("name: fine\n")
    (tmp_path / "bad.yml").write_text("name: broken\ntasks:\n  - {name: t, job: nowhere}\n")
    daemon = make_daemon(store, settings, tmp_path)

    with pytest.raises(InvalidInput) as caught:
        daemon.load_files([tmp_path / "good.yml", tmp_path / "bad.yml"])

    message = str(caught.value)
    assert "bad.yml" in message
    assert "'broken'" in message
    assert "reference to unknown job 'nowhere'" in message
    assert daemon.jobs() == {}


def test_job_files_must_hold_the_jobs_they_reference(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    daemon = make_daemon(store, settings, tmp_path)
    daemon.put_job({"name": "in-the-database"})
    (tmp_path / "top.yml").write_text("name: top\ntasks:\n  - {name: u, job: in-the-database}\n")

    with pytest.raises(InvalidInput, match="unknown job 'in-the-database'"):
        daemon.load_files([tmp_path / "top.yml"])
    assert sorted(daemon.jobs()) == ["in-the-database"]


def test_close_stops_its_runs_leaving_them_retryable_and_no_process(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    command = "if [ -e again ]; then exit 0; fi; echo $$ > pid; touch again; sleep 300"
    definition = {"name": "j", "tasks": [{"name": "t", "command": command}]}

    async def stop_mid_run() -> int:
        daemon = make_daemon(store, settings, tmp_path)
        daemon.put_job(definition)
        run = daemon.start_run("j")
        await until_async((tmp_path / "again").exists)
        await daemon.close()
        assert not daemon.is_driving(run.id)
        return run.id

    async def retry_after_restart(run_id: int) -> str:
        daemon = make_daemon(store, settings, tmp_path)
        daemon.retry(run_id)
        await until_async(lambda: not daemon.is_driving(run_id))
        await daemon.close()
        return store.get_run(run_id).status

    run_id = asyncio.run(stop_mid_run())
    assert store.get_run(run_id).status == "failed"
    assert store.tasks(run_id)[0].status == "cancelled"
    pid = int((tmp_path / "pid").read_text())
    assert is_dead(pid)
    assert asyncio.run(retry_after_restart(run_id)) == "succeeded"


def test_a_run_is_driven_once(store: Store, settings: Settings, tmp_path: Path) -> None:
    async def scenario() -> None:
        daemon = make_daemon(store, settings, tmp_path)
        daemon.put_job({"name": "j", "tasks": [{"name": "t", "command": "true"}]})
        run = daemon.start_run("j")
        with pytest.raises(Conflict, match="driven already"):
            daemon.drive(run)
        await daemon.close()

    asyncio.run(scenario())


def test_a_run_driven_by_another_process_cannot_be_cancelled_here(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    async def scenario() -> None:
        daemon = make_daemon(store, settings, tmp_path)
        daemon.put_job({"name": "j", "tasks": [{"name": "t", "command": "true"}]})
        other = Runner(store, daemon.runner.executor, settings, owner="elsewhere:1")
        jobs = daemon.jobs()
        run = other.start(jobs["j"], jobs.get, workdir=str(tmp_path))
        with pytest.raises(Conflict, match="another process"):
            await daemon.cancel(run.id)
        await daemon.close()

    asyncio.run(scenario())

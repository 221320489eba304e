"""Day-to-day controls: pause and resume schedules, run context, notes, retention, metrics.

The scheduler's part is driven with explicit instants over a real SQLite store; the API
in-process over the daemon with real task processes; the CLI over loopback HTTP to the
daemon's real app served by uvicorn in a thread, and on the store directly for ``gc``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from click.testing import CliRunner

from jobnest.cli import cli
from jobnest.config import Settings, load_settings
from jobnest.daemon import Daemon
from jobnest.errors import InvalidInput, NotFound, RunInProgress
from jobnest.executors.local import LocalExecutor
from jobnest.model.job import job_to_dict, parse_job
from jobnest.runner import Runner
from jobnest.scheduler import Scheduler
from jobnest.store.base import Changes, RunChange, RunRecord, Store
from jobnest.store.sql import SQLStore
from jobnest.web import create_app
from support.polling import until_async, until_awaited
from support.served import ServedDaemon, in_process

MINUTE = timedelta(minutes=1)


def utc(day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 3, day, hour, minute, second, tzinfo=UTC)


def put(store: Store, name: str = "j", command: str = "true", **fields: Any) -> None:
    job = parse_job({"name": name, "tasks": [{"name": "t", "command": command}], **fields})
    store.put_job(job.name, job_to_dict(job), job.content_hash, now=utc(1))


def scheduler_of(store: Store, settings: Settings, workdir: Path) -> Scheduler:
    runner = Runner(store, LocalExecutor(grace=1.0), settings)
    return Scheduler(runner, workdir=str(workdir), zone=ZoneInfo("UTC"))


def skips(store: Store, job: str = "j") -> list[tuple[datetime, str]]:
    return sorted((s.scheduled_for, s.reason) for s in store.skipped_slots(job, limit=100))


# --- pause and resume: the scheduler -----------------------------------------------------------


def test_a_paused_schedule_records_its_slots_as_skipped_and_resume_does_not_catch_up(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    put(store, schedule="*/10 * * * *")
    scheduler = scheduler_of(store, settings, tmp_path)
    assert scheduler.tick(utc(2, 9, 1)) == []  # first seen: counts from now
    scheduler.pause("j")
    assert scheduler.tick(utc(2, 9, 21)) == []
    assert scheduler.next_wakeup(utc(2, 9, 21)) is None  # a paused job wakes nobody
    # 09:30 and 09:40 came while paused, and no tick saw them: resume records them too
    assert scheduler.resume("j", utc(2, 9, 45)) is None
    paused = [(utc(2, 9, m), "paused") for m in (10, 20, 30, 40)]
    assert skips(store) == paused
    assert scheduler.tick(utc(2, 9, 46)) == []  # nothing caught up
    assert store.list_runs("j") == []
    [run] = scheduler.tick(utc(2, 9, 50))  # the next slot runs as usual
    assert run.scheduled_for == utc(2, 9, 50)


def test_resume_with_catch_up_runs_the_newest_missed_slot_once(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    put(store, schedule="*/10 * * * *", misfire="run_all")
    scheduler = scheduler_of(store, settings, tmp_path)
    scheduler.tick(utc(2, 9, 1))
    scheduler.pause("j")
    scheduler.tick(utc(2, 9, 31))
    run = scheduler.resume("j", utc(2, 9, 35), catch_up=True)
    assert run is not None
    assert (run.scheduled_for, run.trigger) == (utc(2, 9, 30), "schedule")
    assert scheduler.tick(utc(2, 9, 36)) == []  # the older slots stay skipped, even run_all
    assert len(store.list_runs("j")) == 1


def test_catch_up_refuses_while_a_run_is_in_progress_and_keeps_the_pause(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    put(store, schedule="*/10 * * * *")
    scheduler = scheduler_of(store, settings, tmp_path)
    scheduler.tick(utc(2, 9, 1))
    scheduler.pause("j")
    scheduler.tick(utc(2, 9, 11))
    job = parse_job(store.get_job("j"))
    running = scheduler.runner.start(job, {"j": job}.get, workdir=str(tmp_path))
    with pytest.raises(RunInProgress):
        scheduler.resume("j", utc(2, 9, 12), catch_up=True)
    state = store.schedule_state("j")
    assert state is not None and state.paused
    assert [r.id for r in store.list_runs("j")] == [running.id]


def test_an_older_pause_is_not_caught_up_again(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    put(store, schedule="*/10 * * * *")
    scheduler = scheduler_of(store, settings, tmp_path)
    scheduler.tick(utc(2, 9, 1))
    scheduler.pause("j")
    scheduler.tick(utc(2, 9, 11))
    scheduler.resume("j", utc(2, 9, 12))
    [run] = scheduler.tick(utc(2, 9, 20))
    asyncio.run(scheduler.runner.drive(run.id))
    scheduler.pause("j")
    assert scheduler.resume("j", utc(2, 9, 22), catch_up=True) is None  # 09:10 is old news


def test_pausing_an_unknown_job_names_it(store: Store, settings: Settings, tmp_path: Path) -> None:
    scheduler = scheduler_of(store, settings, tmp_path)
    with pytest.raises(NotFound, match="'ghost'"):
        scheduler.pause("ghost")
    with pytest.raises(NotFound, match="'ghost'"):
        scheduler.resume("ghost", utc(2))


# --- run context -------------------------------------------------------------------------------

CONTEXT = (
    'echo "$JOBNEST_JOB|$JOBNEST_TASK|$JOBNEST_ATTEMPT|$JOBNEST_TRIGGER|$JOBNEST_SCHEDULED_FOR"'
)


def test_every_task_sees_its_trigger_and_scheduled_time(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    put(store, command=CONTEXT, schedule="*/10 * * * *")
    scheduler = scheduler_of(store, settings, tmp_path)
    scheduler.tick(utc(2, 9, 1))
    [run] = scheduler.tick(utc(2, 9, 10, 5))
    asyncio.run(scheduler.runner.drive(run.id))
    [attempt] = store.attempts(run.id)
    output = (settings.home / attempt.log_dir / "stdout").read_text()
    assert output == "j|t|1|schedule|2026-03-02T09:10:00+00:00\n"


# --- retention ---------------------------------------------------------------------------------


def running_run(store: Store, settings: Settings, job: str, now: datetime) -> RunRecord:
    """A run of ``job`` created at ``now``, with an empty log folder."""
    run = store.create_run(
        job=job,
        plan={},
        snapshot={},
        task_paths=[],
        workdir="/",
        trigger="manual",
        owner="test",
        now=now,
    )
    (settings.logs / str(run.id)).mkdir(parents=True)
    return run


def ended_run(store: Store, settings: Settings, job: str, ended: datetime) -> RunRecord:
    """A run of ``job`` that ended at ``ended``, with a log folder of 100 bytes."""
    run = running_run(store, settings, job, ended - MINUTE)
    store.apply(Changes(run=RunChange(run.id, "succeeded", finished_at=ended)))
    folder = settings.logs / str(run.id) / "0.1"
    folder.mkdir()
    (folder / "stdout").write_bytes(b"x" * 100)
    return run


def write_config(settings: Settings, text: str) -> Settings:
    (settings.home / "config.toml").write_text(text)
    return load_settings()


def test_retention_removes_exactly_the_runs_its_policy_says_and_their_logs(
    store: Store, settings: Settings
) -> None:
    from jobnest import retention

    settings = write_config(settings, "[retention]\nmax_age_days = 30\nmax_runs_per_job = 2\n")
    now = utc(31)
    old = ended_run(store, settings, "a", now - timedelta(days=40))  # too old
    a2, a3 = (ended_run(store, settings, "a", now - timedelta(days=d)) for d in (3, 2))
    b1, b2, b3 = (ended_run(store, settings, "b", now - timedelta(days=d)) for d in (5, 4, 3))
    b_running = running_run(store, settings, "b", now)  # counts among b's newest two
    dry = retention.sweep(store, settings, now=now, dry_run=True)
    assert [run.id for run in dry.runs] == [old.id, b1.id, b2.id]
    assert (dry.freed_bytes, dry.log_bytes) == (300, 600)
    assert (settings.logs / str(old.id)).exists()  # dry: nothing removed

    swept = retention.sweep(store, settings, now=now, dry_run=False)
    assert [run.id for run in swept.runs] == [old.id, b1.id, b2.id]
    assert swept.freed_bytes == 300
    kept = {run.id for run in store.list_runs()}
    assert kept == {a2.id, a3.id, b3.id, b_running.id}
    assert sorted(int(p.name) for p in settings.logs.iterdir()) == sorted(kept)
    with pytest.raises(NotFound):
        store.tasks(old.id)


def test_retention_never_removes_a_run_in_progress(store: Store, settings: Settings) -> None:
    from jobnest import retention

    settings = write_config(settings, "[retention]\nmax_age_days = 1\nmax_runs_per_job = 1\n")
    ended = ended_run(store, settings, "a", utc(2))
    running = running_run(store, settings, "a", utc(3))  # 27 days old, the newest of its job
    swept = retention.sweep(store, settings, now=utc(30))
    assert [run.id for run in swept.runs] == [ended.id]
    assert store.get_run(running.id).status == "running"
    assert store.delete_runs([running.id]) == []  # the store refuses it too
    assert (settings.logs / str(running.id)).exists()


def test_retention_defaults_bound_history_and_zero_turns_a_limit_off(settings: Settings) -> None:
    assert (settings.retention.max_age_days, settings.retention.max_runs_per_job) == (90, 500)
    off = write_config(settings, "[retention]\nmax_age_days = 0\n")
    assert (off.retention.max_age_days, off.retention.max_runs_per_job) == (None, 500)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("max_age_days = -1", "max_age_days"),
        ('max_runs_per_job = "many"', "'many'"),
        ("max_runs_per_job = 1.5", "1.5"),
        ("keep = 3", "keep"),
    ],
)
def test_a_bad_retention_setting_is_refused_naming_it(
    settings: Settings, text: str, words: str
) -> None:
    with pytest.raises(InvalidInput, match=re.escape(words)):
        write_config(settings, f"[retention]\n{text}\n")


def test_gc_dry_run_shows_what_would_go_and_the_logs_size_then_gc_removes_it(
    store: Store, settings: Settings
) -> None:
    write_config(settings, "[retention]\nmax_runs_per_job = 1\n")
    now = datetime.now(UTC)
    first = ended_run(store, settings, "a", now - timedelta(hours=2))
    ended_run(store, settings, "a", now - timedelta(hours=1))
    dry = CliRunner().invoke(cli, ["gc", "--dry-run"])
    assert dry.exit_code == 0, dry.output
    assert f"would remove run {first.id} of 'a'" in dry.output
    assert "100 bytes of logs would be freed; logs use 200 bytes" in dry.output
    assert len(store.list_runs()) == 2
    done = CliRunner().invoke(cli, ["gc"])
    assert done.exit_code == 0, done.output
    assert f"removed run {first.id} of 'a'" in done.output
    assert [run.id for run in store.list_runs()] == [first.id + 1]


# --- the API -----------------------------------------------------------------------------------


@dataclass
class Api:
    client: httpx.AsyncClient
    daemon: Daemon


@pytest.fixture
async def api(settings: Settings, tmp_path: Path) -> AsyncIterator[Api]:
    async with in_process(settings, tmp_path) as (client, daemon):
        yield Api(client, daemon)


async def finished(api: Api, run_id: int) -> dict[str, Any]:
    async def ended() -> dict[str, Any] | None:
        run: dict[str, Any] = (await api.client.get(f"/api/runs/{run_id}")).json()
        return run if run["status"] != "running" else None

    return await until_awaited(ended, 15, "the run did not end")


def job_body(command: str = "true", **fields: Any) -> dict[str, Any]:
    return {"tasks": [{"name": "t", "command": command}], **fields}


@pytest.mark.anyio
async def test_pause_and_resume_through_the_api(api: Api) -> None:
    await api.client.put("/api/jobs/j", json=job_body(schedule="@hourly"))
    paused = await api.client.post("/api/jobs/j/pause")
    assert paused.status_code == 200, paused.text
    assert paused.json() == {"job": "j", "paused": True, "run": None}
    [summary] = (await api.client.get("/api/jobs")).json()["jobs"]
    assert summary["paused"] is True
    resumed = await api.client.post("/api/jobs/j/resume", params={"catch_up": "true"})
    assert resumed.json() == {"job": "j", "paused": False, "run": None}  # nothing was missed
    assert (await api.client.get("/api/jobs")).json()["jobs"][0]["paused"] is False
    missing = await api.client.post("/api/jobs/ghost/pause")
    assert missing.status_code == 404
    assert "'ghost'" in missing.json()["error"]


@pytest.mark.anyio
async def test_resume_with_catch_up_through_the_api_starts_and_drives_the_run(api: Api) -> None:
    await api.client.put("/api/jobs/j", json=job_body(schedule="* * * * *"))
    scheduler = api.daemon.scheduler
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    scheduler.tick(now - 3 * MINUTE)
    await api.client.post("/api/jobs/j/pause")
    scheduler.tick(now - MINUTE)  # skips the two slots before it
    answer = (await api.client.post("/api/jobs/j/resume?catch_up=true")).json()
    [newest] = api.daemon.store.skipped_slots("j", limit=1)  # up to the resume: now or later
    assert newest.reason == "paused" and newest.scheduled_for >= now
    assert answer["run"]["scheduled_for"] == newest.scheduled_for.isoformat().replace("+00:00", "Z")
    assert (await finished(api, answer["run"]["id"]))["status"] == "succeeded"


@pytest.mark.anyio
async def test_job_notes_are_saved_and_shown_on_the_job_page(api: Api) -> None:
    notes = "Owner: data team.\nCall <ops> before re-running."
    await api.client.put("/api/jobs/j", json=job_body(notes=notes))
    assert (await api.client.get("/api/jobs/j")).json()["notes"] == notes
    page = (await api.client.get("/jobs/j")).text
    assert 'id="job-notes">Owner: data team.\nCall &lt;ops&gt; before re-running.</p>' in page
    assert 'name="notes"' in page


@pytest.mark.anyio
async def test_a_manual_run_has_the_manual_trigger_and_no_scheduled_time(api: Api) -> None:
    await api.client.put("/api/jobs/j", json=job_body(CONTEXT))
    run = (await api.client.post("/api/jobs/j/runs")).json()
    await finished(api, run["id"])
    log = await api.client.get(f"/api/runs/{run['id']}/tasks/t/log")
    assert log.text == "j|t|1|manual|\n"


@pytest.mark.anyio
async def test_retention_through_the_api_shows_the_logs_size_then_sweeps(
    api: Api, settings: Settings
) -> None:
    old = ended_run(api.daemon.store, settings, "a", datetime.now(UTC) - timedelta(days=100))
    preview = (await api.client.get("/api/retention")).json()
    assert [run["id"] for run in preview["runs"]] == [old.id]
    assert (preview["dry_run"], preview["log_bytes"], preview["freed_bytes"]) == (True, 100, 100)
    assert (preview["max_age_days"], preview["max_runs_per_job"]) == (90, 500)
    swept = (await api.client.post("/api/retention/sweep")).json()
    assert [run["id"] for run in swept["runs"]] == [old.id]
    assert (await api.client.get(f"/api/runs/{old.id}")).status_code == 404
    assert (await api.client.get("/api/retention")).json()["log_bytes"] == 0


# --- metrics -----------------------------------------------------------------------------------

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(?:[a-zA-Z_]\w*="(?:[^"\\]|\\.)*",?)*\})? (\S+)$'
)


def parse_metrics(text: str) -> dict[str, float]:
    """The exposition format, strictly: HELP and TYPE before a family's samples, every
    sample ``name{labels} value``; returns ``name{labels}`` -> value."""
    samples: dict[str, float] = {}
    typed: set[str] = set()
    assert text.endswith("\n")
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            name, kind = line.split()[2:4]
            assert kind in ("counter", "gauge", "histogram", "summary")
            typed.add(name)
        elif not line.startswith("# HELP "):
            match = SAMPLE.match(line)
            assert match, f"not a sample line: {line!r}"
            family = re.sub(r"_(bucket|sum|count)$", "", match[1])
            assert match[1] in typed or family in typed, f"no TYPE for {line!r}"
            samples[match[1] + (match[2] or "")] = float(match[3])
    return samples


@pytest.mark.anyio
async def test_metrics_parse_as_prometheus_text_and_change_when_runs_happen(api: Api) -> None:
    before = await api.client.get("/metrics")
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
    first = parse_metrics(before.text)
    assert first["jobnest_task_duration_seconds_count"] == 0
    assert 'jobnest_runs{status="failed"}' not in first

    await api.client.put("/api/jobs/j", json=job_body("sleep 0.2; exit 3"))
    run = (await api.client.post("/api/jobs/j/runs")).json()
    await finished(api, run["id"])
    after = parse_metrics((await api.client.get("/metrics")).text)
    assert after['jobnest_runs{status="failed"}'] == 1
    assert after["jobnest_task_duration_seconds_count"] == 1
    assert after["jobnest_task_duration_seconds_sum"] >= 0.2
    assert after['jobnest_task_duration_seconds_bucket{le="0.1"}'] == 0
    assert after['jobnest_task_duration_seconds_bucket{le="+Inf"}'] == 1
    assert after["jobnest_tasks_running"] == 0
    for family in ("queue_wait", "scheduler_lag"):
        assert f"jobnest_{family}_seconds_count" in after
    assert "jobnest_notification_failures" in after


def test_metrics_observe_queue_wait_and_scheduler_lag() -> None:
    from jobnest.metrics import Metrics
    from jobnest.runner import Event

    metrics = Metrics()
    metrics.observe(Event(1, "queued", "t"), utc(2, 9, 0, 0))
    metrics.observe(Event(1, "queued", "t", reason="pool"), utc(2, 9, 0, 1))  # still waiting
    metrics.observe(Event(1, "running", "t"), utc(2, 9, 0, 3))
    metrics.observe(Event(1, "succeeded", "t"), utc(2, 9, 0, 10))
    metrics.observe_tick(utc(2, 9, 5), [(utc(2, 9, 5), utc(2, 9, 5, 2))])
    assert (metrics.queue_wait.count, metrics.queue_wait.total) == (1, 3.0)
    assert (metrics.task_duration.count, metrics.task_duration.total) == (1, 7.0)
    assert metrics.scheduler_lag.total == 2.0


@pytest.mark.anyio
async def test_healthz_tells_when_the_scheduler_last_ticked(api: Api) -> None:
    assert (await api.client.get("/healthz")).json() == {"status": "ok", "last_tick": None}
    api.daemon.metrics.observe_tick(utc(2, 9), [])
    assert (await api.client.get("/healthz")).json()["last_tick"] == "2026-03-02T09:00:00Z"


# --- the CLI against the daemon over HTTP ------------------------------------------------------


def test_pause_and_resume_through_the_cli(store: Store, settings: Settings, tmp_path: Path) -> None:
    put(store, schedule="@daily")
    with ServedDaemon(settings, tmp_path) as served:
        paused = CliRunner().invoke(cli, ["pause", "j", "--url", served.url])
        assert paused.exit_code == 0, paused.output
        assert "paused job 'j'" in paused.output
        state = store.schedule_state("j")
        assert state is not None and state.paused
        resumed = CliRunner().invoke(cli, ["resume", "j", "--catch-up", "--url", served.url])
        assert resumed.exit_code == 0, resumed.output
        assert "resumed job 'j'" in resumed.output
        assert "nothing to catch up" in resumed.output
        state = store.schedule_state("j")
        assert state is not None and not state.paused
        unknown = CliRunner().invoke(cli, ["pause", "ghost", "--url", served.url])
        assert unknown.exit_code == 2
        assert "'ghost'" in unknown.output


def test_pause_without_a_daemon_says_where_it_looked() -> None:
    result = CliRunner().invoke(cli, ["pause", "j", "--url", "http://127.0.0.1:9"])
    assert result.exit_code == 2
    assert "cannot reach the daemon at 'http://127.0.0.1:9'" in result.output


# --- retry with the current definitions --------------------------------------------------------

BEFORE = job_body("echo a")["tasks"] + [
    {"name": "b", "command": "exit 1", "after": ["t"]},
    {"name": "c", "command": "echo c", "after": ["b"]},
    {"name": "d", "command": "exit 2"},
    {"name": "e", "command": "echo e"},
]
AFTER = [
    {"name": "t", "command": "echo changed-but-succeeded"},
    {"name": "b", "command": "echo fixed", "after": ["t"]},
    {"name": "c", "command": "echo c", "after": ["b"]},
    {"name": "e2", "command": "echo e"},  # e renamed
    {"name": "f", "command": "echo f", "after": ["t"]},  # new; d removed
]


@pytest.mark.anyio
async def test_retry_with_current_definitions_shows_the_diff_and_reruns_only_what_failed(
    api: Api,
) -> None:
    await api.client.put("/api/jobs/j", json={"tasks": BEFORE})
    run = (await api.client.post("/api/jobs/j/runs")).json()
    assert (await finished(api, run["id"]))["status"] == "failed"
    await api.client.put("/api/jobs/j", json={"tasks": AFTER})

    [diff] = (await api.client.get(f"/api/runs/{run['id']}/changes")).json()["jobs"]
    assert (diff["job"], diff["change"], diff["fields"]) == ("j", "changed", [])
    tasks = {task["name"]: task for task in diff["tasks"]}
    assert {name: task["change"] for name, task in tasks.items()} == {
        "t": "changed", "b": "changed", "d": "removed", "e": "removed",
        "e2": "added", "f": "added",
    }  # fmt: skip
    assert tasks["b"]["fields"] == [{"name": "command", "before": "exit 1", "after": "echo fixed"}]

    retried = await api.client.post(f"/api/runs/{run['id']}/retry", params={"current": "true"})
    assert retried.status_code == 200, retried.text
    after = await finished(api, run["id"])
    assert after["status"] == "succeeded"
    status = {
        task["path"]: (task["status"], task["reason"], task["attempts"]) for task in after["tasks"]
    }
    assert status == {
        "t": ("succeeded", None, 1),  # kept: not run again with its new command
        "b": ("succeeded", None, 2),
        "c": ("succeeded", None, 1),
        "e2": ("succeeded", None, 1),
        "f": ("succeeded", None, 1),
        "d": ("skipped", "removed", 1),  # dropped by the new plan, its attempt kept
        "e": ("succeeded", None, 1),  # dropped too, but it had succeeded
    }
    attempts = (await api.client.get(f"/api/runs/{run['id']}/tasks/b/attempts")).json()
    assert [(a["command"], a["plan_version"]) for a in attempts] == [
        ("exit 1", 1),
        ("echo fixed", 2),
    ]
    plans = (await api.client.get(f"/api/runs/{run['id']}/plans")).json()
    assert [(p["version"], p["replaced_at"] is None) for p in plans] == [(1, False), (2, True)]
    assert plans[0]["attempts"] == {"t": 1, "b": 1, "d": 1, "e": 1}
    plan = (await api.client.get(f"/api/runs/{run['id']}/plan")).json()
    assert {node["id"] for node in plan["nodes"]} == {"t", "b", "c", "e2", "f"}


@pytest.mark.anyio
async def test_a_plain_retry_keeps_the_frozen_plan_and_current_needs_the_job(api: Api) -> None:
    await api.client.put("/api/jobs/j", json=job_body("exit 1"))
    run = (await api.client.post("/api/jobs/j/runs")).json()
    await finished(api, run["id"])
    await api.client.put("/api/jobs/j", json=job_body("true"))
    await api.client.post(f"/api/runs/{run['id']}/retry")
    assert (await finished(api, run["id"]))["status"] == "failed"  # still "exit 1"
    assert len((await api.client.get(f"/api/runs/{run['id']}/plans")).json()) == 1
    await api.client.delete("/api/jobs/j")
    gone = await api.client.get(f"/api/runs/{run['id']}/changes")
    assert gone.status_code == 404
    assert "'j'" in gone.json()["error"]
    refused = await api.client.post(f"/api/runs/{run['id']}/retry?current=true")
    assert refused.status_code == 404


def test_retry_current_in_the_cli_shows_the_changes_then_retries(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json

    monkeypatch.chdir(tmp_path)
    path = tmp_path / "j.json"
    path.write_text(json.dumps({"name": "j", "tasks": BEFORE}))
    first = CliRunner().invoke(cli, ["run", str(path), "--job", "j", "--json"])
    assert first.exit_code == 1
    run_id = json.loads(first.stdout)["run_id"]
    path.write_text(json.dumps({"name": "j", "tasks": AFTER}))
    both = CliRunner().invoke(cli, ["retry", str(run_id), "--current", "--fix", "b", "true"])
    assert both.exit_code == 2
    assert "--fix" in both.output
    done = CliRunner().invoke(cli, ["retry", str(run_id), "--current", "--from", str(path)])
    assert done.exit_code == 0, done.output
    assert "job 'j' changed" in done.output
    assert "  task 'b' changed: command: 'exit 1' → 'echo fixed'" in done.output
    assert "  task 'd' removed" in done.output


@pytest.mark.anyio
async def test_metrics_need_credentials_and_a_read_token_will_do(
    settings: Settings, tmp_path: Path
) -> None:
    from jobnest.credentials import hash_password, issue_token
    from jobnest.runner import utc_now
    from jobnest.web.auth import install_auth

    store = SQLStore.open(settings.database_url)
    store.set_password_hash(hash_password("correct horse battery"))
    token, _ = issue_token(store, "prometheus", "read", now=utc_now())
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))
    app = create_app(daemon)
    install_auth(app, store, settings)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://jobnest") as client:
            assert (await client.get("/metrics")).status_code == 401
            bearer = {"Authorization": f"Bearer {token}"}
            scraped = await client.get("/metrics", headers=bearer)
            assert scraped.status_code == 200
            assert "jobnest_tasks_running 0" in scraped.text
            assert (await client.get("/healthz")).status_code == 200
    finally:
        await daemon.close()
        store.close()


def test_a_jobs_own_retention_replaces_the_configs_limit_it_sets(
    store: Store, settings: Settings
) -> None:
    from jobnest import retention

    settings = write_config(settings, "[retention]\nmax_age_days = 30\nmax_runs_per_job = 3\n")
    put(store, "short", keep_runs=1)  # the config's 30 days still hold for it
    put(store, "long", keep_days=365)  # and the config's 3 runs for this one
    now = utc(31)
    short = [ended_run(store, settings, "short", now - timedelta(days=d)) for d in (40, 3, 2)]
    long = [ended_run(store, settings, "long", now - timedelta(days=d)) for d in (5, 4, 3, 40)]
    other = [ended_run(store, settings, "other", now - timedelta(days=d)) for d in (40, 1)]
    swept = retention.sweep(store, settings, now=now, dry_run=True)
    assert [run.id for run in swept.runs] == [short[0].id, short[1].id, long[0].id, other[0].id]


@pytest.mark.parametrize("value", [0, -1, "3", True])
def test_a_bad_keep_runs_is_refused_naming_the_job(value: object) -> None:
    with pytest.raises(InvalidInput, match=r"'keep_runs'.*'j'|'j'.*'keep_runs'"):
        parse_job({"name": "j", "keep_runs": value})


@pytest.mark.anyio
async def test_the_daemon_sweeps_by_itself_in_the_background(
    api: Api, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from jobnest import server

    monkeypatch.setattr(server, "RETAIN_FIRST", 0.01)
    monkeypatch.setattr(server, "RETAIN_SECONDS", 0.05)
    old = ended_run(api.daemon.store, settings, "a", datetime.now(UTC) - timedelta(days=100))
    sweeper = asyncio.create_task(server._retain(api.daemon))
    try:
        swept = "the background sweep did not remove the run"
        await until_async(lambda: not api.daemon.store.list_runs(), message=swept)
        assert not (settings.logs / str(old.id)).exists()
    finally:
        sweeper.cancel()

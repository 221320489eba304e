"""The CLI end to end, in process with real task processes and a real SQLite home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result

from jobnest.cli import cli
from support.polling import until
from support.processes import is_dead


def write_jobs(folder: Path, *jobs: dict[str, Any], name: str = "jobs.yml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump({"jobs": list(jobs)}, sort_keys=False))
    return path


def jobnest(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def run_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = jobnest(*args, "--json")
    return result.exit_code, json.loads(result.stdout.strip().splitlines()[-1])


def log_task(name: str, after: list[str] | None = None, extra: str = "") -> dict[str, Any]:
    task: dict[str, Any] = {"name": name, "command": f"{extra}echo {name} >> order.log"}
    if after:
        task["after"] = after
    return task


def order(work: Path) -> list[str]:
    return (work / "order.log").read_text().split()


def test_child_job_runs_inline_in_order(work: Path) -> None:
    path = write_jobs(
        work,
        {"name": "job2", "tasks": [log_task("task3"), log_task("task4", ["task3"])]},
        {
            "name": "job1",
            "tasks": [
                log_task("task1"),
                {"name": "child", "job": "job2", "after": ["task1"]},
                log_task("task2", ["child"]),
            ],
        },
    )
    code, summary = run_json("run", str(path), "--job", "job1")
    assert code == 0
    assert order(work) == ["task1", "task3", "task4", "task2"]
    assert summary["status"] == "succeeded"
    assert summary["job"] == "job1"
    assert set(summary["tasks"]) == {"task1", "child/task3", "child/task4", "task2"}
    assert summary["tasks"]["child/task3"] == {"status": "succeeded", "exit_code": 0, "attempts": 1}


def test_job_referenced_twice_and_at_two_depths_runs_once_per_reference(work: Path) -> None:
    path = write_jobs(
        work,
        {"name": "leaf", "tasks": [{"name": "x", "command": 'echo "$JOBNEST_TASK" >> order.log'}]},
        {"name": "mid", "tasks": [{"name": "inner", "job": "leaf"}]},
        {
            "name": "top",
            "tasks": [
                {"name": "a", "job": "leaf"},
                {"name": "b", "job": "leaf", "after": ["a"]},
                {"name": "c", "job": "mid"},
            ],
        },
    )
    code, _ = run_json("run", str(path), "--job", "top")
    assert code == 0
    assert sorted(order(work)) == ["a/x", "b/x", "c/inner/x"]


@pytest.mark.parametrize(
    ("jobs", "expected"),
    [
        (
            [
                {"name": "a", "tasks": [{"name": "to-b", "job": "b"}]},
                {"name": "b", "tasks": [{"name": "to-c", "job": "c"}]},
                {"name": "c", "tasks": [{"name": "to-a", "job": "a"}]},
            ],
            ["a", "to-b (b)", "to-c (c)", "to-a (a)"],
        ),
        ([{"name": "self", "tasks": [{"name": "again", "job": "self"}]}], ["self", "again (self)"]),
    ],
)
def test_reference_cycles_are_refused_naming_the_path(
    work: Path, jobs: list[dict[str, Any]], expected: list[str]
) -> None:
    path = write_jobs(work, *jobs)
    for command in (["validate", str(path)], ["run", str(path), "--job", jobs[0]["name"]]):
        result = jobnest(*command)
        assert result.exit_code == 2
        assert "cycle" in result.stderr
        assert " → ".join(expected) in result.stderr
        assert "Traceback" not in result.output


def test_child_with_a_task_cycle_is_refused(work: Path) -> None:
    path = write_jobs(
        work,
        {"name": "child", "tasks": [log_task("x", ["y"]), log_task("y", ["x"])]},
        {"name": "parent", "tasks": [{"name": "c", "job": "child"}]},
    )
    result = jobnest("run", str(path), "--job", "parent")
    assert result.exit_code == 2
    assert "'child'" in result.stderr
    assert "cycle" in result.stderr
    assert not (work / "order.log").exists()


def test_failure_in_child_blocks_downstream_and_retry_finishes_the_run(work: Path) -> None:
    path = write_jobs(
        work,
        {
            "name": "child",
            "tasks": [log_task("ok1"), log_task("flaky", ["ok1"], extra="test -f fixed && ")],
        },
        {
            "name": "parent",
            "tasks": [
                log_task("first"),
                {"name": "c", "job": "child", "after": ["first"]},
                log_task("after-child", ["c"]),
                log_task("side"),
            ],
        },
    )
    code, summary = run_json("run", str(path), "--job", "parent")
    assert code == 1
    tasks = summary["tasks"]
    assert summary["status"] == "failed"
    assert tasks["c/flaky"]["status"] == "failed"
    assert tasks["c/flaky"]["exit_code"] == 1
    assert tasks["after-child"]["status"] == "upstream_failed"
    assert tasks["side"]["status"] == "succeeded"
    assert sorted(order(work)) == ["first", "ok1", "side"]

    (work / "fixed").touch()
    code, retried = run_json("retry", str(summary["run_id"]))
    assert code == 0
    assert retried["run_id"] == summary["run_id"]
    assert retried["status"] == "succeeded"
    assert retried["tasks"]["c/flaky"]["attempts"] == 2
    assert retried["tasks"]["first"]["attempts"] == 1
    assert sorted(order(work)) == ["after-child", "first", "flaky", "ok1", "side"]


def test_fixing_a_command_before_retry_is_recorded(work: Path) -> None:
    path = write_jobs(work, {"name": "j", "tasks": [{"name": "bad", "command": "exit 4"}]})
    code, summary = run_json("run", str(path), "--job", "j")
    assert (code, summary["tasks"]["bad"]["exit_code"]) == (1, 4)
    run_id = str(summary["run_id"])
    fixed = jobnest("fix", run_id, "bad", "echo fixed >> order.log")
    assert fixed.exit_code == 0
    assert "exit 4" in fixed.stdout
    code, _ = run_json("retry", run_id)
    assert code == 0
    assert order(work) == ["fixed"]


def test_retry_fix_option_and_retry_of_a_succeeded_run(work: Path) -> None:
    path = write_jobs(work, {"name": "j", "tasks": [{"name": "bad", "command": "false"}]})
    _, summary = run_json("run", str(path), "--job", "j")
    run_id = str(summary["run_id"])
    code, retried = run_json("retry", run_id, "--fix", "bad", "true")
    assert (code, retried["status"]) == (0, "succeeded")
    again = jobnest("retry", run_id)
    assert again.exit_code == 2
    assert "succeeded" in again.stderr


def test_fifty_levels_of_nesting_run(work: Path) -> None:
    jobs = [{"name": "level0", "tasks": [log_task("bottom")]}]
    jobs += [
        {"name": f"level{i}", "tasks": [{"name": f"l{i}", "job": f"level{i - 1}"}]}
        for i in range(1, 50)
    ]
    path = write_jobs(work, *jobs)
    code, summary = run_json("run", str(path), "--job", "level49")
    assert code == 0
    [only] = summary["tasks"]
    assert only.count("/") == 49
    assert order(work) == ["bottom"]


def test_soft_timeout_kills_the_tasks_children(work: Path) -> None:
    path = write_jobs(
        work,
        {
            "name": "j",
            "tasks": [
                {
                    "name": "slow",
                    "command": "sleep 300 & echo $! > child.pid; wait",
                    "soft_timeout": 0.5,
                }
            ],
        },
    )
    code, summary = run_json("run", str(path), "--job", "j")
    assert code == 1
    assert summary["tasks"]["slow"]["status"] == "failed"
    child = int((work / "child.pid").read_text())
    until(lambda: is_dead(child), message=f"process {child} lives on")


def test_retries_reattempt_a_failing_task(work: Path) -> None:
    command = "echo x >> tries; test $(wc -l < tries) -ge 3"
    path = write_jobs(
        work, {"name": "j", "tasks": [{"name": "t", "command": command, "retries": 2}]}
    )
    code, summary = run_json("run", str(path), "--job", "j")
    assert code == 0
    assert summary["tasks"]["t"]["attempts"] == 3


def test_task_environment_names_the_run_and_task(work: Path) -> None:
    command = 'echo "$JOBNEST_RUN_ID $JOBNEST_JOB $JOBNEST_TASK $JOBNEST_ATTEMPT" > env.txt'
    path = write_jobs(work, {"name": "j", "tasks": [{"name": "t", "command": command}]})
    _, summary = run_json("run", str(path), "--job", "j")
    assert (work / "env.txt").read_text().split() == [str(summary["run_id"]), "j", "t", "1"]


def test_plan_json_has_tasks_and_group_markers(work: Path) -> None:
    path = write_jobs(
        work,
        {"name": "child", "tasks": [log_task("x")]},
        {"name": "p", "tasks": [log_task("a"), {"name": "c", "job": "child", "after": ["a"]}]},
    )
    result = jobnest("plan", str(path), "--job", "p", "--json")
    assert result.exit_code == 0
    plan = json.loads(result.stdout)
    kinds = {node["id"]: node["kind"] for node in plan["nodes"]}
    assert kinds == {"a": "task", "c": "start", "c/x": "task", "c/": "end"}
    assert ["a", "c"] in plan["edges"]
    text = jobnest("plan", str(path), "--job", "p")
    assert "c/x: echo x >> order.log  after a" in text.stdout


def test_logs_show_streams_head_and_tail(work: Path) -> None:
    command = "seq 1 100; echo oops >&2"
    path = write_jobs(work, {"name": "j", "tasks": [{"name": "t", "command": command}]})
    _, summary = run_json("run", str(path), "--job", "j")
    run_id = str(summary["run_id"])
    assert jobnest("logs", run_id, "t").stdout.split() == [str(i) for i in range(1, 101)]
    assert jobnest("logs", run_id, "t", "--head", "2").stdout == "1\n2\n"
    assert jobnest("logs", run_id, "t", "--tail", "2").stdout == "99\n100\n"
    assert jobnest("logs", run_id, "t", "--stderr").stdout == "oops\n"
    missing = jobnest("logs", run_id, "nope")
    assert missing.exit_code == 2
    assert "'nope'" in missing.stderr


def test_runs_lists_history_newest_first(work: Path) -> None:
    path = write_jobs(work, {"name": "j", "tasks": [{"name": "t", "command": "true"}]})
    run_json("run", str(path), "--job", "j")
    jobnest("run", str(path), "--job", "j")
    listed = json.loads(jobnest("runs", "--json").stdout)
    assert [r["id"] for r in listed] == [2, 1]
    assert listed[0]["status"] == "succeeded"


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        ({"name": "j", "tasks": [{"name": "a", "command": "true", "after": ["ghost"]}]}, "'ghost'"),
        (
            {"name": "j", "tasks": [{"name": "a", "command": "x"}, {"name": "a", "command": "y"}]},
            "duplicate",
        ),
        ({"name": "j", "tasks": [{"name": "a", "command": "x", "job": "k"}]}, "both"),
        ({"name": "j", "tasks": [{"name": "a"}]}, "neither"),
        ({"name": "j", "tasks": [{"name": "a/b", "command": "x"}]}, "'a/b'"),
        ({"name": "j", "tasks": [{"name": "a\x01", "command": "x"}]}, "control character"),
        ({"name": "j", "tasks": [{"name": "a", "job": "ghost"}]}, "'ghost'"),
        ({"name": "j", "schedule": "61 * * * *", "tasks": []}, "'61 * * * *'"),
        ({"name": "j", "timezone": "Mars/Olympus", "tasks": []}, "'Mars/Olympus'"),
    ],
)
def test_invalid_definitions_exit_2_with_one_line(
    work: Path, content: dict[str, Any], needle: str
) -> None:
    path = write_jobs(work, content)
    result = jobnest("validate", str(path))
    assert result.exit_code == 2
    assert needle in result.stderr
    assert "'j'" in result.stderr
    assert str(path) in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_unknown_job_file_and_run_exit_2(work: Path) -> None:
    assert jobnest("validate", "nowhere.yml").exit_code == 2
    path = write_jobs(work, {"name": "j", "tasks": []})
    result = jobnest("run", str(path), "--job", "other")
    assert (result.exit_code, "'other'" in result.stderr) == (2, True)
    assert jobnest("retry", "999").exit_code == 2
    (work / "bad.yml").write_text("jobs: [\n")
    assert "bad.yml" in jobnest("validate", str(work / "bad.yml")).stderr


def test_real_process_exit_codes_and_no_traceback(work: Path) -> None:
    path = write_jobs(work, {"name": "j", "tasks": [{"name": "t", "command": "false"}]})
    bad = write_jobs(work, {"name": "j", "tasks": [{"name": "t"}]}, name="bad.yml")
    env = {**os.environ, "JOBNEST_HOME": str(work.parent / "home")}

    def call(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "jobnest", *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )

    assert call("run", str(path), "--job", "j").returncode == 1
    invalid = call("run", str(bad), "--job", "j")
    assert invalid.returncode == 2
    assert "Traceback" not in invalid.stderr
    assert invalid.stderr.startswith("error: ")


def test_two_cli_processes_on_one_home(work: Path) -> None:
    jobs = [
        {"name": f"j{i}", "tasks": [{"name": f"t{k}", "command": "true"} for k in range(20)]}
        for i in range(2)
    ]
    path = write_jobs(work, *jobs)
    env = {**os.environ, "JOBNEST_HOME": str(work.parent / "home")}
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "jobnest", "run", str(path), "--job", f"j{i}", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(2)
    ]
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert sorted(s["run_id"] for s in summaries) == [1, 2]
    assert all(len(s["tasks"]) == 20 for s in summaries)

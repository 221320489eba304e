"""``jobnest import`` and ``jobnest export`` end to end: real files, a real SQLite home, real
task processes for converted cron lines, and ``--apply`` over loopback HTTP to the daemon's
real app (``create_app`` + ``install_auth``) served by uvicorn in a thread."""

from __future__ import annotations

import json
import socket
import stat
import tomllib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from click.testing import CliRunner, Result

from jobnest.catalog import Catalog
from jobnest.cli import cli
from jobnest.config import Settings, load_settings
from jobnest.credentials import hash_password, issue_token
from jobnest.model.job import job_to_dict, parse_job
from jobnest.runner import utc_now
from jobnest.store.sql import SQLStore
from support.ports import free_port
from support.served import ServedDaemon


def jobnest(*args: str, stdin: str | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), input=stdin, catch_exceptions=False)


def assert_refused(result: Result, *words: str) -> None:
    """Exit 2 with one error line on stderr, last (after any notes), holding ``words``."""
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert [line for line in lines if not line.startswith("note: ")] == lines[-1:], lines
    assert lines[-1].startswith("error: ")
    for word in words:
        assert word in lines[-1]


def write_json(path: Path, data: Any) -> str:
    """Write ``data`` to ``path`` in the current folder; its name, as a user would type it."""
    path.write_text(json.dumps(data))
    return path.name


def dagobah_job(name: str, tasks: list[dict[str, Any]], **fields: Any) -> dict[str, Any]:
    """A job as dagobah's /api/export_job writes it, run state included."""
    return {
        "job_id": 3,
        "name": name,
        "parent_id": 1,
        "tasks": tasks,
        "dependencies": fields.pop("dependencies", {t["name"]: [] for t in tasks}),
        "status": "waiting",
        "cron_schedule": fields.pop("cron_schedule", None),
        "next_run": None,
        "notes": fields.pop("notes", None),
        **fields,
    }


def dagobah_task(name: str, command: str, **fields: Any) -> dict[str, Any]:
    return {
        "command": command,
        "name": name,
        "started_at": None,
        "completed_at": None,
        "success": None,
        "soft_timeout": 0,
        "hard_timeout": 0,
        "hostname": None,
        **fields,
    }


PARENT = dagobah_job(
    "nightly",
    [
        dagobah_task("extract", "echo extract >> order.log", soft_timeout=60, hard_timeout=90),
        {"name": "load", "job_name": "warehouse-load"},
        dagobah_task("report", "echo report >> order.log", hostname="reports-box"),
    ],
    dependencies={"extract": ["load"], "load": ["report"], "report": []},
    cron_schedule="0 2 * * *",
    notes="imported from dagobah",
)
CHILD = dagobah_job("warehouse-load", [dagobah_task("stage", "echo stage >> order.log")])


# --- crontab ------------------------------------------------------------------------------------

CRONTAB = r"""SHELL=/bin/bash
GREETING=hello world
# jobnest: feed
* * * * * cat > fed.txt%first line%second \% line
# jobnest: bashism
* * * * * echo "$GREETING" {a,b} > bash.txt
# jobnest: percent
* * * * * date +\%Y > year.txt
@reboot /usr/bin/agent
"""


def test_converted_cron_lines_run_as_cron_ran_them(work: Path) -> None:
    imported = jobnest("import", "crontab", "-o", "jobs.yml", stdin=CRONTAB)
    assert imported.exit_code == 0, imported.stderr
    assert "note: stdin:9: @reboot has no jobnest equivalent" in imported.stderr
    assert "3 job(s) imported: feed, bashism, percent" in imported.stderr
    assert jobnest("validate", "jobs.yml").exit_code == 0
    for name in ("feed", "bashism", "percent"):
        assert jobnest("run", "jobs.yml", "--job", name).exit_code == 0, name
    assert (work / "fed.txt").read_text() == "first line\nsecond % line\n"
    assert (work / "bash.txt").read_text() == "hello world a b\n"
    assert (work / "year.txt").read_text() == f"{datetime.now(UTC):%Y}\n"


def test_grouped_chains_run_in_order_and_retry_from_the_failed_step(work: Path) -> None:
    crontab = "0 1 * * * echo a >> order.log && ls ok && echo b >> order.log; echo c >> order.log\n"
    assert jobnest("import", "crontab", "--group", "-o", "jobs.yml", stdin=crontab).exit_code == 0
    plan = json.loads(jobnest("plan", "jobs.yml", "--job", "cron-0_1_*_*_*", "--json").stdout)
    assert [node["id"] for node in plan["nodes"]] == ["echo-a", "ls-ok", "echo-b", "echo-c"]
    failed = jobnest("run", "jobs.yml", "--job", "cron-0_1_*_*_*", "--json")
    assert failed.exit_code == 1
    run_id = json.loads(failed.stdout.strip().splitlines()[-1])["run_id"]
    (work / "ok").touch()
    assert jobnest("retry", str(run_id)).exit_code == 0
    assert (work / "order.log").read_text().split() == ["a", "b", "c"]


def test_crontab_reads_a_file_and_refuses_a_bad_line_naming_it(work: Path) -> None:
    (work / "tab").write_text("0 1 * * * ok.sh\n0 1 * * nonsense\n")
    assert_refused(jobnest("import", "crontab", "tab"), "tab:2:", "five time fields")
    assert_refused(jobnest("import", "crontab", "missing"), "missing", "cannot read")
    (work / "latin1").write_bytes(b"0 1 * * * caf\xe9.sh\n")
    assert_refused(jobnest("import", "crontab", "latin1"), "latin1", "not UTF-8")
    result = jobnest("import", "crontab", "-o", "no/such/dir/jobs.yml", stdin="@daily x\n")
    assert_refused(result, "cannot write 'no/such/dir/jobs.yml'")


# --- dagobah ------------------------------------------------------------------------------------


@pytest.mark.parametrize("order", [("parent", "child"), ("child", "parent")])
def test_dagobah_exports_import_in_either_order_and_run(work: Path, order: tuple[str, str]) -> None:
    files = {
        "parent": write_json(work / "nightly.json", PARENT),
        "child": write_json(work / "warehouse-load.json", CHILD),
    }
    imported = jobnest("import", "dagobah", *(files[o] for o in order), "-o", "jobs.yml")
    assert imported.exit_code == 0, imported.stderr
    jobs = {raw["name"]: raw for raw in yaml.safe_load((work / "jobs.yml").read_text())["jobs"]}
    assert jobs["nightly"]["timezone"] == "UTC"
    assert jobs["nightly"]["tasks"][0] == {
        "name": "extract",
        "command": "echo extract >> order.log",
        "soft_timeout": 60,
        "hard_timeout": 90,
    }
    assert jobs["nightly"]["tasks"][2]["host"] == "reports-box"
    assert jobnest("validate", "jobs.yml").exit_code == 0
    plan = json.loads(jobnest("plan", "jobs.yml", "--job", "nightly", "--json").stdout)
    tasks = [node["id"] for node in plan["nodes"] if node["kind"] == "task"]
    assert tasks == ["extract", "load/stage", "report"]


def test_dagobah_reports_unknown_fields_and_refuses_a_missing_reference(work: Path) -> None:
    odd = dagobah_job("odd", [dagobah_task("a", "true", retries=2)], owner="ops")
    imported = jobnest("import", "dagobah", write_json(work / "odd.json", odd))
    assert imported.exit_code == 0
    assert "note: odd.json: job 'odd': unknown field 'owner' not carried over" in imported.stderr
    assert "task 'a': unknown field 'retries'" in imported.stderr
    assert yaml.safe_load(imported.stdout)["jobs"][0]["name"] == "odd"
    parent = write_json(work / "nightly.json", PARENT)
    assert_refused(jobnest("import", "dagobah", parent), "'warehouse-load'", "none of the files")
    (work / "broken.json").write_text('{"name": "x",\n')
    assert_refused(jobnest("import", "dagobah", "broken.json"), "broken.json:2: invalid JSON")


DAGOBAHD = """\
Dagobahd:
  email: basic
Email:
  host: smtp.example.com
  port: 587
  auth_required: True
  user: dagobah@example.com
  password: "s3cret"
  use_tls: True
  from_address: dagobah@{HOSTNAME}
  recipients: ['ops@example.com']
  send_on_success: True
  send_on_failure: True
"""


def test_dagobah_config_gives_an_smtp_section_and_notify_on_every_job(work: Path) -> None:
    (work / "dagobahd.yml").write_text(DAGOBAHD)
    child = write_json(work / "child.json", CHILD)
    result = jobnest(
        "import", "dagobah", child, "--config", "dagobahd.yml", "--config-out", "smtp.toml",
        "-o", "jobs.yml",
    )  # fmt: skip
    assert result.exit_code == 0, result.stderr
    smtp = tomllib.loads((work / "smtp.toml").read_text())["smtp"]
    assert smtp == {
        "host": "smtp.example.com",
        "port": 587,
        "starttls": True,
        "tls": False,
        "username": "dagobah@example.com",
        "password": "s3cret",
        "from": f"dagobah@{socket.gethostname()}",
    }
    assert stat.S_IMODE((work / "smtp.toml").stat().st_mode) == 0o600
    assert "$JOBNEST_HOME/config.toml" in result.stderr
    (job,) = yaml.safe_load((work / "jobs.yml").read_text())["jobs"]
    assert job["notify"] == {"email": ["ops@example.com"], "on": ["failure", "success"]}


def test_dagobah_config_alone_goes_to_stdout_and_never_mixes_with_jobs(work: Path) -> None:
    (work / "dagobahd.yml").write_text(DAGOBAHD)
    alone = jobnest("import", "dagobah", "--config", "dagobahd.yml")
    assert alone.exit_code == 0
    assert tomllib.loads(alone.stdout)["smtp"]["host"] == "smtp.example.com"
    child = write_json(work / "child.json", CHILD)
    both = jobnest("import", "dagobah", child, "--config", "dagobahd.yml")
    assert_refused(both, "both go to stdout")
    assert_refused(jobnest("import", "dagobah"), "--config")


# --- export -------------------------------------------------------------------------------------

HAND_WRITTEN = """\
jobs:
- name: warehouse-load
  tasks: [{name: stage, command: ./stage.sh}, {name: merge, command: psql -f m.sql, after: stage}]
- tasks:
  - {command: "./extract.sh > out/x.csv", name: extract, soft_timeout: 600.0, hard_timeout: 900}
  - {name: load, job: warehouse-load, after: [extract]}
  - name: report
    command: |
      make report
      mail -s done ops@example.com < report.txt
    host: reports-box
    after: [load]
  notify: {on: [failure], email: ops@example.com}
  timezone: Europe/Berlin
  schedule: "0 2 * * *"
  name: nightly
  notes: the nightly load
- name: alone
  tasks: []
"""


def save_in_store(path: Path) -> None:
    """What ``jobnest serve --jobs PATH`` does with job files: save them in the store."""
    store = SQLStore.open(load_settings().database_url)
    try:
        Catalog(store, utc_now).load_files([path])
    finally:
        store.close()


def test_export_import_export_is_byte_identical(
    work: Path, home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home.mkdir()
    (work / "hand.yml").write_text(HAND_WRITTEN)
    save_in_store(work / "hand.yml")
    first = jobnest("export", "-o", "exported.yml")
    assert first.exit_code == 0, first.stderr
    exported = (work / "exported.yml").read_text()
    assert jobnest("validate", "exported.yml").exit_code == 0
    assert jobnest("export", "--from", "exported.yml").stdout == exported

    other = tmp_path / "other-home"
    other.mkdir()
    monkeypatch.setenv("JOBNEST_HOME", str(other))
    save_in_store(work / "exported.yml")
    assert jobnest("export").stdout == exported


def test_export_takes_named_jobs_with_what_they_reference(work: Path) -> None:
    (work / "hand.yml").write_text(HAND_WRITTEN)
    result = jobnest("export", "nightly", "--from", "hand.yml")
    assert result.exit_code == 0
    names = [job["name"] for job in yaml.safe_load(result.stdout)["jobs"]]
    assert names == ["nightly", "warehouse-load"]
    assert "note: also exported, as referenced: warehouse-load" in result.stderr
    assert_refused(jobnest("export", "ghost", "--from", "hand.yml"), "'ghost'", "alone")


def test_imported_yaml_is_already_in_export_form(work: Path) -> None:
    (work / "tab").write_text("0 1 * * * b.sh\n0 2 * * * a.sh\n")
    assert jobnest("import", "crontab", "tab", "-o", "jobs.yml").exit_code == 0
    imported = yaml.safe_load((work / "jobs.yml").read_text())
    exported = yaml.safe_load(jobnest("export", "--from", "jobs.yml").stdout)
    assert sorted(imported["jobs"], key=lambda job: job["name"]) == exported["jobs"]


# --- --apply against the daemon's real app -------------------------------------------------------

PASSWORD = "correct horse battery"


@pytest.fixture
def daemon(settings: Settings, work: Path) -> Iterator[tuple[ServedDaemon, dict[str, str]]]:
    """A daemon that wants a password or a token; the tokens: a full one and a read one."""
    store = SQLStore.open(settings.database_url)
    try:
        store.set_password_hash(hash_password(PASSWORD))
        full, _ = issue_token(store, "import", "full", now=utc_now())
        read, _ = issue_token(store, "look", "read", now=utc_now())
    finally:
        store.close()
    with ServedDaemon(settings, work, auth=True) as served:
        yield served, {"full": full, "read": read}


def test_apply_saves_referenced_jobs_first_and_never_overwrites_by_surprise(
    daemon: tuple[ServedDaemon, dict[str, str]], work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    served, tokens = daemon
    monkeypatch.setenv("JOBNEST_TOKEN", tokens["full"])
    files = [write_json(work / "nightly.json", PARENT), write_json(work / "child.json", CHILD)]
    applied = jobnest("import", "dagobah", *files, "--apply", "--url", served.url)
    assert applied.exit_code == 0, applied.stderr
    assert applied.stdout.splitlines() == [
        f"created job 'warehouse-load' on {served.url}",
        f"created job 'nightly' on {served.url}",
    ]
    headers = {"Authorization": f"Bearer {tokens['full']}"}
    saved = httpx.get(f"{served.url}/api/jobs/nightly", headers=headers).json()
    local = jobnest("import", "dagobah", *files).stdout
    assert saved == job_to_dict(parse_job(yaml.safe_load(local)["jobs"][0]))

    again = jobnest("import", "dagobah", *files, "--apply", "--url", served.url)
    assert_refused(again, "already has 'nightly', 'warehouse-load'", "--replace")
    replaced = jobnest("import", "dagobah", *files, "--apply", "--replace", "--url", served.url)
    assert replaced.exit_code == 0, replaced.stderr
    assert replaced.stdout.splitlines()[1] == f"replaced job 'nightly' on {served.url}"


def test_apply_says_what_the_daemon_wants(
    daemon: tuple[ServedDaemon, dict[str, str]], work: Path
) -> None:
    served, tokens = daemon
    tab = "0 1 * * * a.sh\n"
    no_token = jobnest("import", "crontab", "--apply", "--url", served.url, stdin=tab)
    assert_refused(no_token, "(401)", "API token")
    read_only = jobnest(
        "import", "crontab", "--apply", "--url", served.url, "--token", tokens["read"], stdin=tab
    )
    assert_refused(read_only, "job 'a.sh' (403)", "--scope full")


def test_apply_to_a_port_where_nothing_listens_is_refused(work: Path) -> None:
    port = free_port()
    result = jobnest(
        "import", "crontab", "--apply", "--url", f"http://127.0.0.1:{port}", stdin="@daily x\n"
    )
    assert_refused(result, "cannot reach the daemon", str(port))

"""dagobah exports and dagobahd.yml's Email: section → jobnest, written by hand from the format
dagobah's ``/api/export_job`` produces (``Job._serialize(strict_json=True)``)."""

from __future__ import annotations

from typing import Any

import pytest

from jobnest.errors import InvalidInput
from jobnest.importers.dagobah import convert_exports
from jobnest.importers.dagobah_email import convert_email
from jobnest.model.job import CommandTask, JobRef, Notify


def export(name: str, *tasks: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """A job as dagobah exports it, run state included."""
    dependencies = fields.pop("dependencies", {t["name"]: [] for t in tasks})
    return {
        "job_id": 1,
        "name": name,
        "parent_id": 7,
        "tasks": list(tasks),
        "dependencies": dependencies,
        "status": "waiting",
        "cron_schedule": fields.pop("cron_schedule", None),
        "next_run": None,
        "notes": fields.pop("notes", None),
        **fields,
    }


def task(name: str, command: str, **fields: Any) -> dict[str, Any]:
    """A command task as dagobah exports it, last run's state included."""
    return {
        "command": command,
        "name": name,
        "started_at": "2024-05-01T02:00:00",
        "completed_at": "2024-05-01T02:00:05",
        "success": True,
        "soft_timeout": fields.pop("soft_timeout", 0),
        "hard_timeout": fields.pop("hard_timeout", 0),
        "hostname": fields.pop("hostname", None),
        **fields,
    }


def reference(name: str, job: str) -> dict[str, Any]:
    return {"name": name, "job_name": job}


def test_a_plain_job_becomes_a_utc_job_with_dependencies_inverted() -> None:
    data = export(
        "nightly",
        task("extract", "./extract.sh"),
        task("load", "./load.sh"),
        task("report", "make report"),
        dependencies={"extract": ["load", "report"], "load": ["report"], "report": []},
        cron_schedule="0 2 * * *",
        notes="the nightly load",
    )
    imported = convert_exports([("nightly.json", data)])
    (job,) = imported.jobs
    assert (job.name, job.schedule, job.timezone, job.notes) == (
        "nightly",
        "0 2 * * *",
        "UTC",
        "the nightly load",
    )
    assert {t.name: t.after for t in job.tasks} == {
        "extract": (),
        "load": ("extract",),
        "report": ("extract", "load"),
    }
    assert imported.notes == ()


def test_run_state_is_left_out_silently() -> None:
    imported = convert_exports([("j.json", export("j", task("a", "true")))])
    assert imported.notes == ()
    (only,) = imported.jobs[0].tasks
    assert only == CommandTask("a", "true")


def test_timeouts_and_remote_host_carry_over() -> None:
    data = export(
        "remote",
        task("dump", "pg_dump db", soft_timeout=600, hard_timeout=900, hostname="db-box"),
        task("zero", "true", soft_timeout=0, hard_timeout=None, hostname=""),
    )
    dump, zero = convert_exports([("r.json", data)]).jobs[0].tasks
    assert (dump.options.soft_timeout, dump.options.hard_timeout, dump.options.host) == (
        600,
        900,
        "db-box",
    )
    assert (zero.options.soft_timeout, zero.options.hard_timeout, zero.options.host) == (
        None,
        None,
        None,
    )


def test_a_soft_timeout_after_the_hard_one_is_dropped_with_a_note() -> None:
    data = export("j", task("a", "sleep 9", soft_timeout=900, hard_timeout=300))
    imported = convert_exports([("j.json", data)])
    (a,) = imported.jobs[0].tasks
    assert (a.options.soft_timeout, a.options.hard_timeout) == (None, 300)
    assert "only hard_timeout is kept" in imported.notes[0]


def test_a_timeout_that_is_not_seconds_is_left_out_with_a_note() -> None:
    data = export("j", task("a", "true", soft_timeout=-5, hard_timeout="ten"))
    imported = convert_exports([("j.json", data)])
    (a,) = imported.jobs[0].tasks
    assert (a.options.soft_timeout, a.options.hard_timeout) == (None, None)
    assert any("soft_timeout -5" in note for note in imported.notes)
    assert any("hard_timeout 'ten'" in note for note in imported.notes)


@pytest.mark.parametrize("order", [("parent", "child"), ("child", "parent")])
def test_job_references_resolve_whatever_the_order_of_the_files(order: tuple[str, str]) -> None:
    files = {
        "parent": export(
            "parent",
            task("prepare", "./prepare.sh"),
            reference("load", "child"),
            dependencies={"prepare": ["load"], "load": []},
        ),
        "child": export("child", task("stage", "./stage.sh")),
    }
    imported = convert_exports([(f"{name}.json", files[name]) for name in order])
    jobs = {job.name: job for job in imported.jobs}
    assert jobs["parent"].by_name["load"] == JobRef("load", "child", ("prepare",))
    assert [job.name for job in imported.jobs] == list(order)


def test_two_jobs_referencing_each_other_are_a_cycle() -> None:
    a = export("a", reference("to-b", "b"))
    b = export("b", reference("to-a", "a"))
    with pytest.raises(InvalidInput, match="cycle") as caught:
        convert_exports([("a.json", a), ("b.json", b)])
    assert "a.json" in str(caught.value)


def test_a_reference_to_a_job_in_none_of_the_files_is_refused() -> None:
    parent = export("parent", reference("load", "warehouse-load"))
    with pytest.raises(InvalidInput) as caught:
        convert_exports([("parent.json", parent)])
    message = str(caught.value)
    for part in ("parent.json", "'parent'", "'load'", "'warehouse-load'", "none of the files"):
        assert part in message


def test_unknown_fields_are_reported_and_left_out() -> None:
    data = export("j", task("a", "true", retries=3), owner="ops")
    imported = convert_exports([("j.json", data)])
    assert imported.notes == (
        "j.json: job 'j': unknown field 'owner' not carried over: 'ops'",
        "j.json: job 'j', task 'a': unknown field 'retries' not carried over: 3",
    )
    assert imported.jobs[0].tasks[0].options.retries == 0


def test_names_are_made_valid_and_references_follow_the_renames() -> None:
    parent = export(
        "etl/nightly",
        task("/usr/bin/extract.sh", "/usr/bin/extract.sh"),
        reference("sub", "etl/child"),
        dependencies={"/usr/bin/extract.sh": ["sub"], "sub": []},
    )
    child = export("etl/child", task("a", "true"))
    imported = convert_exports([("p.json", parent), ("c.json", child)])
    jobs = {job.name: job for job in imported.jobs}
    assert set(jobs) == {"etl-nightly", "etl-child"}
    assert jobs["etl-nightly"].by_name["sub"] == JobRef("sub", "etl-child", ("usr-bin-extract.sh",))
    assert any("renamed 'usr-bin-extract.sh'" in note for note in imported.notes)


def test_a_schedule_jobnest_cannot_read_is_dropped_with_a_note() -> None:
    data = export("j", task("a", "true"), cron_schedule="*/10 * * * * *")
    imported = convert_exports([("j.json", data)])
    assert imported.jobs[0].schedule is None
    assert imported.jobs[0].timezone is None
    assert "runs on demand only" in imported.notes[0]


def test_the_timezone_can_be_chosen() -> None:
    data = export("j", task("a", "true"), cron_schedule="@daily")
    (job,) = convert_exports([("j.json", data)], timezone="Europe/Paris").jobs
    assert (job.schedule, job.timezone) == ("@daily", "Europe/Paris")


def test_an_unknown_timezone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="Mars/Base"):
        convert_exports([], timezone="Mars/Base")


def test_dependencies_naming_unknown_tasks_are_left_out_with_a_note() -> None:
    data = export("j", task("a", "true"), dependencies={"a": ["ghost"]})
    imported = convert_exports([("j.json", data)])
    assert imported.jobs[0].tasks[0].after == ()
    assert "'ghost'" in imported.notes[0]


def test_a_job_in_two_files_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"b\.json: job 'j' is also in a\.json"):
        convert_exports([("a.json", export("j")), ("b.json", export("j"))])


def test_a_task_without_command_or_job_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"task 'a'.*'command' or a 'job_name'"):
        convert_exports([("j.json", export("j", {"name": "a"}))])


def test_something_that_is_not_an_export_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"x\.json: expected a dagobah job export"):
        convert_exports([("x.json", [1, 2])])


def test_a_whole_instance_or_a_list_of_jobs_is_read_too() -> None:
    instance = {"dagobah_id": 1, "created_jobs": 2, "jobs": [export("a"), export("b")]}
    imported = convert_exports([("all.json", instance), ("list.json", [export("c")])])
    assert [job.name for job in imported.jobs] == ["a", "b", "c"]


def test_notify_goes_on_every_job() -> None:
    notify = Notify(("ops@example.com",), ("failure", "success"))
    (job,) = convert_exports([("j.json", export("j"))], notify=notify).jobs
    assert job.notify == notify


# --- dagobahd.yml ------------------------------------------------------------------------------

DAGOBAHD = {
    "Dagobahd": {"host": "127.0.0.1", "port": 9000, "email": "basic", "backend": "None"},
    "Email": {
        "host": "smtp.example.com",
        "port": 587,
        "auth_required": True,
        "auth_username": "dagobah@example.com",
        "auth_password": "s3cret",
        "use_tls": True,
        "from_address": "dagobah@{HOSTNAME}",
        "recipients": ["ops@example.com", "dev@example.com"],
        "send_on_success": False,
        "send_on_failure": True,
    },
}


def test_the_email_section_maps_onto_smtp_and_notify() -> None:
    email = convert_email(DAGOBAHD, source="dagobahd.yml", hostname="box")
    assert email.smtp == {
        "host": "smtp.example.com",
        "port": 587,
        "starttls": True,
        "tls": False,
        "username": "dagobah@example.com",
        "password": "s3cret",
        "from": "dagobah@box",
    }
    assert email.notify == Notify(("ops@example.com", "dev@example.com"), ("failure",))
    assert email.notes == (
        "dagobahd.yml: Email: from_address 'dagobah@{HOSTNAME}': {HOSTNAME} written as 'box'",
    )


def test_dagobahs_older_user_and_password_keys_and_none_text_are_read() -> None:
    section = {"host": "mail", "port": "25", "user": "None", "password": "None", "use_tls": False}
    email = convert_email({"Email": section}, source="d.yml", hostname="h")
    assert email.smtp == {"host": "mail", "port": 25, "starttls": False, "tls": False}


def test_without_auth_required_the_credentials_are_left_out() -> None:
    section = {"host": "mail", "auth_required": False, "user": "u", "password": "p"}
    email = convert_email({"Email": section}, source="d.yml", hostname="h")
    assert "username" not in email.smtp and "password" not in email.smtp
    assert any("auth_required is false" in note for note in email.notes)


def test_mail_switched_off_in_dagobah_notifies_no_one() -> None:
    config = {**DAGOBAHD, "Dagobahd": {"email": "None"}}
    email = convert_email(config, source="d.yml", hostname="h")
    assert email.notify is None
    assert email.smtp["host"] == "smtp.example.com"
    assert any("mail was off" in note for note in email.notes)


def test_unknown_email_settings_are_reported() -> None:
    config = {"Email": {**DAGOBAHD["Email"], "template": "fancy"}}
    email = convert_email(config, source="d.yml", hostname="h")
    assert "d.yml: Email: unknown setting 'template' not carried over" in email.notes


def test_a_config_without_an_email_section_is_refused() -> None:
    with pytest.raises(InvalidInput, match=r"d\.yml: no 'Email:' section"):
        convert_email({"Dagobahd": {}}, source="d.yml", hostname="h")

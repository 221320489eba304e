"""Crontabs → jobs: every construct cron reads, one job per line and grouped."""

from __future__ import annotations

from typing import Any

import pytest

from jobnest.errors import InvalidInput
from jobnest.importers.crontab import HOME_NOTE, convert_crontab
from jobnest.model.job import CommandTask, Job, Notify


def convert(text: str, **options: Any) -> tuple[list[Job], list[str]]:
    """The jobs, and the notes but the one about the working directory every import has."""
    imported = convert_crontab(text, source="tab", **options)
    return list(imported.jobs), [note for note in imported.notes if HOME_NOTE not in note]


def commands(job: Job) -> list[str]:
    return [task.command for task in job.tasks if isinstance(task, CommandTask)]


def only_task(job: Job) -> CommandTask:
    (task,) = job.tasks
    assert isinstance(task, CommandTask)
    return task


def test_one_job_per_line_named_from_its_command() -> None:
    jobs, notes = convert(
        "30 2 * * * /usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1\n"
        "*/5 * * * 1-5 /usr/bin/php /var/www/artisan schedule:run\n"
    )
    assert [(j.name, j.schedule, j.timezone) for j in jobs] == [
        ("backup.sh", "30 2 * * *", None),
        ("artisan-schedule:run", "*/5 * * * 1-5", None),
    ]
    assert only_task(jobs[0]) == CommandTask(
        "backup.sh", "/usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1"
    )
    assert (
        jobs[0].notes
        == "tab line 1: 30 2 * * * /usr/local/bin/backup.sh --full > /var/log/backup.log 2>&1"
    )
    assert notes == []


def test_a_jobnest_comment_right_above_names_the_job_and_other_comments_are_notes() -> None:
    jobs, _ = convert(
        "# Nightly backup of the main database\n"
        "# jobnest: db-backup\n"
        "0 3 * * * pg_dump main > /backups/main.sql\n"
        "# jobnest: orphan\n"
        "\n"
        "0 4 * * * pg_dump -f /backups/other.sql other\n"
    )
    assert [job.name for job in jobs] == ["db-backup", "pg_dump"]
    assert jobs[0].notes.splitlines()[0] == "Nightly backup of the main database"
    assert jobs[1].notes.startswith("tab line 6")


def test_names_are_made_unique_and_valid() -> None:
    jobs, notes = convert(
        "# jobnest: sync/nightly\n"
        "0 1 * * * rsync -a a b\n"
        "0 2 * * * rsync -a c d\n"
        "0 3 * * * rsync -a e f\n"
    )
    assert [job.name for job in jobs] == ["sync-nightly", "rsync", "rsync-2"]
    assert "tab:2: name 'sync/nightly' is not valid: 'sync-nightly' instead" in notes


def test_the_working_directory_is_pointed_out_once() -> None:
    notes = convert_crontab("@daily a\n@daily b\n", source="tab").notes
    assert notes == (f"tab: {HOME_NOTE}",)
    assert convert_crontab("# nothing\n", source="tab").notes == ()


def test_aliases_are_kept() -> None:
    jobs, _ = convert("@daily a.sh\n@hourly b.sh\n@weekly c.sh\n@midnight d.sh\n")
    assert [job.schedule for job in jobs] == ["@daily", "@hourly", "@weekly", "@midnight"]


def test_reboot_is_refused_with_a_note() -> None:
    jobs, notes = convert("@reboot /usr/bin/start-agent\n@daily a.sh\n")
    assert [job.name for job in jobs] == ["a.sh"]
    assert notes == [
        "tab:1: @reboot has no jobnest equivalent (jobs run on a schedule or on demand): skipped"
    ]


def test_mailto_becomes_notify_on_failure_and_local_users_are_left_out() -> None:
    jobs, notes = convert(
        "0 1 * * * first\n"
        'MAILTO="ops@example.com, root,dev@example.com"\n'
        "0 2 * * * second\n"
        "MAILTO=\n"
        "0 3 * * * third\n"
    )
    assert [job.notify for job in jobs] == [
        None,
        Notify(("ops@example.com", "dev@example.com"), ("failure",)),
        None,
    ]
    assert "tab:2: MAILTO 'root' is a local user, not an address: left out" in notes
    assert any("MAILTO: cron mailed whatever a job printed" in note for note in notes)


def test_cron_tz_sets_the_time_zone_of_the_lines_below() -> None:
    jobs, _ = convert(
        "0 1 * * * early\nCRON_TZ=Europe/Berlin\n0 2 * * * late\n", timezone="America/Chicago"
    )
    assert [job.timezone for job in jobs] == ["America/Chicago", "Europe/Berlin"]


def test_an_unknown_cron_tz_is_refused_naming_the_line() -> None:
    with pytest.raises(InvalidInput, match=r"tab:1: CRON_TZ='Mars/Base' is not an IANA time zone"):
        convert("CRON_TZ=Mars/Base\n0 1 * * * x\n")


def test_variables_are_exported_in_front_of_the_command() -> None:
    jobs, _ = convert(
        "PATH=/usr/local/bin:/usr/bin:/bin\n"
        "LANG = 'C.UTF-8'\n"
        "0 1 * * * first\n"
        "PATH=/opt/bin\n"
        "0 2 * * * second\n"
    )
    assert (
        only_task(jobs[0]).command == "export PATH=/usr/local/bin:/usr/bin:/bin LANG=C.UTF-8; first"
    )
    assert only_task(jobs[1]).command == "export LANG=C.UTF-8 PATH=/opt/bin; second"


def test_shell_runs_the_command_under_that_shell() -> None:
    jobs, _ = convert("SHELL=/bin/bash\n0 1 * * * echo {a,b}\n")
    assert only_task(jobs[0]).command == "export SHELL=/bin/bash; /bin/bash -c 'echo {a,b}'"


def test_percent_becomes_stdin_and_escaped_percent_a_percent() -> None:
    jobs, _ = convert(
        "0 1 * * * mail -s report ops@example.com%Hello,%the report is ready%\n"
        "0 2 * * * date +\\%F > /tmp/today\n"
    )
    assert only_task(jobs[0]).command == (
        "printf '%s' 'Hello,\nthe report is ready\n' | /bin/sh -c 'mail -s report ops@example.com'"
    )
    assert only_task(jobs[1]).command == "date +%F > /tmp/today"


def test_the_system_crontab_user_field_is_read_and_noted() -> None:
    jobs, notes = convert(
        "17 * * * * root cd / && run-parts --report /etc/cron.hourly\n", system=True
    )
    assert only_task(jobs[0]).command == "cd / && run-parts --report /etc/cron.hourly"
    assert jobs[0].name == "run-parts"
    assert "(as root)" in jobs[0].notes
    assert notes == ["tab:1: cron ran this as user 'root'; jobnest runs it as the daemon's user"]


def test_a_chain_stays_one_task_without_group() -> None:
    jobs, _ = convert("0 1 * * * ./extract.sh && ./load.sh\n")
    assert only_task(jobs[0]).command == "./extract.sh && ./load.sh"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("0 1 * * echo", "expected five time fields and a command"),
        ("61 * * * * x", "Bad minute"),
        ("@fortnightly x", "unknown schedule alias"),
        ("0 1 * * * %only stdin", "no command"),
    ],
)
def test_lines_that_are_not_crontab_syntax_are_refused(line: str, problem: str) -> None:
    with pytest.raises(InvalidInput, match=problem) as caught:
        convert(f"# a comment\n{line}\n")
    assert str(caught.value).startswith("tab:2: ")


def test_a_user_line_without_a_command_is_refused_with_system() -> None:
    with pytest.raises(InvalidInput, match="expected a user and a command"):
        convert("0 1 * * * root\n", system=True)


def test_sleep_as_an_ordering_hack_is_pointed_out() -> None:
    _, notes = convert("0 1 * * * sleep 600 && ./late.sh\n")
    assert any("ordering hack" in note for note in notes)


# --- --group ------------------------------------------------------------------------------------


def test_group_makes_one_job_per_schedule_with_a_task_per_line() -> None:
    jobs, notes = convert(
        "# jobnest: cleanup\n"
        "@daily find /tmp -mtime +7 -delete\n"
        "0 0 * * * ./extract.sh && ./load.sh; ./report.sh\n"
        "*/5 * * * * ./poll.sh\n",
        group=True,
    )
    daily, poll = jobs
    assert (daily.name, daily.schedule) == ("cron-daily", "@daily")
    assert [(t.name, t.after) for t in daily.tasks] == [
        ("cleanup", ()),
        ("extract.sh", ()),
        ("load.sh", ("extract.sh",)),
        ("report.sh", ("load.sh",)),
    ]
    assert commands(daily)[1:] == ["./extract.sh", "./load.sh", "./report.sh"]
    assert (poll.name, [t.name for t in poll.tasks]) == ("cron-*-every-5_*_*_*_*", ["poll.sh"])
    assert (
        "tab:3: split into tasks 'extract.sh' → 'load.sh' → 'report.sh'; after ';' the next "
        "step ran even if one failed, now it waits for success"
    ) in notes


def test_group_keeps_lines_with_other_time_zones_or_mailto_apart() -> None:
    jobs, _ = convert(
        "0 1 * * * a\nMAILTO=ops@example.com\n0 1 * * * b\nCRON_TZ=UTC\n0 1 * * * c\n",
        group=True,
    )
    assert [[t.name for t in job.tasks] for job in jobs] == [["a"], ["b"], ["c"]]
    assert [job.name for job in jobs] == ["cron-0_1_*_*_*", "cron-0_1_*_*_*-2", "cron-0_1_*_*_*-3"]


def test_group_does_not_split_what_it_cannot_split_safely_and_says_so() -> None:
    jobs, notes = convert(
        "0 1 * * * cd /srv && ./run.sh\n0 1 * * * cat > in.txt && ./use.sh%data\n", group=True
    )
    assert [t.name for t in jobs[0].tasks] == ["run.sh", "cat"]
    assert "tab:1: kept as one task: 'cd' changes the shell for the steps after it" in notes
    assert "tab:2: kept as one task: its stdin (after '%') is read by the whole line" in notes


def test_group_names_the_steps_of_a_named_line_after_it() -> None:
    jobs, _ = convert("# jobnest: etl\n0 1 * * * ./a.sh && ./b.sh\n", group=True)
    assert [(t.name, t.after) for t in jobs[0].tasks] == [("etl-1", ()), ("etl-2", ("etl-1",))]


def test_group_carries_the_environment_into_every_step() -> None:
    jobs, _ = convert("FOO=bar\n0 1 * * * ./a.sh && ./b.sh\n", group=True)
    assert commands(jobs[0]) == [
        "export FOO=bar; ./a.sh",
        "export FOO=bar; ./b.sh",
    ]

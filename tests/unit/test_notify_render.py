"""Reports in words (subject, text, HTML), as data, and the outbox's pure rules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from jobnest.model.job import Notify, Webhook
from jobnest.notify import render
from jobnest.notify.base import Failure, Group, Report, report_from_dict, report_to_dict
from jobnest.notify.outbox import MAX_ATTEMPTS, retry_delay, targets
from jobnest.notify.report import TAIL_BYTES, TAIL_LINES, clean, stderr_tail
from jobnest.store.base import NewNotification

T0 = datetime(2026, 3, 8, 2, 0, tzinfo=UTC)
DEEP = Failure("load/inner/x", "failed", "exit_code", 3, 2, "Traceback\nValueError: <bad> & ✗")
TOP = Failure("extract", "failed", "hard_timeout", 137, 1, "")


def report(**fields: object) -> Report:
    inner = Group("load/inner", "deep", {"failed": 1}, failures=(DEEP,))
    load = Group(
        "load",
        "warehouse",
        {"succeeded": 3, "failed": 1},
        children=(inner,),
        quiet=2,
        quiet_counts={"succeeded": 3},
    )
    root = Group(
        "",
        "nightly",
        {"succeeded": 3, "failed": 2, "upstream_failed": 1},
        failures=(TOP,),
        children=(load,),
    )
    values: dict[str, object] = {
        "run_id": 42,
        "job": "nightly",
        "outcome": "failed",
        "trigger": "schedule",
        "retries": 0,
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=4, seconds=12),
        "root": root,
        "scheduled_for": T0,
        "url": "https://jobs.example.com/runs/42",
    }
    return Report(**{**values, **fields})  # type: ignore[arg-type]


def facts_of(text: str) -> dict[str, str]:
    """The "Label: value" lines at the top of a text body."""
    head = text.split("\n\n")[1]
    return {
        label: value.strip()
        for label, _, value in (line.partition(":") for line in head.split("\n"))
    }


def test_the_subject_says_job_outcome_failures_and_run() -> None:
    assert render.subject(report()) == "[jobnest] nightly failed: 2 tasks (run 42)"
    assert (
        render.subject(report(retries=2)) == "[jobnest] nightly failed: 2 tasks (run 42, retry 2)"
    )
    ok = report(outcome="succeeded", root=Group("", "nightly", {"succeeded": 6}))
    assert render.subject(ok) == "[jobnest] nightly succeeded (run 42)"


def test_the_subject_is_one_line_whatever_the_name_holds() -> None:
    subject = render.subject(report(job="evil\r\nBcc: victim@example.com\u2028x"))

    assert "\r" not in subject and "\n" not in subject and "\u2028" not in subject
    assert subject.startswith("[jobnest] evil  Bcc: victim@example.com x failed")


def test_the_text_shows_the_tree_of_child_jobs_and_each_failure_with_its_stderr() -> None:
    text = render.text_body(report())

    assert (
        "nightly (6 tasks: 3 succeeded, 2 failed, 1 upstream_failed)\n"
        "├── ✗ extract: hard timeout: killed with SIGKILL (exit code 137), after 1 attempt\n"
        "└── load → job warehouse (3 succeeded, 1 failed)\n"
        "    ├── inner → job deep (1 failed)\n"
        "    │   └── ✗ x: exit code 3, after 2 attempts\n"
        "    └── 2 more child jobs without failures (3 succeeded)\n"
    ) in text
    assert "✗ load/inner/x\n  exit code 3, after 2 attempts\n  stderr:\n  | Traceback\n" in text
    facts = facts_of(text)
    assert facts["Run page"] == "https://jobs.example.com/runs/42"
    assert facts["Finished"] == "2026-03-08 02:04:12 UTC, after 4 min 12 s"
    assert facts["Run"] == "42, started by its schedule (slot 2026-03-08 02:00:00 UTC)"
    assert facts["Child jobs"] == "1, 1 with failures inside"


def test_a_retry_says_so() -> None:
    text = render.text_body(report(retries=1, trigger="manual", scheduled_for=None))

    assert facts_of(text)["Run"] == "42, retry #1 of a run started by hand"
    assert facts_of(text)["Finished"].endswith("4 min 12 s after the run first started")


def test_a_success_is_summarised_not_listed() -> None:
    ok = Group("", "nightly", {"succeeded": 40}, quiet=3, quiet_counts={"succeeded": 38})
    text = render.text_body(report(outcome="succeeded", root=ok))

    assert facts_of(text)["Tasks"] == "40: 40 succeeded"
    assert facts_of(text)["Child jobs"] == "3, none with failures"
    assert "├──" not in text and "└──" not in text


def test_the_html_escapes_every_name_and_log_line() -> None:
    evil = Failure("<img src=x onerror=alert(1)>", "failed", "exit_code", 1, 1, "</pre><script>")
    page = render.html_body(report(job="<b>job</b>", root=Group("", "<b>job</b>", {}, (evil,))))

    assert "<script>" not in page and "<img" not in page and "<b>job" not in page
    assert "&lt;/pre&gt;&lt;script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page


def test_the_html_carries_the_link_tree_and_stderr() -> None:
    page = render.html_body(report())

    assert '<a href="https://jobs.example.com/runs/42"' in page
    assert "inner → job deep" in page
    assert "ValueError: &lt;bad&gt; &amp; ✗</pre>" in page


def test_a_report_survives_the_trip_through_plain_data() -> None:
    original = report(more_failures=3)

    assert report_from_dict(report_to_dict(original)) == original


def test_the_plain_data_lists_failed_tasks_by_full_path() -> None:
    data = report_to_dict(report())

    assert [f["path"] for f in data["failed_tasks"]] == ["extract", "load/inner/x"]
    assert data["tree"]["children"][0]["children"][0]["failed_tasks"] == ["load/inner/x"]
    assert data["duration_seconds"] == 252.0


def test_backoff_doubles_from_30_seconds_up_to_an_hour_then_gives_up() -> None:
    delays = [retry_delay(n) for n in range(1, MAX_ATTEMPTS + 1)]

    assert [d.total_seconds() if d else None for d in delays] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1920,
        3600,
        3600,
        None,
    ]


def test_targets_follow_the_outcomes_asked_for() -> None:
    notify = Notify(("ops@example.com",), ("failure",), (Webhook("https://h.example/", "k"),))

    assert targets(notify, "failed") == [
        NewNotification("email", "ops@example.com"),
        NewNotification("webhook", "https://h.example/", "k"),
    ]
    assert targets(notify, "succeeded") == []
    assert targets(Notify(on=("success", "failure")), "cancelled") == []
    assert targets(None, "failed") == []


def test_a_stderr_tail_is_bounded_however_the_file_is_written(tmp_path: Path) -> None:
    one_line = tmp_path / "one-line"
    one_line.write_bytes(b"x" * 10_000_000)
    many = tmp_path / "many"
    many.write_text("".join(f"line {i}\n" for i in range(1000)))

    text, cut = stderr_tail(one_line)
    assert cut and len(text) == TAIL_BYTES

    text, cut = stderr_tail(many)
    assert cut and text.split("\n") == [f"line {i}" for i in range(1000 - TAIL_LINES, 1000)]

    assert stderr_tail(tmp_path / "missing") == ("", False)


def test_terminal_escapes_and_control_characters_are_cleaned() -> None:
    assert clean("\x1b[31mred\x1b[0m 50%\r100%\r\nok\x07\tdone") == "red 50%\n100%\nok\ufffd\tdone"

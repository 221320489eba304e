"""Day-to-day controls in Debian's Chromium against the real daemon: pause and resume a
job's schedule from its page, and edit the job's notes shown there."""

from __future__ import annotations

from collections.abc import Callable

from daemon_process import Daemon
from playwright.sync_api import Page, expect
from test_ui import browser, page  # noqa: F401 - the fixtures, shared with the UI tests

JOB = {
    "name": "nightly-controls",
    "schedule": "@daily",
    "notes": "Owner: data team",
    "tasks": [{"name": "one", "command": "true"}],
}


def paused(daemon: Daemon) -> bool:
    jobs = daemon.client.get("/api/jobs").json()["jobs"]
    return bool(next(job for job in jobs if job["name"] == JOB["name"])["paused"])


def test_pause_and_resume_the_schedule_from_the_job_page(
    daemons: Callable[..., Daemon],
    page: Page,  # noqa: F811
) -> None:
    daemon = daemons()
    assert daemon.client.put(f"/api/jobs/{JOB['name']}", json=JOB).status_code == 201
    page.goto(f"{daemon.url}/jobs/{JOB['name']}")
    expect(page.locator("#job-paused")).to_be_hidden()
    page.get_by_role("button", name="Pause schedule").click()
    expect(page.locator("#job-paused")).to_be_visible()
    expect(page.get_by_role("button", name="Resume schedule")).to_be_visible()
    assert paused(daemon)

    page.goto(daemon.url)  # the dashboard says so too
    expect(page.locator(f'tr[data-job="{JOB["name"]}"] [data-paused]')).to_be_visible()

    page.goto(f"{daemon.url}/jobs/{JOB['name']}")
    expect(page.locator("#job-paused")).to_be_visible()
    page.get_by_role("button", name="Resume schedule").click()
    expect(page.locator("#job-paused")).to_be_hidden()
    expect(page.get_by_role("button", name="Pause schedule")).to_be_visible()
    assert not paused(daemon)


def test_notes_show_on_the_job_page_and_are_edited_there(
    daemons: Callable[..., Daemon],
    page: Page,  # noqa: F811
) -> None:
    daemon = daemons()
    assert daemon.client.put(f"/api/jobs/{JOB['name']}", json=JOB).status_code == 201
    page.goto(f"{daemon.url}/jobs/{JOB['name']}")
    expect(page.locator("#job-notes")).to_have_text("Owner: data team")
    page.get_by_label("Notes").fill("Owner: platform team\nPage them first.")
    page.get_by_role("button", name="Save settings").click()
    expect(page.locator("#job-notes")).to_have_text("Owner: platform team\nPage them first.")
    saved = daemon.client.get(f"/api/jobs/{JOB['name']}").json()
    assert saved["notes"] == "Owner: platform team\nPage them first."


def test_retry_with_current_definitions_shows_the_diff_first(
    daemons: Callable[..., Daemon],
    page: Page,  # noqa: F811
) -> None:
    daemon = daemons()
    failing = {"name": "fixable", "tasks": [{"name": "step", "command": "exit 3"}]}
    assert daemon.client.put("/api/jobs/fixable", json=failing).status_code == 201
    run = daemon.client.post("/api/jobs/fixable/runs").json()
    page.goto(f"{daemon.url}/runs/{run['id']}")
    expect(page.locator("#run-status")).to_contain_text("failed")
    fixed = {"name": "fixable", "tasks": [{"name": "step", "command": "true"}]}
    assert daemon.client.put("/api/jobs/fixable", json=fixed).status_code == 200
    page.get_by_role("button", name="Retry with current definitions").click()
    expect(page.locator("#confirm-text")).to_contain_text(
        'task “step” changed: command: "exit 3" → "true"'
    )
    page.locator("#confirm").get_by_role("button", name="Retry with these").click()
    expect(page.locator("#run-status")).to_contain_text("succeeded")
    attempts = daemon.client.get(f"/api/runs/{run['id']}/tasks/step/attempts").json()
    assert [(a["command"], a["plan_version"]) for a in attempts] == [("exit 3", 1), ("true", 2)]


def test_the_dashboard_shows_the_logs_disk_usage_and_the_retention_policy(
    daemons: Callable[..., Daemon],
    page: Page,  # noqa: F811
) -> None:
    daemon = daemons()
    page.goto(daemon.url)
    page.get_by_text("Logs and retention").click()
    expect(page.locator("#storage-text")).to_have_text(
        "Logs use 0.0 MB. Retention keeps 90 days, 500 runs per job: "
        "the next sweep removes 0 run(s), 0.0 MB of logs."
    )

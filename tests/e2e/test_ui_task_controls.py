"""Task controls on the run page in Debian's Chromium against the real daemon: kill one
running task while the run goes on, and mark a failed task succeeded so that what depends
on it runs, with who and when shown."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from daemon_process import DEADLINE, Daemon
from playwright.sync_api import Page, expect
from test_ui import box, browser, page  # noqa: F401 - the fixtures, shared with the UI tests

from support.polling import until

GATE = "while [ ! -e open ]; do sleep 0.02; done"
JOB = {
    "name": "controls",
    "tasks": [
        {"name": "slow", "command": "sleep 60"},
        {"name": "broken", "command": "echo broken >&2; exit 3"},
        {"name": "after", "command": "echo after > after.txt", "after": ["broken"]},
        {"name": "gate", "command": GATE},
    ],
}


def test_kill_a_task_and_mark_a_failed_one_succeeded_from_the_run_page(
    daemons: Callable[..., Daemon],
    workdir: Path,
    page: Page,  # noqa: F811
) -> None:
    daemon = daemons()
    assert daemon.client.put("/api/jobs/controls", json=JOB).status_code == 201
    run_id = daemon.client.post("/api/jobs/controls/runs").json()["id"]
    page.goto(f"{daemon.url}/runs/{run_id}")

    # kill the slow task: it fails (killed), the gate task keeps running
    expect(box(page, "slow")).to_have_class(re.compile("st-running"))
    box(page, "slow").click()
    page.get_by_role("button", name="Kill task").click()
    page.locator("#confirm").get_by_role("button", name="Kill task").click()
    expect(box(page, "slow")).to_have_class(re.compile("st-failed"))
    expect(page.locator("#task-reason")).to_have_text("why: killed")
    expect(box(page, "gate")).to_have_class(re.compile("st-running"))

    # mark the broken task succeeded: the task after it runs, while the run goes on
    expect(box(page, "after")).to_have_class(re.compile("st-upstream_failed"))
    box(page, "broken").click()
    page.get_by_role("button", name="Mark succeeded").click()
    expect(box(page, "broken")).to_have_class(re.compile("st-succeeded"))
    expect(box(page, "after")).to_have_class(re.compile("st-succeeded"))
    expect(page.locator("#task-mark")).to_contain_text("Marked succeeded by local")
    expect(page.get_by_role("button", name="Mark succeeded")).to_be_hidden()
    assert (workdir / "after.txt").read_text() == "after\n"

    (workdir / "open").touch()
    expect(page.locator("#run-status")).to_contain_text("failed")  # slow was killed
    run = until(lambda: daemon.client.get(f"/api/runs/{run_id}").json(), DEADLINE)
    assert [(m["path"], m["by"]) for m in run["marks"]] == [("broken", "local")]

"""The web UI in Debian's Chromium against the real daemon: build a job with a child job in
the page, run it, watch it fail inside the child, read the log, fix, retry, succeed."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from daemon_process import Daemon
from playwright.sync_api import Browser, Page, expect, sync_playwright

from jobnest.credentials import hash_password

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
WAIT = "while [ ! -e {gate} ]; do sleep 0.02; done"
FAIL = "echo broken input >&2; exit 3"
CHILD = {
    "name": "warehouse",
    "tasks": [
        {"name": "stage", "command": "echo staged"},
        {
            "name": "merge",
            "command": f"echo merging; {WAIT.format(gate='merge.gate')}; {FAIL}",
            "after": ["stage"],
        },
    ],
}

expect.set_options(timeout=15_000)  # a busy machine; expectations return once met


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Daemon, Path]]:
    """One daemon for the tests without a password (each uses jobs of its own): it is slow
    to start on a busy machine."""
    root = tmp_path_factory.mktemp("ui")
    workdir = root / "work"
    workdir.mkdir()
    daemon = Daemon(root / "home", workdir)
    yield daemon, workdir
    daemon.stop()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 800})
    context.set_default_timeout(15_000)
    one = context.new_page()
    errors: list[str] = []
    one.on("pageerror", lambda error: errors.append(str(error)))
    yield one
    context.close()
    assert not errors, errors


def box(page: Page, path: str, kind: str = "") -> object:
    return page.locator(f'g.box{"." + kind if kind else ""}[data-id="{path}"]')


def test_build_run_fail_inside_a_child_fix_and_retry(
    shared: tuple[Daemon, Path], page: Page
) -> None:
    daemon, workdir = shared
    assert daemon.client.put("/api/jobs/warehouse", json=CHILD).status_code == 201

    # create the job in the page: a task, a reference to the child after it, a task after that
    page.goto(daemon.url)
    page.get_by_label("New job").fill("nightly")
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(f"{daemon.url}/jobs/nightly")
    add_task(
        page, "extract", f"echo extracting; {WAIT.format(gate='extract.gate')}; echo extracted"
    )
    page.get_by_role("button", name="Job reference").click()
    editor = page.locator("#editor")
    editor.get_by_label("Name").fill("load")
    editor.get_by_label("Job", exact=True).select_option("warehouse")
    editor.get_by_role("button", name="Add dependency").click()  # the form's way: after extract
    editor.get_by_role("button", name="Add", exact=True).click()
    expect(box(page, "load", "kind-ref")).to_contain_text("job warehouse")
    child_link = box(page, "load").locator("a.job-link")
    expect(child_link).to_have_attribute("href", "/jobs/warehouse")
    add_task(page, "report", "echo report")
    drag_dependency(page, "load", "report")  # the mouse's way
    expect(page.locator('path.route[data-source="load"][data-target="report"]')).to_have_count(1)
    saved = daemon.client.get("/api/jobs/nightly").json()["tasks"]
    assert [(t["name"], t.get("after")) for t in saved] == [
        ("extract", None),
        ("load", ["extract"]),
        ("report", ["load"]),
    ]

    # start it and watch: states arrive live, the running task's output streams
    page.get_by_role("button", name="Start run").click()
    expect(page).to_have_url(re.compile(r"/runs/\d+$"))
    extract = box(page, "extract")
    expect(extract).to_have_class(re.compile("st-running"))
    extract.click()
    log = page.locator("#log pre")
    expect(log).to_contain_text("extracting")
    (workdir / "extract.gate").touch()
    expect(log).to_contain_text("extracted")
    expect(extract).to_have_class(re.compile("st-succeeded"))
    expect(box(page, "load", "kind-ref")).to_have_class(re.compile("st-running"))

    # the child fails: it opens by itself, the failing task stands out
    (workdir / "merge.gate").touch()
    expect(page.locator("#run-status")).to_contain_text("failed")
    merge = box(page, "load/merge")
    expect(box(page, "load", "kind-group")).to_be_visible()
    expect(merge).to_have_class(re.compile("st-failed"))
    expect(merge).to_contain_text("exit 3")
    expect(box(page, "load/stage")).to_contain_text("succeeded")

    # the job's own page shows its latest run the same way
    job_page = page.context.new_page()
    job_page.goto(f"{daemon.url}/jobs/nightly")
    expect(box(job_page, "load", "kind-group")).to_be_visible()
    expect(box(job_page, "load/merge")).to_have_class(re.compile("st-failed"))
    job_page.close()

    # its log, then fix the command and retry
    page.locator("#failed-list").get_by_role("button", name="load/merge").click()
    page.get_by_role("tab", name="stderr").click()
    expect(log).to_contain_text("broken input")
    expect(page.locator("#attempts")).to_contain_text("3")
    page.get_by_label("Fix the command for this run").fill("echo fixed")
    page.get_by_role("button", name="Save fix and retry").click()

    # the run succeeds and the child closes again
    expect(page.locator("#run-status")).to_contain_text("succeeded")
    expect(box(page, "load", "kind-ref")).to_be_visible()
    expect(box(page, "load", "kind-ref")).to_have_class(re.compile("st-succeeded"))
    expect(page.locator("g.kind-group")).to_have_count(0)
    expect(box(page, "report")).to_have_class(re.compile("st-succeeded"))
    fixes = daemon.client.get(page.url.replace("/runs/", "/api/runs/")).json()["fixes"]
    assert [(f["path"], f["new"]) for f in fixes] == [("load/merge", "echo fixed")]


def add_task(page: Page, name: str, command: str) -> None:
    page.get_by_role("button", name="Task", exact=True).click()
    editor = page.locator("#editor")
    editor.get_by_label("Name").fill(name)
    editor.get_by_label("Command").fill(command)
    editor.get_by_role("button", name="Add", exact=True).click()
    expect(box(page, name)).to_be_visible()


def drag_dependency(page: Page, source: str, target: str) -> None:
    handle = page.locator(f'g.box[data-id="{source}"] circle.handle').bounding_box()
    goal = page.locator(f'g.box[data-id="{target}"] rect.frame').bounding_box()
    assert handle is not None and goal is not None
    page.mouse.move(handle["x"] + handle["width"] / 2, handle["y"] + handle["height"] / 2)
    page.mouse.down()
    page.mouse.move(goal["x"] + goal["width"] / 2, goal["y"] + goal["height"] / 2, steps=5)
    page.mouse.up()


def test_a_cycle_is_refused_where_it_was_drawn(shared: tuple[Daemon, Path], page: Page) -> None:
    daemon, _ = shared
    job = {"name": "loop", "tasks": [{"name": "a", "command": "true"}]}
    job["tasks"].append({"name": "b", "command": "true", "after": ["a"]})
    assert daemon.client.put("/api/jobs/loop", json=job).status_code == 201
    page.goto(f"{daemon.url}/jobs/loop")
    drag_dependency(page, "b", "a")
    expect(page.locator("#graph-error")).to_contain_text("cycle")
    expect(page.locator("#graph-error")).to_contain_text(re.compile("a → b → a|b → a → b"))
    expect(box(page, "a")).to_have_class(re.compile("highlight"))
    assert "after" not in daemon.client.get("/api/jobs/loop").json()["tasks"][0]


def test_errors_show_next_to_the_field_while_typing(
    shared: tuple[Daemon, Path], page: Page
) -> None:
    daemon, _ = shared
    job = {"name": "typed", "tasks": [{"name": "slow", "command": "sleep 1"}]}
    assert daemon.client.put("/api/jobs/typed", json=job).status_code == 201
    page.goto(f"{daemon.url}/jobs/typed")
    page.get_by_label("Time zone").fill("Mars/Olympus")
    expect(page.locator("#e-timezone")).to_contain_text("'Mars/Olympus'")
    expect(page.get_by_label("Time zone")).to_have_attribute("aria-invalid", "true")

    box(page, "slow").click()
    editor = page.locator("#editor")
    editor.get_by_text("Timeouts, retries and host").click()
    editor.get_by_label("Soft timeout (s)").fill("10")
    editor.get_by_label("Hard timeout (s)").fill("5")
    hard = editor.locator('[data-error-for="hard_timeout"]')
    expect(hard).to_contain_text("must not be shorter than soft_timeout")
    editor.get_by_label("Hard timeout (s)").fill("20")
    expect(hard).to_be_hidden()
    editor.get_by_role("button", name="Save").click()
    expect(editor.locator(".saved")).to_have_text("Saved.")
    saved = daemon.client.get("/api/jobs/typed").json()["tasks"][0]
    assert (saved["soft_timeout"], saved["hard_timeout"]) == (10, 20)


def test_dashboard_filters_by_name_and_status(shared: tuple[Daemon, Path], page: Page) -> None:
    daemon, _ = shared
    for name in ("alpha-filter", "beta-filter"):
        job = {"name": name, "tasks": [{"name": "one", "command": "true"}]}
        assert daemon.client.put(f"/api/jobs/{name}", json=job).status_code == 201
    page.goto(daemon.url)
    alpha, beta = (page.locator(f'tr[data-job="{n}"]') for n in ("alpha-filter", "beta-filter"))
    page.get_by_label("Name").fill("alpha")
    expect(beta).to_be_hidden()
    expect(alpha).to_be_visible()
    page.get_by_label("Name").fill("")
    page.get_by_label("Status").select_option("failed")
    expect(alpha).to_be_hidden()
    page.get_by_label("Status").select_option("never run")
    expect(alpha).to_be_visible()
    expect(beta).to_be_visible()


def test_zoom_and_pan_move_the_drawing(shared: tuple[Daemon, Path], page: Page) -> None:
    daemon, _ = shared
    job = {"name": "zoomed", "tasks": [{"name": "only", "command": "true"}]}
    assert daemon.client.put("/api/jobs/zoomed", json=job).status_code == 201
    page.goto(f"{daemon.url}/jobs/zoomed")
    only = page.locator('g.box[data-id="only"] rect.frame')
    expect(only).to_be_visible()
    before = only.bounding_box()
    page.get_by_role("button", name="Zoom in").click()
    wider = only.bounding_box()
    assert before and wider and wider["width"] > before["width"] * 1.2
    page.mouse.move(200, 700)
    page.mouse.down()
    page.mouse.move(260, 650, steps=4)
    page.mouse.up()
    moved = only.bounding_box()
    assert moved and (moved["x"] - wider["x"], moved["y"] - wider["y"]) == (60, -50)


def test_deleting_a_task_asks_first(shared: tuple[Daemon, Path], page: Page) -> None:
    daemon, _ = shared
    job = {"name": "tidy", "tasks": [{"name": "keep", "command": "true"}]}
    job["tasks"].append({"name": "drop", "command": "true", "after": ["keep"]})
    assert daemon.client.put("/api/jobs/tidy", json=job).status_code == 201
    page.goto(f"{daemon.url}/jobs/tidy")
    box(page, "drop").click()
    page.locator("#editor").get_by_role("button", name="Delete").click()
    page.locator("#confirm").get_by_role("button", name="Keep it").click()
    expect(box(page, "drop")).to_be_visible()
    page.locator("#editor").get_by_role("button", name="Delete").click()
    page.locator("#confirm").get_by_role("button", name="Delete task").click()
    expect(box(page, "drop")).to_have_count(0)
    assert [t["name"] for t in daemon.client.get("/api/jobs/tidy").json()["tasks"]] == ["keep"]


def test_login_then_logout(daemons: Callable[..., Daemon], page: Page) -> None:
    secret = "correct horse battery"
    daemon = daemons(env={"JOBNEST_PASSWORD_HASH": hash_password(secret)})
    page.goto(f"{daemon.url}/jobs/x")
    expect(page).to_have_url(re.compile(r"/login\?next=%2Fjobs%2Fx$"))
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Log in").click()
    expect(page.get_by_role("alert")).to_contain_text("password")

    page.get_by_label("Password").fill(secret)
    page.get_by_role("button", name="Log in").click()
    expect(page).to_have_url(f"{daemon.url}/jobs/x")
    page.goto(daemon.url)
    page.get_by_label("New job").fill("made-with-csrf")  # a change sent with the CSRF token
    page.get_by_role("button", name="Create").click()
    expect(page).to_have_url(f"{daemon.url}/jobs/made-with-csrf")

    page.get_by_role("button", name="Log out").click()
    expect(page).to_have_url(re.compile("/login"))
    page.goto(daemon.url)
    expect(page).to_have_url(re.compile(r"/login\?next="))

"""The task form's host field in Debian's Chromium against the real daemon: it offers the
hosts of the daemon's SSH config, says how each is reached, warns about a host whose key is
unknown, and still takes any name; without the hosts it stays a plain text field."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import asyncssh
from daemon_process import Daemon
from playwright.sync_api import Locator, Page, expect
from test_ui import box, browser, page  # noqa: F401 - the fixtures, shared with the UI tests

JOB = {"name": "hosted", "tasks": [{"name": "report", "command": "make report"}]}
SSH_CONFIG = (
    "Host reports-box\n  HostName 10.0.4.17\n  User etl\n  Port 2222\n"
    "Host db-box\n  HostName 10.0.0.2\n  User etl\n  ProxyJump jump.example\n"
)
REPORTS = "etl@10.0.4.17:2222 · key unknown"
DB = "etl@10.0.0.2:22 via jump.example · key known"


def start(daemons: Callable[..., Daemon], tmp_path: Path, ssh_config: str) -> Daemon:
    """A daemon whose SSH config is ``ssh_config``, with a user who knows db-box's key."""
    user = tmp_path / "user"
    (user / ".ssh").mkdir(parents=True)
    key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode().strip()
    (user / ".ssh" / "known_hosts").write_text(f"10.0.0.2 {key}\n")
    config = tmp_path / "ssh_config"
    config.write_text(ssh_config)
    daemon = daemons(env={"HOME": str(user), "JOBNEST_SSH_CONFIG": str(config)})
    assert daemon.client.put(f"/api/jobs/{JOB['name']}", json=JOB).status_code == 201
    return daemon


def open_task_form(page: Page) -> Locator:  # noqa: F811
    box(page, "report").click()
    editor = page.locator("#editor")
    editor.get_by_text("Timeouts, retries and host").click()
    return editor


def saved_host(daemon: Daemon) -> object:
    return daemon.client.get(f"/api/jobs/{JOB['name']}").json()["tasks"][0].get("host")


def test_the_host_field_offers_the_ssh_hosts_and_takes_any_name(
    daemons: Callable[..., Daemon],
    tmp_path: Path,
    page: Page,  # noqa: F811
) -> None:
    daemon = start(daemons, tmp_path, SSH_CONFIG)
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.endswith("/api/hosts") else None)
    page.goto(f"{daemon.url}/jobs/{JOB['name']}")
    expect(box(page, "report")).to_be_visible()
    assert not asked  # not before a task form opens
    editor = open_task_form(page)

    # focusing the field offers every host, with how it is reached
    host = editor.get_by_role("combobox", name="Host (SSH)")
    listbox = editor.get_by_role("listbox", name="Hosts of the SSH config")
    host.focus()
    expect(listbox.get_by_role("option")).to_have_text([f"reports-box {REPORTS}", f"db-box {DB}"])

    # the keyboard picks one: ↓ ↓ Enter; the field says how it is reached, no warning
    host.press("ArrowDown")
    host.press("ArrowDown")
    expect(listbox.get_by_role("option", name="db-box")).to_have_attribute("aria-selected", "true")
    host.press("Enter")
    expect(host).to_have_value("db-box")
    expect(listbox).to_be_hidden()
    expect(editor.locator("#t-host-hint")).to_have_text(DB)
    expect(editor.locator("#t-host-warning")).to_be_hidden()
    assert saved_host(daemon) is None  # Enter picked the host, it did not submit the form

    # typing filters the list; a click picks a host whose key is unknown: a warning in words
    host.fill("")
    host.press_sequentially("rep")
    expect(listbox.get_by_role("option")).to_have_text([f"reports-box {REPORTS}"])
    listbox.get_by_role("option", name="reports-box").click()
    expect(host).to_have_value("reports-box")
    expect(host).to_be_focused()
    warning = editor.locator("#t-host-warning")
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("Host key unknown")
    expect(warning).to_contain_text("jobnest hosts trust reports-box")

    # Escape closes the list; a name the config does not have is taken as typed, and saved
    host.fill("")
    expect(listbox).to_be_visible()
    host.press("Escape")
    expect(listbox).to_be_hidden()
    host.fill("backup.example.org")
    expect(listbox).to_be_hidden()
    expect(warning).to_be_hidden()
    expect(editor.locator("#t-host-hint")).to_be_hidden()
    editor.get_by_role("button", name="Save").click()
    expect(editor.locator(".saved")).to_have_text("Saved.")
    assert saved_host(daemon) == "backup.example.org"
    expect(editor.get_by_role("combobox", name="Host (SSH)")).to_have_value("backup.example.org")
    assert len(asked) == 1  # asked once, when the form first opened


def test_without_the_hosts_the_field_stays_plain_text(
    daemons: Callable[..., Daemon],
    tmp_path: Path,
    page: Page,  # noqa: F811
) -> None:
    daemon = start(daemons, tmp_path, "Host broken\n  Port not-a-number\n")
    page.goto(f"{daemon.url}/jobs/{JOB['name']}")
    with page.expect_response(lambda r: r.url.endswith("/api/hosts")) as answer:
        editor = open_task_form(page)
    assert answer.value.status == 422

    host = editor.get_by_role("textbox", name="Host (SSH)")
    host.fill("reports-box")
    editor.get_by_role("button", name="Save").click()
    expect(editor.locator(".saved")).to_have_text("Saved.")  # the form re-opened after that
    assert saved_host(daemon) == "reports-box"
    expect(editor.get_by_role("combobox")).to_have_count(0)
    expect(editor.get_by_role("listbox")).to_have_count(0)
    expect(editor.get_by_role("alert").filter(has_text="hosts")).to_have_count(0)

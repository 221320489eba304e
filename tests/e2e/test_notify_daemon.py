"""The real daemon sends notifications: over SMTP to aiosmtpd, and across a SIGKILL."""

from __future__ import annotations

import email
import email.policy
import signal
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session
from daemon_process import DEADLINE, Daemon

from support.polling import until
from support.ports import free_port

OPS = "ops@example.com"


@dataclass
class Mailbox:
    received: list[Envelope] = field(default_factory=list)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.received.append(envelope)
        return "250 OK"

    def subjects(self) -> list[str]:
        messages = [
            email.message_from_bytes(e.original_content or b"", policy=email.policy.default)
            for e in self.received
        ]
        return [str(message["Subject"]) for message in messages]


@pytest.fixture
def mailbox(tmp_path: Path) -> Iterator[Mailbox]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(
        f'base_url = "http://jobs.example.com"\n[smtp]\nhost = "127.0.0.1"\nport = {port}\n'
        'from = "jobnest@example.com"\ntimeout = 5\n'
    )
    try:
        yield handler
    finally:
        controller.stop()


def write_jobs(workdir: Path, command: str) -> None:
    job = {
        "name": "nightly",
        "notify": {"email": [OPS]},
        "tasks": [{"name": "load", "job": "child"}],
    }
    child = {"name": "child", "tasks": [{"name": "step", "command": command}]}
    (workdir / "jobs.yml").write_text(yaml.safe_dump({"jobs": [job, child]}))


def test_the_daemon_mails_a_failure_and_shows_it_sent(
    daemons: Callable[..., Daemon], workdir: Path, mailbox: Mailbox
) -> None:
    write_jobs(workdir, "echo 'disk full' >&2; exit 4")
    daemon = daemons("--jobs", "jobs.yml")

    run_id = daemon.client.post("/api/jobs/nightly/runs").json()["id"]
    until(lambda: mailbox.received, DEADLINE)
    run = until(lambda: sent(daemon.client.get(f"/api/runs/{run_id}").json()), DEADLINE)

    assert mailbox.subjects() == [f"[jobnest] nightly failed: 1 task (run {run_id})"]
    assert b"load/step" in (mailbox.received[0].original_content or b"")
    (note,) = run["notifications"]
    assert (note["channel"], note["target"], note["attempts"]) == ("email", OPS, 1)


def sent(run: dict[str, Any]) -> dict[str, Any] | None:
    notes = run.get("notifications") or []
    return run if notes and all(n["status"] == "sent" for n in notes) else None


def test_a_run_whose_daemon_was_killed_is_mailed_once_by_the_next_daemon(
    daemons: Callable[..., Daemon], workdir: Path, mailbox: Mailbox
) -> None:
    write_jobs(workdir, "touch started; while [ ! -f go ]; do sleep 0.05; done; exit 5")
    first = daemons("--jobs", "jobs.yml")
    run_id = first.client.post("/api/jobs/nightly/runs").json()["id"]
    until(lambda: (workdir / "started").exists(), DEADLINE)

    first.stop(signal.SIGKILL)
    (workdir / "go").touch()
    second = daemons("--jobs", "jobs.yml")

    run = until(lambda: sent(second.client.get(f"/api/runs/{run_id}").json()), DEADLINE)

    assert run["status"] == "failed"
    assert mailbox.subjects() == [f"[jobnest] nightly failed: 1 task (run {run_id})"]
    (note,) = run["notifications"]
    assert (note["outcome"], note["attempts"]) == ("failed", 1)

"""Notifications end to end: real runs, a real SMTP server (aiosmtpd) and a real HTTP receiver.

Both servers listen on free loopback ports picked first (aiosmtpd's ``Controller(port=0)``
fails). Time for backoff is driven by passing ``now`` to the outbox, never by sleeping.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email
import email.policy
import hashlib
import hmac
import json
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from jobnest.config import Settings, SMTPSettings, load_settings
from jobnest.daemon import Daemon
from jobnest.notify.base import DeliveryError, Group, Notifier, Report, Target, report_to_dict
from jobnest.notify.email import EmailNotifier
from jobnest.notify.outbox import LEASE_MARGIN, MAX_ATTEMPTS, Outbox, retry_delay
from jobnest.runner import Runner, utc_now
from jobnest.store.base import NewNotification, RunRecord, Store
from jobnest.store.sql import SQLStore
from jobnest.web import create_app
from support.polling import until_async
from support.ports import free_port

BASE_URL = "https://jobs.example.com"
OPS = "ops@example.com"
DEADLINE = 15.0  # seconds a run or a delivery may take to get where a test waits for it


# --- servers -----------------------------------------------------------------------------------


@dataclass
class Mailbox:
    """An aiosmtpd handler: answers DATA with ``replies`` first, then takes the mail."""

    replies: list[str] = field(default_factory=list)
    received: list[Envelope] = field(default_factory=list)
    refused: int = 0

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.replies:
            self.refused += 1
            return self.replies.pop(0)
        self.received.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [parse(envelope) for envelope in self.received]


def parse(envelope: Envelope) -> EmailMessage:
    data = envelope.original_content or b""
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def parts(message: EmailMessage) -> tuple[str, str]:
    """The plain-text and HTML bodies, with the wire's CRLF line ends back to LF."""
    bodies = [message.get_body((kind,)) for kind in ("plain", "html")]
    text, page = (str(body.get_content()).replace("\r\n", "\n") for body in bodies if body)
    return text, page


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    handler = Mailbox()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, port
    finally:
        controller.stop()


@dataclass
class Receiver:
    """A tiny HTTP server in a thread: records every request, answers ``statuses`` first."""

    port: int = 0
    statuses: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            receiver.requests.append((self.path, dict(self.headers), body))
            status, headers = receiver.statuses.pop(0) if receiver.statuses else (204, {})
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def receivers() -> Iterator[Callable[[], Receiver]]:
    servers: list[ThreadingHTTPServer] = []

    def start() -> Receiver:
        receiver = Receiver()
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(receiver))
        receiver.port = server.server_address[1]
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return receiver

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


# --- the daemon --------------------------------------------------------------------------------


@pytest.fixture
def settings(home: Path, mailbox: tuple[Mailbox, int]) -> Settings:
    home.mkdir(parents=True)
    smtp = SMTPSettings("127.0.0.1", mailbox[1], "jobnest@example.com", timeout=5)
    return dataclasses.replace(load_settings(), smtp=smtp, base_url=BASE_URL)


@pytest.fixture
def daemon(store: Store, settings: Settings, tmp_path: Path) -> Daemon:
    return Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))


def put(daemon: Daemon, name: str, *tasks: dict[str, Any], **fields: Any) -> None:
    daemon.put_job({"name": name, "tasks": list(tasks), **fields})


def cmd(name: str, command: str, *after: str) -> dict[str, Any]:
    return {"name": name, "command": command, "after": list(after)}


def ref(name: str, job: str, *after: str) -> dict[str, Any]:
    return {"name": name, "job": job, "after": list(after)}


async def run_to_end(daemon: Daemon, name: str) -> RunRecord:
    record = daemon.start_run(name)
    await until_async(lambda: not daemon.is_driving(record.id), DEADLINE)
    return daemon.store.get_run(record.id)


async def retry_to_end(daemon: Daemon, run_id: int) -> RunRecord:
    daemon.retry(run_id)
    await until_async(lambda: not daemon.is_driving(run_id), DEADLINE)
    return daemon.store.get_run(run_id)


def backoff(attempts: int) -> timedelta:
    delay = retry_delay(attempts)
    assert delay is not None
    return delay


def put_nested_jobs(daemon: Daemon, notify: dict[str, Any]) -> None:
    """top: extract, then load → mid (ok, inner → deep (x fails with stderr), other → leaf)."""
    put(daemon, "deep", cmd("x", "echo 'step 1 ok'; echo 'boom: ünïcødé ✗ <b>' >&2; exit 3"))
    put(daemon, "leaf", cmd("fine", "true"))
    put(daemon, "mid", cmd("ok", "true"), ref("inner", "deep", "ok"), ref("other", "leaf"))
    put(daemon, "top", cmd("extract", "true"), ref("load", "mid", "extract"), notify=notify)


# --- email -------------------------------------------------------------------------------------


def test_a_failure_deep_inside_a_child_job_is_mailed_with_its_path_and_stderr(
    daemon: Daemon, mailbox: tuple[Mailbox, int]
) -> None:
    put_nested_jobs(daemon, {"email": [OPS]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "top")
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    assert run.status == "failed"
    (message,) = mailbox[0].messages()
    assert message["Subject"] == f"[jobnest] top failed: 1 task (run {run.id})"
    assert message["To"] == OPS
    text, page = parts(message)
    assert "✗ load/inner/x\n  exit code 3, after 1 attempt\n  stderr:\n" in text
    assert "  | boom: ünïcødé ✗ <b>\n" in text
    assert "└── load → job mid (2 succeeded, 1 failed)" in text
    assert "    ├── inner → job deep (1 failed)" in text
    assert "    │   └── ✗ x: exit code 3, after 1 attempt" in text
    assert "1 more child job without failures (1 succeeded)" in text
    assert f"{BASE_URL}/runs/{run.id}" in text
    assert "boom: ünïcødé ✗ &lt;b&gt;</pre>" in page
    assert f'href="{BASE_URL}/runs/{run.id}"' in page
    assert "step 1 ok" not in text  # stdout is not stderr


def test_success_is_mailed_only_when_asked(daemon: Daemon, mailbox: tuple[Mailbox, int]) -> None:
    put(daemon, "quiet", cmd("a", "true"), notify={"email": [OPS]})
    put(daemon, "chatty", cmd("a", "true"), notify={"email": [OPS], "on": ["success"]})
    put(daemon, "no-news", cmd("a", "false"), notify={"email": [OPS], "on": ["success"]})

    async def scenario() -> list[RunRecord]:
        runs = [await run_to_end(daemon, name) for name in ("quiet", "chatty", "no-news")]
        await daemon.outbox.deliver_due()
        return runs

    quiet, chatty, no_news = asyncio.run(scenario())

    assert [m["Subject"] for m in mailbox[0].messages()] == [
        f"[jobnest] chatty succeeded (run {chatty.id})"
    ]
    assert daemon.store.notifications(quiet.id) == []
    assert daemon.store.notifications(no_news.id) == []


def test_a_server_answering_451_twice_then_250_delivers_exactly_one_mail(
    daemon: Daemon, mailbox: tuple[Mailbox, int]
) -> None:
    mailbox[0].replies = ["451 4.3.0 try again later", "451 4.3.0 still busy"]
    put(daemon, "flaky", cmd("a", "false"), notify={"email": [OPS]})

    async def scenario() -> tuple[RunRecord, list[tuple[int, str, int]]]:
        run = await run_to_end(daemon, "flaky")
        t0 = utc_now()
        seen = []
        for now in (t0, t0 + timedelta(seconds=29), t0 + timedelta(seconds=30)):
            claimed = await daemon.outbox.deliver_due(now)
            (note,) = daemon.store.notifications(run.id)
            seen.append((claimed, note.status, note.attempts))
        third = t0 + timedelta(seconds=30) + backoff(2)
        await daemon.outbox.deliver_due(third)
        await daemon.outbox.deliver_due(third + timedelta(days=1))
        return run, seen

    run, seen = asyncio.run(scenario())

    assert seen == [(1, "pending", 1), (0, "pending", 1), (1, "pending", 2)]
    assert mailbox[0].refused == 2
    assert len(mailbox[0].received) == 1
    (note,) = daemon.store.notifications(run.id)
    assert (note.status, note.attempts) == ("sent", 3)
    assert note.last_error == "the mail server answered 451 4.3.0 still busy"


def test_a_permanent_refusal_fails_at_once(daemon: Daemon, mailbox: tuple[Mailbox, int]) -> None:
    mailbox[0].replies = ["554 5.7.1 rejected as spam"]
    put(daemon, "spam", cmd("a", "false"), notify={"email": [OPS]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "spam")
        await daemon.outbox.deliver_due()
        await daemon.outbox.deliver_due(utc_now() + timedelta(days=1))
        return run

    run = asyncio.run(scenario())

    (note,) = daemon.store.notifications(run.id)
    assert (note.status, note.attempts) == ("failed", 1)
    assert note.last_error == "the mail server answered 554 5.7.1 rejected as spam"
    assert mailbox[0].received == []


def test_no_mail_server_leaves_the_run_succeeded_and_the_failure_visible_in_the_api(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    port = free_port()  # nothing listens there
    assert settings.smtp is not None
    smtp = dataclasses.replace(settings.smtp, port=port)
    daemon = Daemon(store, dataclasses.replace(settings, smtp=smtp), workdir=str(tmp_path))
    put(daemon, "lonely", cmd("a", "true"), notify={"email": [OPS], "on": ["success"]})

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        run = await run_to_end(daemon, "lonely")
        now = utc_now()
        await daemon.outbox.deliver_due(now)
        first = await get_run(daemon, run.id)
        for attempt in range(1, MAX_ATTEMPTS):
            now += backoff(attempt)
            await daemon.outbox.deliver_due(now)
        return first, await get_run(daemon, run.id)

    first, last = asyncio.run(scenario())

    assert first["status"] == last["status"] == "succeeded"
    (pending,) = first["notifications"]
    assert (pending["status"], pending["attempts"]) == ("pending", 1)
    assert pending["next_attempt_at"] is not None
    assert f"cannot talk to the mail server 127.0.0.1:{port}" in pending["last_error"]
    (failed,) = last["notifications"]
    assert (failed["channel"], failed["target"]) == ("email", OPS)
    assert (failed["status"], failed["attempts"]) == ("failed", MAX_ATTEMPTS)
    assert f"cannot talk to the mail server 127.0.0.1:{port}" in failed["last_error"]


async def get_run(daemon: Daemon, run_id: int) -> dict[str, Any]:
    transport = httpx.ASGITransport(app=create_app(daemon))
    async with httpx.AsyncClient(transport=transport, base_url="http://jobnest") as client:
        response = await client.get(f"/api/runs/{run_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_email_without_an_smtp_section_fails_visibly(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    daemon = Daemon(store, dataclasses.replace(settings, smtp=None), workdir=str(tmp_path))
    put(daemon, "unsent", cmd("a", "false"), notify={"email": [OPS]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "unsent")
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    (note,) = store.notifications(run.id)
    assert note.status == "failed"
    assert (
        note.last_error == "email is not set up: add an [smtp] section to config.toml and restart"
    )


def test_a_retry_that_ends_again_is_notified_again(
    daemon: Daemon, mailbox: tuple[Mailbox, int]
) -> None:
    put(daemon, "twice", cmd("a", "false"), notify={"email": [OPS], "on": ["failure", "success"]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "twice")
        await daemon.outbox.deliver_due()
        daemon.fix_command(run.id, "a", "true")
        run = await retry_to_end(daemon, run.id)
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    assert [m["Subject"] for m in mailbox[0].messages()] == [
        f"[jobnest] twice failed: 1 task (run {run.id})",
        f"[jobnest] twice succeeded (run {run.id}, retry 1)",
    ]
    assert [(n.retries, n.outcome, n.status) for n in daemon.store.notifications(run.id)] == [
        (0, "failed", "sent"),
        (1, "succeeded", "sent"),
    ]


def test_unicode_in_names_and_logs_arrives_intact(
    daemon: Daemon, mailbox: tuple[Mailbox, int]
) -> None:
    put(
        daemon,
        "Nächtlicher-Lauf ✓ 夜",
        cmd("schritt-ß", "printf 'Fehler: Datei „ä.csv“ fehlt — 日本語\\n' >&2; exit 1"),
        notify={"email": [OPS]},
    )

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "Nächtlicher-Lauf ✓ 夜")
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    (message,) = mailbox[0].messages()
    assert message["Subject"] == f"[jobnest] Nächtlicher-Lauf ✓ 夜 failed: 1 task (run {run.id})"
    text, page = parts(message)
    assert "✗ schritt-ß" in text
    assert "| Fehler: Datei „ä.csv“ fehlt — 日本語" in text
    assert "Fehler: Datei „ä.csv“ fehlt — 日本語" in page


# --- header injection --------------------------------------------------------------------------


def crafted_report(job: str) -> Report:
    now = utc_now()
    return Report(7, job, "failed", "manual", 0, now, now, Group("", job, {"failed": 1}))


def test_a_line_break_in_a_name_cannot_inject_a_header(
    mailbox: tuple[Mailbox, int], settings: Settings
) -> None:
    assert settings.smtp is not None
    notifier = EmailNotifier(settings.smtp)
    report = crafted_report("evil\r\nBcc: victim@example.com\r\nX-Evil: 1")

    asyncio.run(notifier.send(report, Target(OPS, 1)))

    (envelope,) = mailbox[0].received
    assert envelope.rcpt_tos == [OPS]
    message = parse(envelope)
    assert message["Bcc"] is None and message["X-Evil"] is None
    assert message["Subject"] == "[jobnest] evil  Bcc: victim@example.com  X-Evil: 1 failed (run 7)"


def test_an_address_with_a_line_break_fails_that_notification_without_a_crash(
    daemon: Daemon, mailbox: tuple[Mailbox, int]
) -> None:
    put(daemon, "ok", cmd("a", "false"), notify={"email": [OPS]})
    evil = "a@example.com\r\nBcc: victim@example.com"

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "ok")
        daemon.store.add_notifications(  # as if written into the database by hand
            run.id,
            retries=0,
            outcome="failed",
            targets=[NewNotification("email", evil)],
            report=report_to_dict(crafted_report("ok")),
            now=utc_now(),
        )
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    states = {n.target: (n.status, n.last_error) for n in daemon.store.notifications(run.id)}
    assert states[OPS] == ("sent", None)
    status, error = states[evil]
    assert status == "failed"
    assert error is not None and error.startswith("cannot write the email: Header values may not")
    assert [envelope.rcpt_tos for envelope in mailbox[0].received] == [[OPS]]


def test_a_message_that_cannot_be_built_is_a_permanent_delivery_error(settings: Settings) -> None:
    assert settings.smtp is not None
    notifier = EmailNotifier(settings.smtp)

    with pytest.raises(DeliveryError) as caught:
        notifier.message(crafted_report("j"), Target("a@b\nBcc: c@d", 1))

    assert not caught.value.temporary


# --- restarts ----------------------------------------------------------------------------------


def test_a_daemon_that_died_after_claiming_does_not_cause_a_second_mail(
    daemon: Daemon, settings: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    put(daemon, "crashy", cmd("a", "false"), notify={"email": [OPS]})
    run = asyncio.run(run_to_end(daemon, "crashy"))
    t0 = utc_now()
    dead = daemon.outbox
    (claim,) = daemon.store.claim_notifications(now=t0, lease_until=t0 + dead.lease)

    restarted = SQLStore.open(settings.database_url)
    try:
        outbox = Outbox(restarted, settings)
        while_held = asyncio.run(outbox.deliver_due(t0 + dead.lease - timedelta(seconds=1)))
        after = asyncio.run(outbox.deliver_due(t0 + dead.lease))
        late = daemon.store.finish_notification(
            claim.notification.id, attempt=1, status="failed", now=t0, error="zombie"
        )
        again = asyncio.run(outbox.deliver_due(t0 + timedelta(days=1)))
    finally:
        restarted.close()

    assert (while_held, after, late, again) == (0, 1, False, 0)
    assert len(mailbox[0].received) == 1
    (note,) = daemon.store.notifications(run.id)
    assert (note.status, note.attempts) == ("sent", 2)
    assert note.last_error is not None and "interrupted" in note.last_error


def test_a_restarted_daemon_neither_resends_nor_re_records_what_was_sent(
    daemon: Daemon, settings: Settings, mailbox: tuple[Mailbox, int]
) -> None:
    put(daemon, "done", cmd("a", "false"), notify={"email": [OPS]})
    run = asyncio.run(run_to_end(daemon, "done"))
    asyncio.run(daemon.outbox.deliver_due())

    restarted = SQLStore.open(settings.database_url)
    try:
        outbox = Outbox(restarted, settings)
        recorded = asyncio.run(outbox.catch_up())
        claimed = asyncio.run(outbox.deliver_due(utc_now() + timedelta(days=1)))
    finally:
        restarted.close()

    assert (recorded, claimed) == (0, 0)
    assert len(mailbox[0].received) == 1
    assert [n.status for n in daemon.store.notifications(run.id)] == ["sent"]


def test_a_run_that_ended_while_no_daemon_recorded_it_is_caught_up_at_start(
    daemon: Daemon, settings: Settings, mailbox: tuple[Mailbox, int], tmp_path: Path
) -> None:
    put(daemon, "missed", cmd("a", "false"), notify={"email": [OPS]})
    runner = Runner(daemon.store, daemon.runner.executor, settings)  # observes nothing

    async def scenario() -> RunRecord:
        record = runner.start(daemon.job("missed"), daemon.jobs().get, workdir=str(tmp_path))
        await runner.drive(record.id)
        assert daemon.store.notifications(record.id) == []
        assert await daemon.outbox.catch_up() == 1
        assert await daemon.outbox.catch_up() == 0
        await daemon.outbox.deliver_due()
        return daemon.store.get_run(record.id)

    run = asyncio.run(scenario())

    assert [m["Subject"] for m in mailbox[0].messages()] == [
        f"[jobnest] missed failed: 1 task (run {run.id})"
    ]


def test_the_lease_outlasts_a_whole_send(daemon: Daemon, settings: Settings) -> None:
    assert settings.smtp is not None
    slowest = EmailNotifier(settings.smtp).deadline

    assert daemon.outbox.lease >= timedelta(seconds=slowest) + LEASE_MARGIN


# --- webhooks ----------------------------------------------------------------------------------


def test_a_webhook_gets_the_report_as_json_signed_with_its_secret(
    daemon: Daemon, receivers: Callable[[], Receiver]
) -> None:
    signed, plain = receivers(), receivers()
    hooks = [{"url": signed.url, "secret": "s3cret ✓"}, plain.url]
    put_nested_jobs(daemon, {"webhooks": hooks})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "top")
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    ((path, headers, body),) = signed.requests
    expected = hmac.new("s3cret ✓".encode(), body, hashlib.sha256).hexdigest()
    assert path == "/hook"
    assert headers["X-Jobnest-Signature"] == f"sha256={expected}"
    assert headers["X-Jobnest-Event"] == "run.failed"
    assert headers["Content-Type"] == "application/json"
    data = json.loads(body)
    assert (data["event"], data["run_id"], data["job"]) == ("run.failed", run.id, "top")
    assert str(data["delivery_id"]) == headers["X-Jobnest-Delivery"]
    assert data["url"] == f"{BASE_URL}/runs/{run.id}"
    (failure,) = data["failed_tasks"]
    assert (failure["path"], failure["exit_code"]) == ("load/inner/x", 3)
    assert failure["stderr_tail"] == "boom: ünïcødé ✗ <b>"
    assert data["tree"]["children"][0]["children"][0]["job"] == "deep"
    ((_, plain_headers, _),) = plain.requests
    assert "X-Jobnest-Signature" not in plain_headers


def test_a_webhook_redirect_is_not_followed_and_fails_the_notification(
    daemon: Daemon, receivers: Callable[[], Receiver]
) -> None:
    hook, elsewhere = receivers(), receivers()
    hook.statuses = [(307, {"Location": elsewhere.url})]
    put(daemon, "moved", cmd("a", "false"), notify={"webhooks": [hook.url]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "moved")
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    (note,) = daemon.store.notifications(run.id)
    assert (note.status, note.attempts) == ("failed", 1)
    assert note.last_error == (
        f"the webhook answered 307, a redirect to {elsewhere.url!r}: redirects are not followed"
    )
    assert len(hook.requests) == 1 and elsewhere.requests == []


def test_a_webhook_answering_503_is_retried_and_404_fails_at_once(
    daemon: Daemon, receivers: Callable[[], Receiver]
) -> None:
    busy, gone = receivers(), receivers()
    busy.statuses = [(503, {})]
    gone.statuses = [(404, {})]
    put(daemon, "hooks", cmd("a", "false"), notify={"webhooks": [busy.url, gone.url]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "hooks")
        now = utc_now()
        await daemon.outbox.deliver_due(now)
        await daemon.outbox.deliver_due(now + timedelta(seconds=30))
        return run

    run = asyncio.run(scenario())

    by_url = {n.target: n for n in daemon.store.notifications(run.id)}
    assert (by_url[busy.url].status, by_url[busy.url].attempts) == ("sent", 2)
    assert by_url[busy.url].last_error == "the webhook answered 503 Service Unavailable"
    assert (by_url[gone.url].status, by_url[gone.url].attempts) == ("failed", 1)
    assert len(busy.requests) == 2 and len(gone.requests) == 1
    first, second = (json.loads(body)["delivery_id"] for _, _, body in busy.requests)
    assert first == second  # the receiver can drop a duplicate by it


def test_nothing_listening_for_a_webhook_is_temporary(
    daemon: Daemon, receivers: Callable[[], Receiver]
) -> None:
    url = f"http://127.0.0.1:{free_port()}/hook"
    put(daemon, "void", cmd("a", "false"), notify={"webhooks": [url]})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "void")
        await daemon.outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    (note,) = daemon.store.notifications(run.id)
    assert (note.status, note.attempts) == ("pending", 1)
    assert note.last_error is not None and note.last_error.startswith(f"cannot reach {url}")


def test_notifications_are_delivered_in_the_background(
    daemon: Daemon, mailbox: tuple[Mailbox, int]
) -> None:
    put(daemon, "bg", cmd("a", "false"), notify={"email": [OPS]})

    async def scenario() -> None:
        worker = asyncio.create_task(daemon.outbox.run_forever())
        try:
            await run_to_end(daemon, "bg")
            await until_async(lambda: len(mailbox[0].received) == 1, DEADLINE)
        finally:
            worker.cancel()

    asyncio.run(scenario())

    assert len(mailbox[0].received) == 1


class Stuck(Notifier):
    """A channel whose server never answers."""

    channel = "email"
    deadline = 0.05

    async def send(self, report: Report, target: Target) -> None:
        await asyncio.Event().wait()


def test_a_send_that_outlasts_its_deadline_is_given_up_and_retried_later(
    daemon: Daemon, settings: Settings
) -> None:
    put(daemon, "stuck", cmd("a", "false"), notify={"email": [OPS]})
    outbox = Outbox(daemon.store, settings, notifiers={"email": Stuck()})

    async def scenario() -> RunRecord:
        run = await run_to_end(daemon, "stuck")
        await outbox.deliver_due()
        return run

    run = asyncio.run(scenario())

    (note,) = daemon.store.notifications(run.id)
    assert (note.status, note.attempts) == ("pending", 1)
    assert note.last_error == "not done within 0.05 s: given up for now"


def test_runs_a_stopping_daemon_stops_are_recorded_for_the_next_daemon(
    daemon: Daemon, tmp_path: Path
) -> None:
    put(daemon, "long", cmd("wait", "touch started; while true; do sleep 0.05; done"))
    put(daemon, "long-notify", ref("inner", "long"), notify={"email": [OPS]})

    async def scenario() -> int:
        record = daemon.start_run("long-notify")
        await until_async(lambda: (tmp_path / "started").exists(), DEADLINE)
        await daemon.close()
        return record.id

    run_id = asyncio.run(scenario())

    assert daemon.store.get_run(run_id).status == "failed"
    (note,) = daemon.store.notifications(run_id)
    assert (note.status, note.attempts, note.target) == ("pending", 0, OPS)

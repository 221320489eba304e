"""Email reports: a multipart message (plain text and HTML) sent over SMTP with aiosmtplib.

The message is a stdlib ``EmailMessage`` under the default policy, which refuses a header
value with a line break: a name can never inject a header. The subject is made one line
first (``render.one_line``), so a name with a line break in it still gets its mail; an
address with one cannot be built into a message, which is a permanent failure of that
notification, never a crash. Non-ASCII text in names and logs is encoded by the policy
(RFC 2047 in headers, UTF-8 in the bodies).

Each notification gets a Message-ID of its own, the same for every attempt: in the rare case
a message goes out twice (see ``jobnest.notify.outbox``), mail programs see one message.

SMTP replies in 4xx are temporary (try again later), 5xx permanent. A connection that fails,
drops or times out is temporary.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

import aiosmtplib

from jobnest.config import SMTPSettings
from jobnest.notify import render
from jobnest.notify.base import DeliveryError, Notifier, Report, Target

STEPS = 6  # connect, EHLO, STARTTLS, login, envelope, data: each bounded by the timeout


class EmailNotifier(Notifier):
    """Sends each report as one email to one recipient."""

    channel = "email"

    def __init__(self, smtp: SMTPSettings) -> None:
        self.smtp = smtp
        self.deadline = smtp.timeout * STEPS

    async def send(self, report: Report, target: Target) -> None:
        message = self.message(report, target)
        try:
            await self._transmit(message)
        except aiosmtplib.SMTPResponseException as error:
            raise DeliveryError(_reply(error), temporary=400 <= error.code < 500) from error
        except aiosmtplib.SMTPRecipientsRefused as error:
            refusal = error.recipients[0]
            raise DeliveryError(_reply(refusal), temporary=400 <= refusal.code < 500) from error
        except (aiosmtplib.SMTPException, OSError) as error:
            raise DeliveryError(_problem(self.smtp, error), temporary=True) from error

    def message(self, report: Report, target: Target) -> EmailMessage:
        """The email of ``report`` to ``target``.

        Raises:
            DeliveryError: (permanent) an address or header cannot be written.
        """
        try:
            return build_message(report, self.smtp.sender, target, datetime.now(UTC))
        except (ValueError, TypeError) as error:
            raise DeliveryError(f"cannot write the email: {error}", temporary=False) from error

    async def _transmit(self, message: EmailMessage) -> None:
        """Send, then say goodbye; once the server has taken the message, that is success."""
        client = aiosmtplib.SMTP(
            hostname=self.smtp.host,
            port=self.smtp.port,
            use_tls=self.smtp.tls,
            start_tls=self.smtp.starttls,
            timeout=self.smtp.timeout,
        )
        await client.connect()
        try:
            if self.smtp.username is not None and self.smtp.password is not None:
                await client.login(self.smtp.username, self.smtp.password)
            await client.send_message(message)
            with contextlib.suppress(aiosmtplib.SMTPException, OSError):
                await client.quit()
        finally:
            client.close()  # quit() leaves the socket open when the server answers oddly


def build_message(report: Report, sender: str, target: Target, now: datetime) -> EmailMessage:
    """The multipart email: plain text first, HTML as the alternative.

    Raises:
        ValueError: a header cannot be written (a line break in an address).
    """
    message = EmailMessage()
    message["Subject"] = render.subject(report)
    message["From"] = sender
    message["To"] = target.address
    message["Date"] = format_datetime(now)
    message["Message-ID"] = f"<jobnest.{report.run_id}.{target.delivery_id}@{_domain(sender)}>"
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies, please
    message["X-Jobnest-Run"] = str(report.run_id)
    message.set_content(render.text_body(report))
    message.add_alternative(render.html_body(report), subtype="html")
    return message


def _domain(sender: str) -> str:
    domain = sender.rpartition("@")[2].strip(" >")
    return domain or "jobnest"


def _reply(error: aiosmtplib.SMTPResponseException) -> str:
    return f"the mail server answered {error.code} {error.message}"


def _problem(smtp: SMTPSettings, error: BaseException) -> str:
    what = str(error) or type(error).__name__
    return f"cannot talk to the mail server {smtp.host}:{smtp.port}: {what}"

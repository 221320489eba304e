"""The outbox: every notification recorded in the store, then delivered in the background.

When a run ends, ``enqueue`` looks at the notify settings of the job as snapshotted when the
run started, and records one ``pending`` notification per target (email recipient, webhook
URL), keyed by (run, the run's ``retries``, channel, target): recording the same ending twice
adds nothing, and a retried run that ends again is a new ending with new notifications. The
report is built then and stored with them. Nothing here can fail or hold up the run: the
daemon calls it after the run's end is written, and logs what goes wrong.

``deliver_due`` claims the due notifications (``sending``, with a lease, in one transaction:
two workers, or two daemons, never hold the same one), sends each, and records the outcome
with the claim's attempt number, which only the claim's holder can do:

    sent                                                      → sent
    temporary failure (server down, SMTP 4xx, HTTP 5xx/429)   → pending, due after a backoff
                                                                (30 s, doubling, at most 1 h;
                                                                failed after 10 attempts)
    permanent failure (SMTP 5xx, HTTP 4xx, 3xx, unbuildable)  → failed at once

Exactly once, and where it cannot be: a notification is marked ``sent`` right after the
server took it. If the daemon dies between the server's "250 OK" / "200" and that write —
a window of one database commit (plus the SMTP QUIT) — the notification stays ``sending``;
when its lease expires another worker sends it again, with the same Message-ID / delivery
id, and says in ``last_error`` that the earlier attempt was interrupted. No protocol can close
that window without the receiver's help; the stable ids are that help. A daemon that dies
before the server took the message loses nothing: the retry is the only copy.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta

from jobnest.config import Settings
from jobnest.model.job import Notify, parse_job
from jobnest.notify.base import DeliveryError, Notifier, Target, report_from_dict, report_to_dict
from jobnest.notify.email import EmailNotifier
from jobnest.notify.report import build_report
from jobnest.notify.webhook import WebhookNotifier
from jobnest.store.base import Delivery, NewNotification, NotificationRecord, RunRecord, Store

log = logging.getLogger(__name__)

BACKOFF = timedelta(seconds=30)
MAX_BACKOFF = timedelta(hours=1)
MAX_ATTEMPTS = 10
LEASE_MARGIN = timedelta(seconds=60)
BATCH = 10
POLL_SECONDS = 10.0
CATCH_UP = timedelta(hours=1)
ENDED = frozenset({"succeeded", "failed", "cancelled"})
_EVENTS = {"succeeded": "success", "failed": "failure"}  # a cancelled run notifies no one


def default_notifiers(settings: Settings) -> dict[str, Notifier]:
    """A webhook notifier, and an email one when the config has an ``[smtp]`` section."""
    notifiers: dict[str, Notifier] = {"webhook": WebhookNotifier()}
    if settings.smtp is not None:
        notifiers["email"] = EmailNotifier(settings.smtp)
    return notifiers


def targets(notify: Notify | None, outcome: str) -> list[NewNotification]:
    """Whom to tell about a run that ended ``outcome``."""
    if notify is None or _EVENTS.get(outcome) not in notify.on:
        return []
    emails = [NewNotification("email", address) for address in notify.email]
    hooks = [NewNotification("webhook", hook.url, hook.secret) for hook in notify.webhooks]
    return emails + hooks


def retry_delay(attempts: int) -> timedelta | None:
    """How long to wait after ``attempts`` failed attempts; None: give up."""
    if attempts >= MAX_ATTEMPTS:
        return None
    return min(BACKOFF * (1 << max(0, attempts - 1)), MAX_BACKOFF)


class Outbox:
    """Records the notifications of runs that ended, and delivers them."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        notifiers: Mapping[str, Notifier] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        self.settings = settings
        self.notifiers = dict(default_notifiers(settings) if notifiers is None else notifiers)
        self.clock = clock
        longest = max((n.deadline for n in self.notifiers.values()), default=60.0)
        self.lease = timedelta(seconds=longest) + LEASE_MARGIN
        self._wakeup = asyncio.Event()

    # --- recording ---------------------------------------------------------------------------

    def enqueue(self, run_id: int) -> list[NotificationRecord]:
        """Record the notifications of the run's latest ending; return those added."""
        return self._enqueue(self.store.get_run(run_id))

    def _enqueue(self, run: RunRecord) -> list[NotificationRecord]:
        if run.status not in ENDED:
            return []
        wanted = self._unrecorded(run)
        if not wanted:
            return []
        report = report_to_dict(build_report(self.store, self.settings, run))
        return self.store.add_notifications(
            run.id,
            retries=run.retries,
            outcome=run.status,
            targets=wanted,
            report=report,
            now=self.clock(),
        )

    async def catch_up(self, now: datetime | None = None) -> int:
        """Record the notifications of runs that ended in the last hour without any.

        For a daemon that starts: runs it just reconciled, and runs whose end a dead daemon
        wrote but did not get to enqueue. Returns how many notifications were added. Lets
        the event loop run between runs.
        """
        since = (now or self.clock()) - CATCH_UP
        added = 0
        for run in self.store.unnotified_runs(since):
            try:
                added += len(self._enqueue(run))
            except Exception:
                log.exception("run %s: cannot record its notifications", run.id)
            await asyncio.sleep(0)
        return added

    def _unrecorded(self, run: RunRecord) -> list[NewNotification]:
        """The targets of the run's latest ending that have no notification yet."""
        recorded = self.store.notifications(run.id)
        known = {(n.channel, n.target) for n in recorded if n.retries == run.retries}
        wanted = targets(self._notify(run), run.status)
        return [t for t in wanted if (t.channel, t.target) not in known]

    def _notify(self, run: RunRecord) -> Notify | None:
        """The notify settings of the run's job, as snapshotted when the run started."""
        entry = self.store.get_snapshot(run.id).get(run.job)
        return None if entry is None else parse_job(entry["definition"]).notify

    # --- delivering --------------------------------------------------------------------------

    async def deliver_due(self, now: datetime | None = None) -> int:
        """Claim the due notifications, send them at once, record how each went.

        ``now`` (default: the clock) is when they are claimed and when retries are counted
        from. Returns how many were claimed.
        """
        start = now or self.clock()
        claimed = self.store.claim_notifications(
            now=start, lease_until=start + self.lease, limit=BATCH
        )
        sends = (self._deliver(delivery, now) for delivery in claimed)
        outcomes = await asyncio.gather(*sends, return_exceptions=True)
        for delivery, outcome in zip(claimed, outcomes, strict=True):
            if isinstance(outcome, Exception):  # the store failed: the lease will expire
                log.error("notification %s: %s", delivery.notification.id, outcome)
        return len(claimed)

    async def run_forever(self) -> None:
        """Catch up, then deliver whatever is due, woken by ``wake`` or every few seconds."""
        await self.catch_up()
        while True:
            self._wakeup.clear()
            try:
                busy = await self.deliver_due() == BATCH
            except Exception:
                log.exception("delivering notifications failed; trying again shortly")
                busy = False
            if not busy:
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(POLL_SECONDS):
                        await self._wakeup.wait()

    def wake(self) -> None:
        """Look for due notifications now (one was just recorded)."""
        self._wakeup.set()

    async def _deliver(self, delivery: Delivery, now: datetime | None) -> None:
        record = delivery.notification
        try:
            await self._send(delivery)
        except DeliveryError as error:
            self._failed(record, str(error), error.temporary, now)
        except Exception as error:
            log.exception("notification %s: sending it failed unexpectedly", record.id)
            self._failed(record, f"unexpected error: {error!r}", True, now)
        else:
            self._finish(record, "sent", now)

    async def _send(self, delivery: Delivery) -> None:
        record = delivery.notification
        notifier = self.notifiers.get(record.channel)
        if notifier is None:
            raise DeliveryError(_not_set_up(record.channel), temporary=False)
        target = Target(record.target, record.id, delivery.secret)
        try:
            async with asyncio.timeout(notifier.deadline):
                await notifier.send(report_from_dict(delivery.report), target)
        except TimeoutError as error:
            message = f"not done within {notifier.deadline:g} s: given up for now"
            raise DeliveryError(message, temporary=True) from error

    def _failed(
        self, record: NotificationRecord, error: str, temporary: bool, now: datetime | None
    ) -> None:
        delay = retry_delay(record.attempts) if temporary else None
        if delay is None:
            self._finish(record, "failed", now, error)
            log.warning("notification %s to %s failed: %s", record.id, record.target, error)
        else:
            self._finish(record, "pending", now, error, delay)

    def _finish(
        self,
        record: NotificationRecord,
        status: str,
        now: datetime | None,
        error: str | None = None,
        delay: timedelta | None = None,
    ) -> None:
        at = now or self.clock()
        held = self.store.finish_notification(
            record.id,
            attempt=record.attempts,
            status=status,
            now=at,
            error=error,
            retry_at=at + delay if delay is not None else None,
        )
        if not held:
            log.warning("notification %s: its lease expired while sending", record.id)


def _not_set_up(channel: str) -> str:
    if channel == "email":
        return "email is not set up: add an [smtp] section to config.toml and restart"
    return f"no notifier for channel {channel!r}"

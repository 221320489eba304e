"""Notifications: telling people how a run ended, by email and by webhook.

The modules, from the contract to the delivery:

- ``base``: the Report (a run's ending, its failed tasks as a tree of child jobs) and the
  Notifier contract
- ``report``: build_report, a Report from the store and the attempts' stderr files
- ``render``: the subject, plain-text and HTML bodies of a report
- ``email``: EmailNotifier, an EmailMessage over SMTP (aiosmtplib)
- ``webhook``: WebhookNotifier, a JSON POST signed with HMAC-SHA256 (httpx)
- ``outbox``: Outbox, a notification per target recorded in the store and delivered in the
  background with retries and backoff
"""

"""Webhooks: the report as a JSON POST, signed with the webhook's secret when it has one.

The body is ``{"event": "run.failed", "delivery_id": 17, ...the report...}`` (see
``base.report_to_dict``), UTF-8 JSON. Headers:

    Content-Type          application/json
    X-Jobnest-Event       run.failed | run.succeeded
    X-Jobnest-Delivery    the delivery id, the same for every attempt: drop duplicates by it
    X-Jobnest-Signature   sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the
                          secret>; only for a webhook with a secret

Any 2xx is success. Redirects are not followed at all — a 3xx is a permanent failure —
so a report and its signature never travel to a host the job did not name. 408, 429 and
5xx are temporary, as are connection errors and timeouts; other 4xx are permanent.
"""

from __future__ import annotations

import hashlib
import hmac
import json

import httpx

from jobnest.notify.base import DeliveryError, Notifier, Report, Target, report_to_dict

TIMEOUT = httpx.Timeout(10.0, connect=5.0)
TEMPORARY = frozenset({408, 425, 429})
USER_AGENT = "jobnest-webhook/1"


class WebhookNotifier(Notifier):
    """POSTs each report to one URL."""

    channel = "webhook"
    deadline = 30.0

    def __init__(self, timeout: httpx.Timeout = TIMEOUT) -> None:
        self.timeout = timeout

    async def send(self, report: Report, target: Target) -> None:
        body = payload(report, target.delivery_id)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-Jobnest-Event": report.event,
            "X-Jobnest-Delivery": str(target.delivery_id),
        }
        if target.secret is not None:
            headers["X-Jobnest-Signature"] = signature(body, target.secret)
        response = await self._post(target.address, body, headers)
        _check(response)

    async def _post(self, url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        try:
            async with httpx.AsyncClient(timeout=self.timeout, follow_redirects=False) as client:
                return await client.post(url, content=body, headers=headers)
        except httpx.TransportError as error:
            what = str(error) or type(error).__name__
            raise DeliveryError(f"cannot reach {url}: {what}", temporary=True) from error
        except httpx.InvalidURL as error:
            raise DeliveryError(f"invalid URL {url!r}: {error}", temporary=False) from error


def payload(report: Report, delivery_id: int) -> bytes:
    """The JSON body: the event and delivery id, then the report."""
    data = {"event": report.event, "delivery_id": delivery_id, **report_to_dict(report)}
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()


def signature(body: bytes, secret: str) -> str:
    """``sha256=<hex>``: the HMAC-SHA256 of ``body`` keyed with ``secret`` (UTF-8)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _check(response: httpx.Response) -> None:
    status = response.status_code
    if 200 <= status < 300:
        return
    where = response.headers.get("location")
    if 300 <= status < 400:
        message = f"answered {status}, a redirect to {where!r}: redirects are not followed"
    else:
        message = f"answered {status} {response.reason_phrase}"
    temporary = status in TEMPORARY or status >= 500
    raise DeliveryError(f"the webhook {message}", temporary=temporary)

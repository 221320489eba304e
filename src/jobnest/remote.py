"""Asking the running daemon over its REST API, for CLI commands that act on its state.

Pausing and resuming a schedule go through the daemon (not the store) because the daemon's
scheduler must see them at once: a resumed job's slots are handled from the instant of the
resume, and a catch-up run is driven by the daemon that started it.
"""

from __future__ import annotations

from typing import Any

import httpx

from jobnest.errors import InvalidInput

HINTS = {
    401: "; the daemon wants an API token (--token or $JOBNEST_TOKEN)",
    403: "; the token may only read: create one with --scope full",
}


def call_daemon(url: str, token: str | None, method: str, path: str, **options: Any) -> Any:
    """The JSON answer of one request to the daemon at ``url``.

    Raises:
        InvalidInput: the daemon cannot be reached, or refuses (its error, quoted).
    """
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        with httpx.Client(base_url=url, headers=headers, timeout=30) as client:
            response = client.request(method, path, **options)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise InvalidInput(f"cannot reach the daemon at {url!r}: {exc}") from None
    if not response.is_success:
        raise InvalidInput(f"the daemon refused ({response.status_code}): {_reason(response)}")
    return response.json()


def _reason(response: httpx.Response) -> str:
    try:
        reason = str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        reason = response.text[:200] or response.reason_phrase
    return reason + HINTS.get(response.status_code, "")

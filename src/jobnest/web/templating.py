"""The pages' templates and static files, and the filters the templates share.

Templates live in ``web/templates`` (Jinja2, autoescaped); ``web/static`` holds our own CSS
and scripts, served at ``/static``. ``page(request, name, ...)`` renders a template with
what every page needs: the session's CSRF token (for the scripts' changes and the logout
form) and whether a password protects the daemon.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.templating import Jinja2Templates

from jobnest.web.policy import Identity

HERE = Path(__file__).parent
TEMPLATES = HERE / "templates"
STATIC = HERE / "static"

# what a status looks like besides its colour: an icon and words
STATUS_ICONS = {
    "succeeded": "✓",
    "failed": "✗",
    "running": "▶",
    "queued": "…",
    "pending": "○",
    "upstream_failed": "⊘",
    "cancelled": "■",
    "skipped": "↷",
}

templates = Jinja2Templates(directory=TEMPLATES)


def duration(start: datetime | None, end: datetime | None) -> str:
    """``1 h 02 m``, ``3 m 05 s``, ``4.2 s``; empty when either end is missing."""
    if start is None or end is None:
        return ""
    seconds = max(0.0, (end - start).total_seconds())
    if seconds < 10:
        return f"{seconds:.1f} s"
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours} h {minutes:02d} m"
    return f"{minutes} m {secs:02d} s" if minutes else f"{secs} s"


def status_label(status: str) -> str:
    return status.replace("_", " ")


def iso(moment: datetime | None) -> str:
    """An instant for ``<time datetime=...>``; the browser shows it in the viewer's zone."""
    return "" if moment is None else moment.isoformat()


templates.env.filters["duration"] = lambda pair: duration(*pair)
templates.env.filters["status_label"] = status_label
templates.env.filters["iso"] = iso
templates.env.globals["STATUS_ICONS"] = STATUS_ICONS


def identity(request: Request) -> Identity | None:
    """What authenticated the request; None when no authentication is installed."""
    found = request.scope.get("state", {}).get("identity")
    return found if isinstance(found, Identity) else None


def page(request: Request, template: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    """Render ``template`` with the page's own ``context`` and what every page needs."""
    who = identity(request)
    session = who.session if who else None
    shared = {
        "csrf_token": session.csrf if session else "",
        "logged_in": session is not None,
    }
    return templates.TemplateResponse(request, template, {**shared, **context}, status_code)

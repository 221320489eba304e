"""Who may call what, enforced in front of every route by one ASGI middleware.

``install_auth(app, store, settings)`` adds ``AuthMiddleware`` (so mounted apps, unknown
paths and routes added later are covered too) and the login routes (``web.login``). With no
password configured (``jobnest.credentials``) everything is open. With one:

- ``/login``, ``/healthz``, anything under ``/static/`` and the OpenAPI document need no
  credentials (``policy.ALLOWED_PATHS``, ``policy.ALLOWED_PREFIXES``).
- Every other request needs ``Authorization: Bearer <token>`` or the session cookie, else
  401 ``{"error": ...}``; a browser asking for a page outside ``/api`` is sent to
  ``/login?next=...`` instead.
- A read-scope token may only GET and HEAD: 403 otherwise.
- A request authenticated by the cookie, with any method but GET, HEAD and OPTIONS, must
  come from this server's pages (``Origin``, else ``Referer``, naming the ``Host``) and carry
  the session's CSRF token (``X-CSRF-Token`` header, or the ``csrf_token`` field of a
  url-encoded form): 403 otherwise. Bearer requests need neither: a browser never adds that
  header by itself. A WebSocket authenticated by the cookie must come from this server too.

What authenticated a request is in ``request.state.identity`` (``policy.identity_of``).
"""

from __future__ import annotations

from urllib.parse import parse_qs, quote

from fastapi import FastAPI
from starlette.requests import HTTPConnection
from starlette.responses import RedirectResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send
from starlette.websockets import WebSocketClose

from jobnest.config import Settings
from jobnest.credentials import check_password_hash, same_secret
from jobnest.errors import StoreError
from jobnest.runner import Clock, utc_now
from jobnest.store.base import Store
from jobnest.web.login import login_router
from jobnest.web.policy import (
    ALLOWED_PATHS,
    FORM_TYPE,
    LOGIN_PATH,
    READ_METHODS,
    AuthPolicy,
    Denied,
    Identity,
    content_type,
    error_response,
    method_of,
    read_body,
    require_same_origin,
)
from jobnest.web.ratelimit import LoginLimiter

CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
MAX_FORM_BYTES = 1 << 20
_POLICY_VIOLATION = 1008  # the WebSocket close code


def install_auth(
    app: FastAPI,
    store: Store,
    settings: Settings,
    *,
    clock: Clock = utc_now,
    limiter: LoginLimiter | None = None,
) -> None:
    """Guard every route of ``app`` and add the login routes; call it before the app starts.

    Raises:
        InvalidInput: the configured ``password_hash`` is not a hash jobnest makes.
    """
    if settings.password_hash is not None:
        check_password_hash(settings.password_hash, "password_hash (config file or environment)")
    allowed = ALLOWED_PATHS | ({app.openapi_url} if app.openapi_url else set())
    policy = AuthPolicy(store, settings, clock, frozenset(allowed))
    app.add_middleware(AuthMiddleware, policy=policy)
    app.include_router(login_router(policy, limiter or LoginLimiter()))


class AuthMiddleware:
    """Applies an ``AuthPolicy`` to every HTTP request and WebSocket before routing."""

    def __init__(self, app: ASGIApp, policy: AuthPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or self.policy.is_allowed(scope["path"]):
            await self.app(scope, receive, send)
            return
        conn = HTTPConnection(scope)
        try:
            identity = self._identify(conn)
            receive = await check_forgery(conn, identity, receive)
        except Denied as denied:
            await refusal(conn, denied)(scope, receive, send)
            return
        scope.setdefault("state", {})["identity"] = identity
        await self.app(scope, receive, send)

    def _identify(self, conn: HTTPConnection) -> Identity:
        """The policy's answer; an unusable database is a 503 here, outside the app's handlers."""
        try:
            return self.policy.identify(conn)
        except StoreError as error:
            raise Denied(503, str(error)) from error


async def check_forgery(conn: HTTPConnection, identity: Identity, receive: Receive) -> Receive:
    """Refuse a change made with the cookie from another site; returns the body's ``receive``.

    A url-encoded form's body is read to find its ``csrf_token`` field, then replayed.
    """
    if identity.session is None:
        return receive
    if conn.scope["type"] == "websocket":
        require_same_origin(conn)
        return receive
    if method_of(conn) in SAFE_METHODS:
        return receive
    require_same_origin(conn)
    presented, receive = await _presented_csrf(conn, receive)
    if presented is None:
        raise Denied(403, "missing CSRF token: send the session's csrf_token in X-CSRF-Token")
    if not same_secret(presented, identity.session.csrf):
        raise Denied(403, "wrong CSRF token: GET /api/session tells the session's csrf_token")
    return receive


async def _presented_csrf(conn: HTTPConnection, receive: Receive) -> tuple[str | None, Receive]:
    header = conn.headers.get(CSRF_HEADER)
    if header is not None or content_type(conn) != FORM_TYPE:
        return header, receive
    body = await read_body(receive, MAX_FORM_BYTES)
    fields = parse_qs(body.decode("latin-1"), keep_blank_values=True)
    return fields.get(CSRF_FIELD, [None])[0], _replay(body, receive)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A ``receive`` that hands out ``body`` once, then whatever the client sends next."""
    pending: list[Message] = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> Message:
        return pending.pop() if pending else await receive()

    return replay


def refusal(conn: HTTPConnection, denied: Denied) -> ASGIApp:
    """The answer to a refused request: a JSON error, a closed WebSocket, or for a browser
    asking for a page without credentials, a redirect to the login page."""
    if conn.scope["type"] == "websocket":
        return WebSocketClose(_POLICY_VIOLATION, denied.reason[:120])
    if denied.status == 401 and _wants_page(conn):
        target = conn.url.path + (f"?{conn.url.query}" if conn.url.query else "")
        return RedirectResponse(f"{LOGIN_PATH}?next={quote(target, safe='')}", status_code=303)
    return error_response(denied)


def _wants_page(conn: HTTPConnection) -> bool:
    path = conn.url.path
    is_api = path == "/api" or path.startswith("/api/")
    accepts_html = "text/html" in conn.headers.get("accept", "")
    return method_of(conn) in READ_METHODS and accepts_html and not is_api

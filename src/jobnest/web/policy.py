"""The authentication rules and their parts: who is calling, and is it from our own pages.

``AuthPolicy.identify`` tells who sends a request (an ``Identity``) or raises ``Denied``
with the HTTP status and the reason. The store's lookups here are single-row reads by
primary key; they run on the event loop.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Literal
from urllib.parse import urlsplit

from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import Receive

from jobnest.config import Settings
from jobnest.credentials import find_session, find_token, password_hash
from jobnest.runner import Clock
from jobnest.store.base import SessionRecord, Store, TokenRecord

SESSION_COOKIE = "jobnest_session"
LOGIN_PATH = "/login"
ALLOWED_PATHS = frozenset({LOGIN_PATH, "/healthz"})
ALLOWED_PREFIXES = ("/static/",)
READ_METHODS = frozenset({"GET", "HEAD"})
FORM_TYPE = "application/x-www-form-urlencoded"
PASSWORD_RECHECK = 1.0  # seconds a read of the stored password hash is trusted

Via = Literal["session", "token", "open"]  # "open": no password is configured
Scope = Literal["read", "full"]


@dataclass(frozen=True)
class Identity:
    """What authenticated a request."""

    via: Via
    scope: Scope
    session: SessionRecord | None = None
    token: TokenRecord | None = None


OPEN = Identity("open", "full")


class Denied(Exception):
    """A request the policy refuses: the HTTP status and the reason, for the client."""

    def __init__(self, status: int, reason: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = dict(headers or {})


def unauthenticated(reason: str) -> Denied:
    """A 401 that tells the client which scheme to use."""
    return Denied(401, reason, {"WWW-Authenticate": 'Bearer realm="jobnest"'})


@dataclass
class _Remembered:
    """The stored password hash as last read, and until when to trust that read."""

    value: str | None = None
    until: float = -math.inf


@dataclass(frozen=True)
class AuthPolicy:
    """The rules, over the store that holds the password, the sessions and the tokens."""

    store: Store
    settings: Settings
    clock: Clock
    allowed_paths: frozenset[str] = ALLOWED_PATHS
    _stored: _Remembered = field(default_factory=_Remembered, compare=False)

    def password_hash(self) -> str | None:
        """The password hash in force; None: no password, everything is open.

        The stored one is read at most once per ``PASSWORD_RECHECK`` seconds: a password
        set by `jobnest passwd` while the daemon runs applies within that time.
        """
        if self.settings.password_hash is not None:
            return self.settings.password_hash
        now = time.monotonic()
        if now >= self._stored.until:
            self._stored.value = password_hash(self.store, self.settings)
            self._stored.until = now + PASSWORD_RECHECK
        return self._stored.value

    def is_allowed(self, path: str) -> bool:
        """Whether ``path`` is served without credentials."""
        return path in self.allowed_paths or path.startswith(ALLOWED_PREFIXES)

    def identify(self, conn: HTTPConnection) -> Identity:
        """Who sends the request; raises Denied (401, 403) when nobody valid does."""
        if self.password_hash() is None:
            return OPEN
        authorization = conn.headers.get("authorization")
        if authorization is not None:
            return self._by_token(authorization, method_of(conn))
        secret = conn.cookies.get(SESSION_COOKIE)
        if secret:
            return self._by_session(secret)
        raise unauthenticated(
            f"authentication required: log in at {LOGIN_PATH}"
            " or send the header 'Authorization: Bearer <token>'"
        )

    def _by_token(self, authorization: str, method: str) -> Identity:
        scheme, _, secret = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not secret.strip():
            raise unauthenticated("the Authorization header must be 'Bearer <token>'")
        token = find_token(self.store, secret.strip())
        if token is None:
            raise unauthenticated("unknown or revoked API token")
        if token.scope != "full" and method not in READ_METHODS:
            raise Denied(403, f"API token {token.name!r} is read-only: {method} needs scope 'full'")
        return Identity("token", "full" if token.scope == "full" else "read", token=token)

    def _by_session(self, secret: str) -> Identity:
        session = find_session(self.store, secret, now=self.clock())
        if session is None:
            raise unauthenticated("the session has expired or was logged out: log in again")
        return Identity("session", "full", session=session)


def identity_of(conn: HTTPConnection) -> Identity:
    """What authenticated the request, as ``AuthMiddleware`` found it."""
    identity = conn.scope.get("state", {}).get("identity")
    if not isinstance(identity, Identity):
        raise RuntimeError(f"{conn.url.path}: no identity; is AuthMiddleware installed?")
    return identity


# --- where a request comes from ----------------------------------------------------------------


def require_same_origin(conn: HTTPConnection) -> None:
    """Raise Denied (403) unless ``Origin`` (else ``Referer``) names the request's ``Host``."""
    source = _source(conn)
    if source is None:
        raise Denied(403, "missing Origin header: changes are accepted from this server's pages")
    if is_foreign(conn):
        raise Denied(403, f"cross-origin request refused: {source!r} is not {_host(conn)!r}")


def is_foreign(conn: HTTPConnection) -> bool:
    """Whether the request names another site as its origin (naming none is not foreign)."""
    source = _source(conn)
    return source is not None and _netloc(source) != _host(conn)


def _source(conn: HTTPConnection) -> str | None:
    return conn.headers.get("origin") or conn.headers.get("referer")


def _host(conn: HTTPConnection) -> str:
    return conn.headers.get("host", "").lower()


def _netloc(url: str) -> str | None:
    """``host[:port]`` of an http(s) URL, lowercase, without its scheme's default port."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    netloc = parts.netloc.rpartition("@")[2].lower()
    return netloc.removesuffix(":443" if parts.scheme == "https" else ":80")


# --- reading requests, answering refusals ------------------------------------------------------


def method_of(conn: HTTPConnection) -> str:
    """The request's method; a WebSocket handshake is a GET."""
    return str(conn.scope.get("method", "GET"))


def content_type(conn: HTTPConnection) -> str:
    """The media type of the body, lowercase, without parameters."""
    return conn.headers.get("content-type", "").partition(";")[0].strip().lower()


def is_https(conn: HTTPConnection) -> bool:
    return conn.url.scheme in ("https", "wss")


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; Denied (413) past ``limit`` bytes, (400) on disconnect."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Denied(400, "the client went away while sending the body")
        chunks.append(message.get("body", b""))
        size += len(chunks[-1])
        if size > limit:
            raise Denied(413, f"the body is over {limit} bytes")
        if not message.get("more_body", False):
            return b"".join(chunks)


def error_response(denied: Denied) -> Response:
    """``{"error": reason}`` with the refusal's status and headers."""
    return JSONResponse({"error": denied.reason}, denied.status, headers=denied.headers)

"""The login routes: the login page, login, logout, and who is calling.

    GET  /login         a small HTML form; browsers without a session are sent here
    POST /login         JSON ``{"password"}`` answers ``{"csrf_token", "expires_at"}``; a
                        url-encoded form (``password``, ``next``) is redirected to ``next``
    POST /logout        ends the session on the server: its cookie stops working
    GET  /api/session   who is calling (session, token, or open), and the CSRF token

The session cookie is HttpOnly, SameSite=Strict, and Secure when the request came over
https. Login attempts are limited per client address (``web.ratelimit``): 429 with
``Retry-After`` past the limit, even for the right password.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel
from starlette.concurrency import run_in_threadpool
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from jobnest.credentials import SESSION_LIFETIME, start_session, verify_password
from jobnest.web.policy import (
    FORM_TYPE,
    LOGIN_PATH,
    SESSION_COOKIE,
    AuthPolicy,
    Denied,
    Scope,
    Via,
    content_type,
    error_response,
    identity_of,
    is_foreign,
    is_https,
    read_body,
)
from jobnest.web.ratelimit import LoginLimiter
from jobnest.web.templating import templates

JSON_TYPE = "application/json"
MAX_LOGIN_BYTES = 64 * 1024


class ErrorBody(BaseModel):
    error: str


class LoginResult(BaseModel):
    csrf_token: str  # send it as X-CSRF-Token with every change made with the cookie
    expires_at: datetime


class TokenInfo(BaseModel):
    id: int
    name: str


class SessionInfo(BaseModel):
    password_required: bool
    via: Via
    scope: Scope
    csrf_token: str | None = None
    expires_at: datetime | None = None
    token: TokenInfo | None = None


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {status: {"model": ErrorBody} for status in statuses}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    return {"type": "object", "required": ["password"], "properties": properties}


_FORM_REDIRECT: dict[int | str, dict[str, Any]] = {
    303: {"description": "a form login: on to its `next` path"}
}
_LOGIN_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            JSON_TYPE: {"schema": _object({"password": {"type": "string"}})},
            FORM_TYPE: {
                "schema": _object({"password": {"type": "string"}, "next": {"type": "string"}})
            },
        },
    }
}


def login_router(policy: AuthPolicy, limiter: LoginLimiter) -> APIRouter:
    """The login routes over ``policy``'s store, with ``limiter`` on login attempts."""
    router = APIRouter(tags=["auth"])

    @router.get(LOGIN_PATH, response_class=HTMLResponse, include_in_schema=False)
    async def login_page(target: str = Query("/", alias="next")) -> HTMLResponse:
        return HTMLResponse(login_page_html(safe_next(target)))

    @router.post(
        LOGIN_PATH,
        response_model=LoginResult,
        responses=_errors(401, 403, 409, 413, 415, 422, 429) | _FORM_REDIRECT,
        openapi_extra=_LOGIN_BODY,
    )
    async def login(request: Request) -> Response:
        """Log in with the password; sets the session cookie."""
        is_form = content_type(request) == FORM_TYPE
        target = "/"
        try:
            expected = _password_to_check(policy, limiter, request)
            password, target = await _read_login(request, is_form)
            limiter.record(_client(request))
            if not await run_in_threadpool(verify_password, password, expected):
                raise Denied(401, "wrong password")
        except Denied as denied:
            return _refused(denied, is_form, target)
        limiter.clear(_client(request))
        return await _logged_in(policy, request, target if is_form else None)

    @router.post("/logout", status_code=204, responses=_errors(401, 403))
    async def logout(request: Request) -> Response:
        """End this session on the server; its cookie no longer works."""
        session = identity_of(request).session
        if session is not None:
            await run_in_threadpool(policy.store.delete_session, session.id_hash)
        is_form = content_type(request) == FORM_TYPE
        response = RedirectResponse(LOGIN_PATH, 303) if is_form else Response(status_code=204)
        response.delete_cookie(
            SESSION_COOKIE, httponly=True, samesite="strict", secure=is_https(request)
        )
        return response

    @router.get("/api/session", response_model=SessionInfo, responses=_errors(401))
    async def session_info(request: Request) -> SessionInfo:
        """Who is calling, and the session's CSRF token."""
        return _describe(request)

    return router


def _password_to_check(policy: AuthPolicy, limiter: LoginLimiter, request: Request) -> str:
    expected = policy.password_hash()
    if expected is None:
        raise Denied(409, "no password is configured (set one with `jobnest passwd`)")
    wait = limiter.retry_after(_client(request))
    if wait is not None:
        reason = f"too many login attempts: try again in {wait} s"
        raise Denied(429, reason, {"Retry-After": str(wait)})
    if is_foreign(request):
        raise Denied(403, "a login from another site's page is refused")
    return expected


async def _read_login(request: Request, is_form: bool) -> tuple[str, str]:
    """(password, where a form login goes next) from a JSON or url-encoded body."""
    if not is_form and content_type(request) != JSON_TYPE:
        raise Denied(415, f'send {JSON_TYPE} {{"password": ...}} or a form with a password')
    body = await read_body(request.receive, MAX_LOGIN_BYTES)
    try:
        text = body.decode("utf-8")
        fields = dict(parse_qsl(text, errors="strict")) if is_form else json.loads(text)
    except ValueError:
        raise Denied(422, "the body is not UTF-8 JSON or a url-encoded form") from None
    if not isinstance(fields, dict) or not isinstance(fields.get("password"), str):
        raise Denied(422, "the body needs a 'password' field holding text")
    return fields["password"], safe_next(fields.get("next"))


async def _logged_in(policy: AuthPolicy, request: Request, target: str | None) -> Response:
    """A new session: its cookie set on a redirect to ``target``, or on the JSON answer."""
    secret, session = await run_in_threadpool(start_session, policy.store, now=policy.clock())
    response: Response
    if target is not None:
        response = RedirectResponse(target, status_code=303)
    else:
        result = LoginResult(csrf_token=session.csrf, expires_at=session.expires_at)
        response = JSONResponse(result.model_dump(mode="json"))
    response.set_cookie(
        SESSION_COOKIE,
        secret,
        max_age=int(SESSION_LIFETIME.total_seconds()),
        httponly=True,
        samesite="strict",
        secure=is_https(request),
    )
    return response


def _refused(denied: Denied, is_form: bool, target: str) -> Response:
    if not is_form:
        return error_response(denied)
    page = login_page_html(target, problem=denied.reason)
    return HTMLResponse(page, denied.status, headers=denied.headers)


def _client(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _describe(request: Request) -> SessionInfo:
    """What ``GET /api/session`` answers for ``request``."""
    identity = identity_of(request)
    session, token = identity.session, identity.token
    return SessionInfo(
        password_required=identity.via != "open",
        via=identity.via,
        scope=identity.scope,
        csrf_token=session.csrf if session else None,
        expires_at=session.expires_at if session else None,
        token=TokenInfo(id=token.id, name=token.name) if token else None,
    )


def safe_next(target: object) -> str:
    """``target`` when it is a path on this server, else ``/``: never a redirect elsewhere."""
    if (
        isinstance(target, str)
        and target.startswith("/")
        and not target.startswith(("//", "/\\"))
        and target.isprintable()
    ):
        return target
    return "/"


def login_page_html(target: str, problem: str | None = None) -> str:
    """The login form, going on to ``target``, with ``problem`` shown when there is one."""
    return templates.get_template("login.html").render(next=target, problem=problem)

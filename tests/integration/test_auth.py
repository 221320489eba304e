"""Authentication of the web server, in process over a real SQLite store.

Most tests use a small app of their own (``small_app``) with routes of every kind: JSON reads
and changes, a page, a WebSocket and static files. The route walks also run against the
daemon's real app (``create_app``), with ``install_auth`` as ``jobnest serve`` calls it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from fastapi import FastAPI, Request, Response
from fastapi.responses import HTMLResponse
from fastapi.routing import iter_route_contexts
from fastapi.staticfiles import StaticFiles
from starlette.routing import Mount, Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocket, WebSocketDisconnect

from jobnest.config import Settings, load_settings
from jobnest.credentials import SESSION_LIFETIME, hash_password, issue_token
from jobnest.errors import InvalidInput
from jobnest.store.base import Store
from jobnest.store.sql import SQLStore
from jobnest.web.auth import install_auth
from jobnest.web.policy import PASSWORD_RECHECK, SESSION_COOKIE, identity_of
from jobnest.web.ratelimit import LoginLimiter
from support.polling import until

PASSWORD = "correct horse battery"
HASH = hash_password(PASSWORD)
T0 = datetime(2024, 5, 1, 2, 0, tzinfo=UTC)
ORIGIN = {"Origin": "http://testserver"}
ALLOWED_PATHS = {"/login", "/healthz", "/openapi.json"}
ALLOWED_PREFIX = "/static/"
SAMPLES = {"int": "1", "path": "a/b", "float": "1.5"}


class FakeClock:
    """Both clocks of the auth layer: UTC instants for sessions, seconds for the limiter."""

    def __init__(self) -> None:
        self.instant = T0
        self.seconds = 1000.0

    def __call__(self) -> datetime:
        return self.instant

    def monotonic(self) -> float:
        return self.seconds

    def advance(self, delta: timedelta) -> None:
        self.instant += delta
        self.seconds += delta.total_seconds()


@dataclass
class Server:
    store: Store
    settings: Settings
    clock: FakeClock
    static: Path

    def app(self, settings: Settings | None = None) -> FastAPI:
        app = small_app(self.static)
        limiter = LoginLimiter(attempts=3, window=60, clock=self.clock.monotonic)
        install_auth(app, self.store, settings or self.settings, clock=self.clock, limiter=limiter)
        return app

    def client(self, **options: Any) -> TestClient:
        return TestClient(self.app(), follow_redirects=False, **options)


def small_app(static: Path) -> FastAPI:
    app = FastAPI()

    @app.get("/api/things/{name}")
    def read_thing(name: str) -> dict[str, str]:
        return {"name": name}

    @app.head("/api/things/{name}")
    def thing_exists(name: str) -> Response:
        return Response()

    @app.post("/api/things")
    async def make_thing(request: Request) -> dict[str, str]:
        body = await request.body()
        return {"body": body.decode(), "via": identity_of(request).via}

    @app.delete("/api/things/{thing_id:int}", status_code=204)
    def delete_thing(thing_id: int) -> Response:
        return Response(status_code=204)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/", response_class=HTMLResponse)
    def dashboard() -> str:
        return "<h1>jobs</h1>"

    @app.websocket("/ws")
    async def live(websocket: WebSocket) -> None:
        await websocket.accept()
        await websocket.send_text("hello")
        await websocket.close()

    app.mount("/static", StaticFiles(directory=static), name="static")
    return app


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    home = tmp_path / "home"
    home.mkdir()
    static = tmp_path / "static"
    static.mkdir()
    (static / "app.js").write_text("console.log('hi')")
    settings = load_settings({"JOBNEST_HOME": str(home)})
    store = SQLStore.open(settings.database_url)
    store.set_password_hash(HASH)
    yield Server(store, settings, FakeClock(), static)
    store.close()


@pytest.fixture
def client(server: Server) -> TestClient:
    return server.client()


def login(client: TestClient, password: str = PASSWORD) -> str:
    """Log in; returns the session's CSRF token."""
    response = client.post("/login", json={"password": password})
    assert response.status_code == 200, response.text
    return str(response.json()["csrf_token"])


def make_thing(client: TestClient, headers: dict[str, str], body: str = "x") -> httpx2.Response:
    return client.post("/api/things", content=body, headers=headers)


def token(server: Server, scope: str) -> dict[str, str]:
    secret, _ = issue_token(server.store, "ci", scope, now=T0)
    return {"Authorization": f"Bearer {secret}"}


# --- walking every route -----------------------------------------------------------------------


def requests_of(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) for every HTTP route, path parameters filled with sample values.

    FastAPI keeps included routers as such in ``app.routes``; ``iter_route_contexts``
    yields the routes inside them with their full paths.
    """
    found = []
    for context in iter_route_contexts(app.routes):
        route, path = context.original_route, str(context.path)
        if isinstance(route, Mount):
            found.append(("GET", path + "/sample.txt"))
        elif isinstance(route, Route):
            found += [(method, fill(path)) for method in sorted(context.methods or ())]
        else:
            assert isinstance(route, WebSocketRoute), route
    return found


def fill(path: str) -> str:
    return re.sub(r"\{\w+(?::(\w+))?\}", lambda m: SAMPLES.get(m.group(1) or "", "sample"), path)


def is_allowed(path: str) -> bool:
    return path in ALLOWED_PATHS or path.startswith(ALLOWED_PREFIX)


def assert_walk_needs_credentials(app: FastAPI) -> int:
    """Every route answers 401 without credentials unless allow-listed; returns how many."""
    client = TestClient(app, follow_redirects=False)
    walked = requests_of(app)
    for method, path in walked:
        response = client.request(method, path)
        if is_allowed(path):
            assert response.status_code != 401, (method, path)
        else:
            assert response.status_code == 401, (method, path, response.status_code)
            assert method == "HEAD" or response.json()["error"], (method, path)
    return len(walked)


def test_every_route_needs_credentials_unless_allow_listed(server: Server) -> None:
    app = server.app()
    assert assert_walk_needs_credentials(app) >= 10
    assert {path for _, path in requests_of(app)} >= ALLOWED_PATHS


def test_every_route_of_the_daemon_app_needs_credentials_unless_allow_listed(
    server: Server,
) -> None:
    from jobnest.daemon import Daemon
    from jobnest.web.app import create_app

    app = create_app(Daemon(server.store, server.settings))
    install_auth(app, server.store, server.settings)
    walked = requests_of(app)
    assert any(path.startswith("/api/jobs") for _, path in walked)
    assert assert_walk_needs_credentials(app) == len(walked)
    with TestClient(app) as client:
        assert client.get("/api/jobs", headers=token(server, "read")).status_code == 200


def test_every_route_is_reached_with_a_full_token(server: Server) -> None:
    app = server.app()
    client = TestClient(app, follow_redirects=False, headers=token(server, "full"))
    for method, path in requests_of(app):
        assert client.request(method, path).status_code not in (401, 403), (method, path)


def test_allow_listed_paths_answer_without_credentials(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/static/app.js").text == "console.log('hi')"
    assert client.get("/openapi.json").json()["paths"]["/login"]
    page = client.get("/login?next=/jobs/nightly")
    assert page.status_code == 200
    assert 'name="next" value="/jobs/nightly"' in page.text


def test_paths_that_exist_nowhere_need_credentials_too(client: TestClient) -> None:
    assert client.get("/api/nothing/here").status_code == 401
    assert client.get("/static/../api/things/a").status_code != 200


def test_an_unusable_database_is_503_not_500(tmp_path: Path) -> None:
    folder = tmp_path / "gone"
    folder.mkdir()
    settings = load_settings({"JOBNEST_HOME": str(folder)})
    store = SQLStore.open(settings.database_url)
    app = small_app(tmp_path)
    install_auth(app, store, settings)
    store.close()
    shutil.rmtree(folder)
    response = TestClient(app).get("/api/things/a")
    assert response.status_code == 503
    assert "database" in response.json()["error"]


def open_app(tmp_path: Path) -> tuple[SQLStore, TestClient]:
    """The small app guarded with no password configured: its store and a client."""
    settings = load_settings({"JOBNEST_HOME": str(tmp_path)})
    store = SQLStore.open(settings.database_url)
    app = small_app(tmp_path)
    install_auth(app, store, settings)
    return store, TestClient(app)


def test_everything_is_open_without_a_password(tmp_path: Path) -> None:
    store, client = open_app(tmp_path)
    assert client.get("/api/things/a").status_code == 200
    assert make_thing(client, {}).json() == {"body": "x", "via": "open"}
    assert client.get("/api/session").json()["password_required"] is False
    assert client.post("/login", json={"password": PASSWORD}).status_code == 409
    store.close()


def test_a_password_set_while_serving_applies_within_the_recheck_interval(tmp_path: Path) -> None:
    store, client = open_app(tmp_path)
    assert client.get("/api/things/a").status_code == 200
    store.set_password_hash(HASH)  # as `jobnest passwd` does from another process
    until(
        lambda: client.get("/api/things/a").status_code != 200,
        PASSWORD_RECHECK + 5,
        "the new password never applied",
    )
    assert client.get("/api/things/a").status_code == 401
    store.close()


# --- sessions ----------------------------------------------------------------------------------


def test_login_sets_an_http_only_strict_session_cookie(client: TestClient) -> None:
    response = client.post("/login", json={"password": PASSWORD})
    cookie = response.headers["set-cookie"]
    assert cookie.startswith(f"{SESSION_COOKIE}=")
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/" in cookie
    assert f"Max-Age={int(SESSION_LIFETIME.total_seconds())}" in cookie
    assert "Secure" not in cookie


def test_the_session_cookie_is_secure_over_https(server: Server) -> None:
    client = server.client(base_url="https://testserver")
    response = client.post("/login", json={"password": PASSWORD})
    assert "Secure" in response.headers["set-cookie"]
    assert client.get("/api/things/a").status_code == 200


def test_a_session_reads_and_tells_its_csrf_token(client: TestClient) -> None:
    csrf = login(client)
    assert client.get("/api/things/a").json() == {"name": "a"}
    session = client.get("/api/session").json()
    assert session["via"] == "session"
    assert session["scope"] == "full"
    assert session["csrf_token"] == csrf
    assert session["password_required"] is True


def test_logout_really_logs_out(server: Server, client: TestClient) -> None:
    csrf = login(client)
    old_cookie = client.cookies[SESSION_COOKIE]
    response = client.post("/logout", headers={"X-CSRF-Token": csrf, **ORIGIN})
    assert response.status_code == 204
    assert f'{SESSION_COOKIE}=""' in response.headers["set-cookie"]
    replay = server.client()
    replay.cookies[SESSION_COOKIE] = old_cookie
    assert replay.get("/api/things/a").status_code == 401


def test_logout_needs_the_csrf_token(client: TestClient) -> None:
    login(client)
    assert client.post("/logout", headers=ORIGIN).status_code == 403
    assert client.get("/api/things/a").status_code == 200


def test_a_form_logout_goes_back_to_the_login_page(client: TestClient) -> None:
    csrf = login(client)
    response = client.post("/logout", data={"csrf_token": csrf}, headers=ORIGIN)
    assert response.status_code == 303
    assert response.headers["location"] == "/login"
    assert client.get("/api/things/a").status_code == 401


def test_a_session_expires(server: Server, client: TestClient) -> None:
    login(client)
    server.clock.advance(SESSION_LIFETIME)
    response = client.get("/api/things/a")
    assert response.status_code == 401
    assert "expired" in response.json()["error"]


def test_a_new_password_ends_every_session(server: Server, client: TestClient) -> None:
    login(client)
    server.store.set_password_hash(hash_password("another password"))
    assert client.get("/api/things/a").status_code == 401


def test_a_forged_session_cookie_is_refused(client: TestClient) -> None:
    client.cookies[SESSION_COOKIE] = "made-up"
    assert client.get("/api/things/a").status_code == 401


# --- logging in --------------------------------------------------------------------------------


def test_a_wrong_password_is_401_and_sets_no_cookie(client: TestClient) -> None:
    response = client.post("/login", json={"password": "wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": "wrong password"}
    assert "set-cookie" not in response.headers
    assert client.get("/api/things/a").status_code == 401


def test_login_is_rate_limited_per_client_address(server: Server, client: TestClient) -> None:
    for _ in range(3):
        assert client.post("/login", json={"password": "guess"}).status_code == 401
    refused = client.post("/login", json={"password": PASSWORD})
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "60"
    assert "try again in 60 s" in refused.json()["error"]
    other = server.client(client=("10.0.0.2", 50000))
    assert other.post("/login", json={"password": PASSWORD}).status_code == 200
    server.clock.advance(timedelta(seconds=60))
    assert client.post("/login", json={"password": PASSWORD}).status_code == 200


def test_a_successful_login_clears_the_count(client: TestClient) -> None:
    for _ in range(2):
        client.post("/login", json={"password": "guess"})
    login(client)
    for _ in range(2):
        assert client.post("/login", json={"password": "guess"}).status_code == 401


@pytest.mark.parametrize(
    ("content", "content_type", "status"),
    [
        (b"{not json", "application/json", 422),
        (b'["a list"]', "application/json", 422),
        (b'{"password": 12345678}', "application/json", 422),
        (b'{"password": "\\ud800"}', "application/json", 401),  # a lone surrogate: just wrong
        (b'{"password": "\xff"}', "application/json", 422),
        (b"password=%ff", "application/x-www-form-urlencoded", 422),
        (b"password", "text/plain", 415),
        (b'{"password": "' + b"a" * 70_000 + b'"}', "application/json", 413),
    ],
)
def test_bad_login_bodies_are_client_errors(
    client: TestClient, content: bytes, content_type: str, status: int
) -> None:
    response = client.post("/login", content=content, headers={"Content-Type": content_type})
    assert response.status_code == status
    if content_type != "application/x-www-form-urlencoded":
        assert response.json()["error"]


def test_a_login_from_another_site_is_refused(client: TestClient) -> None:
    response = client.post(
        "/login", json={"password": PASSWORD}, headers={"Origin": "http://evil.example"}
    )
    assert response.status_code == 403


def test_a_form_login_goes_on_to_next(client: TestClient) -> None:
    response = client.post("/login", data={"password": PASSWORD, "next": "/jobs/nightly?x=1"})
    assert response.status_code == 303
    assert response.headers["location"] == "/jobs/nightly?x=1"
    assert client.get("/api/things/a").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/", "/\\evil", ""])
def test_a_form_login_never_goes_to_another_site(client: TestClient, target: str) -> None:
    response = client.post("/login", data={"password": PASSWORD, "next": target})
    assert response.headers["location"] == "/"


def test_a_failed_form_login_shows_the_page_again(client: TestClient) -> None:
    response = client.post("/login", data={"password": "nope", "next": '/a"><script>'})
    assert response.status_code == 401
    assert "wrong password" in response.text
    assert "<script>" not in response.text


def test_a_browser_asking_for_a_page_is_sent_to_the_login_page(client: TestClient) -> None:
    html = {"Accept": "text/html,application/xhtml+xml"}
    page = client.get("/?tab=runs", headers=html)
    assert page.status_code == 303
    assert page.headers["location"] == "/login?next=%2F%3Ftab%3Druns"
    assert client.get("/api/things/a", headers=html).status_code == 401


# --- tokens ------------------------------------------------------------------------------------


def test_a_read_token_may_only_read(server: Server, client: TestClient) -> None:
    headers = token(server, "read")
    assert client.get("/api/things/a", headers=headers).status_code == 200
    assert client.head("/api/things/a", headers=headers).status_code == 200
    refused = make_thing(client, headers)
    assert refused.status_code == 403
    assert "read-only" in refused.json()["error"]
    assert client.delete("/api/things/1", headers=headers).status_code == 403


def test_a_full_token_changes_without_csrf_or_origin(server: Server, client: TestClient) -> None:
    headers = token(server, "full")
    assert make_thing(client, headers).json() == {"body": "x", "via": "token"}
    assert client.delete("/api/things/1", headers=headers).status_code == 204


def test_a_token_tells_who_it_is(server: Server, client: TestClient) -> None:
    session = client.get("/api/session", headers=token(server, "read")).json()
    assert session["via"] == "token"
    assert session["scope"] == "read"
    assert session["token"]["name"] == "ci"
    assert session["csrf_token"] is None


def test_a_revoked_token_is_refused(server: Server, client: TestClient) -> None:
    secret, record = issue_token(server.store, "ci", "full", now=T0)
    server.store.revoke_token(record.id, now=T0)
    response = client.get("/api/things/a", headers={"Authorization": f"Bearer {secret}"})
    assert response.status_code == 401
    assert "revoked" in response.json()["error"]


@pytest.mark.parametrize("authorization", ["Bearer nope", "Basic dXNlcjpwYXNz", "Bearer ", "x"])
def test_a_bad_authorization_header_is_401(client: TestClient, authorization: str) -> None:
    response = client.get("/api/things/a", headers={"Authorization": authorization})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")


# --- cross-site request forgery ----------------------------------------------------------------


def test_a_change_with_the_cookie_and_csrf_token_passes(client: TestClient) -> None:
    csrf = login(client)
    response = make_thing(client, {"X-CSRF-Token": csrf, **ORIGIN})
    assert response.json() == {"body": "x", "via": "session"}


def test_a_change_with_the_cookie_needs_the_csrf_token(client: TestClient) -> None:
    login(client)
    response = make_thing(client, ORIGIN)
    assert response.status_code == 403
    assert "CSRF" in response.json()["error"]


def test_a_wrong_csrf_token_is_403(server: Server, client: TestClient) -> None:
    login(client)
    other = login(server.client())
    assert make_thing(client, {"X-CSRF-Token": other, **ORIGIN}).status_code == 403
    assert make_thing(client, {"X-CSRF-Token": "", **ORIGIN}).status_code == 403


def test_a_delete_with_the_cookie_needs_the_csrf_token(client: TestClient) -> None:
    csrf = login(client)
    assert client.delete("/api/things/1", headers=ORIGIN).status_code == 403
    assert client.delete("/api/things/1", headers={"X-CSRF-Token": csrf, **ORIGIN}).is_success


@pytest.mark.parametrize(
    "source",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "http://testserver:8080"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {},
    ],
)
def test_a_change_with_the_cookie_from_elsewhere_is_403(
    client: TestClient, source: dict[str, str]
) -> None:
    csrf = login(client)
    response = make_thing(client, {"X-CSRF-Token": csrf, **source})
    assert response.status_code == 403
    assert "rigin" in response.json()["error"]


@pytest.mark.parametrize(
    "source",
    [
        {"Origin": "http://TestServer"},
        {"Origin": "http://testserver:80"},
        {"Referer": "http://testserver/jobs/nightly"},
    ],
)
def test_the_same_origin_is_recognised(client: TestClient, source: dict[str, str]) -> None:
    csrf = login(client)
    assert make_thing(client, {"X-CSRF-Token": csrf, **source}).status_code == 200


def test_a_form_may_carry_the_csrf_token_and_its_body_still_arrives(client: TestClient) -> None:
    csrf = login(client)
    form = f"csrf_token={csrf}&note=hello"
    headers = {"Content-Type": "application/x-www-form-urlencoded", **ORIGIN}
    response = make_thing(client, headers, body=form)
    assert response.json() == {"body": form, "via": "session"}
    assert make_thing(client, headers, body="note=hello").status_code == 403


def test_an_oversized_form_without_the_header_is_413(client: TestClient) -> None:
    login(client)
    headers = {"Content-Type": "application/x-www-form-urlencoded", **ORIGIN}
    assert make_thing(client, headers, body="a" * (1 << 20 | 1)).status_code == 413


# --- WebSockets --------------------------------------------------------------------------------


def test_a_websocket_needs_credentials(client: TestClient) -> None:
    with pytest.raises(WebSocketDisconnect) as closed, client.websocket_connect("/ws"):
        pass
    assert closed.value.code == 1008


def test_a_websocket_with_the_cookie_must_come_from_this_server(client: TestClient) -> None:
    login(client)
    with client.websocket_connect("/ws", headers=ORIGIN) as socket:
        assert socket.receive_text() == "hello"
    with (
        pytest.raises(WebSocketDisconnect),
        client.websocket_connect("/ws", headers={"Origin": "http://evil.example"}),
    ):
        pass


# --- the password from the config file ---------------------------------------------------------


def test_the_password_may_come_from_the_config_file(server: Server) -> None:
    (server.settings.home / "config.toml").write_text(f'password_hash = "{HASH}"\n')
    settings = load_settings({"JOBNEST_HOME": str(server.settings.home)})
    server.store.set_password_hash(hash_password("the stored one"))
    client = TestClient(server.app(settings))
    assert client.get("/api/things/a").status_code == 401
    assert client.post("/login", json={"password": "the stored one"}).status_code == 401
    login(client)
    assert client.get("/api/things/a").status_code == 200


def test_the_config_password_alone_turns_auth_on(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text(f'password_hash = "{HASH}"\n')
    settings = load_settings({"JOBNEST_HOME": str(tmp_path)})
    store = SQLStore.open(settings.database_url)
    app = small_app(tmp_path)
    install_auth(app, store, settings)
    client = TestClient(app)
    assert client.get("/api/things/a").status_code == 401
    login(client)
    assert client.get("/api/things/a").status_code == 200
    store.close()


def test_a_broken_config_password_hash_is_refused_at_install(server: Server) -> None:
    (server.settings.home / "config.toml").write_text('password_hash = "hunter2"\n')
    settings = load_settings({"JOBNEST_HOME": str(server.settings.home)})
    with pytest.raises(InvalidInput, match="password_hash"):
        install_auth(FastAPI(), server.store, settings)

"""The web application: ``create_app(daemon)``, and the one place errors become responses.

    NotFound                          404
    Conflict (RunInProgress, ...)     409
    InvalidInput (InvalidJob, ...)    422, with the job, task and reason of an InvalidJob
    request validation errors         422; a malformed or out-of-range run id is a 404
    StoreError                        503: the database cannot be used
    HTTP errors of the framework      their own status (404 unknown route, 405, 413)

Every error body is JSON ``{"error": "<message naming the offending value>", ...}``.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse
from starlette.exceptions import HTTPException
from starlette.staticfiles import StaticFiles

import jobnest
from jobnest.daemon import Daemon
from jobnest.errors import Conflict, InvalidInput, JobnestError, NotFound, StoreError
from jobnest.web import api, events, pages
from jobnest.web.cache import ClearAfterWrites, ResponseCache
from jobnest.web.deps import DaemonDep
from jobnest.web.models import JOB_SCHEMA, Health
from jobnest.web.templating import STATIC

log = logging.getLogger(__name__)
PROMETHEUS_TEXT = "text/plain; version=0.0.4; charset=utf-8"

STATUS: list[tuple[type[JobnestError], int]] = [
    (NotFound, 404),
    (Conflict, 409),
    (InvalidInput, 422),
    (StoreError, 503),
]
# attributes of jobnest's errors worth a field of their own in the body
DETAILS = {
    "job": "job",
    "task": "task",
    "reason": "reason",
    "cycle": "cycle",
    "path": "path",
    "run_id": "run_id",
    "status": "run_status",
    "referrers": "referrers",
}


def create_app(daemon: Daemon) -> FastAPI:
    """The API (``/api/...``), its OpenAPI document (``/openapi.json``), ``/healthz``, the
    web UI's pages (``web.pages``) and their scripts and styles (``/static``)."""
    app = FastAPI(
        title="jobnest",
        version=jobnest.__version__,
        description="Jobs of shell commands, jobs inside jobs, retry from failure.",
    )
    app.state.daemon = daemon
    app.state.responses = responses = ResponseCache()
    daemon.hub.listeners.append(responses.hear)
    app.add_middleware(ClearAfterWrites, cache=responses)
    app.include_router(api.router)
    app.include_router(events.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    app.add_api_route("/healthz", healthz, methods=["GET"], response_model=Health, tags=["health"])
    app.add_api_route("/metrics", metrics, methods=["GET"], tags=["health"])
    app.add_exception_handler(JobnestError, _jobnest_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(HTTPException, _http_error)
    app.openapi = lambda: _openapi(app)  # type: ignore[method-assign]
    return app


async def healthz(daemon: DaemonDep) -> Health:
    """Alive, the database answers, and when the scheduler last ticked."""
    daemon.store.list_runs(limit=1)
    return Health(status="ok", last_tick=daemon.metrics.last_tick)


async def metrics(daemon: DaemonDep) -> PlainTextResponse:
    """Prometheus's text format: runs, tasks, queue wait, scheduler lag, notifications."""
    return PlainTextResponse(daemon.metrics_text(), media_type=PROMETHEUS_TEXT)


def error(status: int, message: str, **details: Any) -> JSONResponse:
    return JSONResponse({"error": message, **details}, status_code=status)


async def _jobnest_error(request: Request, exc: Exception) -> JSONResponse:
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 500)
    if status >= 500:
        log.error("%s %s: %s", request.method, request.url.path, exc)
    details = {
        field: getattr(exc, attr)
        for attr, field in DETAILS.items()
        if getattr(exc, attr, None) is not None
    }
    return error(status, str(exc), **details)


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    problems = [(_where(e.get("loc", ())), str(e.get("msg", ""))) for e in exc.errors()]
    if any(where == "path run_id" for where, _ in problems):
        return error(404, f"no run with id {request.path_params.get('run_id', '')!r}")
    message = "; ".join(f"{where}: {msg}" for where, msg in problems)
    return error(422, message, errors=[{"at": where, "msg": msg} for where, msg in problems])


def _where(loc: Any) -> str:
    return " ".join(str(part) for part in loc)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    response = error(exc.status_code, str(exc.detail))
    response.headers.update(exc.headers or {})
    return response


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated document, plus the job definition's JSON schema as a component."""
    if app.openapi_schema is None:
        document = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas["JobDefinition"] = JOB_SCHEMA
        app.openapi_schema = document
    return app.openapi_schema

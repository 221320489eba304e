"""The web UI's pages (design §6): server-rendered HTML that our own scripts bring to life.

    GET /                     the dashboard: every job, its schedule, next run, last result
    GET /jobs/{name}          the job's graph, editable in place
    GET /jobs/{name}/runs     the job's run history, a page at a time
    GET /runs/{id}            a run: live task states, logs, retry, cancel, fixes

The pages carry what is known when they are rendered; the scripts in ``web/static`` draw
the graphs from ``/api/.../layout``, follow ``/api/events`` and make every change through
the REST API. An unknown job or run is an HTML 404 page, not JSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from starlette.responses import HTMLResponse

from jobnest.daemon import Daemon
from jobnest.errors import InvalidInput, NotFound
from jobnest.model import schedule
from jobnest.model.job import Job, JobRef, check_name, job_to_dict
from jobnest.store.base import RunRecord
from jobnest.web.deps import MAX_ID, DaemonDep
from jobnest.web.templating import page

router = APIRouter(include_in_schema=False)
HISTORY_PAGE = 50


@dataclass(frozen=True)
class JobRow:
    """A job as the dashboard shows it."""

    name: str
    tasks: int
    schedule: str | None
    words: str
    zone: str
    next_run: datetime | None
    last: RunRecord | None
    paused: bool = False

    @property
    def status(self) -> str:
        return self.last.status if self.last else "never run"


@router.get("/", response_class=HTMLResponse)
async def dashboard(request: Request, daemon: DaemonDep) -> HTMLResponse:
    jobs = sorted(daemon.jobs().values(), key=lambda job: job.name.casefold())
    now = daemon.clock()
    rows = [_row(daemon, job, now) for job in jobs]
    return page(request, "dashboard.html", rows=rows, zone=str(daemon.zone))


@router.get("/jobs/{name}", response_class=HTMLResponse)
async def job_page(request: Request, name: str, daemon: DaemonDep) -> HTMLResponse:
    try:
        job = daemon.job(check_name(name, "job"))
    except (NotFound, InvalidInput) as problem:
        return _missing(request, problem)
    jobs = daemon.jobs()
    context: dict[str, Any] = {
        "job": job,
        "definition": job_to_dict(job),
        "others": sorted(other for other in jobs if other != name),
        "used_by": sorted(j.name for j in jobs.values() if _references(j, name)),
        "recent": daemon.store.list_runs(name, limit=5),
        "zone": str(daemon.zone),
        "words": _words(job.schedule),
        "paused": daemon.is_paused(name),
    }
    return page(request, "job.html", **context)


@router.get("/jobs/{name}/runs", response_class=HTMLResponse)
async def history_page(
    request: Request,
    name: str,
    daemon: DaemonDep,
    offset: Annotated[int, Query(ge=0, le=2**62)] = 0,
) -> HTMLResponse:
    try:
        check_name(name, "job")
    except InvalidInput as problem:
        return _missing(request, problem)
    runs = daemon.store.list_runs(name, limit=HISTORY_PAGE + 1, offset=offset)
    if not runs and offset == 0 and name not in daemon.jobs():
        return _missing(request, NotFound(f"no job named {name!r}"))
    context: dict[str, Any] = {
        "name": name,
        "runs": runs[:HISTORY_PAGE],
        "offset": offset,
        "newer": max(0, offset - HISTORY_PAGE) if offset else None,
        "older": offset + HISTORY_PAGE if len(runs) > HISTORY_PAGE else None,
        "exists": name in daemon.jobs(),
    }
    return page(request, "history.html", **context)


@router.get("/runs/{run_id}", response_class=HTMLResponse)
async def run_page(request: Request, run_id: str, daemon: DaemonDep) -> HTMLResponse:
    try:
        run = daemon.store.get_run(_run_id(run_id))
    except NotFound as problem:
        return _missing(request, problem)
    return page(request, "run.html", run=run, job_exists=run.job in daemon.jobs())


def _row(daemon: Daemon, job: Job, now: datetime) -> JobRow:
    last = daemon.store.list_runs(job.name, limit=1)
    return JobRow(
        name=job.name,
        tasks=len(job.tasks),
        schedule=job.schedule,
        words=_words(job.schedule),
        zone=job.timezone or str(daemon.zone),
        next_run=daemon.next_run(job, now),
        last=last[0] if last else None,
        paused=daemon.is_paused(job.name),
    )


def _words(expression: str | None) -> str:
    return schedule.describe(expression) if expression else ""


def _references(job: Job, name: str) -> bool:
    return any(isinstance(task, JobRef) and task.job == name for task in job.tasks)


def _run_id(text: str) -> int:
    """The run id of the URL; anything but an id in range is an unknown run."""
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= MAX_ID:
        raise NotFound(f"no run with id {text[:40]!r}")
    return int(text)


def _missing(request: Request, problem: Exception) -> HTMLResponse:
    status = 404 if isinstance(problem, NotFound) else 422
    return page(request, "missing.html", status_code=status, problem=str(problem))

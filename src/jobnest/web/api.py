"""The REST API under ``/api`` (design §5): jobs, plans, runs, retries, cancels, fixes.

- ``PUT /api/jobs/{name}`` takes the job definition (``JobDefinition`` in the document);
  its ``name`` may be left out and must otherwise match the URL. 201 creates, 200
  replaces; ``?dry_run=true`` only validates. Every validation error is a 422 naming the
  job, the task and the reason.
- Run history is newest first, a page at a time: ``limit`` (1–500, default 50) and
  ``offset``; each page gives the ``next_offset`` to ask for, or null on the last page.
- Handlers are ``async``: they run on the event loop's thread, like the runner and the
  scheduler, so the daemon's state is never touched from two threads.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from jobnest.daemon import Daemon
from jobnest.errors import InvalidInput, NotFound
from jobnest.model import schedule
from jobnest.model.expand import plan_from_dict
from jobnest.model.job import Job, check_name, job_to_dict
from jobnest.store.base import RunRecord
from jobnest.web import task_logs
from jobnest.web.deps import DaemonDep, JobName, RunId, TaskPath, read_json, task_path
from jobnest.web.layouts import View, job_layout, run_layout
from jobnest.web.models import (
    ERRORS,
    JOB_REF,
    AttemptOut,
    FixOut,
    JobList,
    JobSummary,
    PlanOut,
    RunBrief,
    RunDetail,
    RunOut,
    RunPage,
)

router = APIRouter(prefix="/api", responses=ERRORS)
router.include_router(task_logs.router)

Limit = Annotated[int, Query(ge=1, le=500, description="runs per page")]
Offset = Annotated[int, Query(ge=0, le=2**62, description="runs to skip, newest first")]
Paths = Annotated[list[str] | None, Query(description="reference paths, e.g. load or load/sub")]
Every = Annotated[bool, Query(alias="all", description="open every reference")]
MAX_PATHS = 10_000
JOB_BODY: dict[str, Any] = {
    "requestBody": {"required": True, "content": {"application/json": {"schema": JOB_REF}}}
}
COMMAND_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["command"],
                    "properties": {"command": {"type": "string", "minLength": 1}},
                }
            }
        },
    }
}
JOB_RESPONSE = {
    "description": "The job definition",
    "content": {"application/json": {"schema": JOB_REF}},
}

# --- jobs --------------------------------------------------------------------------------------


@router.get("/jobs", tags=["jobs"])
async def list_jobs(daemon: DaemonDep) -> JobList:
    """Every job with its schedule, next run and last run."""
    now = daemon.clock()
    return JobList(jobs=[_summary(daemon, job, now) for job in daemon.jobs().values()])


@router.get("/jobs/{name}", tags=["jobs"], responses={200: JOB_RESPONSE})
async def get_job(name: JobName, daemon: DaemonDep) -> JSONResponse:
    """The job's definition."""
    return JSONResponse(job_to_dict(daemon.job(name)))


@router.put(
    "/jobs/{name}",
    tags=["jobs"],
    openapi_extra=JOB_BODY,
    responses={200: JOB_RESPONSE, 201: JOB_RESPONSE},
)
async def put_job(
    name: JobName, request: Request, daemon: DaemonDep, dry_run: bool = False
) -> JSONResponse:
    """Create (201) or replace (200) the job; with ``dry_run`` only validate it (200)."""
    definition = _named(await read_json(request), name)
    if dry_run:
        return JSONResponse(job_to_dict(daemon.check_job(definition)))
    saved = daemon.put_job(definition)
    if not saved.created:
        return JSONResponse(job_to_dict(saved.job))
    location = {"Location": f"/api/jobs/{quote(name, safe='')}"}
    return JSONResponse(job_to_dict(saved.job), status_code=201, headers=location)


@router.delete("/jobs/{name}", tags=["jobs"], status_code=204)
async def delete_job(name: JobName, daemon: DaemonDep) -> Response:
    """Delete the job (its runs stay); 409 naming the jobs that reference it."""
    daemon.delete_job(name)
    return Response(status_code=204)


@router.get("/jobs/{name}/plan", tags=["jobs"])
async def job_plan(name: JobName, daemon: DaemonDep) -> PlanOut:
    """The expanded plan as it would run now: nodes, edges, and the groups of references."""
    return PlanOut.of(daemon.plan(name))


@router.get("/jobs/{name}/layout", tags=["jobs"])
async def job_plan_layout(
    name: JobName,
    daemon: DaemonDep,
    expand: Paths = None,
    collapse: Paths = None,
    every: Every = False,
) -> JSONResponse:
    """The plan drawn left to right: boxes and routes; references open as ``expand`` says
    (``all``: every one), minus ``collapse``. Each reference box tells its ``tasks``."""
    view = await _view(expand, collapse, every, auto=False)
    return JSONResponse(job_layout(daemon.plan(name), view))


@router.post("/jobs/{name}/runs", tags=["runs"], status_code=201)
async def start_run(name: JobName, daemon: DaemonDep, response: Response) -> RunDetail:
    """Start a run of the job now, from a fresh snapshot; 409 if one is in progress."""
    run = daemon.start_run(name)
    response.headers["Location"] = f"/api/runs/{run.id}"
    return _detail(daemon, run)


@router.get("/jobs/{name}/runs", tags=["runs"])
async def job_runs(
    name: JobName, daemon: DaemonDep, limit: Limit = 50, offset: Offset = 0
) -> RunPage:
    """The job's runs, newest first, a page at a time."""
    page = _page(daemon, name, limit, offset)
    if not page.runs and name not in daemon.jobs() and not daemon.store.list_runs(name, limit=1):
        raise NotFound(f"no job named {name!r}")
    return page


# --- runs --------------------------------------------------------------------------------------


@router.get("/runs", tags=["runs"])
async def list_runs(
    daemon: DaemonDep, job: str | None = None, limit: Limit = 50, offset: Offset = 0
) -> RunPage:
    """Runs of every job (or of ``job``), newest first, a page at a time."""
    return _page(daemon, None if job is None else check_name(job, "job"), limit, offset)


@router.get("/runs/{run_id}", tags=["runs"])
async def get_run(run_id: RunId, daemon: DaemonDep) -> RunDetail:
    """The run with every task's status, times, exit code and attempts, and its fixes."""
    return _detail(daemon, daemon.store.get_run(run_id))


@router.get("/runs/{run_id}/plan", tags=["runs"])
async def run_plan(run_id: RunId, daemon: DaemonDep) -> PlanOut:
    """The frozen plan the run executes, as snapshotted when it started."""
    return PlanOut.of(plan_from_dict(daemon.store.get_plan(run_id)))


@router.get("/runs/{run_id}/layout", tags=["runs"])
async def run_plan_layout(
    run_id: RunId,
    daemon: DaemonDep,
    expand: Paths = None,
    collapse: Paths = None,
    every: Every = False,
    auto: bool = True,
) -> JSONResponse:
    """The run's plan drawn with every box's state. References open: those with a failed
    task inside (``auto``, the default), ``expand``-ed ones (``all``: every one), minus
    ``collapse``. A reference box counts its tasks by status (``counts``)."""
    view = await _view(expand, collapse, every, auto=auto)
    graph = plan_from_dict(daemon.store.get_plan(run_id))
    return JSONResponse(run_layout(graph, daemon.store.tasks(run_id), view))


@router.get("/runs/{run_id}/tasks/{path:path}/attempts", tags=["runs"])
async def task_attempts(run_id: RunId, path: TaskPath, daemon: DaemonDep) -> list[AttemptOut]:
    """Every attempt of the task, oldest first: status, exit code, times, host, sizes."""
    attempts = daemon.store.attempts(run_id, path)
    if not attempts and path not in {task.path for task in daemon.store.tasks(run_id)}:
        raise NotFound(f"run {run_id} has no task {path!r}")
    return [AttemptOut.of(attempt) for attempt in attempts]


@router.post("/runs/{run_id}/retry", tags=["runs"])
async def retry_run(run_id: RunId, daemon: DaemonDep) -> RunDetail:
    """Re-run the failed tasks and what follows them, in the same plan; 409 unless failed."""
    return _detail(daemon, daemon.retry(run_id))


@router.post("/runs/{run_id}/cancel", tags=["runs"], status_code=202)
async def cancel_run(run_id: RunId, daemon: DaemonDep) -> RunDetail:
    """Stop the run: it ends ``cancelled`` once its running tasks have stopped."""
    return _detail(daemon, await daemon.cancel(run_id))


@router.put("/runs/{run_id}/tasks/{path:path}/command", tags=["runs"], openapi_extra=COMMAND_BODY)
async def fix_command(run_id: RunId, path: TaskPath, request: Request, daemon: DaemonDep) -> FixOut:
    """Replace a failed task's command for the rest of this run (then retry); recorded."""
    body = await read_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("command"), str):
        raise InvalidInput(f'the body must be {{"command": "<new command>"}}, got {body!r:.80}')
    return FixOut.of(daemon.fix_command(run_id, path, body["command"]))


# --- helpers -----------------------------------------------------------------------------------


async def _view(
    expand: list[str] | None, collapse: list[str] | None, every: bool, *, auto: bool
) -> View:
    """The layout's view, every path in it checked like a task path of the URL."""
    paths = [*(expand or ()), *(collapse or ())]
    if len(paths) > MAX_PATHS:
        raise InvalidInput(f"at most {MAX_PATHS} expand and collapse paths, got {len(paths)}")
    for path in paths:
        await task_path(path)
    return View(tuple(expand or ()), tuple(collapse or ()), all=every, auto=auto)


def _named(data: Any, name: str) -> Any:
    """The definition with the URL's name filled in; a different name in the body is refused."""
    if not isinstance(data, dict):
        return data  # parse_job refuses it, saying what it got
    given = data.get("name")
    if given is None:
        return {**data, "name": name}
    if given != name:
        raise InvalidInput(f"the body names job {given!r} but the URL names job {name!r}")
    return data


def _summary(daemon: Daemon, job: Job, now: datetime) -> JobSummary:
    last = daemon.store.list_runs(job.name, limit=1)
    return JobSummary(
        name=job.name,
        schedule=job.schedule,
        schedule_words=schedule.describe(job.schedule) if job.schedule else None,
        timezone=job.timezone,
        next_run=daemon.next_run(job, now),
        last_run=_brief(last[0]) if last else None,
        tasks=len(job.tasks),
    )


def _brief(run: RunRecord) -> RunBrief:
    return RunBrief(
        id=run.id, status=run.status, created_at=run.created_at, finished_at=run.finished_at
    )


def _page(daemon: Daemon, job: str | None, limit: int, offset: int) -> RunPage:
    runs = daemon.store.list_runs(job, limit=limit + 1, offset=offset)
    more = len(runs) > limit
    return RunPage(
        runs=[RunOut.of(run) for run in runs[:limit]],
        limit=limit,
        offset=offset,
        next_offset=offset + limit if more else None,
    )


def _detail(daemon: Daemon, run: RunRecord) -> RunDetail:
    store = daemon.store
    return RunDetail.of_all(
        run, store.tasks(run.id), store.command_fixes(run.id), store.notifications(run.id)
    )

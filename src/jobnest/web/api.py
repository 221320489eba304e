"""The REST API under ``/api`` (design §5): jobs, plans, runs, retries, cancels, fixes.

- ``PUT /api/jobs/{name}`` takes the job definition (``JobDefinition`` in the document);
  its ``name`` may be left out and must otherwise match the URL. 201 creates, 200
  replaces; ``?dry_run=true`` only validates. Every validation error is a 422 naming the
  job, the task and the reason.
- ``POST /api/jobs/{name}/runs`` may carry an ``Idempotency-Key`` (1–200 visible ASCII
  characters): a repeat with the key returns the run it started, with 200 and
  ``Idempotent-Replayed: true``, and starts nothing.
- Run history is newest first, a page at a time: ``limit`` (1–500, default 50) and
  ``offset``; each page gives the ``next_offset`` to ask for, or null on the last page.
- Handlers are ``async``: they run on the event loop's thread, like the runner and the
  scheduler, so the daemon's state is never touched from two threads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from jobnest.daemon import Daemon
from jobnest.errors import AlreadyStarted, InvalidInput, NotFound
from jobnest.executors.ssh_hosts import SSHHosts
from jobnest.importers.export import dump_jobs, select_jobs
from jobnest.model import schedule
from jobnest.model.expand import plan_from_dict
from jobnest.model.job import Job, check_name, job_to_dict
from jobnest.store.base import MARKS, RunRecord, plan_version_of
from jobnest.web import task_logs
from jobnest.web.cache import ResponseCache
from jobnest.web.deps import (
    CacheDep,
    DaemonDep,
    JobName,
    RunId,
    TaskPath,
    UrlDep,
    read_json,
    task_path,
)
from jobnest.web.layouts import View, job_layout, run_layout
from jobnest.web.models import (
    ERRORS,
    JOB_REF,
    AttemptOut,
    ChangesOut,
    FixOut,
    JobList,
    JobSummary,
    PlanOut,
    PlanVersionOut,
    RetentionOut,
    RunBrief,
    RunDetail,
    RunOut,
    RunPage,
    ScheduleOut,
)
from jobnest.web.policy import Identity

router = APIRouter(prefix="/api", responses=ERRORS)
router.include_router(task_logs.router)

Limit = Annotated[int, Query(ge=1, le=500, description="runs per page")]
Offset = Annotated[int, Query(ge=0, le=2**62, description="runs to skip, newest first")]
Paths = Annotated[list[str] | None, Query(description="reference paths, e.g. load or load/sub")]
Every = Annotated[bool, Query(alias="all", description="open every reference")]
MAX_PATHS = 10_000
KEY = re.compile(r"[!-~]{1,200}")  # an Idempotency-Key: 1 to 200 visible ASCII characters
KEY_HEADER = Header(
    alias="Idempotency-Key",
    description="1–200 visible ASCII characters; a repeat returns the run the key started",
    json_schema_extra={"pattern": f"^{KEY.pattern}$"},
)
REPLAYED = {
    "model": RunDetail,
    "description": "The run this Idempotency-Key started (``Idempotent-Replayed: true``)",
}
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
MARK_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {"status": {"type": "string", "enum": list(MARKS)}},
                }
            }
        },
    }
}
YAML_RESPONSE = {
    "description": "Job definitions as YAML",
    "content": {"application/yaml": {"schema": {"type": "string"}}},
}
JOB_RESPONSE = {
    "description": "The job definition",
    "content": {"application/json": {"schema": JOB_REF}},
}

# --- jobs --------------------------------------------------------------------------------------


@router.get("/jobs", tags=["jobs"], response_model=JobList)
async def list_jobs(daemon: DaemonDep, cache: CacheDep, url: UrlDep) -> Response:
    """Every job with its schedule, next run and last run."""

    def make() -> JobList:
        now = daemon.clock()
        return JobList(jobs=[_summary(daemon, job, now) for job in daemon.jobs().values()])

    return _kept(cache, url, make)


@router.get("/jobs/{name}", tags=["jobs"], responses={200: JOB_RESPONSE})
async def get_job(name: JobName, daemon: DaemonDep) -> JSONResponse:
    """The job's definition."""
    return JSONResponse(job_to_dict(daemon.job(name)))


@router.get("/export", tags=["jobs"], responses={200: YAML_RESPONSE}, response_class=Response)
async def export_jobs(
    daemon: DaemonDep, name: Annotated[list[str] | None, Query()] = None
) -> Response:
    """Jobs as YAML that ``jobnest run`` and ``serve --jobs`` load back unchanged.

    Every job, or the named ones with every job they reference.
    """
    names = [daemon.job(check_name(each, "job")).name for each in name or []]
    return Response(
        dump_jobs(select_jobs(daemon.jobs(), names)),
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="jobs.yml"'},
    )


@router.get("/hosts", tags=["hosts"])
async def list_hosts(daemon: DaemonDep) -> list[dict[str, Any]]:
    """The host aliases of the SSH config, as tasks' ``host:`` reaches them."""
    return [asdict(entry) for entry in SSHHosts.from_settings(daemon.settings).entries()]


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
    cache: CacheDep,
    url: UrlDep,
    expand: Paths = None,
    collapse: Paths = None,
    every: Every = False,
) -> Response:
    """The plan drawn left to right: boxes and routes; references open as ``expand`` says
    (``all``: every one), minus ``collapse``. Each reference box tells its ``tasks``."""
    view = await _view(expand, collapse, every, auto=False)
    return _kept(cache, url, lambda: job_layout(daemon.plan(name), view))


@router.post("/jobs/{name}/runs", tags=["runs"], status_code=201, responses={200: REPLAYED})
async def start_run(
    name: JobName,
    daemon: DaemonDep,
    response: Response,
    key: Annotated[str | None, KEY_HEADER] = None,
) -> RunDetail:
    """Start a run of the job now, from a fresh snapshot; 409 if one is in progress.

    With an ``Idempotency-Key`` that started a run of the job already, nothing starts: that
    run comes back, with 200 and ``Idempotent-Replayed: true``."""
    try:
        run = daemon.start_run(name, idempotency_key=_checked_key(key))
    except AlreadyStarted as started:
        run = daemon.store.get_run(started.run_id)
        response.status_code = 200
        response.headers["Idempotent-Replayed"] = "true"
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


@router.get("/runs", tags=["runs"], response_model=RunPage)
async def list_runs(
    daemon: DaemonDep,
    cache: CacheDep,
    url: UrlDep,
    job: str | None = None,
    limit: Limit = 50,
    offset: Offset = 0,
) -> Response:
    """Runs of every job (or of ``job``), newest first, a page at a time."""
    name = None if job is None else check_name(job, "job")
    return _kept(cache, url, lambda: _page(daemon, name, limit, offset))


@router.get("/runs/{run_id}", tags=["runs"], response_model=RunDetail)
async def get_run(run_id: RunId, daemon: DaemonDep, cache: CacheDep, url: UrlDep) -> Response:
    """The run with every task's status, times, exit code and attempts, and its fixes."""
    return _kept(cache, url, lambda: _run_page(daemon, run_id))


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
    versions = daemon.store.plan_versions(run_id)
    return [
        AttemptOut.of(a).model_copy(
            update={"plan_version": plan_version_of(versions, path, a.number)}
        )
        for a in attempts
    ]


@router.post("/runs/{run_id}/retry", tags=["runs"])
async def retry_run(run_id: RunId, daemon: DaemonDep, current: bool = False) -> RunDetail:
    """Re-run the failed tasks and what follows them, in the same plan; 409 unless failed.

    With ``current``, in a plan of the current definitions instead (see ``/changes``):
    succeeded tasks are kept, the others take their current definition."""
    return _detail(daemon, daemon.retry(run_id, current=current))


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


# --- day-to-day controls: pause and resume, retention -----------------------------------------


@router.post("/jobs/{name}/pause", tags=["jobs"])
async def pause_job(name: JobName, daemon: DaemonDep) -> ScheduleOut:
    """Pause the job's schedule: its slots are recorded as skipped (``paused``)."""
    daemon.pause(name)
    return ScheduleOut(job=name, paused=True)


@router.post("/jobs/{name}/resume", tags=["jobs"])
async def resume_job(name: JobName, daemon: DaemonDep, catch_up: bool = False) -> ScheduleOut:
    """Resume the job's schedule from now on. Slots missed while paused stay skipped unless
    ``catch_up``: then the newest of them runs now (409 if a run is in progress)."""
    run = daemon.resume(name, catch_up=catch_up)
    return ScheduleOut(job=name, paused=False, run=RunOut.of(run) if run else None)


@router.get("/runs/{run_id}/changes", tags=["runs"])
async def run_changes(run_id: RunId, daemon: DaemonDep) -> ChangesOut:
    """Which jobs changed since the run's snapshot, task by task: what a retry with
    ``current=true`` would take. 404 when the run's job no longer exists."""
    return ChangesOut.of(run_id, daemon.changes(run_id))


@router.get("/runs/{run_id}/plans", tags=["runs"])
async def run_plans(run_id: RunId, daemon: DaemonDep) -> list[PlanVersionOut]:
    """The plans the run used, oldest first (several after retries with current
    definitions); each attempt tells its ``plan_version``."""
    return [PlanVersionOut.model_validate(asdict(v)) for v in daemon.store.plan_versions(run_id)]


@router.get("/retention", tags=["retention"])
async def retention_preview(daemon: DaemonDep) -> RetentionOut:
    """The runs the retention policy would remove now, and the disk usage of the logs."""
    return _retention(daemon, dry_run=True)


@router.post("/retention/sweep", tags=["retention"])
async def retention_sweep(daemon: DaemonDep) -> RetentionOut:
    """Remove the ended runs the retention policy lets go, with their logs, now."""
    return _retention(daemon, dry_run=False)


def _retention(daemon: Daemon, *, dry_run: bool) -> RetentionOut:
    swept = daemon.sweep(dry_run=dry_run)
    policy = daemon.settings.retention
    return RetentionOut(
        dry_run=dry_run,
        runs=[RunOut.of(run) for run in swept.runs],
        freed_bytes=swept.freed_bytes,
        log_bytes=swept.log_bytes,
        max_age_days=policy.max_age_days,
        max_runs_per_job=policy.max_runs_per_job,
    )


# --- day-to-day controls: kill one task, mark a failed task ----------------------------------


@router.post("/runs/{run_id}/tasks/{path:path}/kill", tags=["runs"], status_code=202)
async def kill_task(run_id: RunId, path: TaskPath, daemon: DaemonDep) -> RunDetail:
    """Stop one running task (SIGTERM, grace, SIGKILL): it ends ``failed``, reason ``killed``;
    what depends on it becomes ``upstream_failed``, the rest of the run goes on."""
    return _detail(daemon, daemon.kill_task(run_id, path))


@router.post("/runs/{run_id}/tasks/{path:path}/mark", tags=["runs"], openapi_extra=MARK_BODY)
async def mark_task(
    run_id: RunId, path: TaskPath, request: Request, daemon: DaemonDep
) -> RunDetail:
    """Count a failed task as ``succeeded`` or ``skipped`` (who and when are recorded); what
    depends on it runs, and a failed run goes back to ``running``."""
    body = await read_json(request)
    if not isinstance(body, dict) or body.get("status") not in MARKS:
        raise InvalidInput(
            f'the body must be {{"status": "succeeded" | "skipped"}}, got {body!r:.80}'
        )
    daemon.mark_task(run_id, path, body["status"], by=_who(request))
    return _run_page(daemon, run_id)


def _who(request: Request) -> str:
    """Who asks, for the record: the API token's name, a login session, or ``local``."""
    identity = request.scope.get("state", {}).get("identity")
    if isinstance(identity, Identity) and identity.token is not None:
        return f"token:{identity.token.name}"
    if isinstance(identity, Identity) and identity.via == "session":
        return "session"
    return "local"


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


def _checked_key(key: str | None) -> str | None:
    """The Idempotency-Key header as given. Raises InvalidInput naming a malformed one."""
    if key is not None and not KEY.fullmatch(key):
        raise InvalidInput(
            "the Idempotency-Key header must be 1 to 200 visible ASCII characters, "
            f"got {key!r:.100}"
        )
    return key


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
        paused=daemon.is_paused(job.name),
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


def _kept(
    cache: ResponseCache, url: str, make: Callable[[], BaseModel | dict[str, Any]]
) -> Response:
    """The JSON of ``make()``, served from ``cache`` until something changes."""
    body = cache.body(url, lambda: _json(make()))
    return Response(body, media_type="application/json")


def _json(data: BaseModel | dict[str, Any]) -> bytes:
    """``data`` as JSON, written as FastAPI would write it."""
    if isinstance(data, BaseModel):
        return data.model_dump_json().encode()
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _detail(daemon: Daemon, run: RunRecord) -> RunDetail:
    """``run`` as an action left it, with its tasks, fixes, notifications and marks."""
    view = daemon.store.run_view(run.id)
    return RunDetail.of_all(run, view.tasks, view.fixes, view.notifications, view.marks)


def _run_page(daemon: Daemon, run_id: int) -> RunDetail:
    """The run and everything its page shows, from one read."""
    view = daemon.store.run_view(run_id)
    return RunDetail.of_all(view.run, view.tasks, view.fixes, view.notifications, view.marks)

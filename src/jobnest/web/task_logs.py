"""A task's output, streamed as ``text/plain`` from its attempt's file, never held whole.

``GET /api/runs/{id}/tasks/{path}/log`` with ``stream`` (stdout or stderr), ``attempt``
(default: the latest) and one of ``head=N`` lines, ``tail=N`` lines or ``offset=B`` bytes
(negative: from the end) with an optional ``length``. The ``X-Log-Size`` header gives the
file's size when it was read: to follow a running task, ask again from that offset.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from jobnest import logs
from jobnest.errors import InvalidInput
from jobnest.web.deps import DaemonDep, RunId, TaskPath
from jobnest.web.models import ERRORS

router = APIRouter(responses=ERRORS)

Lines = Annotated[int | None, Query(ge=0, le=10**9)]
Bytes = Annotated[int | None, Query(ge=-(2**62), le=2**62)]
TEXT = {
    "description": "The output; X-Log-Size is the file's size in bytes",
    "content": {"text/plain": {"schema": {"type": "string"}}},
    "headers": {"X-Log-Size": {"schema": {"type": "integer"}}},
}


@router.get(
    "/runs/{run_id}/tasks/{path:path}/log",
    tags=["runs"],
    response_class=StreamingResponse,
    responses={200: TEXT},
)
async def task_log(
    run_id: RunId,
    path: TaskPath,
    daemon: DaemonDep,
    stream: Literal["stdout", "stderr"] = "stdout",
    attempt: Annotated[int | None, Query(ge=1, le=10**9)] = None,
    head: Lines = None,
    tail: Lines = None,
    offset: Bytes = None,
    length: Annotated[int | None, Query(ge=0, le=2**62)] = None,
) -> StreamingResponse:
    """The task's output: all of it, its first or last lines, or a byte range."""
    _check_one(head=head, tail=tail, offset=offset, length=length)
    file = daemon.log_file(run_id, path, stream, attempt)
    start, size, count = await run_in_threadpool(_range, file, head, tail, offset, length)
    return StreamingResponse(
        logs.read_range(file, start, count),
        media_type="text/plain; charset=utf-8",
        headers={"X-Log-Size": str(size)},
    )


def _check_one(**given: int | None) -> None:
    chosen = [name for name in ("head", "tail", "offset") if given[name] is not None]
    if len(chosen) > 1:
        raise InvalidInput(f"ask for one of head, tail or offset, got {' and '.join(chosen)}")
    if given["length"] is not None and chosen and chosen != ["offset"]:
        raise InvalidInput(f"length goes with offset, not with {chosen[0]}")


def _range(
    file: Path, head: int | None, tail: int | None, offset: int | None, length: int | None
) -> tuple[int, int, int | None]:
    """(start, the file's size, how many bytes or None for all) of the part asked for."""
    size = os.stat(file).st_size if file.exists() else 0
    if head is not None:
        return 0, size, logs.head_length(file, head)
    if tail is not None:
        return logs.tail_offset(file, tail), size, None
    return offset or 0, size, length

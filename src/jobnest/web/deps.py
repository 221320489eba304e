"""What routes share: the daemon, names and ids checked at the edge, the JSON body reader.

Names are checked before they reach the store (a NUL byte is fine to SQLite and refused by
PostgreSQL): a bad name is a 422 naming the problem. Run ids are integers in SQLite's range;
anything else is an unknown run, a 404 (see ``app._validation_error``).
"""

from __future__ import annotations

import json
from typing import Annotated, Any, cast

from fastapi import Depends, HTTPException, Path, Request

from jobnest.daemon import Daemon
from jobnest.errors import InvalidInput
from jobnest.model.job import check_name
from jobnest.web.cache import ResponseCache

MAX_BODY = 1 << 20  # bytes: a job definition is a few kilobytes
MAX_ID = 2**63 - 1


async def daemon_of(request: Request) -> Daemon:
    return cast(Daemon, request.app.state.daemon)


async def job_name(name: str) -> str:
    """The job name of the URL. Raises InvalidJob."""
    return check_name(name, "job")


async def task_path(path: Annotated[str, Path(description="e.g. load/stage")]) -> str:
    """The task path of the URL, every name along it checked. Raises InvalidJob."""
    for name in path.split("/"):
        check_name(name, "task")
    return path


async def cache_of(request: Request) -> ResponseCache:
    return cast(ResponseCache, request.app.state.responses)


async def url_of(request: Request) -> str:
    """The request's path and query: what a kept response is found by."""
    query = request.url.query
    return f"{request.url.path}?{query}" if query else request.url.path


DaemonDep = Annotated[Daemon, Depends(daemon_of)]
CacheDep = Annotated[ResponseCache, Depends(cache_of)]
UrlDep = Annotated[str, Depends(url_of)]
JobName = Annotated[str, Depends(job_name)]
TaskPath = Annotated[str, Depends(task_path)]
RunId = Annotated[int, Path(ge=1, le=MAX_ID, description="an unknown or malformed id is a 404")]


async def read_json(request: Request) -> Any:
    """The request's body as JSON: UTF-8, at most ``MAX_BODY`` bytes, valid text throughout.

    Raises:
        InvalidInput: not UTF-8, not JSON, or a lone surrogate escape (``"\\ud800"``).
        HTTPException: 413, the body is too large.
    """
    raw = await _read_capped(request)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"the body is not UTF-8 text (byte {exc.start})") from None
    try:
        data = json.loads(text)
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"the body is not valid JSON: {exc.msg} at line {exc.lineno}") from None
    except UnicodeEncodeError:
        raise InvalidInput("the body contains a lone surrogate escape, which is not text") from None
    except (ValueError, RecursionError) as exc:  # a 5,000-digit number, arrays nested too deep
        raise InvalidInput(f"the body is not usable JSON: {exc}") from None
    return data


async def _read_capped(request: Request) -> bytes:
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY:
            raise HTTPException(413, f"the body is larger than {MAX_BODY} bytes")
    return bytes(body)

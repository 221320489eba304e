"""Loading jobs into a running daemon over HTTP: ``PUT /api/jobs/{name}``, one job at a time.

Referenced jobs are sent before the jobs that reference them, so each save leaves the
daemon's catalog valid. A job the daemon already has is replaced only when asked
(``replace``): an import never overwrites a job by surprise. The caller passes the
``httpx.Client`` (base URL, ``Authorization: Bearer`` header), which keeps configuration
out of here and lets tests point it at an in-process server.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from graphlib import CycleError, TopologicalSorter
from typing import Any
from urllib.parse import quote

import httpx

from jobnest.errors import InvalidInput
from jobnest.model.job import Job, job_to_dict

HINTS = {
    401: "; the daemon wants an API token (`jobnest token create NAME --scope full`)",
    403: "; the token may only read: create one with --scope full",
}


@dataclass(frozen=True)
class Applied:
    """A job the daemon saved; ``created`` unless it replaced one of the same name."""

    name: str
    created: bool


def apply_jobs(
    jobs: Sequence[Job], client: httpx.Client, *, replace: bool = False
) -> Iterator[Applied]:
    """Save ``jobs`` on the daemon, yielding each as it is saved.

    Raises:
        InvalidInput: the daemon cannot be reached, already has one of the jobs (without
            ``replace``), or refuses one; the message says which jobs were already saved.
    """
    names = {job.name for job in jobs}
    clash = sorted(names & _existing(client))
    if clash and not replace:
        raise InvalidInput(
            f"the daemon already has {', '.join(map(repr, clash))}: "
            "pass --replace to replace them, or rename them in the file"
        )
    done: list[str] = []
    for job in apply_order(jobs):
        path = f"/api/jobs/{quote(job.name, safe='')}"
        response = _send(client, "PUT", path, json=job_to_dict(job))
        if response.status_code not in (200, 201):
            raise _refused(response, f"job {job.name!r}", done)
        done.append(job.name)
        yield Applied(job.name, response.status_code == 201)


def apply_order(jobs: Sequence[Job]) -> list[Job]:
    """``jobs`` with every job after the jobs among them it references."""
    by_name = {job.name: job for job in jobs}
    sorter: TopologicalSorter[str] = TopologicalSorter()
    for job in jobs:
        sorter.add(job.name, *(ref.job for ref in job.references if ref.job in by_name))
    try:
        return [by_name[name] for name in sorter.static_order()]
    except CycleError as exc:
        raise InvalidInput(
            f"jobs reference each other in a cycle: {' → '.join(exc.args[1])}"
        ) from None


def _existing(client: httpx.Client) -> set[str]:
    response = _send(client, "GET", "/api/jobs")
    if response.status_code != 200:
        raise _refused(response, "the list of jobs", [])
    try:
        return {job["name"] for job in response.json()["jobs"]}
    except (ValueError, KeyError, TypeError):
        raise InvalidInput(f"{client.base_url} does not answer like a jobnest daemon") from None


def _send(client: httpx.Client, method: str, path: str, **options: Any) -> httpx.Response:
    try:
        return client.request(method, path, **options)
    except httpx.HTTPError as exc:
        raise InvalidInput(f"cannot reach the daemon at {client.base_url}: {exc}") from None


def _refused(response: httpx.Response, what: str, done: Sequence[str]) -> InvalidInput:
    try:
        reason = str(response.json()["error"])
    except (ValueError, KeyError, TypeError):
        reason = response.text[:200] or response.reason_phrase
    saved = f"; already saved: {', '.join(done)}" if done else ""
    hint = HINTS.get(response.status_code, "")
    return InvalidInput(
        f"the daemon refused {what} ({response.status_code}): {reason}{hint}{saved}"
    )

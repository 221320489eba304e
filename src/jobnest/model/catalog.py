"""Checks over a set of jobs: every reference resolves, and references never form a cycle."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from jobnest.errors import InvalidJob, JobCycleError
from jobnest.model.job import Job, JobRef


def check_catalog(jobs: Mapping[str, Job]) -> None:
    """Refuse a set of jobs with a dangling reference or a cycle through references.

    Linear in the number of jobs and references, however often a job is referenced.

    Raises:
        InvalidJob: a reference to a job that does not exist, naming the job and task.
        JobCycleError: jobs reference each other in a cycle; ``.path`` holds the chain.
    """
    for job in jobs.values():
        for ref in job.references:
            if ref.job not in jobs:
                raise InvalidJob(
                    f"reference to unknown job {ref.job!r}", job=job.name, task=ref.name
                )
    done: set[str] = set()
    for name in jobs:
        if name not in done:
            _walk(jobs, name, done)


def _walk(jobs: Mapping[str, Job], root: str, done: set[str]) -> None:
    """Depth-first from ``root`` with the chain of jobs we are inside as the context."""
    trail = [root]
    inside = [root]
    stack: list[Iterator[JobRef]] = [iter(jobs[root].references)]
    while stack:
        ref = next(stack[-1], None)
        if ref is None:
            stack.pop()
            done.add(inside.pop())
            trail.pop()
            continue
        trail.append(f"{ref.name} ({ref.job})")
        if ref.job in inside:
            start = inside.index(ref.job)
            raise JobCycleError([ref.job, *trail[start + 1 :]])
        if ref.job in done:
            trail.pop()
            continue
        inside.append(ref.job)
        stack.append(iter(jobs[ref.job].references))


def referrers(jobs: Mapping[str, Job], name: str) -> list[str]:
    """Names of the jobs that reference ``name``, sorted."""
    return sorted(job.name for job in jobs.values() if any(r.job == name for r in job.references))

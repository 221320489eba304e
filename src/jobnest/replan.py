"""Retry with the current definitions: what changed since a run's snapshot, and the retry.

By default a retry goes on in the run's frozen plan. ``retry_current`` instead expands the
run's job from the definitions as they are now and goes on in that plan, for what has not
succeeded yet (``Store.retry_with_plan`` says task by task what happens): a succeeded task
is never run again, even when its definition changed or a new task now comes before it. The
run keeps the plans it used before (``Store.plan_versions``), so each attempt's plan is
known. ``changes`` shows, first, which jobs differ from the snapshot and how.
"""

from __future__ import annotations

from collections.abc import Mapping

from jobnest.errors import NotFound
from jobnest.model.changes import JobDiff, diff_jobs
from jobnest.model.expand import PlanGraph, expand, plan_to_dict
from jobnest.model.job import Job, job_to_dict
from jobnest.runner import Runner
from jobnest.store.base import RunRecord


def changes(runner: Runner, run_id: int, jobs: Mapping[str, Job]) -> list[JobDiff]:
    """The jobs of the run's snapshot and of its job's current expansion that differ.

    Raises:
        NotFound: no such run, or its job no longer exists.
        InvalidInput: the job no longer expands (a reference to a deleted job, ...).
    """
    snapshot = runner.store.get_snapshot(run_id)
    before = {name: entry["definition"] for name, entry in snapshot.items()}
    _, graph = _current(runner, run_id, jobs)
    after = {name: job_to_dict(jobs[name]) for name in graph.hashes}
    return diff_jobs(before, after)


def retry_current(runner: Runner, run_id: int, jobs: Mapping[str, Job]) -> RunRecord:
    """Bring a failed run back to ``running`` in a plan of the current definitions.

    Raises:
        NotFound, InvalidInput: as ``changes``.
        NotRetryable: the run has not failed.
        RunInProgress: another run of its job is in progress.
    """
    _, graph = _current(runner, run_id, jobs)
    snapshot = {
        name: {"definition": job_to_dict(jobs[name]), "hash": jobs[name].content_hash}
        for name in graph.hashes
    }
    return runner.store.retry_with_plan(
        run_id,
        plan=plan_to_dict(graph),
        snapshot=snapshot,
        task_paths=[node.id for node in graph.nodes if node.is_task],
        owner=runner.owner,
        now=runner.clock(),
    )


def _current(runner: Runner, run_id: int, jobs: Mapping[str, Job]) -> tuple[Job, PlanGraph]:
    name = runner.store.get_run(run_id).job
    if name not in jobs:
        raise NotFound(f"job {name!r} of run {run_id} no longer exists: retry in its own plan")
    return jobs[name], expand(jobs[name], jobs.get, runner.settings.limits)

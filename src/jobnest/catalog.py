"""The job catalog over the store: a job is only saved when the whole catalog stays valid.

Saving a job checks its own graph and then the catalog with it: every reference resolves
and no cycle runs through references. Deleting a job that others reference is refused with
their names. Within one daemon the check and the write happen without an ``await`` between
them, so two saves on the event loop cannot interleave.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from jobnest.errors import JobReferenced, NotFound
from jobnest.files import load_jobs
from jobnest.model.catalog import check_catalog, referrers
from jobnest.model.job import Job, job_to_dict, parse_job
from jobnest.store.base import Store


@dataclass(frozen=True)
class Saved:
    """A job as saved: its version, and whether the save created it."""

    job: Job
    version: int
    created: bool


class Catalog:
    """Read, check, save and delete job definitions."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock
        self._parsed: dict[str, Job] = {}  # by content hash

    def jobs(self) -> dict[str, Job]:
        """Every job, by name.

        Each call reads the names and content hashes (another daemon or the CLI may have
        changed a job), and the definitions only when a hash is new to this catalog: a
        definition is parsed once, not on every request.
        """
        hashes = self.store.job_hashes()
        jobs = {name: self._parsed[d] for name, d in hashes.items() if d in self._parsed}
        if len(jobs) < len(hashes):
            for name, data in self.store.list_jobs().items():
                if name not in jobs:
                    jobs[name] = job = parse_job(data)
                    self._parsed[job.content_hash] = job
            jobs = dict(sorted(jobs.items()))
        kept = {job.content_hash for job in jobs.values()}
        self._parsed = {digest: job for digest, job in self._parsed.items() if digest in kept}
        return jobs

    def get(self, name: str) -> Job:
        """The job called ``name``. Raises NotFound."""
        job = self.jobs().get(name)
        if job is None:
            raise NotFound(f"no job named {name!r}")
        return job

    def check(self, definition: object) -> Job:
        """The job of ``definition``, checked with the rest of the catalog but not saved.

        Raises:
            InvalidJob: naming the job, the task and the reason.
        """
        return self._checked(definition)[0]

    def put(self, definition: object) -> Saved:
        """Check ``definition`` like ``check`` does, then create or replace the job."""
        job, jobs = self._checked(definition)
        return Saved(job, self._save(job), job.name not in jobs)

    def delete(self, name: str) -> None:
        """Delete the job; its runs stay.

        Raises:
            NotFound: no such job.
            JobReferenced: other jobs reference it; ``.referrers`` names them.
        """
        jobs = self.jobs()
        if name not in jobs:
            raise NotFound(f"no job named {name!r}")
        users = referrers(jobs, name)
        if users:
            raise JobReferenced(name, users)
        self.store.delete_job(name)

    def load_files(self, paths: Sequence[str | Path]) -> list[Saved]:
        """Save every job of the files (jobs as code), all of them or none.

        The files are checked on their own, as ``jobnest validate`` checks them: their
        references resolve among their jobs. Since a saved job can only reference others,
        replacing jobs by a self-contained set of files keeps the catalog valid.

        Raises:
            InvalidInput: naming the file, the job, the task and the reason.
        """
        loaded = load_jobs(paths)
        existing = self.store.list_jobs()
        return [Saved(job, self._save(job), job.name not in existing) for job in loaded.values()]

    def _checked(self, definition: object) -> tuple[Job, dict[str, Job]]:
        """The job of ``definition``, checked with the catalog; and the catalog before it."""
        job = parse_job(definition)
        jobs = self.jobs()
        check_catalog({**jobs, job.name: job})
        return job, jobs

    def _save(self, job: Job) -> int:
        return self.store.put_job(job.name, job_to_dict(job), job.content_hash, now=self.clock())

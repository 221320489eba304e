"""The job catalog: each job's current definition and hash, and its numbered versions."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from jobnest.errors import NotFound
from jobnest.store.schema import job_versions, jobs
from jobnest.store.sql.engine import SQLBase

_JOB_NAME_LOCKS = 0x6A6F62  # the advisory lock space of job names on PostgreSQL ("job")


class CatalogMixin(SQLBase):
    """Put, read and delete jobs; list their hashes and versions."""

    def put_job(
        self, name: str, definition: Mapping[str, Any], content_hash: str, *, now: datetime
    ) -> int:
        """Create or replace a job. Versions count on after a delete: they are never reused."""
        with self._write() as conn:
            _lock_job_name(conn, name)
            current = conn.execute(
                sa.select(jobs.c.hash, jobs.c.version).where(jobs.c.name == name)
            ).first()
            if current is not None and current.hash == content_hash:
                return int(current.version)
            version = _next_version(conn, name)
            row = {"definition": dict(definition), "hash": content_hash, "version": version}
            conn.execute(sa.insert(job_versions).values(name=name, created_at=now, **row))
            _upsert_job(conn, name, {**row, "updated_at": now}, exists=current is not None)
            return version

    def get_job(self, name: str) -> dict[str, Any]:
        with self._read() as conn:
            definition = conn.execute(
                sa.select(jobs.c.definition).where(jobs.c.name == name)
            ).scalar()
        if definition is None:
            raise NotFound(f"no job named {name!r}")
        return dict(definition)

    def list_jobs(self) -> dict[str, dict[str, Any]]:
        query = sa.select(jobs.c.name, jobs.c.definition).order_by(jobs.c.name)
        with self._read() as conn:
            return {row.name: row.definition for row in conn.execute(query)}

    def job_hashes(self) -> dict[str, str]:
        query = sa.select(jobs.c.name, jobs.c.hash).order_by(jobs.c.name)
        with self._read() as conn:
            return {row.name: row.hash for row in conn.execute(query)}

    def delete_job(self, name: str) -> None:
        """Delete the job; its version history and its runs stay."""
        with self._write() as conn:
            if conn.execute(sa.delete(jobs).where(jobs.c.name == name)).rowcount == 0:
                raise NotFound(f"no job named {name!r}")

    def job_versions(self, name: str) -> list[tuple[int, str, datetime]]:
        query = (
            sa.select(job_versions.c.version, job_versions.c.hash, job_versions.c.created_at)
            .where(job_versions.c.name == name)
            .order_by(job_versions.c.version)
        )
        with self._read() as conn:
            return [(row.version, row.hash, row.created_at) for row in conn.execute(query)]


def _lock_job_name(conn: Connection, name: str) -> None:
    """Make writers of one job name take turns until the end of the transaction.

    Two saves reading the same latest version would both write the next one. SQLite's
    write lock (``BEGIN IMMEDIATE``) serializes them already; PostgreSQL reads committed
    data without waiting, and a row lock cannot cover a job that does not exist yet, so
    the name's hash is an advisory lock there.
    """
    if conn.dialect.name == "postgresql":
        key = sa.func.hashtext(name)
        conn.execute(sa.select(sa.func.pg_advisory_xact_lock(_JOB_NAME_LOCKS, key)))


def _next_version(conn: Connection, name: str) -> int:
    query = sa.select(sa.func.max(job_versions.c.version)).where(job_versions.c.name == name)
    return int(conn.execute(query).scalar() or 0) + 1


def _upsert_job(conn: Connection, name: str, values: dict[str, Any], *, exists: bool) -> None:
    if exists:
        conn.execute(sa.update(jobs).where(jobs.c.name == name).values(values))
    else:
        conn.execute(sa.insert(jobs).values(name=name, **values))

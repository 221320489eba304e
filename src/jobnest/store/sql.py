"""The store on SQLAlchemy Core: SQLite today, PostgreSQL (psycopg 3) by URL.

SQLite is opened in WAL mode with ``synchronous=NORMAL``, a 30 s busy timeout and foreign
keys on. pysqlite's own transaction handling is switched off and every write transaction
starts with ``BEGIN IMMEDIATE``: a read-then-write transaction that began deferred has to
upgrade its lock and fails with "database is locked" when another process got there first,
while an immediate one waits its turn. Reads begin deferred and never block writers.

The one rule SQLite's locking gives for free and PostgreSQL does not, "at most one running
run per job", is also a partial unique index, so a race on PostgreSQL ends in the same
``RunInProgress``. "One run per (job, idempotency key)" is a unique index too: of two starts
with one key, the one refused finds the other's run. Dialect specifics live in
``_create_engine`` and ``_on_sqlite_*``.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import ConnectionPoolEntry

from jobnest.errors import (
    AlreadyStarted,
    Conflict,
    NotFound,
    NotRetryable,
    RunInProgress,
    StoreError,
)
from jobnest.store.base import (
    AttemptEnd,
    AttemptRecord,
    Changes,
    CommandFix,
    Delivery,
    Lease,
    NewNotification,
    NotificationRecord,
    PlanVersion,
    RunChange,
    RunRecord,
    RunView,
    ScheduleState,
    SessionRecord,
    SkippedSlot,
    StatusCounts,
    Store,
    TaskChange,
    TaskMark,
    TaskRecord,
    TokenRecord,
    WorkerAttempt,
    WorkerKey,
)
from jobnest.store.schema import (
    REVISION,
    UTCDateTime,
    api_tokens,
    attempts,
    auth_sessions,
    auth_settings,
    command_fixes,
    format_instant,
    job_versions,
    jobs,
    notifications,
    run_plans,
    runs,
    schedules,
    skipped_slots,
    task_marks,
    task_runs,
    worker_attempts,
)

BUSY_TIMEOUT_SECONDS = 30
_WRITE = "jobnest_write"  # execution option: this transaction will write
_UNFINISHED = frozenset({"pending", "queued", "running"})
_RESET_ON_RETRY = ("failed", "upstream_failed", "cancelled", "pending", "queued", "running")
_TASK_INSERT_COLUMNS = ("run_id", "path", "position", "status", "attempts")
_KEPT_ON_NEW_PLAN = ("succeeded", "skipped")  # a retry with a new plan never runs these again


def _columns(table: sa.Table, record: type) -> list[sa.Column[Any]]:
    """The columns of ``table`` holding the fields of ``record``, in the record's field order."""
    return [table.c[field.name] for field in fields(record)]


_RUN_COLUMNS = _columns(runs, RunRecord)
_TASK_COLUMNS = _columns(task_runs, TaskRecord)
_ATTEMPT_COLUMNS = _columns(attempts, AttemptRecord)
_FIX_COLUMNS = _columns(command_fixes, CommandFix)
_MARK_COLUMNS = _columns(task_marks, TaskMark)
_SKIP_COLUMNS = _columns(skipped_slots, SkippedSlot)
_SCHEDULE_QUERY = sa.select(*_columns(schedules, ScheduleState)).order_by(schedules.c.job)
_SESSION_COLUMNS = _columns(auth_sessions, SessionRecord)
_TOKEN_COLUMNS = _columns(api_tokens, TokenRecord)
_PASSWORD_KEY = "password_hash"  # noqa: S105 - the name of a setting
_JOB_NAME_LOCKS = 0x6A6F62  # the advisory lock space of job names on PostgreSQL ("job")
_NOTIFICATION_COLUMNS = _columns(notifications, NotificationRecord)
_INTERRUPTED = (
    "the previous attempt was interrupted (its daemon stopped while sending): "
    "it may have been delivered"
)


def sqlite_url(path: str | os.PathLike[str]) -> str:
    """The URL of the SQLite database file at ``path``."""
    return f"sqlite+pysqlite:///{Path(path).absolute()}"


class SQLStore(Store):
    """The store on one SQLAlchemy engine; open it with ``SQLStore.open(url)``."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._writer = engine.execution_options(**{_WRITE: True})

    @classmethod
    def open(cls, url: str, *, upgrade: bool | None = None) -> SQLStore:
        """Connect to ``url``, whose schema must be the newest revision.

        ``upgrade`` brings an older schema (or an empty database) to it first; by default
        only a SQLite file is upgraded on open (see ``upgrades_on_open``).

        Raises:
            StoreError: the database cannot be opened or migrated, or its schema is older
                (without ``upgrade``) or newer than this code's; the message says what to do.
        """
        with _opening(url):
            store = cls(_create_engine(url))
            try:
                store._prepare(url, upgrade)
            except exc.SQLAlchemyError as error:
                store.close()
                raise StoreError(f"cannot open the database {_safe(url)}: {error}") from error
            except StoreError as error:
                store.close()
                raise StoreError(f"{_safe(url)}: {error}") from error
        return store

    def _prepare(self, url: str, upgrade: bool | None) -> None:
        """Check the schema; Alembic is loaded only when it is not at ``REVISION``."""
        with self._engine.connect() as conn:
            if _revision(conn) == REVISION:
                return
        from jobnest.store import migrations  # Alembic takes a tenth of a second to load

        if upgrades_on_open(url) if upgrade is None else upgrade:
            migrations.upgrade(self._writer)
        with self._engine.connect() as conn:
            migrations.check(conn)

    @classmethod
    def upgrade(cls, url: str) -> str | None:
        """Bring the schema of ``url`` to the newest revision (``jobnest db upgrade``).

        Returns the revision it was at; None when it had no jobnest schema.

        Raises:
            StoreError: the database cannot be reached or migrated, or is newer than known.
        """
        from jobnest.store import migrations

        store = cls(_create_engine(url))
        try:
            return migrations.upgrade(store._writer)
        except exc.SQLAlchemyError as error:
            raise StoreError(f"cannot upgrade the database {_safe(url)}: {error}") from error
        except StoreError as error:
            raise StoreError(f"{_safe(url)}: {error}") from error
        finally:
            store.close()

    @property
    def engine(self) -> Engine:
        """The engine the store works on (``jobnest db`` copies and inspects through it)."""
        return self._engine

    def close(self) -> None:
        self._engine.dispose()

    # --- transactions ------------------------------------------------------------------------

    @contextmanager
    def _read(self) -> Iterator[Connection]:
        with _translated(), self._engine.begin() as conn:
            yield conn

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        with _translated(), self._writer.begin() as conn:
            yield conn

    @contextmanager
    def _driver_write(self) -> Iterator[_Batch]:
        """A write transaction on the driver's own connection, for ``_Prepared`` statements.

        It begins IMMEDIATE on SQLite and turns an unusable database into StoreError, as
        ``_write`` does; what is not committed is rolled back by the pool on check-in.
        """
        dialect = self._engine.dialect
        dbapi = dialect.loaded_dbapi
        try:
            with _translated():
                raw = self._engine.raw_connection()
        except (dbapi.OperationalError, dbapi.InterfaceError) as error:  # the pool's, unwrapped
            raise StoreError(f"the database cannot be used: {error}") from error
        cursor = None
        try:
            cursor = raw.cursor()
            if dialect.name == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            yield _Batch(cursor, dialect)
            raw.commit()
        except (dbapi.OperationalError, dbapi.InterfaceError) as error:
            if dialect.is_disconnect(error, raw.dbapi_connection, cursor):
                raw.invalidate(error)  # the pool connects afresh next time
            raise StoreError(f"the database cannot be used: {error}") from error
        finally:
            raw.close()

    # --- runs ----------------------------------------------------------------------------------

    def create_run(
        self,
        *,
        job: str,
        plan: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        task_paths: Sequence[str],
        workdir: str,
        trigger: str,
        owner: str,
        now: datetime,
        scheduled_for: datetime | None = None,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """A refused insert rolls the whole transaction back; only then is the key looked
        up, in a transaction of its own, which sees the run that won the race."""
        values = {
            "job": job,
            "status": "running",
            "trigger": trigger,
            "workdir": workdir,
            "created_at": now,
            "scheduled_for": scheduled_for,
            "owner": owner,
            "heartbeat_at": now,
            "retries": 0,
            "plan": dict(plan),
            "snapshot": dict(snapshot),
            "idempotency_key": idempotency_key,
        }
        try:
            with self._write() as conn:
                _refuse_running(conn, job)
                insert = sa.insert(runs).values(values).returning(runs.c.id)
                run_id = conn.execute(insert).scalar_one()
                _insert_tasks(conn, run_id, task_paths)
                return _get_run(conn, run_id)
        except RunInProgress:
            self._refuse_replay(job, idempotency_key)
            raise
        except exc.IntegrityError as error:
            self._refuse_replay(job, idempotency_key)
            raise self._clash(job, scheduled_for, error) from error

    def _refuse_replay(self, job: str, key: str | None) -> None:
        """Raise AlreadyStarted if ``key`` started a run of ``job``."""
        if key is None:
            return
        query = sa.select(runs.c.id).where(runs.c.job == job, runs.c.idempotency_key == key)
        with self._read() as conn:
            run_id = conn.execute(query).scalar()
        if run_id is not None:
            raise AlreadyStarted(job, key, run_id)

    def _clash(self, job: str, scheduled_for: datetime | None, error: Exception) -> Conflict:
        """The error to raise when the database refused a run of ``job``."""
        with self._read() as conn:
            running = _running_run_id(conn, job)
        if running is not None:
            return RunInProgress(job, running)
        if scheduled_for is not None:
            when = scheduled_for.astimezone(UTC).isoformat()
            return Conflict(f"job {job!r} already has a run scheduled for {when}")
        return Conflict(f"a run of job {job!r} clashes with the stored state: {error}")

    def get_run(self, run_id: int) -> RunRecord:
        with self._read() as conn:
            return _get_run(conn, run_id)

    def run_view(self, run_id: int) -> RunView:
        with self._read() as conn:
            return RunView(
                _get_run(conn, run_id),
                _tasks(conn, run_id),
                _fixes(conn, run_id),
                _notifications(conn, run_id),
                _marks(conn, run_id),
            )

    def list_runs(
        self, job: str | None = None, *, limit: int = 50, offset: int = 0
    ) -> list[RunRecord]:
        query = sa.select(*_RUN_COLUMNS).order_by(runs.c.id.desc()).limit(limit).offset(offset)
        if job is not None:
            query = query.where(runs.c.job == job)
        with self._read() as conn:
            return [RunRecord(*row) for row in conn.execute(query)]

    def running_runs(self) -> list[RunRecord]:
        query = sa.select(*_RUN_COLUMNS).where(runs.c.status == "running").order_by(runs.c.id)
        with self._read() as conn:
            return [RunRecord(*row) for row in conn.execute(query)]

    def get_plan(self, run_id: int) -> dict[str, Any]:
        return self._run_document(runs.c.plan, run_id)

    def get_snapshot(self, run_id: int) -> dict[str, Any]:
        return self._run_document(runs.c.snapshot, run_id)

    def _run_document(self, column: sa.Column[Any], run_id: int) -> dict[str, Any]:
        with self._read() as conn:
            document = conn.execute(sa.select(column).where(runs.c.id == run_id)).scalar()
        if document is None:
            raise _no_run(run_id)
        return dict(document)

    def tasks(self, run_id: int) -> list[TaskRecord]:
        with self._read() as conn:
            _require_run(conn, run_id)
            return _tasks(conn, run_id)

    def attempts(self, run_id: int, path: str | None = None) -> list[AttemptRecord]:
        query = sa.select(*_ATTEMPT_COLUMNS).where(attempts.c.run_id == run_id)
        if path is not None:
            query = query.where(attempts.c.path == path)
        query = query.order_by(attempts.c.started_at, attempts.c.number, attempts.c.path)
        with self._read() as conn:
            return [AttemptRecord(*row) for row in conn.execute(query)]

    def apply(self, changes: Changes) -> None:
        if not changes:
            return
        with self._driver_write() as batch:
            if changes.lease is not None:
                _renew_lease(batch, changes.lease)
            _start_attempts(batch, changes.started)
            _end_attempts(batch, changes.ended)
            _change_tasks(batch, changes.tasks)
            if changes.run is not None:
                _change_run(batch, changes.run)

    def begin_retry(self, run_id: int, *, owner: str, now: datetime) -> RunRecord:
        job = None
        try:
            with self._write() as conn:
                job = _retryable_job(conn, run_id)
                _refuse_running(conn, job)
                _restart_run(conn, run_id, owner=owner, now=now)
                return _get_run(conn, run_id)
        except exc.IntegrityError as error:
            raise self._clash(job or "", None, error) from error

    def fix_command(self, run_id: int, path: str, command: str, *, now: datetime) -> CommandFix:
        with self._write() as conn:
            fix = CommandFix(run_id, path, _fixable_command(conn, run_id, path), command, now)
            conn.execute(
                sa.update(task_runs)
                .where(task_runs.c.run_id == run_id, task_runs.c.path == path)
                .values(command=command)
            )
            conn.execute(sa.insert(command_fixes).values(asdict(fix)))
        return replace(fix, at=now.astimezone(UTC))

    def command_fixes(self, run_id: int) -> list[CommandFix]:
        with self._read() as conn:
            return _fixes(conn, run_id)

    def heartbeat(self, run_id: int, *, owner: str, now: datetime) -> None:
        with self._write() as conn:
            done = conn.execute(
                sa.update(runs)
                .where(runs.c.id == run_id, runs.c.owner == owner)
                .values(heartbeat_at=now)
            )
            if done.rowcount == 0:
                raise _lost_lease(_get_run(conn, run_id), owner)

    def release(self, run_id: int, *, owner: str) -> None:
        """Let go of the run; a no-op when ``owner`` does not drive it (any more)."""
        with self._write() as conn:
            _require_run(conn, run_id)
            conn.execute(
                sa.update(runs).where(runs.c.id == run_id, runs.c.owner == owner).values(owner=None)
            )

    def claim_runs(
        self, stale: Sequence[RunRecord], *, owner: str, now: datetime
    ) -> list[RunRecord]:
        """Row locks with SKIP LOCKED on PostgreSQL (a driver writing a batch holds its run's
        row, so it is skipped); SQLite's write lock serializes claimers anyway."""
        if not stale:
            return []
        with self._write() as conn:
            taken = _unchanged_runs(conn, stale)
            if taken:
                ids = [run.id for run in taken]
                conn.execute(
                    sa.update(runs).where(runs.c.id.in_(ids)).values(owner=owner, heartbeat_at=now)
                )
        return taken

    # --- schedules -----------------------------------------------------------------------------

    def schedule_states(self) -> dict[str, ScheduleState]:
        with self._read() as conn:
            return {row.job: ScheduleState(*row) for row in conn.execute(_SCHEDULE_QUERY)}

    def schedule_state(self, job: str) -> ScheduleState | None:
        with self._read() as conn:
            row = conn.execute(_SCHEDULE_QUERY.where(schedules.c.job == job)).first()
        return None if row is None else ScheduleState(*row)

    def advance_schedules(self, slots: Mapping[str, datetime]) -> None:
        """Upsert with ON CONFLICT, which waits for a concurrent upsert of the row and then
        re-checks "never back"; rows go in name order, so that two daemons advancing the
        same jobs lock them in the same order and never deadlock."""
        if not slots:
            return
        with self._write() as conn:
            insert = _insert(conn, schedules)
            later = insert.excluded.last_slot
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[schedules.c.job],
                    set_={"last_slot": later},
                    where=schedules.c.last_slot.is_(None) | (schedules.c.last_slot < later),
                ),
                [{"job": job, "last_slot": slots[job]} for job in sorted(slots)],
            )

    def forget_schedules(self, jobs: Iterable[str]) -> None:
        names = list(jobs)
        if not names:
            return
        with self._write() as conn:
            conn.execute(
                sa.update(schedules).where(schedules.c.job.in_(names)).values(last_slot=None)
            )

    def set_schedule_paused(self, job: str, paused: bool) -> None:
        with self._write() as conn:
            insert = _insert(conn, schedules).values(job=job, paused=paused)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[schedules.c.job], set_={"paused": insert.excluded.paused}
                )
            )

    def record_skips(self, slots: Sequence[SkippedSlot]) -> None:
        if not slots:
            return
        with self._write() as conn:
            insert = _insert(conn, skipped_slots).on_conflict_do_nothing(
                index_elements=[skipped_slots.c.job, skipped_slots.c.scheduled_for]
            )
            ordered = sorted(slots, key=lambda slot: (slot.job, slot.scheduled_for))  # no deadlock
            conn.execute(insert, [dict(vars(slot)) for slot in ordered])  # asdict() is slow

    def skipped_slots(
        self, job: str, *, after: datetime | None = None, limit: int = 50
    ) -> list[SkippedSlot]:
        query = (
            sa.select(*_SKIP_COLUMNS)
            .where(skipped_slots.c.job == job)
            .order_by(skipped_slots.c.scheduled_for.desc())
            .limit(limit)
        )
        if after is not None:
            query = query.where(skipped_slots.c.scheduled_for > after)
        with self._read() as conn:
            return [SkippedSlot(*row) for row in conn.execute(query)]

    # --- the job catalog -----------------------------------------------------------------------

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

    # --- authentication ------------------------------------------------------------------------

    def get_password_hash(self) -> str | None:
        query = sa.select(auth_settings.c.value).where(auth_settings.c.key == _PASSWORD_KEY)
        with self._read() as conn:
            value = conn.execute(query).scalar()
        return None if value is None else str(value)

    def set_password_hash(self, value: str) -> None:
        with self._write() as conn:
            insert = _insert(conn, auth_settings).values(key=_PASSWORD_KEY, value=value)
            conn.execute(
                insert.on_conflict_do_update(
                    index_elements=[auth_settings.c.key], set_={"value": insert.excluded.value}
                )
            )
            conn.execute(sa.delete(auth_sessions))

    def create_session(
        self, id_hash: str, csrf: str, *, now: datetime, expires_at: datetime
    ) -> SessionRecord:
        values = {"id_hash": id_hash, "csrf": csrf, "created_at": now, "expires_at": expires_at}
        with self._write() as conn:
            conn.execute(sa.insert(auth_sessions).values(values))
        return SessionRecord(id_hash, csrf, now.astimezone(UTC), expires_at.astimezone(UTC))

    def find_session(self, id_hash: str, *, now: datetime) -> SessionRecord | None:
        query = sa.select(*_SESSION_COLUMNS).where(
            auth_sessions.c.id_hash == id_hash, auth_sessions.c.expires_at > now
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else SessionRecord(*row)

    def delete_session(self, id_hash: str) -> None:
        with self._write() as conn:
            conn.execute(sa.delete(auth_sessions).where(auth_sessions.c.id_hash == id_hash))

    def purge_sessions(self, *, now: datetime) -> int:
        with self._write() as conn:
            done = conn.execute(sa.delete(auth_sessions).where(auth_sessions.c.expires_at <= now))
        return int(done.rowcount)

    def create_token(self, name: str, token_hash: str, scope: str, *, now: datetime) -> TokenRecord:
        values = {"name": name, "hash": token_hash, "scope": scope, "created_at": now}
        with self._write() as conn:
            insert = sa.insert(api_tokens).values(values).returning(api_tokens.c.id)
            token_id = conn.execute(insert).scalar_one()
        return TokenRecord(token_id, name, scope, now.astimezone(UTC))

    def find_token(self, token_hash: str) -> TokenRecord | None:
        query = sa.select(*_TOKEN_COLUMNS).where(
            api_tokens.c.hash == token_hash, api_tokens.c.revoked_at.is_(None)
        )
        with self._read() as conn:
            row = conn.execute(query).first()
        return None if row is None else TokenRecord(*row)

    def revoke_token(self, token_id: int, *, now: datetime) -> TokenRecord:
        with self._write() as conn:
            conn.execute(
                sa.update(api_tokens)
                .where(api_tokens.c.id == token_id, api_tokens.c.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            query = sa.select(*_TOKEN_COLUMNS).where(api_tokens.c.id == token_id)
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no API token with id {token_id}")
        return TokenRecord(*row)

    def list_tokens(self) -> list[TokenRecord]:
        query = sa.select(*_TOKEN_COLUMNS).order_by(api_tokens.c.id)
        with self._read() as conn:
            return [TokenRecord(*row) for row in conn.execute(query)]

    # --- notifications -------------------------------------------------------------------------

    def add_notifications(
        self,
        run_id: int,
        *,
        retries: int,
        outcome: str,
        targets: Sequence[NewNotification],
        report: Mapping[str, Any],
        now: datetime,
    ) -> list[NotificationRecord]:
        if not targets:
            return []
        common = {"run_id": run_id, "retries": retries, "outcome": outcome, "status": "pending"}
        common |= {"report": dict(report), "created_at": now, "next_attempt_at": now}
        rows = [{**common, **vars(target)} for target in targets]
        key = [notifications.c[name] for name in ("run_id", "retries", "channel", "target")]
        with self._write() as conn:
            _require_run(conn, run_id)
            insert = _insert(conn, notifications).on_conflict_do_nothing(index_elements=key)
            added = [conn.execute(insert.returning(notifications.c.id), r).scalar() for r in rows]
            query = sa.select(*_NOTIFICATION_COLUMNS).where(notifications.c.id.in_(added))
            return [NotificationRecord(*row) for row in conn.execute(query.order_by("id"))]

    def notifications(self, run_id: int) -> list[NotificationRecord]:
        with self._read() as conn:
            return _notifications(conn, run_id)

    def claim_notifications(
        self, *, now: datetime, lease_until: datetime, limit: int = 10
    ) -> list[Delivery]:
        due = _due_notifications(now)
        pick = sa.select(notifications.c.id).where(due).order_by(notifications.c.id).limit(limit)
        with self._write() as conn:
            ids = list(conn.execute(pick.with_for_update(skip_locked=True)).scalars())
            if not ids:
                return []
            interrupted = notifications.c.status == "sending"
            conn.execute(
                sa.update(notifications)
                .where(notifications.c.id.in_(ids), due)
                .values(
                    status="sending",
                    attempts=notifications.c.attempts + 1,
                    lease_until=lease_until,
                    last_error=sa.case(
                        (interrupted, _INTERRUPTED), else_=notifications.c.last_error
                    ),
                )
            )
            query = sa.select(
                *_NOTIFICATION_COLUMNS, notifications.c.report, notifications.c.secret
            ).where(notifications.c.id.in_(ids))
            rows = conn.execute(query.order_by(notifications.c.id)).all()
        return [Delivery(NotificationRecord(*row[:-2]), row[-2], row[-1]) for row in rows]

    def finish_notification(
        self,
        notification_id: int,
        *,
        attempt: int,
        status: str,
        now: datetime,
        error: str | None = None,
        retry_at: datetime | None = None,
    ) -> bool:
        values: dict[str, Any] = {"status": status, "lease_until": None}
        if error is not None:
            values["last_error"] = error
        if status == "sent":
            values["sent_at"] = now
        if status == "pending":
            values["next_attempt_at"] = retry_at or now
        claim = (
            notifications.c.id == notification_id,
            notifications.c.status == "sending",
            notifications.c.attempts == attempt,
        )
        with self._write() as conn:
            done = conn.execute(sa.update(notifications).where(*claim).values(values))
        return bool(done.rowcount)

    def unnotified_runs(self, since: datetime) -> list[RunRecord]:
        this_ending = sa.exists().where(
            notifications.c.run_id == runs.c.id, notifications.c.retries == runs.c.retries
        )
        query = (
            sa.select(*_RUN_COLUMNS)
            .where(runs.c.status != "running", runs.c.finished_at >= since, ~this_ending)
            .order_by(runs.c.finished_at, runs.c.id)
        )
        with self._read() as conn:
            return [RunRecord(*row) for row in conn.execute(query)]

    # --- retention and metrics -----------------------------------------------------------------

    def expired_runs(
        self,
        *,
        ended_before: datetime | None,
        keep_per_job: int | None,
        jobs: Collection[str] | None = None,
    ) -> list[RunRecord]:
        mine = runs.c.job.in_(jobs) if jobs is not None else sa.true()
        found: dict[int, RunRecord] = {}
        with self._read() as conn:
            if ended_before is not None:
                old = sa.select(*_RUN_COLUMNS).where(
                    mine, runs.c.status != "running", runs.c.finished_at < ended_before
                )
                found.update((row.id, RunRecord(*row)) for row in conn.execute(old))
            if keep_per_job is not None:
                for row in conn.execute(_ended_beyond_newest(keep_per_job, mine)):
                    found[row.id] = RunRecord(*row)
        return [found[run_id] for run_id in sorted(found)]

    def delete_runs(self, run_ids: Sequence[int]) -> list[int]:
        with self._write() as conn:
            ended = sa.select(runs.c.id).where(runs.c.id.in_(run_ids), runs.c.status != "running")
            gone = [int(run_id) for run_id in conn.execute(ended).scalars()]
            for table in (attempts, command_fixes, notifications, run_plans, task_runs, runs):
                column = table.c.id if table is runs else table.c.run_id
                conn.execute(sa.delete(table).where(column.in_(gone)))
        return gone

    def status_counts(self) -> StatusCounts:
        with self._read() as conn:
            return StatusCounts(
                runs=_count_by_status(conn, runs),
                tasks=_count_by_status(conn, task_runs),
                notifications=_count_by_status(conn, notifications),
            )

    # --- retry with the current definitions ---------------------------------------------------

    def retry_with_plan(
        self,
        run_id: int,
        *,
        plan: Mapping[str, Any],
        snapshot: Mapping[str, Any],
        task_paths: Sequence[str],
        owner: str,
        now: datetime,
    ) -> RunRecord:
        job = None
        try:
            with self._write() as conn:
                job = _retryable_job(conn, run_id)
                _refuse_running(conn, job)
                _keep_plan(conn, run_id, now)
                conn.execute(
                    sa.update(runs).where(runs.c.id == run_id).values(plan=plan, snapshot=snapshot)
                )
                _align_tasks(conn, run_id, task_paths)
                _restart_run(conn, run_id, owner=owner, now=now)
                return _get_run(conn, run_id)
        except exc.IntegrityError as error:
            raise self._clash(job or "", None, error) from error

    def plan_versions(self, run_id: int) -> list[PlanVersion]:
        query = (
            sa.select(run_plans.c.version, run_plans.c.attempts, run_plans.c.replaced_at)
            .where(run_plans.c.run_id == run_id)
            .order_by(run_plans.c.version)
        )
        with self._read() as conn:
            _require_run(conn, run_id)
            old = [PlanVersion(v, dict(attempts), at) for v, attempts, at in conn.execute(query)]
        return [*old, PlanVersion(len(old) + 1, {}, None)]

    # --- workers -------------------------------------------------------------------------------

    def dispatch_attempt(
        self, key: WorkerKey, *, queue: str, spec: Mapping[str, Any], now: datetime
    ) -> None:
        row = {**vars(key), "queue": queue, "spec": dict(spec), "status": "queued"}
        try:
            with self._write() as conn:
                conn.execute(sa.insert(worker_attempts).values(**row, created_at=now))
        except exc.IntegrityError as error:
            raise Conflict(f"attempt {_worker_key(key)} was dispatched already") from error

    def claim_attempt(
        self, key: WorkerKey, *, worker: str, heartbeat_every: float, now: datetime
    ) -> dict[str, Any] | None:
        values = {"worker": worker, "heartbeat_at": now, "heartbeat_every": heartbeat_every}
        with self._write() as conn:
            claimed = conn.execute(
                sa.update(worker_attempts)
                .where(*_worker_row(key), worker_attempts.c.status == "queued")
                .values(status="running", **values)
            )
            if not claimed.rowcount:
                return None
            query = sa.select(worker_attempts.c.spec).where(*_worker_row(key))
            return dict(conn.execute(query).scalar_one())

    def worker_heartbeat(self, key: WorkerKey, *, worker: str, now: datetime) -> float | None:
        held = (*_worker_row(key), worker_attempts.c.status == "running")
        with self._write() as conn:
            renewed = conn.execute(
                sa.update(worker_attempts)
                .where(*held, worker_attempts.c.worker == worker)
                .values(heartbeat_at=now)
                .returning(worker_attempts.c.cancel_grace)
            ).first()
        if renewed is None:
            raise Conflict(f"attempt {_worker_key(key)} is not held by worker {worker!r} any more")
        return None if renewed.cancel_grace is None else float(renewed.cancel_grace)

    def finish_attempt(
        self, key: WorkerKey, *, worker: str, outcome: Mapping[str, Any], now: datetime
    ) -> bool:
        held = (*_worker_row(key), worker_attempts.c.status == "running")
        with self._write() as conn:
            done = conn.execute(
                sa.update(worker_attempts)
                .where(*held, worker_attempts.c.worker == worker)
                .values(status="finished", outcome=dict(outcome), heartbeat_at=now)
            )
        return bool(done.rowcount)

    def cancel_attempt(self, key: WorkerKey, *, grace: float) -> None:
        table = worker_attempts.c
        with self._write() as conn:
            conn.execute(
                sa.update(worker_attempts)
                .where(*_worker_row(key), table.status.in_(("queued", "running")))
                .values(
                    cancel_grace=grace,
                    status=sa.case((table.status == "queued", "cancelled"), else_=table.status),
                )
            )

    def lose_attempt(self, key: WorkerKey, *, heartbeat_at: datetime | None) -> bool:
        table = worker_attempts.c
        same_beat = (
            table.heartbeat_at.is_(None)
            if heartbeat_at is None
            else (table.heartbeat_at == heartbeat_at)
        )
        with self._write() as conn:
            lost = conn.execute(
                sa.update(worker_attempts)
                .where(*_worker_row(key), table.status == "running", same_beat)
                .values(status="lost")
            )
        return bool(lost.rowcount)

    def worker_attempt(self, key: WorkerKey) -> WorkerAttempt:
        query = sa.select(*_WORKER_COLUMNS).where(*_worker_row(key))
        with self._read() as conn:
            row = conn.execute(query).first()
        if row is None:
            raise NotFound(f"no attempt {_worker_key(key)} was sent to a worker")
        return WorkerAttempt(*row)

    # --- controls ------------------------------------------------------------------------------

    def mark_task(self, mark: TaskMark, *, owner: str | None = None) -> TaskMark:
        job = None
        try:
            with self._write() as conn:
                job = _markable_run(conn, mark, resume=owner is not None)
                if owner is not None:
                    _refuse_running(conn, job)
                    _continue_run(conn, mark.run_id, owner=owner, now=mark.at)
                _set_mark(conn, mark)
        except exc.IntegrityError as error:
            raise self._clash(job or "", None, error) from error
        return replace(mark, at=mark.at.astimezone(UTC))

    def task_marks(self, run_id: int) -> list[TaskMark]:
        with self._read() as conn:
            return _marks(conn, run_id)


# --- what a run's page shows ---------------------------------------------------------------


def _tasks(conn: Connection, run_id: int) -> list[TaskRecord]:
    query = (
        sa.select(*_TASK_COLUMNS).where(task_runs.c.run_id == run_id).order_by(task_runs.c.position)
    )
    return [TaskRecord(*row) for row in conn.execute(query)]


def _fixes(conn: Connection, run_id: int) -> list[CommandFix]:
    query = (
        sa.select(*_FIX_COLUMNS)
        .where(command_fixes.c.run_id == run_id)
        .order_by(command_fixes.c.id)
    )
    return [CommandFix(*row) for row in conn.execute(query)]


def _notifications(conn: Connection, run_id: int) -> list[NotificationRecord]:
    query = (
        sa.select(*_NOTIFICATION_COLUMNS)
        .where(notifications.c.run_id == run_id)
        .order_by(notifications.c.id)
    )
    return [NotificationRecord(*row) for row in conn.execute(query)]


def _marks(conn: Connection, run_id: int) -> list[TaskMark]:
    query = sa.select(*_MARK_COLUMNS).where(task_marks.c.run_id == run_id)
    return [TaskMark(*row) for row in conn.execute(query.order_by(task_marks.c.id))]


# --- engines and transactions ------------------------------------------------------------------


@contextmanager
def _opening(url: str) -> Iterator[None]:
    """Hold a lock beside a SQLite file while it is opened and migrated.

    Switching a new file to WAL and migrating it take the database whole: two processes
    opening one fresh home at once would otherwise see "database is locked" (the busy
    timeout does not cover a journal-mode switch). Nothing to do for other databases.
    """
    path = _sqlite_file(url)
    if path is None or not path.parent.is_dir():  # no file: opening it fails, unlocked
        yield
        return
    fd = os.open(f"{path}.open-lock", os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _sqlite_file(url: str) -> Path | None:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database)


def _revision(conn: Connection) -> str | None:
    """The schema's Alembic revision, read without Alembic; None if it has none."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def upgrades_on_open(url: str) -> bool:
    """Whether ``SQLStore.open`` migrates the database of ``url`` by itself: SQLite only.

    A SQLite file belongs to one installation (one daemon holds its lock), so jobnest keeps
    it current as it always has. A PostgreSQL database may be shared by several daemons,
    some of them still older: changing its schema under them is the operator's decision,
    taken with ``jobnest db upgrade`` (after a backup).
    """
    return _backend(url) == "sqlite"


def _backend(url: str) -> str:
    try:
        return sa.make_url(url).get_backend_name()
    except exc.ArgumentError as error:
        raise StoreError(f"database URL {url!r} is not a SQLAlchemy URL: {error}") from None


def _create_engine(url: str) -> Engine:
    """An engine for ``url``, with SQLite's transaction control taken over.

    PostgreSQL connections are checked before use (``pool_pre_ping``): one the server
    dropped (a restart, ``pg_terminate_backend``) is replaced instead of failing a write.
    """
    if _backend(url) != "sqlite":
        try:
            return sa.create_engine(url, pool_pre_ping=True)
        except ImportError as error:
            raise StoreError(
                f"no driver for {_safe(url)} ({error.name} is not installed): "
                "for PostgreSQL, pip install 'jobnest[postgres]'"
            ) from None
    engine = sa.create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
    sa.event.listen(engine, "connect", _on_sqlite_connect)
    sa.event.listen(engine, "begin", _on_sqlite_begin)
    return engine


def _on_sqlite_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    """Stop pysqlite from emitting BEGIN itself, and set the pragmas of every connection."""
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_SECONDS * 1000}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
    finally:
        cursor.close()


def _on_sqlite_begin(conn: Connection) -> None:
    """Begin a write transaction IMMEDIATE (take the write lock now), a read one deferred."""
    immediate = conn.get_execution_options().get(_WRITE, False)
    conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def _translated() -> Iterator[None]:
    """Turn an unusable database into StoreError, and a naive datetime into ValueError."""
    try:
        yield
    except (exc.OperationalError, exc.InterfaceError) as error:
        raise StoreError(f"the database cannot be used: {error.orig}") from error
    except exc.StatementError as error:
        if isinstance(error, exc.DBAPIError) or not isinstance(error.orig, ValueError):
            raise
        raise error.orig from error


def _safe(url: str) -> str:
    return sa.make_url(url).render_as_string(hide_password=True)


# --- reading rows ------------------------------------------------------------------------------


def _get_run(conn: Connection, run_id: int) -> RunRecord:
    row = conn.execute(sa.select(*_RUN_COLUMNS).where(runs.c.id == run_id)).first()
    if row is None:
        raise _no_run(run_id)
    return RunRecord(*row)


def _no_run(run_id: int) -> NotFound:
    return NotFound(f"no run with id {run_id}")


def _require_run(conn: Connection, run_id: int) -> None:
    if conn.execute(sa.select(runs.c.id).where(runs.c.id == run_id)).first() is None:
        raise _no_run(run_id)


def _running_run_id(conn: Connection, job: str) -> int | None:
    query = sa.select(runs.c.id).where(runs.c.job == job, runs.c.status == "running")
    return conn.execute(query.limit(1)).scalar()


def _refuse_running(conn: Connection, job: str) -> None:
    running = _running_run_id(conn, job)
    if running is not None:
        raise RunInProgress(job, running)


# --- writing runs ------------------------------------------------------------------------------


def _insert_tasks(conn: Connection, run_id: int, task_paths: Iterable[str]) -> None:
    rows = [(run_id, path, position, "pending", 0) for position, path in enumerate(task_paths)]
    if rows:
        _insert_many(conn, task_runs, _TASK_INSERT_COLUMNS, rows)


def _insert_many(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """INSERT rows with the driver's executemany, skipping SQLAlchemy's per-row work.

    For columns whose values need no conversion (integers, text): 100,000 rows in a few
    tenths of a second instead of seconds. Works with positional and named paramstyles.
    PostgreSQL takes them by COPY: its executemany still pays one round trip per row.
    """
    if conn.dialect.name == "postgresql":
        _copy_rows(conn, table, columns, rows)
        return
    statement = sa.insert(table).values({name: sa.bindparam(name) for name in columns})
    compiled = statement.compile(dialect=conn.dialect)
    params: list[Any] = rows
    if not compiled.positional:
        params = [dict(zip(columns, row, strict=True)) for row in rows]
    elif list(compiled.positiontup or ()) != list(columns):
        order = [columns.index(name) for name in compiled.positiontup or ()]
        params = [tuple(row[index] for index in order) for row in rows]
    conn.exec_driver_sql(str(compiled), params)


def _copy_rows(
    conn: Connection, table: sa.Table, columns: Sequence[str], rows: list[tuple[Any, ...]]
) -> None:
    """COPY rows into a PostgreSQL table, in the transaction of ``conn`` (psycopg 3)."""
    quote = conn.dialect.identifier_preparer.quote
    target = f"{quote(table.name)} ({', '.join(quote(name) for name in columns)})"
    driver: Any = conn.connection.driver_connection
    with driver.cursor() as cursor, cursor.copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


@dataclass(frozen=True)
class _Batch:
    """An open write transaction on the driver's connection (``SQLStore._driver_write``)."""

    cursor: Any  # the driver's cursor
    dialect: sa.Dialect


class _Prepared:
    """A statement compiled once per dialect, then run on the driver's cursor.

    The writes of every scheduling step (``apply``: attempts started and ended, task and run
    changes) take this way: through SQLAlchemy's ``Connection`` each step paid for building,
    cache-keying and typing every statement and for the connection and transaction wrappers,
    several times what the database itself spends. The rows must be ready for the driver
    (``_driver_row``): instants as text, everything else plain.
    """

    def __init__(self, statement: sa.UpdateBase) -> None:
        self._statement = statement
        self._compiled: dict[str, tuple[str, tuple[str, ...] | None]] = {}

    def execute(self, batch: _Batch, rows: Sequence[Mapping[str, Any]]) -> int:
        """Run the statement once per row; return how many rows it changed."""
        if not rows:
            return 0
        sql, order = self._compile(batch.dialect)
        params: list[Any] = list(rows)
        if order is not None:
            params = [tuple(row[name] for name in order) for row in rows]
        if len(params) == 1:
            batch.cursor.execute(sql, params[0])
        else:
            batch.cursor.executemany(sql, params)
        return int(batch.cursor.rowcount)

    def _compile(self, dialect: sa.Dialect) -> tuple[str, tuple[str, ...] | None]:
        """The SQL text, and the parameter order when the paramstyle is positional."""
        key = f"{dialect.name}+{dialect.driver}"
        if key not in self._compiled:
            compiled = self._statement.compile(dialect=dialect)
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            self._compiled[key] = (str(compiled), order)
        return self._compiled[key]


def _driver_row(record: object, prefix: str = "") -> dict[str, Any]:
    """A record's fields as parameters for ``_Prepared``, named ``prefix + field``."""
    return {
        prefix + name: format_instant(value) if isinstance(value, datetime) else value
        for name, value in vars(record).items()
    }


def _task_key() -> tuple[sa.ColumnElement[bool], sa.ColumnElement[bool]]:
    return (
        task_runs.c.run_id == sa.bindparam("b_run_id"),
        task_runs.c.path == sa.bindparam("b_path"),
    )


def _prepare_attempt_start() -> tuple[_Prepared, _Prepared]:
    """Insert an attempt; count it on its task."""
    insert = sa.insert(attempts).values({c.name: sa.bindparam(c.name) for c in _ATTEMPT_COLUMNS})
    number = sa.bindparam("b_number", type_=sa.Integer)
    count = sa.case((task_runs.c.attempts < number, number), else_=task_runs.c.attempts)
    count_on_task = sa.update(task_runs).where(*_task_key()).values(attempts=count)
    return _Prepared(insert), _Prepared(count_on_task)


def _prepare_attempt_end() -> _Prepared:
    names = ("status", "finished_at", "exit_code", "signal", "reason", "stdout_size", "stderr_size")
    return _Prepared(
        sa.update(attempts)
        .where(
            attempts.c.run_id == sa.bindparam("b_run_id"),
            attempts.c.path == sa.bindparam("b_path"),
            attempts.c.number == sa.bindparam("b_number"),
        )
        .values({name: sa.bindparam(f"b_{name}") for name in names})
    )


def _prepare_task_change() -> _Prepared:
    """Status, reason and exit code as given; an instant left out keeps the stored one.

    A task that is not finished (pending, queued, running) has no ``finished_at``.
    """
    instant = UTCDateTime()
    started = sa.func.coalesce(sa.bindparam("b_started_at", type_=instant), task_runs.c.started_at)
    finished = sa.func.coalesce(
        sa.bindparam("b_finished_at", type_=instant), task_runs.c.finished_at
    )
    unfinished = sa.bindparam("b_unfinished", type_=sa.Boolean)
    return _Prepared(
        sa.update(task_runs)
        .where(*_task_key())
        .values(
            status=sa.bindparam("b_status"),
            reason=sa.bindparam("b_reason"),
            exit_code=sa.bindparam("b_exit_code"),
            started_at=started,
            finished_at=sa.case((unfinished, sa.null()), else_=finished),
        )
    )


_INSERT_ATTEMPT, _COUNT_ATTEMPT = _prepare_attempt_start()
_END_ATTEMPT = _prepare_attempt_end()
_CHANGE_TASK = _prepare_task_change()
_CHANGE_RUN = _Prepared(
    sa.update(runs)
    .where(runs.c.id == sa.bindparam("b_run_id"))
    .values(status=sa.bindparam("b_status"), finished_at=sa.bindparam("b_finished_at"))
)


def _start_attempts(batch: _Batch, started: Sequence[AttemptRecord]) -> None:
    """Insert the attempts and count them on their tasks."""
    _INSERT_ATTEMPT.execute(batch, [_driver_row(attempt) for attempt in started])
    _COUNT_ATTEMPT.execute(
        batch, [{"b_run_id": a.run_id, "b_path": a.path, "b_number": a.number} for a in started]
    )


def _end_attempts(batch: _Batch, ended: Sequence[AttemptEnd]) -> None:
    _END_ATTEMPT.execute(batch, [_driver_row(end, "b_") for end in ended])


def _change_tasks(batch: _Batch, changes: Sequence[TaskChange]) -> None:
    _CHANGE_TASK.execute(batch, [_task_change_params(change) for change in changes])


def _task_change_params(change: TaskChange) -> dict[str, Any]:
    params = _driver_row(change, "b_")
    params["b_unfinished"] = change.status in _UNFINISHED
    return params


def _change_run(batch: _Batch, change: RunChange) -> None:
    if _CHANGE_RUN.execute(batch, [_driver_row(change, "b_")]) == 0:
        raise _no_run(change.run_id)


def _retryable_job(conn: Connection, run_id: int) -> str:
    """The job of a failed run, the run locked for this transaction."""
    query = sa.select(runs.c.job, runs.c.status).where(runs.c.id == run_id).with_for_update()
    row = conn.execute(query).first()
    if row is None:
        raise _no_run(run_id)
    if row.status != "failed":
        raise NotRetryable(run_id, row.status)
    return str(row.job)


def _restart_run(conn: Connection, run_id: int, *, owner: str, now: datetime) -> None:
    """The run back to running; its unfinished tasks back to pending, outcome cleared."""
    _continue_run(conn, run_id, owner=owner, now=now)
    conn.execute(
        sa.update(task_runs)
        .where(task_runs.c.run_id == run_id, task_runs.c.status.in_(_RESET_ON_RETRY))
        .values(status="pending", reason=None, exit_code=None, started_at=None, finished_at=None)
    )


def _fixable_command(conn: Connection, run_id: int, path: str) -> str:
    """The current command of a task whose command may be fixed now."""
    query = sa.select(runs.c.status).where(runs.c.id == run_id).with_for_update()
    run_status = conn.execute(query).scalar()
    if run_status is None:
        raise _no_run(run_id)
    task = conn.execute(
        sa.select(task_runs.c.status, task_runs.c.command).where(
            task_runs.c.run_id == run_id, task_runs.c.path == path
        )
    ).first()
    if task is None:
        raise NotFound(f"run {run_id} has no task {path!r}")
    if run_status == "running":
        raise Conflict(f"run {run_id} is running: fix task {path!r} once it has stopped")
    if task.status == "succeeded":
        raise Conflict(f"task {path!r} of run {run_id} succeeded already: nothing to fix")
    return str(task.command) if task.command is not None else _plan_command(conn, run_id, path)


def _plan_command(conn: Connection, run_id: int, path: str) -> str:
    plan = conn.execute(sa.select(runs.c.plan).where(runs.c.id == run_id)).scalar_one()
    for node in plan.get("nodes", ()):
        if node.get("id") == path and isinstance(node.get("command"), str):
            return str(node["command"])
    raise Conflict(f"task {path!r} of run {run_id} has no command in the plan")


_RENEW_LEASE = _Prepared(
    sa.update(runs)
    .where(runs.c.id == sa.bindparam("b_run_id"), runs.c.owner == sa.bindparam("b_owner"))
    .values(heartbeat_at=sa.bindparam("b_at"))
)


def _renew_lease(batch: _Batch, lease: Lease) -> None:
    """Fence a driver's batch: its run must still be its own. Takes the run's row lock."""
    if _RENEW_LEASE.execute(batch, [_driver_row(lease, "b_")]) == 0:
        raise Conflict(f"run {lease.run_id} is not driven by {lease.owner!r} any more")


def _unchanged_runs(conn: Connection, claimed: Sequence[RunRecord]) -> list[RunRecord]:
    """The runs still ``running`` with the owner and heartbeat the claimer saw, now locked."""
    query = (
        sa.select(runs.c.id, runs.c.owner, runs.c.heartbeat_at)
        .where(runs.c.id.in_([run.id for run in claimed]), runs.c.status == "running")
        .with_for_update(skip_locked=True)
    )
    now_seen = {row.id: (row.owner, row.heartbeat_at) for row in conn.execute(query)}
    return [run for run in claimed if now_seen.get(run.id) == (run.owner, run.heartbeat_at)]


def _lost_lease(run: RunRecord, owner: str) -> Conflict:
    driver = f"by {run.owner!r}" if run.owner else "by nobody"
    return Conflict(f"run {run.id} is driven {driver}, not by {owner!r}")


# --- writing schedules -------------------------------------------------------------------------


def _insert(conn: Connection, table: sa.Table) -> sqlite.Insert | postgresql.Insert:
    """The dialect's INSERT that takes ON CONFLICT (spelt alike by SQLite and PostgreSQL)."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


# --- notifications -----------------------------------------------------------------------------


def _due_notifications(now: datetime) -> sa.ColumnElement[bool]:
    """Pending and due, or sending with the lease of its worker expired."""
    table = notifications.c
    pending = (table.status == "pending") & (table.next_attempt_at <= now)
    abandoned = (table.status == "sending") & (table.lease_until <= now)
    return pending | abandoned


# --- writing jobs ------------------------------------------------------------------------------


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


# --- retention and metrics ---------------------------------------------------------------------


def _ended_beyond_newest(keep: int, mine: sa.ColumnElement[bool]) -> sa.Select[Any]:
    """The ``mine`` jobs' ended runs past their newest ``keep`` (running ones count)."""
    rank = sa.func.row_number().over(partition_by=runs.c.job, order_by=runs.c.id.desc())
    ranked = sa.select(*_RUN_COLUMNS, rank.label("rank")).where(mine).subquery()
    columns = [ranked.c[column.name] for column in _RUN_COLUMNS]
    return sa.select(*columns).where(ranked.c.rank > keep, ranked.c.status != "running")


def _count_by_status(conn: Connection, table: sa.Table) -> dict[str, int]:
    query = sa.select(table.c.status, sa.func.count()).group_by(table.c.status)
    return {str(status): int(count) for status, count in conn.execute(query)}


# --- workers -----------------------------------------------------------------------------------

_WORKER_COLUMNS = _columns(worker_attempts, WorkerAttempt)


def _worker_row(key: WorkerKey) -> tuple[sa.ColumnElement[bool], ...]:
    table = worker_attempts.c
    return (table.run_id == key.run_id, table.path == key.path, table.attempt == key.attempt)


def _worker_key(key: WorkerKey) -> str:
    return f"{key.attempt} of task {key.path!r} of run {key.run_id}"


# --- controls ----------------------------------------------------------------------------------


def _markable_run(conn: Connection, mark: TaskMark, *, resume: bool) -> str:
    """The job of the run whose failed task ``mark`` names, the run locked; else raise."""
    query = sa.select(runs.c.job, runs.c.status).where(runs.c.id == mark.run_id)
    run = conn.execute(query.with_for_update()).first()
    if run is None:
        raise _no_run(mark.run_id)
    status = conn.execute(
        sa.select(task_runs.c.status).where(
            task_runs.c.run_id == mark.run_id, task_runs.c.path == mark.path
        )
    ).scalar()
    if status is None:
        raise NotFound(f"run {mark.run_id} has no task {mark.path!r}")
    if status != "failed":
        raise Conflict(
            f"task {mark.path!r} of run {mark.run_id} is {status}: only a failed task is marked"
        )
    if run.status != ("failed" if resume else "running"):
        raise Conflict(f"run {mark.run_id} is {run.status}: the task cannot be marked now")
    return str(run.job)


def _continue_run(conn: Connection, run_id: int, *, owner: str, now: datetime) -> None:
    """The failed run back to running, its tasks as they are: its driver sorts them out."""
    conn.execute(
        sa.update(runs)
        .where(runs.c.id == run_id)
        .values(
            status="running",
            retries=runs.c.retries + 1,
            owner=owner,
            heartbeat_at=now,
            finished_at=None,
        )
    )


def _set_mark(conn: Connection, mark: TaskMark) -> None:
    conn.execute(
        sa.update(task_runs)
        .where(task_runs.c.run_id == mark.run_id, task_runs.c.path == mark.path)
        .values(status=mark.status, reason="marked")
    )
    conn.execute(sa.insert(task_marks).values(asdict(mark)))


def _keep_plan(conn: Connection, run_id: int, now: datetime) -> None:
    """Keep the run's current plan as its next version in ``run_plans``, with the number of
    attempts each task had made under it."""
    plan, snapshot = conn.execute(
        sa.select(runs.c.plan, runs.c.snapshot).where(runs.c.id == run_id)
    ).one()
    count = sa.select(sa.func.count()).where(run_plans.c.run_id == run_id)
    made = sa.select(task_runs.c.path, task_runs.c.attempts).where(task_runs.c.run_id == run_id)
    conn.execute(
        sa.insert(run_plans).values(
            run_id=run_id,
            version=int(conn.execute(count).scalar() or 0) + 1,
            plan=plan,
            snapshot=snapshot,
            attempts={path: n for path, n in conn.execute(made) if n},
            replaced_at=now,
        )
    )


def _align_tasks(conn: Connection, run_id: int, task_paths: Sequence[str]) -> None:
    """The run's tasks as the new plan has them: succeeded and skipped ones kept, the others
    with the plan's command (a fix is for the old plan), new ones pending, and those the
    plan dropped ``skipped`` (reason ``removed``) unless they had succeeded, after the rest."""
    query = sa.select(task_runs.c.path, task_runs.c.status).where(task_runs.c.run_id == run_id)
    status = {str(path): str(state) for path, state in conn.execute(query)}
    wanted = set(task_paths)
    dropped = [path for path in status if path not in wanted]
    for position, path in enumerate([*task_paths, *dropped]):
        values: dict[str, Any] = {"position": position}
        if status.get(path) not in _KEPT_ON_NEW_PLAN:
            values["command"] = None
        if path in wanted and path not in status:
            _insert_many(
                conn, task_runs, _TASK_INSERT_COLUMNS, [(run_id, path, position, "pending", 0)]
            )
            continue
        if path not in wanted and status[path] not in _KEPT_ON_NEW_PLAN:
            values |= {"status": "skipped", "reason": "removed"}
        key = (task_runs.c.run_id == run_id) & (task_runs.c.path == path)
        conn.execute(sa.update(task_runs).where(key).values(values))

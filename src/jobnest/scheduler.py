"""The scheduler: cron schedules become runs, one per (job, scheduled instant).

``tick(now)`` handles, for every scheduled job of the catalog, the slots (scheduled
instants) that came due since the last tick, and returns the runs it created; the daemon
drives them. ``next_wakeup(now)`` says when the next slot comes. Time is a parameter:
nothing here reads the clock.

A job's ``last_slot`` in the store means "every slot up to here is handled". A slot is
handled by a run — the store keeps one per (job, slot), so when two tickers race one run is
created and the other's ``Conflict`` means "done already" — or by a skip recorded with its
reason:

    running     a run of the job was in progress at the slot: runs of a job never overlap
    misfire     missed (older than the on-time window when first seen) under ``skip``;
                beyond the cap under ``run_all``
    coalesced   one run stood for several slots (``run_once``, the default)
    paused      the job's schedule is paused
    invalid     the job could not be expanded into a plan (the warning is logged)

A job seen for the first time counts from ``now``: no back-fill. ``last_slot`` follows the
ticks, not just the slots, so a job whose schedule was edited does not catch up on the past
of its new schedule; a job that loses its schedule (or is deleted) is forgotten, and starts
afresh when it is scheduled again. Missed slots are the newest ``max_slots`` only: after a
long downtime an every-minute job costs a bounded amount of work, not one step per minute.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from jobnest.errors import Conflict, InvalidInput, NotFound, RunInProgress
from jobnest.model import schedule
from jobnest.model.job import Job, Misfire, parse_job
from jobnest.runner import Runner
from jobnest.store.base import RunRecord, ScheduleState, SkippedSlot

ON_TIME = timedelta(seconds=60)
RUN_ALL_CAP = 10
MAX_SLOTS = 100

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Decision:
    """What to do with a job's due slots: start one, skip some, leave the rest waiting."""

    start: datetime | None = None
    skips: tuple[tuple[datetime, str], ...] = ()  # (slot, reason)
    waiting: tuple[datetime, ...] = ()  # run later, one after another (``run_all``)

    def handled_through(self, due: Sequence[datetime], now: datetime) -> datetime | None:
        """The new ``last_slot``: ``now``, or the last due slot before those still waiting."""
        if not self.waiting:
            return now
        before = [slot for slot in due if slot < self.waiting[0]]
        return before[-1] if before else None


def decide(
    policy: Misfire, due: Sequence[datetime], *, late: datetime, busy: bool, cap: int
) -> Decision:
    """What to do with ``due`` (oldest first, not empty); slots before ``late`` were missed.

    ``busy``: a run of the job is in progress, so nothing can start now.
    """
    if policy == "run_all":
        return _decide_run_all(due, late=late, busy=busy, cap=cap)
    *older, latest = due
    if policy == "run_once":
        skips = [(slot, "coalesced") for slot in older]
    else:
        skips = [(slot, "misfire" if slot < late else "coalesced") for slot in older]
        if latest < late:
            return Decision(skips=(*skips, (latest, "misfire")))
    if busy:
        return Decision(skips=(*skips, (latest, "running")))
    return Decision(start=latest, skips=tuple(skips))


def _decide_run_all(due: Sequence[datetime], *, late: datetime, busy: bool, cap: int) -> Decision:
    """The newest ``cap`` missed slots run one after another, the oldest first.

    A slot that comes on time while a run is in progress is skipped, as for every policy.
    """
    missed = [slot for slot in due if slot < late]
    on_time = [slot for slot in due if slot >= late]
    dropped = max(0, len(missed) - cap)
    skips = tuple((slot, "misfire") for slot in missed[:dropped])
    queue = missed[dropped:]
    if busy:
        running = tuple((slot, "running") for slot in on_time)
        return Decision(skips=(*skips, *running), waiting=tuple(queue))
    queue += on_time
    return Decision(start=queue[0], skips=skips, waiting=tuple(queue[1:]))


def recent_fires(
    expr: str, tz: ZoneInfo, after: datetime, until: datetime, limit: int
) -> list[datetime]:
    """The newest ``limit`` firings in ``(after, until]``, in UTC, oldest first.

    Looks back from ``until`` over a span that grows fourfold until it holds ``limit``
    firings or reaches ``after``, so a long gap costs a few times ``limit`` steps at most.
    """
    span = timedelta(hours=1)
    while True:
        start = max(after, until - span)
        fires = list(schedule.fires_between(expr, tz, start, until))
        if len(fires) >= limit or start == after:
            return fires[-limit:]
        span *= 4


class Scheduler:
    """Creates the runs the jobs' schedules call for; see the module docstring."""

    def __init__(
        self,
        runner: Runner,
        *,
        workdir: str,
        zone: ZoneInfo,
        on_time: timedelta = ON_TIME,
        run_all_cap: int = RUN_ALL_CAP,
        max_slots: int = MAX_SLOTS,
    ) -> None:
        """``zone``: the daemon's, for jobs without a ``timezone``. ``workdir``: for jobs
        without a ``workdir``. A slot older than ``on_time`` when first seen was missed.

        Raises:
            InvalidInput: a negative window, or a cap or slot limit under 1.
        """
        if on_time < timedelta(0):
            raise InvalidInput(f"the on-time window must not be negative, got {on_time}")
        for name, value in (("run_all_cap", run_all_cap), ("max_slots", max_slots)):
            if value < 1:
                raise InvalidInput(f"{name} must be at least 1, got {value!r}")
        self.runner = runner
        self.store = runner.store
        self.workdir = workdir
        self.zone = zone
        self.on_time = on_time
        self.run_all_cap = run_all_cap
        self.max_slots = max_slots

    def tick(self, now: datetime) -> list[RunRecord]:
        """Handle every slot due by ``now``; return the runs created (not driven)."""
        now = _utc(now)
        catalog = self._catalog()
        scheduled = [job for job in catalog.values() if job.schedule is not None]
        states = self.store.schedule_states()
        self._forget_unscheduled(states, {job.name for job in scheduled})
        running = {run.job: run for run in self.store.running_runs()}
        created: list[RunRecord] = []
        handled: dict[str, datetime] = {}
        for job in scheduled:
            run, through = self._tick_job(
                job, states.get(job.name), running.get(job.name), catalog, now
            )
            if run is not None:
                created.append(run)
            if through is not None:
                handled[job.name] = through
        self.store.advance_schedules(handled)
        return created

    def next_wakeup(self, now: datetime) -> datetime | None:
        """The earliest slot after ``now`` of any scheduled job not paused; None if none.

        Tick again sooner when the catalog changes (a new job counts from the first tick
        that sees it) and when a scheduled run ends (``run_all`` catch-up goes on then).
        """
        states = self.store.schedule_states()
        jobs = [job for job in self._catalog().values() if not _is_paused(states.get(job.name))]
        return min(filter(None, (self.next_slot(job, now) for job in jobs)), default=None)

    def next_slot(self, job: Job, now: datetime) -> datetime | None:
        """The job's first slot after ``now``, in UTC; None when it has no schedule."""
        if job.schedule is None:
            return None
        return schedule.next_after(job.schedule, self.zone_of(job), _utc(now))

    def zone_of(self, job: Job) -> ZoneInfo:
        """The zone the job's schedule is read in: its own, else the daemon's."""
        return schedule.zone(job.timezone) if job.timezone else self.zone

    # --- pause and resume ----------------------------------------------------------------------

    def pause(self, name: str) -> None:
        """Stop the job's schedule from starting runs; its slots are skipped as ``paused``.

        Pausing a paused job changes nothing. Raises NotFound.
        """
        self._job(name)
        self.store.set_schedule_paused(name, True)

    def resume(self, name: str, now: datetime, *, catch_up: bool = False) -> RunRecord | None:
        """Let the job's schedule start runs again, from the slots after ``now``; a job
        that is not paused is left as it is.

        The slots that came while paused and no tick saw yet are recorded as skipped
        (``paused``) too. With ``catch_up``, the newest slot skipped as ``paused`` gets its
        run now (one run, whatever the misfire policy): the run returned, not yet driven.

        Raises:
            NotFound: no such job.
            RunInProgress: ``catch_up`` while a run of the job is in progress (nothing
                changes then).
        """
        now = _utc(now)
        catalog = self._catalog()
        job = self._job(name, catalog)
        if catch_up:
            self._refuse_busy(name)
        state = self.store.schedule_state(name)
        if state is None or not state.paused:
            return None  # not paused: nothing to resume, nothing to catch up
        self._skip_while_paused(job, state, now)
        self.store.set_schedule_paused(name, False)
        return self._catch_up(job, catalog, now) if catch_up else None

    def _skip_while_paused(self, job: Job, state: ScheduleState, now: datetime) -> None:
        """Record the slots up to ``now`` no tick saw as ``paused``; handled through ``now``."""
        if job.schedule is not None and state.last_slot is not None:
            due = self._due(job, state.last_slot, now, None)
            self._skip(job.name, [(slot, "paused") for slot in due], now)
            self.store.advance_schedules({job.name: now})

    def _catch_up(self, job: Job, catalog: Mapping[str, Job], now: datetime) -> RunRecord | None:
        """The run of the newest slot skipped as ``paused``, if the newest skip is one and
        no run began since (a skip of an older pause is not caught up again)."""
        newest = self.store.skipped_slots(job.name, limit=1)
        if not newest or newest[0].reason != "paused":
            return None
        slot = newest[0].scheduled_for
        latest = self.store.list_runs(job.name, limit=1)
        if latest and latest[0].created_at >= slot:
            return None
        return self._start(job, catalog, slot, now)

    def _refuse_busy(self, name: str) -> None:
        running = [run for run in self.store.running_runs() if run.job == name]
        if running:
            raise RunInProgress(name, running[0].id)

    def _job(self, name: str, catalog: Mapping[str, Job] | None = None) -> Job:
        jobs = self._catalog() if catalog is None else catalog
        if name not in jobs:
            raise NotFound(f"no job named {name!r}")
        return jobs[name]

    # --- one job -------------------------------------------------------------------------------

    def _tick_job(
        self,
        job: Job,
        state: ScheduleState | None,
        running: RunRecord | None,
        catalog: Mapping[str, Job],
        now: datetime,
    ) -> tuple[RunRecord | None, datetime | None]:
        """Handle the job's due slots: the run created, if any, and the new ``last_slot``."""
        if state is None or state.last_slot is None:
            return None, now  # first seen: count from now, no back-fill
        due = self._due(job, state.last_slot, now, running)
        if not due:
            return None, now
        if state.paused:
            self._skip(job.name, [(slot, "paused") for slot in due], now)
            return None, now
        decision = self._decide(job, due, now, busy=running is not None)
        self._skip(job.name, decision.skips, now)
        run = None
        if decision.start is not None:
            try:
                run = self._start(job, catalog, decision.start, now)
            except RunInProgress:  # a run began since we looked
                decision = self._decide(job, due, now, busy=True)
                self._skip(job.name, decision.skips, now)
        return run, decision.handled_through(due, now)

    def _due(
        self, job: Job, after: datetime, now: datetime, running: RunRecord | None
    ) -> list[datetime]:
        """The job's slots in ``(after, now]`` that nobody has handled yet, oldest first.

        Skips recorded beyond ``after`` are handled; so is every slot up to that of a run in
        progress that another ticker started.
        """
        assert job.schedule is not None
        slots = recent_fires(job.schedule, self.zone_of(job), after, now, self.max_slots)
        if not slots:
            return []
        skipped = self.store.skipped_slots(job.name, after=after, limit=self.max_slots)
        done = {skip.scheduled_for for skip in skipped}
        claimed = running.scheduled_for if running is not None else None
        return [s for s in slots if s not in done and (claimed is None or s > claimed)]

    def _decide(self, job: Job, due: Sequence[datetime], now: datetime, *, busy: bool) -> Decision:
        late = now - self.on_time
        return decide(job.misfire, due, late=late, busy=busy, cap=self.run_all_cap)

    def _start(
        self, job: Job, catalog: Mapping[str, Job], slot: datetime, now: datetime
    ) -> RunRecord | None:
        """Create the run of ``slot``; None when it exists already or cannot be expanded.

        Raises:
            RunInProgress: a run of the job for another slot (or none) is in progress.
        """
        try:
            return self.runner.start(
                job, catalog.get, workdir=self.workdir, trigger="schedule", scheduled_for=slot
            )
        except RunInProgress as error:
            if self.store.get_run(error.run_id).scheduled_for != slot:
                raise
        except Conflict:
            pass  # another ticker created the run of this slot first
        except InvalidInput as error:
            log.warning("job %r: no run for %s: %s", job.name, slot.isoformat(), error)
            self._skip(job.name, [(slot, "invalid")], now)
        return None

    # --- the catalog and the store -------------------------------------------------------------

    def _catalog(self) -> dict[str, Job]:
        """Every job of the store; one whose stored definition no longer parses is left out."""
        jobs = {}
        for name, definition in self.store.list_jobs().items():
            try:
                jobs[name] = parse_job(definition)
            except InvalidInput as error:
                log.warning("job %r is not scheduled: %s", name, error)
        return jobs

    def _forget_unscheduled(self, states: Mapping[str, ScheduleState], scheduled: set[str]) -> None:
        """Jobs deleted or unscheduled start afresh if they get a schedule again."""
        gone = [
            name
            for name, state in states.items()
            if state.last_slot is not None and name not in scheduled
        ]
        self.store.forget_schedules(gone)

    def _skip(self, job: str, skips: Sequence[tuple[datetime, str]], now: datetime) -> None:
        self.store.record_skips([SkippedSlot(job, slot, reason, now) for slot, reason in skips])


def _is_paused(state: ScheduleState | None) -> bool:
    return state is not None and state.paused


def _utc(now: datetime) -> datetime:
    """``now`` in UTC; a naive datetime is refused (its zone would be a guess)."""
    if now.tzinfo is None or now.utcoffset() is None:
        raise ValueError(f"naive datetime {now.isoformat()!r}: pass an aware instant")
    return now.astimezone(UTC)

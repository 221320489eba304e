"""The store contract for schedule state and skipped slots, over every backend."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

from jobnest.store.base import ScheduleState, SkippedSlot, Store

T0 = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def skip(job: str, minutes: int, reason: str = "running") -> SkippedSlot:
    return SkippedSlot(job, T0 + minutes * MINUTE, reason, T0 + 90 * MINUTE)


def test_a_job_the_scheduler_never_saw_has_no_state(store: Store) -> None:
    assert store.schedule_state("nightly") is None
    assert store.schedule_states() == {}


def test_advancing_creates_the_state(store: Store) -> None:
    store.advance_schedules({"a": T0, "b": T0 + MINUTE})

    assert store.schedule_state("a") == ScheduleState("a", T0, paused=False)
    assert store.schedule_states() == {
        "a": ScheduleState("a", T0),
        "b": ScheduleState("b", T0 + MINUTE),
    }


def test_last_slot_only_moves_forward(store: Store) -> None:
    store.advance_schedules({"a": T0 + 5 * MINUTE})
    store.advance_schedules({"a": T0})
    assert store.schedule_state("a") == ScheduleState("a", T0 + 5 * MINUTE)

    store.advance_schedules({"a": T0 + 6 * MINUTE})
    assert store.schedule_state("a") == ScheduleState("a", T0 + 6 * MINUTE)


def test_instants_in_any_zone_come_back_in_utc(store: Store) -> None:
    eastern = timezone(timedelta(hours=-5))
    store.advance_schedules({"a": T0.astimezone(eastern)})

    state = store.schedule_state("a")

    assert state is not None and state.last_slot == T0
    assert state.last_slot.tzinfo is UTC


def test_pausing_keeps_the_last_slot_and_resuming_keeps_it_too(store: Store) -> None:
    store.advance_schedules({"a": T0})

    store.set_schedule_paused("a", True)
    assert store.schedule_state("a") == ScheduleState("a", T0, paused=True)

    store.advance_schedules({"a": T0 + MINUTE})
    store.set_schedule_paused("a", False)
    assert store.schedule_state("a") == ScheduleState("a", T0 + MINUTE, paused=False)


def test_pausing_a_job_never_seen_creates_its_state(store: Store) -> None:
    store.set_schedule_paused("new", True)

    assert store.schedule_state("new") == ScheduleState("new", None, paused=True)
    store.advance_schedules({"new": T0})
    assert store.schedule_state("new") == ScheduleState("new", T0, paused=True)


def test_forgetting_clears_the_last_slot_but_keeps_pause(store: Store) -> None:
    store.advance_schedules({"a": T0, "b": T0, "c": T0})
    store.set_schedule_paused("b", True)

    store.forget_schedules(["a", "b", "unknown"])

    assert store.schedule_states() == {
        "a": ScheduleState("a", None),
        "b": ScheduleState("b", None, paused=True),
        "c": ScheduleState("c", T0),
    }
    store.advance_schedules({"a": T0 - MINUTE})  # counting starts afresh, even earlier
    assert store.schedule_state("a") == ScheduleState("a", T0 - MINUTE)


def test_skipped_slots_come_back_newest_first(store: Store) -> None:
    store.record_skips([skip("a", 0), skip("a", 2, "misfire"), skip("a", 1, "coalesced")])
    store.record_skips([skip("b", 5)])

    assert store.skipped_slots("a") == [
        skip("a", 2, "misfire"),
        skip("a", 1, "coalesced"),
        skip("a", 0),
    ]
    assert store.skipped_slots("b") == [skip("b", 5)]
    assert store.skipped_slots("nobody") == []


def test_recording_a_skip_twice_keeps_the_first_reason(store: Store) -> None:
    store.record_skips([skip("a", 0, "running")])
    store.record_skips([skip("a", 0, "paused"), skip("a", 1, "paused")])

    assert [(s.scheduled_for, s.reason) for s in store.skipped_slots("a")] == [
        (T0 + MINUTE, "paused"),
        (T0, "running"),
    ]


def test_skipped_slots_are_limited_and_filtered_by_instant(store: Store) -> None:
    store.record_skips([skip("a", minute) for minute in range(10)])

    assert [s.scheduled_for for s in store.skipped_slots("a", limit=3)] == [
        T0 + 9 * MINUTE,
        T0 + 8 * MINUTE,
        T0 + 7 * MINUTE,
    ]
    assert [s.scheduled_for for s in store.skipped_slots("a", after=T0 + 7 * MINUTE)] == [
        T0 + 9 * MINUTE,
        T0 + 8 * MINUTE,
    ]


def test_recording_nothing_and_advancing_nothing_are_no_ops(store: Store) -> None:
    store.record_skips([])
    store.advance_schedules({})
    store.forget_schedules([])

    assert store.schedule_states() == {}

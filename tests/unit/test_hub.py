"""The event hub: fan-out, resuming from the ring, and watchers that fall behind."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from jobnest.hub import EventHub, HubEvent


async def take(events: AsyncIterator[HubEvent], count: int) -> list[HubEvent]:
    return [await anext(events) for _ in range(count)]


def test_a_fresh_watcher_gets_ready_then_every_new_event() -> None:
    async def scenario() -> list[HubEvent]:
        hub = EventHub()
        hub.publish("job", {"n": 0})
        events = hub.watch()
        ready = await anext(events)
        assert (ready.kind, ready.id) == ("ready", hub.last_id)
        hub.publish("run", {"n": 1})
        hub.publish("task", {"n": 2})
        return await take(events, 2)

    got = asyncio.run(scenario())
    assert [(e.kind, e.data["n"]) for e in got] == [("run", 1), ("task", 2)]


def test_resuming_gets_exactly_the_events_after_the_last_id() -> None:
    async def scenario() -> tuple[list[HubEvent], list[HubEvent]]:
        hub = EventHub()
        published = [hub.publish("task", {"n": n}) for n in range(5)]
        events = hub.watch(published[1].id)
        missed = await take(events, 3)
        hub.publish("task", {"n": 5})
        return published, [*missed, *await take(events, 1)]

    published, got = asyncio.run(scenario())
    assert [e.data["n"] for e in got] == [2, 3, 4, 5]
    assert [e.id for e in got[:3]] == [e.id for e in published[2:]]


def test_an_id_older_than_the_ring_or_from_another_boot_gets_reset() -> None:
    async def scenario() -> list[str]:
        hub = EventHub(ring_size=2)
        first = hub.publish("task", {})
        for _ in range(3):
            hub.publish("task", {})
        kinds = []
        for last_id in (first.id, "0badb007:3", f"{hub.boot}:99", f"{hub.boot}:²", "junk"):
            reset = await anext(hub.watch(last_id))
            assert reset.id == hub.last_id
            kinds.append(reset.kind)
        return kinds

    assert asyncio.run(scenario()) == ["reset"] * 5


def test_a_watcher_that_falls_behind_is_dropped_and_can_resume() -> None:
    async def scenario() -> tuple[list[HubEvent], list[HubEvent]]:
        hub = EventHub(queue_size=2)
        slow = hub.watch()
        seen = await anext(slow)
        for n in range(4):
            hub.publish("task", {"n": n})
        rest = [event async for event in slow]  # ends: it was dropped
        resumed = await take(hub.watch(seen.id), 4)
        return rest, resumed

    rest, resumed = asyncio.run(scenario())
    assert rest == []
    assert [e.data["n"] for e in resumed] == [0, 1, 2, 3]


def test_closing_the_hub_ends_every_watch() -> None:
    async def scenario() -> list[HubEvent]:
        hub = EventHub()
        events = hub.watch()
        await anext(events)
        hub.close()
        after = [event async for event in events]
        late = [event async for event in hub.watch()]
        return after + late

    assert asyncio.run(scenario()) == []

"""ResponseCache: a body is made once per URL until it is cleared or its time is up."""

from __future__ import annotations

import pytest

from jobnest.hub import HubEvent
from jobnest.web.cache import TTL, ResponseCache


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_body_is_made_once_then_kept_per_url() -> None:
    cache = ResponseCache(clock=Clock())
    made: list[str] = []

    def make(url: str) -> bytes:
        made.append(url)
        return url.encode()

    assert cache.body("/api/runs", lambda: make("/api/runs")) == b"/api/runs"
    assert cache.body("/api/runs", lambda: make("/api/runs")) == b"/api/runs"
    assert (
        cache.body("/api/runs?limit=1", lambda: make("/api/runs?limit=1")) == b"/api/runs?limit=1"
    )
    assert made == ["/api/runs", "/api/runs?limit=1"]


def test_a_body_is_made_anew_once_its_time_is_up_or_it_was_cleared() -> None:
    clock = Clock()
    cache = ResponseCache(clock=clock)
    bodies = iter([b"first", b"second", b"third"])

    assert cache.body("/api/jobs", lambda: next(bodies)) == b"first"
    clock.now += TTL * 0.9
    assert cache.body("/api/jobs", lambda: next(bodies)) == b"first"
    clock.now += TTL * 0.2
    assert cache.body("/api/jobs", lambda: next(bodies)) == b"second"
    cache.clear()
    assert cache.body("/api/jobs", lambda: next(bodies)) == b"third"


def test_a_failed_make_keeps_nothing() -> None:
    cache = ResponseCache(clock=Clock())

    def fail() -> bytes:
        raise RuntimeError("the database is away")

    with pytest.raises(RuntimeError):
        cache.body("/api/runs/1", fail)
    assert cache.body("/api/runs/1", lambda: b"back") == b"back"


def test_a_task_event_drops_only_its_runs_page_and_any_other_event_drops_all() -> None:
    cache = ResponseCache(clock=Clock())
    urls = ["/api/runs/7", "/api/runs/7?x=1", "/api/runs/70", "/api/runs", "/api/jobs"]
    for url in urls:
        cache.body(url, lambda: b"old")

    cache.hear(HubEvent("b:1", "task", {"run_id": 7, "path": "load/stage"}))
    assert [cache.body(url, lambda: b"new") for url in urls] == [
        b"new",
        b"new",
        b"old",
        b"old",
        b"old",
    ]

    cache.hear(HubEvent("b:2", "run", {"run_id": 70, "status": "failed"}))
    assert {cache.body(url, lambda: b"newer") for url in urls} == {b"newer"}

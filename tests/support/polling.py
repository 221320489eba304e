"""Waiting for a condition with a deadline: a test polls, it never sleeps a fixed time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")

DEADLINE = 10.0  # seconds a condition may take, unless the caller gives its own
INTERVAL = 0.02  # seconds between two checks
NOT_MET = "condition not met in time"


def until(check: Callable[[], T | None], deadline: float = DEADLINE, message: str = NOT_MET) -> T:
    """Call ``check`` until it returns something true, and return that.

    Raises:
        AssertionError: with ``message``, once ``deadline`` seconds have passed without.
    """
    end = time.monotonic() + deadline
    while not (value := check()):
        assert time.monotonic() < end, message
        time.sleep(INTERVAL)
    return value


async def until_async(
    check: Callable[[], T | None], deadline: float = DEADLINE, message: str = NOT_MET
) -> T:
    """``until`` inside an event loop: the loop runs on between two checks."""
    end = time.monotonic() + deadline
    while not (value := check()):
        assert time.monotonic() < end, message
        await asyncio.sleep(INTERVAL)
    return value


async def until_awaited(
    check: Callable[[], Awaitable[T | None]], deadline: float = DEADLINE, message: str = NOT_MET
) -> T:
    """``until_async`` for a check that is itself a coroutine (one asking an API, say)."""
    end = time.monotonic() + deadline
    while not (value := await check()):
        assert time.monotonic() < end, message
        await asyncio.sleep(INTERVAL)
    return value

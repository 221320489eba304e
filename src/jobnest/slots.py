"""Slots: the limits on running tasks that every run driven by one runner shares.

A command task takes one slot of the global limit while it runs and, with ``pool: NAME``,
one slot of that pool as well. A job reference is no task at run time (it expands into its
child's tasks and two markers), so it never holds a slot, and nested jobs cannot deadlock
waiting for their parent. A task that finds no slot waits ``queued``, and ``take`` names the
limit it waits for: ``global_limit`` or ``pool:NAME`` (a run's own ``max_parallel`` is checked
by its driver: ``job_limit``). Whoever frees a slot wakes every listener, so that waiting runs
look again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Mapping

GLOBAL_LIMIT = "global_limit"
JOB_LIMIT = "job_limit"
UNKNOWN_POOL_SLOTS = 1  # a pool the config file does not define
log = logging.getLogger(__name__)


class Slots:
    """Counts running tasks against the global limit and the named pools."""

    def __init__(self, limit: int, pools: Mapping[str, int]) -> None:
        self.limit = limit
        self.pools = dict(pools)
        self.running = 0
        self.in_pool: Counter[str] = Counter()
        self._listeners: list[Callable[[], None]] = []

    def take(self, pool: str | None) -> str | None:
        """Take a slot for a task in ``pool``; return None, or the limit that refuses one."""
        if self.running >= self.limit:
            return GLOBAL_LIMIT
        if pool is not None and self.in_pool[pool] >= self._size(pool):
            return f"pool:{pool}"
        self.running += 1
        if pool is not None:
            self.in_pool[pool] += 1
        return None

    def give(self, pool: str | None) -> None:
        """Give back the slot a task took, and wake whoever waits for one."""
        self.running -= 1
        if pool is not None:
            self.in_pool[pool] -= 1
        for listener in list(self._listeners):
            listener()

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def forget(self, listener: Callable[[], None]) -> None:
        self._listeners.remove(listener)

    def _size(self, pool: str) -> int:
        if pool not in self.pools:
            log.warning("pool %r is not in the config file's [pools]: it has 1 slot", pool)
            self.pools[pool] = UNKNOWN_POOL_SLOTS
        return self.pools[pool]

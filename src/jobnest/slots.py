"""Slots: the limits on running tasks that every run driven by one runner shares.

A command task takes one slot of the global limit while it runs and, with ``pool: NAME``,
one slot of that pool as well. A job reference is no task at run time (it expands into its
child's tasks and two markers), so it never holds a slot, and nested jobs cannot deadlock
waiting for their parent. A task that finds no slot waits ``queued``, and ``take`` names the
limit it waits for: ``global_limit`` or ``pool:NAME`` (a run's own ``max_parallel`` is checked
by its driver: ``job_limit``). Whoever frees a slot wakes every listener, so that waiting runs
look again.

Slots go round the runs that want them: a run refused by a limit joins that limit's line,
and while others stand in it, a slot of that limit goes to the run at its head (which then
leaves it, and joins at the back if it wants another). Without the line, the run whose task
just ended would take the freed slot back before any other run woke up, and one big run
would hold a pool until it finished. A run that wants no slot for now (nothing waiting, or
held back by its own ``job_limit``) steps out of every line (``leave``).
"""

from __future__ import annotations

import logging
from collections import Counter, deque
from collections.abc import Callable, Hashable, Mapping
from contextlib import suppress

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
        self._lines: dict[str, deque[Hashable]] = {}  # by limit: runs refused, first first

    def take(self, pool: str | None, who: Hashable = None) -> str | None:
        """Take a slot for a task of run ``who`` in ``pool``; return None, or the limit that
        refuses one: it is full, or the runs in its line before ``who`` need what is free."""
        limits = [GLOBAL_LIMIT] if pool is None else [GLOBAL_LIMIT, f"pool:{pool}"]
        for limit in limits:
            if not self._has_room(limit, who):
                self._wait_in(limit, who)
                return limit
        self.running += 1
        if pool is not None:
            self.in_pool[pool] += 1
        self.leave(who)
        return None

    def give(self, pool: str | None) -> None:
        """Give back the slot a task took, and wake whoever waits for one."""
        self.running -= 1
        if pool is not None:
            self.in_pool[pool] -= 1
        for listener in list(self._listeners):
            listener()

    def leave(self, who: Hashable) -> None:
        """``who`` wants no slot for now: out of every line."""
        for line in self._lines.values():
            with suppress(ValueError):
                line.remove(who)

    def listen(self, listener: Callable[[], None]) -> None:
        self._listeners.append(listener)

    def forget(self, listener: Callable[[], None]) -> None:
        self._listeners.remove(listener)

    def _has_room(self, limit: str, who: Hashable) -> bool:
        """Whether a slot of ``limit`` is free for ``who`` once the runs before it in the
        line have theirs."""
        if limit == GLOBAL_LIMIT:
            free = self.limit - self.running
        else:
            name = limit.removeprefix("pool:")
            free = self._size(name) - self.in_pool[name]
        line = self._lines.get(limit, ())
        ahead = line.index(who) if who in line else len(line)
        return free > ahead

    def _wait_in(self, limit: str, who: Hashable) -> None:
        """``who`` waits for ``limit`` alone: in its line (keeping its place), out of others."""
        for other, line in self._lines.items():
            if other != limit:
                with suppress(ValueError):
                    line.remove(who)
        line = self._lines.setdefault(limit, deque())
        if who not in line:
            line.append(who)

    def _size(self, pool: str) -> int:
        if pool not in self.pools:
            log.warning("pool %r is not in the config file's [pools]: it has 1 slot", pool)
            self.pools[pool] = UNKNOWN_POOL_SLOTS
        return self.pools[pool]

"""A limit on failed logins per client address, kept in memory.

Every login attempt is counted when it is made (so that concurrent guesses count too) and
a successful one clears its address. After ``attempts`` uncleared attempts from one address
within ``window`` seconds, that address may not try again until the oldest of them is
``window`` seconds old. Time is the monotonic clock (a parameter, for tests).

Behind a reverse proxy every client has the proxy's address, so the limit becomes one limit
for everybody: still a brake on guessing, at worst a minute's wait for the real user.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable

DEFAULT_ATTEMPTS = 5
DEFAULT_WINDOW = 60.0
MAX_CLIENTS = 10_000  # addresses remembered at most; the oldest are forgotten first


class LoginLimiter:
    """Unsuccessful logins per client address in a sliding window."""

    def __init__(
        self,
        attempts: int = DEFAULT_ATTEMPTS,
        window: float = DEFAULT_WINDOW,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.attempts = attempts
        self.window = window
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}

    def retry_after(self, client: str) -> int | None:
        """Whole seconds until ``client`` may try again; None when it may try now."""
        failures = self._recent(client)
        if len(failures) < self.attempts:
            return None
        return max(1, math.ceil(failures[0] + self.window - self._clock()))

    def record(self, client: str) -> None:
        """Count a login attempt of ``client``, until ``clear`` says it succeeded."""
        failures = self._recent(client)
        failures.append(self._clock())
        self._failures[client] = failures
        if len(self._failures) > MAX_CLIENTS:
            del self._failures[next(iter(self._failures))]

    def clear(self, client: str) -> None:
        """Forget ``client``'s attempts: it logged in."""
        self._failures.pop(client, None)

    def _recent(self, client: str) -> deque[float]:
        """``client``'s failures still inside the window (the client moved to the newest end)."""
        failures = self._failures.pop(client, deque())
        horizon = self._clock() - self.window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if failures:
            self._failures[client] = failures
        return failures

"""How an attempt is stopped, wherever it runs: timeouts and cancel, as timers and signals.

- soft timeout: SIGTERM to the whole process group, then SIGKILL after the grace period;
- hard timeout: SIGKILL to the whole process group;
- ``terminate(grace)``: SIGTERM to the group, then SIGKILL after ``grace``.

Timers run on the event loop's monotonic clock. A handle mixes this in and says how a
signal reaches its group (``_signal``): ``killpg`` locally, where it also reaches the attempt's
processes that left the group (``escapees``), and a second channel over SSH.
"""

from __future__ import annotations

import asyncio
import signal

from jobnest.executors.base import AttemptSpec
from jobnest.model.run import Reason


class Stopping:
    """The timers and the stop decision of one attempt's process group."""

    def _init_stopping(self, grace: float) -> None:
        self._grace = grace  # seconds between a soft timeout's SIGTERM and its SIGKILL
        self._reason: Reason | None = None  # set when we stop the attempt
        self._kill_at: float | None = None  # loop time of the group's SIGKILL, once decided
        self._timers: list[asyncio.TimerHandle] = []

    def _arm(self, spec: AttemptSpec, started: float) -> None:
        loop = asyncio.get_running_loop()
        if spec.soft_timeout is not None:
            when = started + spec.soft_timeout
            self._timers.append(loop.call_at(when, self._stop, "soft_timeout", self._grace))
        if spec.hard_timeout is not None:
            when = started + spec.hard_timeout
            self._timers.append(loop.call_at(when, self._kill, "hard_timeout"))

    def _stop(self, reason: Reason, grace: float) -> None:
        """SIGTERM to the group now, SIGKILL after ``grace`` unless one comes sooner."""
        self._note(reason)
        self._signal(signal.SIGTERM)
        loop = asyncio.get_running_loop()
        kill_at = loop.time() + grace
        if self._kill_at is None or kill_at < self._kill_at:
            self._kill_at = kill_at
            self._timers.append(loop.call_at(kill_at, self._kill, None))

    def _kill(self, reason: Reason | None) -> None:
        if reason is not None:
            self._note(reason)
        now = asyncio.get_running_loop().time()
        self._kill_at = now if self._kill_at is None else min(self._kill_at, now)
        self._signal(signal.SIGKILL)

    def _note(self, reason: Reason) -> None:
        """Keep the first reason we stopped for; a hard timeout outranks a soft one."""
        if self._reason is None or (self._reason, reason) == ("soft_timeout", "hard_timeout"):
            self._reason = reason

    def _cancel_timers(self) -> None:
        for timer in self._timers:
            timer.cancel()

    def _signal(self, sig: signal.Signals) -> None:
        raise NotImplementedError

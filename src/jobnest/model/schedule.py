"""The cron adapter: the one module that knows cronsim.

Five-field expressions plus the ``@hourly``-style aliases, in an IANA time zone. Time is a
parameter: every function takes ``now`` instead of reading the clock. Daylight saving time
follows Debian cron, as cronsim does: on spring-forward a time that does not exist fires
once, right after the gap; on fall-back a fixed-time job fires once, on the first pass.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError

from jobnest.errors import InvalidSchedule

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}


def expand_alias(expr: str) -> str:
    """Return the five-field form of ``expr`` (aliases expanded, whitespace normalised)."""
    text = " ".join(expr.split())
    return ALIASES.get(text.lower(), text)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone called ``name``.

    Raises:
        InvalidSchedule: no such zone.
    """
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise InvalidSchedule(f"unknown time zone {name!r}") from exc


def check(expr: str) -> None:
    """Refuse an expression that cronsim cannot parse, or that is not five fields.

    Raises:
        InvalidSchedule: the message quotes the expression and says what is wrong.
    """
    text = expand_alias(expr)
    if text.startswith("@"):
        raise InvalidSchedule(f"unknown schedule alias {expr!r} (known: {', '.join(ALIASES)})")
    if len(text.split()) != 5:
        raise InvalidSchedule(
            f"schedule {expr!r} must have 5 fields (minute hour day month weekday)"
        )
    try:
        CronSim(text, datetime(2000, 1, 1, tzinfo=UTC))
    except CronSimError as exc:
        raise InvalidSchedule(f"schedule {expr!r}: {exc}") from exc


def next_after(expr: str, tz: ZoneInfo, now: datetime) -> datetime:
    """The first firing strictly after ``now`` (an aware datetime), in UTC."""
    return next(fires_after(expr, tz, now))


def fires_after(expr: str, tz: ZoneInfo, now: datetime) -> Iterator[datetime]:
    """Every firing strictly after ``now``, in UTC, in order."""
    start = now.astimezone(tz)
    for fire in CronSim(expand_alias(expr), start):
        utc = fire.astimezone(UTC)
        if utc > now:
            yield utc


def fires_between(expr: str, tz: ZoneInfo, after: datetime, until: datetime) -> Iterator[datetime]:
    """Every firing in the half-open interval ``(after, until]``, in UTC."""
    for fire in fires_after(expr, tz, after):
        if fire > until:
            return
        yield fire


def describe(expr: str) -> str:
    """The schedule in English words, e.g. "At 02:00 every day" (in the schedule's zone).

    Raises:
        InvalidSchedule: the expression does not parse.
    """
    check(expr)
    return CronSim(expand_alias(expr), datetime(2000, 1, 1, tzinfo=UTC)).explain()

"""The cron adapter says a schedule in words, for the dashboard."""

from __future__ import annotations

import pytest

from jobnest.errors import InvalidSchedule
from jobnest.model.schedule import describe


def test_describe_says_a_schedule_and_its_alias_in_words() -> None:
    assert describe("30 1 * * *") == "At 01:30 every day"
    assert describe("@hourly") == "At the start of every hour"


def test_describe_refuses_what_does_not_parse() -> None:
    with pytest.raises(InvalidSchedule, match="'61 \\* \\* \\* \\*'"):
        describe("61 * * * *")

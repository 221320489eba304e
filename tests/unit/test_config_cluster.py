"""Settings for daemons sharing a database: the lease, and the scheduler clock test hook."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from jobnest.config import ClockWarp, Settings, load_settings
from jobnest.errors import InvalidInput
from jobnest.server import SchedulerClock


def settings(tmp_path: Path, **env: str) -> Settings:
    return load_settings({"JOBNEST_HOME": str(tmp_path), **env})


def test_the_lease_defaults_to_30_seconds(tmp_path: Path) -> None:
    assert settings(tmp_path).lease_seconds == 30.0


def test_the_lease_comes_from_the_file_and_the_environment_wins(tmp_path: Path) -> None:
    (tmp_path / "config.toml").write_text("lease_seconds = 45\n")
    assert settings(tmp_path).lease_seconds == 45.0
    assert settings(tmp_path, JOBNEST_LEASE_SECONDS="7.5").lease_seconds == 7.5


@pytest.mark.parametrize("value", ["0", "-3", "soon", "nan", "100000"])
def test_a_lease_that_is_no_sensible_number_of_seconds_is_refused_by_value(
    tmp_path: Path, value: str
) -> None:
    with pytest.raises(InvalidInput, match=f"lease_seconds must be .* got '{value}'"):
        settings(tmp_path, JOBNEST_LEASE_SECONDS=value)


def test_the_scheduler_clock_is_the_wall_clock_without_the_test_hook(tmp_path: Path) -> None:
    assert settings(tmp_path).scheduler_clock is None
    before = datetime.now(UTC)
    assert before <= SchedulerClock().now() <= datetime.now(UTC)
    assert SchedulerClock().seconds(timedelta(minutes=1)) == 60.0


def test_the_test_hook_runs_the_scheduler_clock_faster_from_its_anchor(tmp_path: Path) -> None:
    anchor = datetime.now(UTC).timestamp() - 10
    warp = settings(tmp_path, JOBNEST_TEST_SCHEDULER_CLOCK=f"{anchor},60").scheduler_clock
    assert warp == ClockWarp(anchor, 60.0)
    clock = SchedulerClock(warp)
    elapsed = clock.now().timestamp() - anchor  # about 10 s of wall clock, 60 times over
    assert 600 <= elapsed < 660
    assert clock.seconds(timedelta(minutes=1)) == 1.0


@pytest.mark.parametrize("value", ["12", "12,0", "x,2", "12,-1"])
def test_a_malformed_test_clock_is_refused_by_value(tmp_path: Path, value: str) -> None:
    with pytest.raises(InvalidInput, match=f"got '{value}'"):
        settings(tmp_path, JOBNEST_TEST_SCHEDULER_CLOCK=value)

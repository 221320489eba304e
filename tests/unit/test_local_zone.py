"""The daemon's default time zone: $TZ, then the system's, then UTC."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from jobnest.config import local_zone
from jobnest.errors import InvalidInput


@pytest.fixture
def etc(tmp_path: Path) -> Path:
    """An empty stand-in for /etc."""
    path = tmp_path / "etc"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("tz", "key"),
    [
        ("Europe/Paris", "Europe/Paris"),
        (":America/New_York", "America/New_York"),
        ("/usr/share/zoneinfo/Asia/Tokyo", "Asia/Tokyo"),
        (":/usr/share/zoneinfo/Australia/Lord_Howe", "Australia/Lord_Howe"),
        ("UTC", "UTC"),
    ],
)
def test_tz_names_the_zone(tz: str, key: str, etc: Path) -> None:
    os.symlink("/usr/share/zoneinfo/Europe/Berlin", etc / "localtime")

    assert local_zone({"TZ": tz}, etc).key == key


@pytest.mark.parametrize("tz", ["Mars/Olympus", "EST+5", "/etc/passwd"])
def test_tz_that_is_no_iana_zone_is_refused_by_name(tz: str, etc: Path) -> None:
    with pytest.raises(InvalidInput, match=re.escape(f"TZ={tz!r}")):
        local_zone({"TZ": tz}, etc)


def test_without_tz_the_localtime_link_names_the_zone(etc: Path) -> None:
    os.symlink("/usr/share/zoneinfo/Europe/Berlin", etc / "localtime")
    (etc / "timezone").write_text("Europe/London\n")

    assert local_zone({}, etc).key == "Europe/Berlin"
    assert local_zone({"TZ": ""}, etc).key == "Europe/Berlin"


def test_a_relative_localtime_link_works(etc: Path) -> None:
    os.symlink("../usr/share/zoneinfo/Australia/Lord_Howe", etc / "localtime")

    assert local_zone({}, etc).key == "Australia/Lord_Howe"


def test_without_a_usable_link_etc_timezone_names_the_zone(etc: Path) -> None:
    os.symlink("/nowhere/Not/AZone", etc / "localtime")
    (etc / "timezone").write_text("Europe/London\n")

    assert local_zone({}, etc).key == "Europe/London"


def test_a_copied_localtime_file_falls_through_to_etc_timezone(etc: Path) -> None:
    (etc / "localtime").write_bytes(b"TZif")
    (etc / "timezone").write_text("America/New_York\n")

    assert local_zone({}, etc).key == "America/New_York"


def test_nothing_known_means_utc(etc: Path) -> None:
    (etc / "timezone").write_text("Not a zone\n")

    assert local_zone({}, etc).key == "UTC"
    assert local_zone({}, etc / "missing").key == "UTC"

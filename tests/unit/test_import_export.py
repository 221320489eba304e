"""Jobs as YAML (stable, loads back equal), job selection, names, and the [smtp] TOML."""

from __future__ import annotations

import tomllib
from typing import Any

import pytest
import yaml

from jobnest.errors import InvalidInput
from jobnest.importers.base import UniqueNames, clean_name
from jobnest.importers.export import dump_jobs, select_jobs
from jobnest.importers.smtp import Value, smtp_section
from jobnest.model.job import MAX_NAME, Job, parse_job

TRICKY = {
    "name": "nightly",
    "schedule": "*/5 * * * *",
    "timezone": "Europe/Berlin",
    "misfire": "skip",
    "notes": "line one\n  indented line\nlast, no break",
    "notify": {"email": ["ops@example.com"], "on": ["failure", "success"]},
    "tasks": [
        {"name": "on", "command": "yes | head -n 3", "soft_timeout": 600, "hard_timeout": 900.5},
        {"name": "multi", "command": "printf '%s' 'a\n b  \n' | cat\n", "retries": 2},
        {"name": "spaces and ünïcödé", "command": "echo 'x: y' # {not: a map}", "after": ["on"]},
        {"name": "ref", "job": "child", "after": ["multi", "on"], "host": "box"},
        {"name": "null", "command": "true", "retry_delay": 1.5, "backoff": 2},
    ],
}


def load(text: str) -> list[Job]:
    return [parse_job(raw) for raw in yaml.safe_load(text)["jobs"]]


def test_yaml_loads_back_equal_and_dumps_to_the_same_bytes() -> None:
    jobs = [parse_job(TRICKY), parse_job({"name": "child"})]
    text = dump_jobs(jobs)
    assert load(text) == jobs
    assert dump_jobs(load(text)) == text


def test_yaml_keeps_the_documented_key_order_and_writes_whole_seconds_as_integers() -> None:
    text = dump_jobs([parse_job(TRICKY)])
    keys = [line.split(":")[0].strip() for line in text.splitlines()[1:9]]
    assert keys == [
        "- name",
        "schedule",
        "timezone",
        "misfire",
        "notes",
        "line one",
        "indented line",
        "last, no break",
    ]
    assert "soft_timeout: 600\n" in text
    assert "hard_timeout: 900.5\n" in text
    assert "notes: |-\n" in text


def test_an_empty_list_of_jobs_is_still_a_jobs_document() -> None:
    assert dump_jobs([]) == "jobs: []\n"


def jobs_named(*definitions: dict[str, Any]) -> dict[str, Job]:
    return {d["name"]: parse_job(d) for d in definitions}


CATALOG = jobs_named(
    {"name": "top", "tasks": [{"name": "m", "job": "middle"}]},
    {"name": "middle", "tasks": [{"name": "b", "job": "bottom"}]},
    {"name": "bottom"},
    {"name": "alone"},
)


def test_select_takes_what_the_named_jobs_reference_however_deep() -> None:
    assert [job.name for job in select_jobs(CATALOG, ["top"])] == ["bottom", "middle", "top"]


def test_select_takes_every_job_by_name_when_none_is_named() -> None:
    assert [job.name for job in select_jobs(CATALOG, [])] == ["alone", "bottom", "middle", "top"]


def test_select_refuses_an_unknown_name_listing_the_jobs() -> None:
    with pytest.raises(
        InvalidInput, match=r"no job named 'ghost' \(jobs: alone, bottom, middle, top\)"
    ):
        select_jobs(CATALOG, ["alone", "ghost"])


# --- names ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("/usr/bin/backup.sh", "usr-bin-backup.sh"),
        ("etl/nightly", "etl-nightly"),
        ("tab\there\nand\x00there", "tab here and there"),
        ("  spaced   out  ", "spaced out"),
        ("///", "fallback"),
        ("", "fallback"),
        ("x" * 300, "x" * MAX_NAME),
    ],
)
def test_clean_name_makes_a_valid_name(text: str, name: str) -> None:
    assert clean_name(text, "fallback") == name


def test_unique_names_add_suffixes_within_the_length_limit() -> None:
    names = UniqueNames(["taken"])
    long = "y" * MAX_NAME
    claimed = [names.claim(n) for n in ("taken", "free", "free", "free", long, long)]
    assert claimed[:4] == ["taken-2", "free", "free-2", "free-3"]
    assert claimed[5] == "y" * (MAX_NAME - 2) + "-2"
    assert all(len(name) <= MAX_NAME for name in claimed)


# --- [smtp] ------------------------------------------------------------------------------------


def test_the_smtp_section_is_toml_in_key_order() -> None:
    values: dict[str, Value] = {
        "from": "jobnest@box",
        "host": "smtp.example.com",
        "port": 587,
        "starttls": True,
    }
    text = smtp_section(values, ["from dagobahd.yml"])
    assert text == (
        "# from dagobahd.yml\n"
        "[smtp]\n"
        'host = "smtp.example.com"\n'
        "port = 587\n"
        "starttls = true\n"
        'from = "jobnest@box"\n'
    )


def test_the_smtp_section_escapes_what_toml_needs_escaped() -> None:
    password = 'a"b\\c\td\x7fé😀'
    text = smtp_section({"password": password, "tls": False})
    assert tomllib.loads(text) == {"smtp": {"tls": False, "password": password}}

"""Job definitions: parsing, every refusal (naming job, task and value), round trips, hashes."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from typing import Any

import pytest
import yaml

from jobnest.errors import InvalidInput, InvalidJob, TaskCycleError
from jobnest.model.job import (
    CommandTask,
    Job,
    JobRef,
    Notify,
    TaskOptions,
    job_to_dict,
    parse_job,
    task_to_dict,
)

DESIGN_EXAMPLE = """
jobs:
  - name: warehouse-load
    tasks:
      - name: stage
        command: ./stage.sh
      - name: merge
        command: psql -f merge.sql
        after: [stage]

  - name: nightly
    schedule: "0 2 * * *"
    timezone: Europe/Berlin
    notify:
      email: [ops@example.com]
      on: [failure]
    tasks:
      - name: extract
        command: ./extract.sh > out/extract.csv
        soft_timeout: 600
        hard_timeout: 900
        retries: 2
      - name: load
        job: warehouse-load
        after: [extract]
      - name: report
        command: make report
        host: reports-box
        after: [load]
"""


def names(*parts: str) -> str:
    """A regex matching a message that contains every one of ``parts``, in any order."""
    return "(?s)" + "".join(f"(?=.*{re.escape(part)})" for part in parts)


def cmd(name: object, command: object = "true", **extra: object) -> dict[str, Any]:
    return {"name": name, "command": command, **extra}


def job(*tasks: object, **extra: object) -> dict[str, Any]:
    return {"name": "nightly", "tasks": list(tasks), **extra}


def refuse(data: object, *parts: str) -> InvalidJob:
    with pytest.raises(InvalidJob, match=names(*parts)) as info:
        parse_job(data)
    return info.value


# --- parsing -------------------------------------------------------------------------------


def test_parses_the_design_example() -> None:
    warehouse, nightly = (parse_job(raw) for raw in yaml.safe_load(DESIGN_EXAMPLE)["jobs"])

    assert warehouse.tasks == (
        CommandTask("stage", "./stage.sh"),
        CommandTask("merge", "psql -f merge.sql", ("stage",)),
    )
    assert nightly.schedule == "0 2 * * *"
    assert nightly.timezone == "Europe/Berlin"
    assert nightly.notify == Notify(("ops@example.com",), ("failure",))
    extract, load, report = nightly.tasks
    assert extract == CommandTask(
        "extract",
        "./extract.sh > out/extract.csv",
        options=TaskOptions(soft_timeout=600.0, hard_timeout=900.0, retries=2),
    )
    assert load == JobRef("load", "warehouse-load", ("extract",))
    assert report.options.host == "reports-box"
    assert nightly.references == (load,)
    assert nightly.by_name["report"] is report


def test_a_job_without_tasks_is_valid() -> None:
    assert parse_job({"name": "empty"}).tasks == ()


def test_after_accepts_a_single_name_and_drops_repeats() -> None:
    parsed = parse_job(job(cmd("a"), cmd("b", after="a"), cmd("c", after=["a", "b", "a"])))

    assert parsed.by_name["b"].after == ("a",)
    assert parsed.by_name["c"].after == ("a", "b")


def test_after_may_name_a_task_defined_further_down() -> None:
    parsed = parse_job(job(cmd("merge", after=["stage"]), cmd("stage")))

    assert parsed.by_name["merge"].after == ("stage",)


def test_names_may_hold_spaces_and_unicode() -> None:
    parsed = parse_job({"name": "nächtlich load", "tasks": [cmd("Ünïcode ✓ task")]})

    assert parsed.tasks[0].name == "Ünïcode ✓ task"


def test_name_of_128_characters_is_accepted() -> None:
    parsed = parse_job({"name": "j" * 128, "tasks": [cmd("t" * 128)]})

    assert len(parsed.name) == len(parsed.tasks[0].name) == 128


def test_schedule_aliases_and_time_zones_are_accepted() -> None:
    parsed = parse_job(job(cmd("a"), schedule="@daily", timezone="America/New_York"))

    assert (parsed.schedule, parsed.timezone) == ("@daily", "America/New_York")


def test_invalid_job_is_invalid_input() -> None:
    error = refuse(job(cmd("a", after=["nope"])), "nope")

    assert isinstance(error, InvalidInput)


# --- the graph of one job -------------------------------------------------------------------


def test_unknown_after_target_is_refused() -> None:
    error = refuse(
        job(cmd("stage"), cmd("merge", after=["stagee"])),
        "job 'nightly'",
        "task 'merge'",
        "'stagee'",
        "after",
    )

    assert (error.job, error.task) == ("nightly", "merge")


def test_duplicate_task_name_is_refused() -> None:
    refuse(job(cmd("stage"), cmd("stage", "other")), "job 'nightly'", "task 'stage'", "duplicate")


@pytest.mark.parametrize(
    ("extra", "which"),
    [({"job": "warehouse-load"}, "both"), ({"command": None}, "neither")],
)
def test_task_needs_exactly_one_of_command_or_job(extra: dict[str, Any], which: str) -> None:
    refuse(job(cmd("load", **extra)), "job 'nightly'", "task 'load'", which, "'command'", "'job'")


def test_task_with_neither_key_at_all_is_refused() -> None:
    refuse(job({"name": "load"}), "job 'nightly'", "task 'load'", "neither")


def test_task_cycle_is_refused_with_the_cycle() -> None:
    with pytest.raises(TaskCycleError, match=names("job 'nightly'", "cycle", " → ")) as info:
        parse_job(job(cmd("a", after=["c"]), cmd("b", after=["a"]), cmd("c", after=["b"])))

    cycle = info.value.cycle
    assert cycle[0] == cycle[-1]
    assert set(cycle) == {"a", "b", "c"}
    assert " → ".join(cycle) in str(info.value)
    assert isinstance(info.value, InvalidJob)
    assert info.value.job == "nightly"


def test_task_cycle_follows_the_after_lists() -> None:
    after = {"a": ["c"], "b": ["a"], "c": ["b"]}
    with pytest.raises(TaskCycleError) as info:
        parse_job(job(*(cmd(name, after=before) for name, before in after.items())))

    cycle = info.value.cycle
    assert all(second in after[first] for first, second in pairwise(cycle))


def test_task_that_waits_for_itself_is_a_cycle() -> None:
    with pytest.raises(TaskCycleError, match=names("'nightly'", "a → a")) as info:
        parse_job(job(cmd("a", after=["a"])))

    assert info.value.cycle == ["a", "a"]


def test_cycle_among_some_tasks_is_found_beside_valid_ones() -> None:
    with pytest.raises(TaskCycleError) as info:
        parse_job(job(cmd("ok"), cmd("x", after=["ok", "y"]), cmd("y", after=["x"])))

    assert set(info.value.cycle) == {"x", "y"}


def test_job_built_directly_is_validated_too() -> None:
    with pytest.raises(InvalidJob, match=names("'direct'", "'a'", "'missing'")):
        Job("direct", (CommandTask("a", "true", ("missing",)),))
    with pytest.raises(TaskCycleError):
        Job("direct", (CommandTask("a", "true", ("b",)), CommandTask("b", "true", ("a",))))


# --- names ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", ["a/b", "/", "load/"])
def test_job_name_with_slash_is_refused(bad: str) -> None:
    refuse(job(cmd("a"), name=bad), repr(bad), "'/'")


@pytest.mark.parametrize("bad", ["a/b", "/", "load/"])
def test_task_name_with_slash_is_refused(bad: str) -> None:
    refuse(job(cmd("ok"), cmd(bad)), "job 'nightly'", repr(bad), "'/'", "task #2")


@pytest.mark.parametrize("bad", ["a\x00b", "line\nbreak", "del\x7f", "\ttab", "cr\r", "\x85"])
def test_job_name_with_control_character_is_refused(bad: str) -> None:
    refuse(job(cmd("a"), name=bad), repr(bad), "control character")


@pytest.mark.parametrize("bad", ["a\x00b", "line\nbreak", "del\x7f"])
def test_task_name_with_control_character_is_refused(bad: str) -> None:
    refuse(job(cmd(bad)), "job 'nightly'", repr(bad), "control character")


@pytest.mark.parametrize(("bad", "length"), [("", "0"), ("x" * 129, "129")])
def test_job_name_length_is_1_to_128(bad: str, length: str) -> None:
    refuse(job(cmd("a"), name=bad), "1–128", f"got {length}", repr(bad[:40]))


@pytest.mark.parametrize(("bad", "length"), [("", "0"), ("x" * 129, "129")])
def test_task_name_length_is_1_to_128(bad: str, length: str) -> None:
    refuse(job(cmd(bad)), "job 'nightly'", "1–128", f"got {length}", repr(bad[:40]))


@pytest.mark.parametrize("bad", [None, 5, ["a"], True])
def test_name_must_be_a_string(bad: object) -> None:
    refuse(job(cmd("a"), name=bad), "must be a string", repr(bad))
    refuse(job({"name": bad, "command": "true"}), "job 'nightly'", "must be a string", repr(bad))


def test_job_without_name_is_refused() -> None:
    refuse({"tasks": []}, "name", "None")


# --- fields --------------------------------------------------------------------------------


def test_unknown_job_field_is_refused() -> None:
    refuse(job(cmd("a"), schedul="0 2 * * *"), "job 'nightly'", "unknown field", "'schedul'")


def test_unknown_task_field_is_refused() -> None:
    refuse(job(cmd("a", timeout=5)), "job 'nightly'", "task 'a'", "unknown field", "'timeout'")


@pytest.mark.parametrize("bad", [None, "a job", 5, ["name", "x"]])
def test_job_must_be_a_mapping(bad: object) -> None:
    refuse(bad, "mapping")


@pytest.mark.parametrize("bad", ["stage", 5, None, ["stage"]])
def test_task_must_be_a_mapping(bad: object) -> None:
    refuse(job(cmd("a"), bad), "job 'nightly'", "task #2", "mapping")


def test_tasks_must_be_a_list() -> None:
    refuse(job(tasks={"a": {"command": "true"}}), "job 'nightly'", "'tasks'", "list", "dict")


@pytest.mark.parametrize("bad", ["", "   ", 5, ["ls"]])
def test_command_must_be_a_non_empty_string(bad: object) -> None:
    refuse(job(cmd("a", bad)), "job 'nightly'", "task 'a'", "'command'", repr(bad))


def test_command_with_nul_is_refused() -> None:
    refuse(job(cmd("a", "echo \x00")), "job 'nightly'", "task 'a'", "NUL")


def test_job_reference_must_be_a_name() -> None:
    refuse(job({"name": "load", "job": 5}), "job 'nightly'", "task 'load'", "'job'", "5")


@pytest.mark.parametrize("bad", [5, [1], {"a": 1}, ["a", None]])
def test_after_must_be_a_list_of_names(bad: object) -> None:
    refuse(job(cmd("a"), cmd("b", after=bad)), "job 'nightly'", "task 'b'", "'after'", repr(bad))


@pytest.mark.parametrize("key", ["schedule", "timezone", "workdir", "notes"])
def test_job_text_fields_must_be_strings(key: str) -> None:
    refuse(job(cmd("a"), **{key: 5}), "job 'nightly'", repr(key), "got 5")


def test_misfire_must_be_a_known_policy() -> None:
    refuse(job(cmd("a"), misfire="always"), "job 'nightly'", "misfire", "'always'")
    assert parse_job(job(cmd("a"), misfire="run_all")).misfire == "run_all"


# --- timeouts, retries, host ---------------------------------------------------------------


@pytest.mark.parametrize("key", ["soft_timeout", "hard_timeout"])
@pytest.mark.parametrize("bad", [-1, 0, 0.0, "600", True, False, [600], float("nan"), float("inf")])
def test_bad_timeout_is_refused(key: str, bad: object) -> None:
    refuse(job(cmd("a", **{key: bad})), "job 'nightly'", "task 'a'", repr(key), repr(bad))


def test_hard_timeout_shorter_than_soft_is_refused() -> None:
    refuse(
        job(cmd("a", soft_timeout=600, hard_timeout=300)),
        "job 'nightly'",
        "task 'a'",
        "hard_timeout (300)",
        "soft_timeout (600)",
    )


def test_equal_timeouts_and_fractions_are_accepted() -> None:
    options = parse_job(job(cmd("a", soft_timeout=0.5, hard_timeout=0.5))).tasks[0].options

    assert (options.soft_timeout, options.hard_timeout) == (0.5, 0.5)


@pytest.mark.parametrize("bad", [-1, 101, 1.5, 2.0, True, "2", None])
def test_bad_retries_are_refused(bad: object) -> None:
    refuse(job(cmd("a", retries=bad)), "job 'nightly'", "task 'a'", "'retries'", repr(bad))


def test_retries_up_to_100_are_accepted() -> None:
    assert parse_job(job(cmd("a", retries=100))).tasks[0].options.retries == 100


@pytest.mark.parametrize("bad", [-5, "10", True])
def test_bad_retry_delay_is_refused(bad: object) -> None:
    refuse(job(cmd("a", retry_delay=bad)), "job 'nightly'", "task 'a'", "'retry_delay'", repr(bad))


@pytest.mark.parametrize("bad", [0, 0.5, -2, "2"])
def test_backoff_below_one_is_refused(bad: object) -> None:
    refuse(job(cmd("a", backoff=bad)), "job 'nightly'", "task 'a'", "'backoff'", repr(bad))


def test_retry_delay_grows_by_backoff() -> None:
    options = parse_job(job(cmd("a", retries=3, retry_delay=10, backoff=2))).tasks[0].options

    assert [options.delay_before(n) for n in (2, 3, 4)] == [10, 20, 40]
    assert TaskOptions().delay_before(2) == 0


@pytest.mark.parametrize("bad", ["", "  ", 5])
def test_bad_host_is_refused(bad: object) -> None:
    refuse(job(cmd("a", host=bad)), "job 'nightly'", "task 'a'", "'host'", repr(bad))


# --- schedule, time zone, notify -----------------------------------------------------------


@pytest.mark.parametrize("bad", ["0 2 * *", "0 2 * * * *", "61 * * * *", "@reboot", "daily", ""])
def test_bad_cron_expression_is_refused_at_parse(bad: str) -> None:
    refuse(job(cmd("a"), schedule=bad), "job 'nightly'", repr(bad))


@pytest.mark.parametrize("bad", ["Mars/Olympus", "", "../etc/passwd", "America"])
def test_bad_time_zone_is_refused_at_parse(bad: str) -> None:
    refuse(job(cmd("a"), timezone=bad), "job 'nightly'", "time zone", repr(bad))


@pytest.mark.parametrize(
    ("notify", "parts"),
    [
        ("ops@example.com", ["'notify'", "mapping", "str"]),
        ({"email": "ops"}, ["'notify.email'", "'ops'"]),
        ({"email": [5]}, ["'notify.email'", "[5]"]),
        ({"email": {"to": "a@b"}}, ["'notify.email'", "'to'"]),
        ({"email": ["a@b\r\nBcc: x@y"]}, ["'notify.email'", "line breaks"]),
        ({"on": ["sometimes"]}, ["'notify.on'", "'sometimes'"]),
        ({"on": "failure, success"}, ["'notify.on'", "'failure, success'"]),
        ({"on": [{"when": "failure"}]}, ["'notify.on'", "'when'"]),
        ({"on": 5}, ["'notify.on'", "5"]),
        ({"emails": ["ops@example.com"]}, ["unknown field", "'emails'"]),
    ],
)
def test_bad_notify_is_refused(notify: object, parts: list[str]) -> None:
    refuse(job(cmd("a"), notify=notify), "job 'nightly'", *parts)


def test_notify_on_written_in_yaml_is_honoured() -> None:
    # YAML 1.1 (PyYAML) reads the bare key `on` as the boolean True
    data = yaml.safe_load("name: j\nnotify:\n  email: [ops@example.com]\n  on: [success]\n")

    assert True in data["notify"]
    assert parse_job(data).notify == Notify(("ops@example.com",), ("success",))


def test_notify_defaults_to_failure_and_accepts_single_values() -> None:
    notify = parse_job(job(cmd("a"), notify={"email": "ops@example.com"})).notify

    assert notify == Notify(("ops@example.com",), ("failure",))
    both = parse_job(job(cmd("a"), notify={"on": ["failure", "success"]})).notify
    assert both is not None and both.on == ("failure", "success")


# --- back to plain data, and the content hash ----------------------------------------------


def full_job() -> dict[str, Any]:
    return {
        "name": "nightly",
        "schedule": "0 2 * * *",
        "timezone": "Europe/Berlin",
        "workdir": "jobs/nightly",
        "misfire": "skip",
        "notes": "the big one",
        "notify": {"email": ["ops@example.com", "me@example.com"], "on": ["failure", "success"]},
        "tasks": [
            cmd("extract", "./extract.sh", soft_timeout=600, hard_timeout=900, retries=2),
            {"name": "load", "job": "warehouse-load", "after": ["extract"], "host": "box"},
            cmd("report", "make report", host="reports-box", after=["load", "extract"]),
            cmd("slow", "sleep 1", retries=3, retry_delay=1.5, backoff=2),
        ],
    }


def test_job_to_dict_round_trips() -> None:
    parsed = parse_job(full_job())

    assert parse_job(job_to_dict(parsed)) == parsed
    assert parse_job(json.loads(json.dumps(job_to_dict(parsed)))) == parsed


def test_job_to_dict_round_trips_a_minimal_job() -> None:
    parsed = parse_job({"name": "tiny", "tasks": [cmd("a")]})

    assert job_to_dict(parsed) == {"name": "tiny", "tasks": [{"name": "a", "command": "true"}]}
    assert parse_job(job_to_dict(parsed)) == parsed


def test_job_to_dict_round_trips_the_design_example() -> None:
    for raw in yaml.safe_load(DESIGN_EXAMPLE)["jobs"]:
        parsed = parse_job(raw)
        assert parse_job(job_to_dict(parsed)) == parsed


def test_content_hash_ignores_key_order() -> None:
    data = full_job()
    reordered = {key: data[key] for key in reversed(list(data))}
    reordered["tasks"] = [{k: t[k] for k in reversed(list(t))} for t in data["tasks"]]
    reordered["notify"] = {"on": data["notify"]["on"], "email": data["notify"]["email"]}

    assert list(reordered) != list(data)
    assert parse_job(reordered).content_hash == parse_job(data).content_hash
    assert re.fullmatch("[0-9a-f]{64}", parse_job(data).content_hash)


def test_content_hash_is_stable_across_parses() -> None:
    assert parse_job(full_job()).content_hash == parse_job(full_job()).content_hash


def test_content_hash_changes_when_a_command_changes() -> None:
    changed = full_job()
    changed["tasks"][0]["command"] = "./extract.sh --full"

    assert parse_job(changed).content_hash != parse_job(full_job()).content_hash


@pytest.mark.parametrize(
    ("key", "value"),
    [("schedule", "0 3 * * *"), ("timezone", "UTC"), ("notes", ""), ("workdir", "elsewhere")],
)
def test_content_hash_changes_with_job_settings(key: str, value: str) -> None:
    changed = full_job()
    changed[key] = value

    assert parse_job(changed).content_hash != parse_job(full_job()).content_hash


def test_content_hash_changes_with_task_options_and_order() -> None:
    base = parse_job(full_job()).content_hash
    longer = full_job()
    longer["tasks"][0]["retries"] = 3
    swapped = full_job()
    swapped["tasks"][0], swapped["tasks"][3] = swapped["tasks"][3], swapped["tasks"][0]

    assert parse_job(longer).content_hash != base
    assert parse_job(swapped).content_hash != base


def test_tasks_may_wait_for_tasks_listed_further_down() -> None:
    parsed = parse_job(
        job(cmd("last", after=["middle"]), cmd("middle", after=["first"]), cmd("first"))
    )

    assert [task.after for task in parsed.tasks] == [("middle",), ("first",), ()]


def test_a_task_without_options_shares_the_default_options() -> None:
    parsed = parse_job(job(cmd("plain"), cmd("tuned", retries=0)))

    assert parsed.tasks[0].options == parsed.tasks[1].options == TaskOptions()
    assert task_to_dict(parsed.tasks[1]) == {"name": "tuned", "command": "true"}

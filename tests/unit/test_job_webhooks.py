"""Webhooks in a job's ``notify:``: parsing, refusals naming the value, round trips."""

from __future__ import annotations

from typing import Any

import pytest

from jobnest.errors import InvalidJob
from jobnest.model.job import Notify, Webhook, job_to_dict, parse_job


def job(notify: object) -> dict[str, Any]:
    return {"name": "nightly", "notify": notify, "tasks": [{"name": "a", "command": "true"}]}


def test_webhooks_are_parsed_with_and_without_a_secret() -> None:
    parsed = parse_job(
        job(
            {
                "on": ["failure", "success"],
                "webhooks": [
                    {"url": "https://hooks.example.com/jobnest", "secret": "s3cret"},
                    "http://127.0.0.1:9000/hook?team=ops",
                ],
            }
        )
    )

    assert parsed.notify == Notify(
        (),
        ("failure", "success"),
        (
            Webhook("https://hooks.example.com/jobnest", "s3cret"),
            Webhook("http://127.0.0.1:9000/hook?team=ops"),
        ),
    )


def test_webhooks_round_trip_and_a_secret_never_shows_in_repr() -> None:
    definition = job(
        {"email": ["ops@example.com"], "webhooks": [{"url": "https://h.example/x", "secret": "k"}]}
    )
    parsed = parse_job(definition)

    assert parse_job(job_to_dict(parsed)) == parsed
    assert job_to_dict(parsed)["notify"]["webhooks"] == [
        {"url": "https://h.example/x", "secret": "k"}
    ]
    assert "'k'" not in repr(parsed.notify)


def test_a_job_without_webhooks_keeps_its_definition_and_hash() -> None:
    parsed = parse_job(job({"email": ["ops@example.com"]}))

    assert job_to_dict(parsed)["notify"] == {"email": ["ops@example.com"], "on": ["failure"]}
    assert parsed.content_hash == parse_job(job_to_dict(parsed)).content_hash


@pytest.mark.parametrize(
    ("webhooks", "part"),
    [
        ("https://one.example", "must be a list"),
        ([5], "got int"),
        ([{"url": "ftp://files.example/x"}], "'ftp://files.example/x' must start with http"),
        ([{"url": "https:///no-host"}], "'https:///no-host' must start with http"),
        ([{"url": "example.com/hook"}], "'example.com/hook' must start with http"),
        ([{"url": "https://a.example/x\r\nHost: evil"}], "line break"),
        ([{"url": "https://a.example/x y"}], "space"),
        ([{"url": "https://a.example:99999/"}], "does not parse"),
        ([{"url": ""}], "1–2048 characters"),
        ([{"url": "https://a.example/" + "x" * 2048}], "1–2048 characters"),
        ([{"url": "https://a.example/", "secret": ""}], "'secret' must be a non-empty string"),
        ([{"url": "https://a.example/", "secret": 42}], "'secret' must be a non-empty string"),
        ([{"url": "https://a.example/", "token": "t"}], "unknown field 'token'"),
        ([{"secret": "s"}], "'url' must be text"),
        (["https://a.example/", {"url": "https://a.example/"}], "lists 'https://a.example/' twice"),
    ],
)
def test_bad_webhooks_are_refused_naming_the_job_and_value(webhooks: object, part: str) -> None:
    with pytest.raises(InvalidJob) as caught:
        parse_job(job({"webhooks": webhooks}))

    assert "job 'nightly'" in str(caught.value)
    assert part in str(caught.value)

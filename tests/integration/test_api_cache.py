"""The busiest reads are kept between changes: this daemon's changes show at once, anyone
else's (another daemon, the CLI) within the cache's TTL."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from jobnest.config import Settings
from jobnest.daemon import Daemon
from jobnest.model.job import job_to_dict, parse_job
from jobnest.store.sql import SQLStore
from jobnest.web import create_app
from jobnest.web.cache import TTL

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(settings: Settings, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    store = SQLStore.open(settings.database_url)
    daemon = Daemon(store, settings, workdir=str(tmp_path), zone=ZoneInfo("UTC"))
    transport = httpx.ASGITransport(app=create_app(daemon))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://jobnest") as client:
            yield client
    finally:
        await daemon.close()
        store.close()


def job(name: str, command: str = "true") -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": "only", "command": command}]}


async def names(client: httpx.AsyncClient) -> list[str]:
    response = await client.get("/api/jobs")
    assert response.status_code == 200
    return [each["name"] for each in response.json()["jobs"]]


async def test_a_change_through_this_daemon_shows_at_once(client: httpx.AsyncClient) -> None:
    assert await names(client) == []
    assert (await client.put("/api/jobs/nightly", json=job("nightly"))).status_code == 201
    assert await names(client) == ["nightly"]

    started = (await client.post("/api/jobs/nightly/runs")).json()
    runs = (await client.get("/api/runs")).json()["runs"]
    assert [run["id"] for run in runs] == [started["id"]]


async def test_a_change_made_elsewhere_shows_within_the_ttl(
    client: httpx.AsyncClient, settings: Settings
) -> None:
    assert await names(client) == []
    other = SQLStore.open(settings.database_url)  # another daemon, or the CLI
    try:
        saved = parse_job(job("elsewhere"))
        now = datetime.now(UTC)
        other.put_job(saved.name, job_to_dict(saved), saved.content_hash, now=now)
    finally:
        other.close()
    deadline = time.monotonic() + TTL + 5
    while await names(client) == []:
        assert time.monotonic() < deadline, "a job saved elsewhere never showed"
        await asyncio.sleep(0.05)
    assert await names(client) == ["elsewhere"]


async def test_a_job_s_layout_follows_its_edits_at_once(client: httpx.AsyncClient) -> None:
    async def boxes() -> list[str]:
        response = await client.get("/api/jobs/nightly/layout")
        assert response.status_code == 200
        return sorted(box["id"] for box in response.json()["boxes"])

    assert (await client.put("/api/jobs/nightly", json=job("nightly"))).status_code == 201
    assert await boxes() == ["only"]
    grown = job("nightly")
    grown["tasks"].append({"name": "then", "command": "true", "after": ["only"]})
    assert (await client.put("/api/jobs/nightly", json=grown)).status_code == 200
    assert await boxes() == ["only", "then"]

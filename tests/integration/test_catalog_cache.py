"""The catalog parses a definition once, yet always answers with what the database holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from jobnest.catalog import Catalog
from jobnest.errors import NotFound
from jobnest.model.job import job_to_dict, parse_job
from jobnest.store.sql import SQLStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SQLStore]:
    store = SQLStore.open(f"sqlite:///{tmp_path / 'jobnest.db'}")
    yield store
    store.close()


def definition(name: str, command: str) -> dict[str, Any]:
    return {"name": name, "tasks": [{"name": "only", "command": command}]}


def save_elsewhere(store: SQLStore, data: dict[str, Any]) -> None:
    """What another daemon or the CLI does: write the job straight into the database."""
    job = parse_job(data)
    store.put_job(job.name, job_to_dict(job), job.content_hash, now=T0)


def command_of(catalog: Catalog, name: str) -> str:
    task = catalog.get(name).tasks[0]
    return getattr(task, "command", "")


def test_an_unchanged_job_is_the_same_parsed_object(store: SQLStore) -> None:
    catalog = Catalog(store, lambda: T0)
    catalog.put(definition("nightly", "echo one"))

    assert catalog.jobs()["nightly"] is catalog.jobs()["nightly"]


def test_changes_made_elsewhere_are_seen_even_back_to_an_earlier_content(store: SQLStore) -> None:
    catalog = Catalog(store, lambda: T0)
    catalog.put(definition("nightly", "echo one"))
    assert command_of(catalog, "nightly") == "echo one"

    save_elsewhere(store, definition("nightly", "echo two"))
    assert command_of(catalog, "nightly") == "echo two"
    save_elsewhere(store, definition("nightly", "echo one"))
    assert command_of(catalog, "nightly") == "echo one"


def test_jobs_added_and_deleted_elsewhere_come_and_go_in_name_order(store: SQLStore) -> None:
    catalog = Catalog(store, lambda: T0)
    catalog.put(definition("zeta", "true"))
    save_elsewhere(store, definition("alpha", "true"))
    assert list(catalog.jobs()) == ["alpha", "zeta"]

    store.delete_job("zeta")
    assert list(catalog.jobs()) == ["alpha"]
    with pytest.raises(NotFound, match="zeta"):
        catalog.get("zeta")

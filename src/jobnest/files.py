"""Job files: read YAML or JSON files and folders of them into a checked set of jobs.

A file holds one job (a mapping with ``name``) or several (a mapping with ``jobs:``); a
folder means every ``*.yml``, ``*.yaml`` and ``*.json`` file in it. Every error names the
file it comes from.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from jobnest.errors import InvalidInput, InvalidJob
from jobnest.model.catalog import check_catalog
from jobnest.model.job import Job, parse_job

SUFFIXES = (".yml", ".yaml", ".json")


def load_jobs(paths: Sequence[str | Path]) -> dict[str, Job]:
    """Every job in ``paths``, checked as a whole (references resolve, no cycles).

    Raises:
        InvalidInput: the message names the file, the job, the task and the reason.
    """
    jobs: dict[str, Job] = {}
    origin: dict[str, Path] = {}
    for file in _files(paths):
        for job in read_file(file):
            if job.name in jobs:
                raise InvalidInput(
                    f"{file}: job {job.name!r} is also defined in {origin[job.name]}; "
                    "job names are unique"
                )
            jobs[job.name], origin[job.name] = job, file
    try:
        check_catalog(jobs)
    except InvalidJob as exc:
        where = origin.get(exc.job or "")
        raise InvalidInput(f"{where}: {exc}") from None
    return jobs


def read_file(file: Path) -> list[Job]:
    """The jobs of one file, each checked on its own, ``workdir`` made absolute."""
    data = _decode(file)
    try:
        return [_resolve_workdir(parse_job(raw), file) for raw in _job_mappings(data)]
    except InvalidInput as exc:
        raise InvalidInput(f"{file}: {exc}") from None


def _files(paths: Sequence[str | Path]) -> Iterable[Path]:
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            yield from sorted(p for p in path.iterdir() if p.suffix in SUFFIXES and p.is_file())
        elif path.is_file():
            yield path
        else:
            raise InvalidInput(f"no such file or folder: {str(raw)!r}")


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2's booleans: only ``true`` and ``false``.

    YAML 1.1 also reads ``yes``, ``no``, ``on``, ``off``, ``y`` and ``n`` as booleans, which
    turned a task named ``no`` into ``False`` and ``notify: {on: [failure]}`` into a key
    ``True``. No field of a job file is a boolean written any other way.
    """


_Loader.yaml_implicit_resolvers = {
    first: [(tag, pattern) for tag, pattern in resolvers if tag != "tag:yaml.org,2002:bool"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:bool", re.compile("^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF")
)


def _decode(file: Path) -> Any:
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(f"{file}: not UTF-8 text (byte {exc.start})") from None
    except OSError as exc:
        raise InvalidInput(f"{file}: cannot read: {exc.strerror}") from None
    try:
        return json.loads(text) if file.suffix == ".json" else yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader
    except json.JSONDecodeError as exc:
        raise InvalidInput(f"{file}:{exc.lineno}: invalid JSON: {exc.msg}") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f":{mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{file}{line}: invalid YAML: {getattr(exc, 'problem', exc)}") from None


def _job_mappings(data: Any) -> list[Any]:
    if isinstance(data, dict) and "jobs" in data and "name" not in data:
        jobs = data["jobs"]
        if not isinstance(jobs, list):
            raise InvalidInput(f"'jobs' must be a list of jobs, got {type(jobs).__name__}")
        return jobs
    if isinstance(data, dict):
        return [data]
    if data is None:
        return []
    raise InvalidInput(
        f"expected a job (a mapping with 'name') or 'jobs:', got {type(data).__name__}"
    )


def _resolve_workdir(job: Job, file: Path) -> Job:
    if job.workdir is None:
        return job
    return dataclasses.replace(job, workdir=str((file.parent / job.workdir).resolve()))

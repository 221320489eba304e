"""Jobs as code: YAML that ``jobnest run``, ``validate`` and ``serve --jobs`` read back equal.

The text is stable, so export → load → export gives the same bytes: one ``jobs:`` list in
the order given, each job's keys in ``job_to_dict``'s order (name, schedule, timezone,
workdir, misfire, notes, notify, tasks; a task's name, command or job, after, options),
defaults left out, whole seconds written as integers, text with line breaks as literal
blocks, and no line ever folded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import yaml

from jobnest.errors import InvalidInput
from jobnest.model.job import Job, job_to_dict


def dump_jobs(jobs: Iterable[Job]) -> str:
    """The jobs as one YAML document with a ``jobs:`` list, in the order given."""
    data = {"jobs": [_plain(job_to_dict(job)) for job in jobs]}
    return yaml.dump(
        data,
        Dumper=_JobsDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
    )


def select_jobs(jobs: Mapping[str, Job], names: Sequence[str]) -> list[Job]:
    """The jobs called ``names`` and every job they reference, however deep, by name.

    With no names, every job. Whatever a selected job references comes along, so the
    result always loads on its own.

    Raises:
        InvalidInput: a name that is not a job; the message lists the jobs there are.
    """
    unknown = [name for name in names if name not in jobs]
    if unknown:
        known = ", ".join(sorted(jobs)) or "none"
        raise InvalidInput(f"no job named {unknown[0]!r} (jobs: {known})")
    chosen: set[str] = set()
    stack = list(names or jobs)
    while stack:
        name = stack.pop()
        if name not in chosen:
            chosen.add(name)
            stack.extend(ref.job for ref in jobs[name].references)
    return [jobs[name] for name in sorted(chosen)]


def _plain(value: Any) -> Any:
    """``value`` with whole-number floats as ints (``600`` rather than ``600.0``)."""
    if isinstance(value, dict):
        return {key: _plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_plain(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


class _JobsDumper(yaml.SafeDumper):
    """Lists indented under their key, and multi-line text as ``|`` literal blocks."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        super().increase_indent(flow, False)


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_JobsDumper.add_representer(str, _represent_str)

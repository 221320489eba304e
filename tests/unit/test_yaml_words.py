"""Job files read YAML 1.2's booleans: ``no``, ``on``, ``yes`` and ``off`` stay words."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobnest.errors import InvalidInput
from jobnest.files import load_jobs
from jobnest.model.job import CommandTask

FILE = """
jobs:
  - name: checks
    notify:
      email: [ops@example.com]
      on: [failure, success]
    tasks:
      - name: no
        command: echo no
      - name: on
        command: echo on
        after: [no]
      - name: yes
        command: echo y
        after: [on, off]
      - name: off
        command: echo off
"""


def test_words_that_yaml_1_1_reads_as_booleans_are_names(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yml"
    path.write_text(FILE)

    job = load_jobs([path])["checks"]

    assert [task.name for task in job.tasks] == ["no", "on", "yes", "off"]
    assert [task.after for task in job.tasks] == [(), ("no",), ("on", "off"), ()]
    assert isinstance(job.tasks[0], CommandTask) and job.tasks[0].command == "echo no"
    assert job.notify is not None and job.notify.on == ("failure", "success")


def test_true_and_false_are_still_booleans(tmp_path: Path) -> None:
    path = tmp_path / "jobs.yml"
    path.write_text("jobs:\n  - name: t\n    tasks:\n      - name: true\n        command: x\n")

    with pytest.raises(InvalidInput, match="True"):  # a name must be text: refused by value
        load_jobs([path])

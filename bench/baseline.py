"""The baseline: the practical limit of a Python orchestrator, in the standard library only.

A ``graphlib.TopologicalSorter`` hands out the ready tasks, each runs as
``subprocess.Popen(command, shell=True)`` (the same ``/bin/sh -c`` jobnest uses), at most
``parallel`` at once, and ``os.wait()`` reaps whichever child ends first. Nothing is
persisted; output goes to ``/dev/null``, or, with ``output``, to one file per task (for the
workloads whose point is keeping the output). A failed task blocks what depends on it.

It imports nothing but the standard library, so that it can also run as a script in a
fresh interpreter (``python -I bench/baseline.py GRAPH.json``) to compare with the
``jobnest`` command line process for process.
"""

from __future__ import annotations

import argparse
import graphlib
import json
import os
import subprocess
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any


@dataclass(frozen=True)
class Graph:
    """A DAG of shell commands: task name -> command, and task name -> its predecessors."""

    commands: Mapping[str, str]
    after: Mapping[str, Sequence[str]]

    def to_json(self) -> dict[str, Any]:
        return {
            "commands": dict(self.commands),
            "after": {k: list(v) for k, v in self.after.items()},
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Graph:
        return cls(dict(data["commands"]), {k: list(v) for k, v in data["after"].items()})


def run_graph(
    graph: Graph, *, parallel: int, workdir: Path, output: Path | None = None
) -> dict[str, int]:
    """Run every task whose predecessors succeeded; return each started task's exit status."""
    sorter = graphlib.TopologicalSorter(graph.after)
    sorter.prepare()
    waiting: deque[str] = deque()
    running: dict[int, tuple[str, subprocess.Popen[bytes]]] = {}
    statuses: dict[str, int] = {}
    while True:
        waiting.extend(sorter.get_ready())
        while waiting and len(running) < parallel:
            name = waiting.popleft()
            process = _start(graph.commands[name], workdir, output, name)
            running[process.pid] = (name, process)
        if not running:
            return statuses
        name, status = _reap(running)
        statuses[name] = status
        if status == 0:
            sorter.done(name)


def _start(command: str, workdir: Path, output: Path | None, name: str) -> subprocess.Popen[bytes]:
    with ExitStack() as files:
        out: IO[bytes] | int = subprocess.DEVNULL
        err: IO[bytes] | int = subprocess.DEVNULL
        if output is not None:
            out = files.enter_context(open(output / f"{name}.out", "wb"))
            err = files.enter_context(open(output / f"{name}.err", "wb"))
        return subprocess.Popen(command, shell=True, cwd=workdir, stdout=out, stderr=err)


def _reap(running: dict[int, tuple[str, subprocess.Popen[bytes]]]) -> tuple[str, int]:
    """Wait for any child to end; return its task name and exit status."""
    pid, wait_status = os.wait()
    name, process = running.pop(pid)
    process.returncode = os.waitstatus_to_exitcode(wait_status)  # reaped here, not by Popen
    return name, process.returncode


def main(argv: Sequence[str] | None = None) -> int:
    """``baseline.py GRAPH.json [--parallel N] [--output DIR]``: exit 0 when all succeeded."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("graph", type=Path, help="a JSON file: {commands: {...}, after: {...}}")
    parser.add_argument("--parallel", type=int, default=8)
    parser.add_argument("--output", type=Path, default=None, help="keep output in this folder")
    args = parser.parse_args(argv)
    graph = Graph.from_json(json.loads(args.graph.read_text()))
    statuses = run_graph(graph, parallel=args.parallel, workdir=Path.cwd(), output=args.output)
    ok = len(statuses) == len(graph.commands) and not any(statuses.values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

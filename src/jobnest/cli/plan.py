"""``jobnest validate`` and ``plan``: job files checked and expanded, nothing run."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from jobnest.cli.edge import Context, pass_context, pick
from jobnest.files import load_jobs
from jobnest.model.expand import expand, plan_to_dict


@click.command()
@click.argument("paths", nargs=-1, required=True)
def validate(paths: Sequence[str]) -> None:
    """Check every job in the files: graphs, references, cycles, schedules."""
    jobs = load_jobs(paths)
    click.echo(f"{len(jobs)} job{'s' if len(jobs) != 1 else ''} valid: {', '.join(sorted(jobs))}")


@click.command()
@click.argument("paths", nargs=-1, required=True)
@click.option("--job", "name", required=True, help="The job to expand.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
@pass_context
def plan(ctx: Context, paths: Sequence[str], name: str, as_json: bool) -> None:
    """Print the expanded plan of NAME: its tasks and their dependencies."""
    jobs = load_jobs(paths)
    graph = expand(pick(jobs, name), jobs.get, ctx.settings.limits)
    data = plan_to_dict(graph)
    if as_json:
        click.echo(json.dumps({k: data[k] for k in ("job", "nodes", "edges")}, ensure_ascii=False))
        return
    before: dict[str, list[str]] = {node.id: [] for node in graph.nodes}
    for a, b in graph.edges:
        before[b].append(a)
    for node in graph.nodes:
        if node.is_task:
            after = (
                f"  after {', '.join(_task_preds(node.id, before, graph))}"
                if before[node.id]
                else ""
            )
            click.echo(f"{node.id}: {node.command}{after}")


def _task_preds(node_id: str, before: dict[str, list[str]], graph: Any) -> list[str]:
    """The task predecessors of a node, looking through group markers."""
    kinds = {node.id: node.kind for node in graph.nodes}
    found: list[str] = []
    stack = list(before[node_id])
    seen: set[str] = set()
    while stack:
        current = stack.pop()
        if current in seen:
            continue
        seen.add(current)
        if kinds[current] == "task":
            found.append(current)
        else:
            stack.extend(before[current])
    return sorted(found)

"""The workload contract: a ``Workload`` turns a ``Context`` into rows of paired samples.

A side of a comparison is a function returning one ``Sample`` (metric name -> value);
``alternate`` calls the two sides A B A B …, warm-up pairs first and not kept, and ``row``
turns one metric of the samples into a report row.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.report import Row, Target

Sample = dict[str, float]
Side = Callable[[], Sample]
PARALLEL = max(8, 4 * (os.cpu_count() or 1))  # jobnest's default max_parallel, for both sides


@dataclass(frozen=True)
class Context:
    data: Path  # where data directories and working folders are made
    pairs: int
    warmup: int
    smoke: bool  # tiny sizes: checks that every workload still runs, not how fast

    def size(self, full: int, smoke: int) -> int:
        return smoke if self.smoke else full

    def say(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Workload:
    id: str
    title: str
    run: Callable[[Context], list[Row]]


def alternate(
    ctx: Context, a: Side, b: Side, pairs: int | None = None
) -> tuple[list[Sample], list[Sample]]:
    """Samples of ``a`` and ``b`` taken in alternation, after ``ctx.warmup`` pairs."""
    kept_a: list[Sample] = []
    kept_b: list[Sample] = []
    for index in range(ctx.warmup + (pairs or ctx.pairs)):
        sample_a, sample_b = a(), b()
        if index >= ctx.warmup:
            kept_a.append(sample_a)
            kept_b.append(sample_b)
    return kept_a, kept_b


def row(
    workload: str,
    case: str,
    samples: tuple[list[Sample], list[Sample]],
    metric: str,
    unit: str,
    target: Target | None = None,
    b_label: str = "baseline",
) -> Row:
    """The row of one ``metric`` of paired samples."""
    a, b = samples
    return Row(
        workload,
        case,
        metric,
        unit,
        [s[metric] for s in a],
        [s[metric] for s in b],
        b_label=b_label,
        target=target,
    )

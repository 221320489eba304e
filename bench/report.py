"""Results: rows of paired samples, their targets, and the Markdown and JSON they are written as.

A ``Row`` holds one metric of one workload case: the samples of side A (jobnest) and of
side B (the baseline, or another jobnest workload), taken in alternation, so that
``a[i]`` and ``b[i]`` ran one after the other and are compared pair by pair.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from bench.stats import Summary

TargetKind = Literal["ratio", "offset", "below"]


@dataclass(frozen=True)
class Target:
    """What side A must achieve.

    ``ratio``: A/B pair by pair, median at most ``limit``; ``offset``: A − B pair by pair,
    median at most ``limit``; ``below``: A's median (its worst sample if ``worst``) under
    ``limit``.
    """

    kind: TargetKind
    limit: float
    text: str
    worst: bool = False

    def met(self, row: Row) -> bool:
        if self.kind == "ratio":
            return Summary.of(row.ratios).median <= self.limit
        if self.kind == "offset":
            return Summary.of(row.offsets).median <= self.limit
        value = max(row.a) if self.worst else Summary.of(row.a).median
        return value < self.limit


@dataclass(frozen=True)
class Row:
    workload: str
    case: str
    metric: str
    unit: str
    a: Sequence[float]
    b: Sequence[float]
    a_label: str = "jobnest"
    b_label: str = "baseline"
    target: Target | None = None

    @property
    def ratios(self) -> list[float]:
        return [a / b if b else float("inf") for a, b in zip(self.a, self.b, strict=True)]

    @property
    def offsets(self) -> list[float]:
        return [a - b for a, b in zip(self.a, self.b, strict=True)]

    @property
    def met(self) -> bool | None:
        return None if self.target is None else self.target.met(self)

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["a"], out["b"] = list(self.a), list(self.b)
        out["summary"] = {
            "a": asdict(Summary.of(self.a)),
            "b": asdict(Summary.of(self.b)),
            "ratio": asdict(Summary.of(self.ratios)),
            "offset": asdict(Summary.of(self.offsets)),
        }
        out["met"] = self.met
        return out


@dataclass
class Results:
    mode: str  # "full" or "smoke"
    pairs: int
    machine: dict[str, Any]
    started_at: str
    seconds: float = 0.0
    rows: list[Row] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "pairs": self.pairs,
            "machine": self.machine,
            "started_at": self.started_at,
            "seconds": round(self.seconds, 1),
            "rows": [row.to_json() for row in self.rows],
        }


def write(results: Results, folder: Path) -> tuple[Path, Path]:
    """Write ``latest.md`` and ``latest.json`` into ``folder``; return their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    markdown, data = folder / "latest.md", folder / "latest.json"
    markdown.write_text(render(results), encoding="utf-8")
    data.write_text(json.dumps(results.to_json(), indent=1) + "\n", encoding="utf-8")
    return markdown, data


def render(results: Results) -> str:
    """The whole report in Markdown: the machine, then the table."""
    lines = [
        f"Run {results.started_at} ({results.mode}, {results.pairs} alternating pairs per "
        f"row after a warm-up, {results.seconds:.0f} s in all) on:",
        "",
        *(f"- {key}: {value}" for key, value in results.machine.items()),
        "",
        table(results),
    ]
    return "\n".join(lines) + "\n"


def table(results: Results) -> str:
    """The Markdown table: one line per row."""
    head = [
        "| id | case | metric | jobnest: median (min–max) | compared with: median (min–max) "
        "| pair by pair | target | met |",
        "|---|---|---|---|---|---|---|---|",
    ]
    return "\n".join(head + [line(row) for row in results.rows])


def line(row: Row) -> str:
    """One row of the table."""
    a, b = Summary.of(row.a), Summary.of(row.b)
    cells = [
        row.workload,
        row.case,
        f"{row.metric} ({row.unit})",
        _spread(a),
        f"{row.b_label}: {_spread(b)}",
        _pairwise(row),
        row.target.text if row.target else "–",
        {None: "–", True: "met", False: "**missed**"}[row.met],
    ]
    return "| " + " | ".join(cells) + " |"


def _pairwise(row: Row) -> str:
    if row.target is not None and row.target.kind == "offset":
        s = Summary.of(row.offsets)
        return f"{s.median:+.2f} ({s.low:+.2f} to {s.high:+.2f}) {row.unit}"
    s = Summary.of(row.ratios)
    return f"{s.median:.2f}× ({s.low:.2f}–{s.high:.2f})"


def _spread(s: Summary) -> str:
    return f"{_number(s.median)} ({_number(s.low)}–{_number(s.high)})"


def _number(value: float) -> str:
    size = abs(value)
    if size >= 100:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}" if size >= 1 else f"{value:.3f}"

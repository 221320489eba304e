"""``python -m bench``: run the workloads, write ``latest.md`` and ``latest.json``.

    python -m bench                       # everything, 5 alternating pairs per row
    python -m bench --only W1,N1 --pairs 9
    python -m bench --smoke --out /tmp/x  # tiny sizes: does every workload still run?

The data directories and working folders of the samples are made under ``--data-dir``
(default: ``jobnest-bench`` in the system's temporary folder, whose filesystem the report
names) and removed afterwards: point it at a tmpfs to see what the filesystem costs. Keep
it out of folders that something watches for changes (an editor, a sync tool): on the
machine of the README's table, creating a file inside the repository took ten times as
long as in ``/tmp``.
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from bench import machine, report
from bench.report import Results
from bench.sides import removed_after, scratch
from bench.workloads import WORKLOADS
from bench.workloads.base import Context, Workload

HERE = Path(__file__).parent
RESULTS = HERE / "results"
DATA = Path(tempfile.gettempdir()) / "jobnest-bench"
PAIRS = 5
WARMUP = 1


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    chosen = _choose(args.only)
    out = args.out or (RESULTS / "tmp" / "smoke" if args.smoke else RESULTS)
    args.data_dir.mkdir(parents=True, exist_ok=True)
    pairs = args.pairs or (1 if args.smoke else PAIRS)
    warmup = (0 if args.smoke else WARMUP) if args.warmup is None else args.warmup
    ctx = Context(args.data_dir, pairs, warmup, args.smoke)
    results = Results(
        mode="smoke" if args.smoke else "full",
        pairs=pairs,
        machine=machine.describe(args.data_dir),
        started_at=datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
    )
    results.machine["at the start"] = machine.conditions(args.data_dir)
    started = time.monotonic()
    for workload in chosen:
        results.rows += _run(ctx, workload)
    results.seconds = time.monotonic() - started
    results.machine["at the end"] = machine.conditions(args.data_dir)
    for path in report.write(results, out):
        ctx.say(f"wrote {path}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true", help="tiny sizes, one pair, no warm-up")
    parser.add_argument("--pairs", type=_positive, help=f"pairs per row (default {PAIRS})")
    parser.add_argument("--warmup", type=int, help=f"warm-up pairs, not kept (default {WARMUP})")
    parser.add_argument("--only", type=_ids, default=[], help="workload ids, e.g. W1,N1")
    parser.add_argument("--out", type=Path, default=None, help="folder for latest.md/.json")
    parser.add_argument("--data-dir", type=Path, default=DATA, help="where samples run")
    return parser


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {text!r}")
    return value


def _ids(text: str) -> list[str]:
    ids = [part.strip().upper() for part in text.split(",") if part.strip()]
    known = {w.id for w in WORKLOADS}
    unknown = [i for i in ids if i not in known]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown workload {unknown[0]!r} (known: {sorted(known)})"
        )
    return ids


def _choose(only: list[str]) -> list[Workload]:
    return [w for w in WORKLOADS if not only or w.id in only]


def _run(ctx: Context, workload: Workload) -> list[report.Row]:
    """Run ``workload`` in a folder of its own, removed once it is done."""
    ctx.say(f"{workload.id}: {workload.title}")
    with removed_after(scratch(ctx.data, f"{workload.id}-")) as folder:
        rows = workload.run(dataclasses.replace(ctx, data=folder))
    for row in rows:
        ctx.say("  " + report.line(row))
    return rows

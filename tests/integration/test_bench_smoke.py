"""The benchmark suite in smoke mode: every workload still runs and is reported (no timings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MEASURED = {"W1", "W2", "W3", "W5", "N1", "E1", "O1", "A1", "U1"}


@pytest.mark.slow
@pytest.mark.timeout(150)
def test_the_smoke_suite_reports_every_workload_in_markdown_and_json(tmp_path: Path) -> None:
    out, data = tmp_path / "out", tmp_path / "data"
    command = [sys.executable, "-m", "bench", "--smoke", "--out", str(out), "--data-dir", str(data)]

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    results = json.loads((out / "latest.json").read_text())
    assert results["mode"] == "smoke"
    assert {row["workload"] for row in results["rows"]} == MEASURED
    assert all(len(row["a"]) == len(row["b"]) >= 1 for row in results["rows"])
    assert set(results["machine"]) >= {"cpu", "memory", "kernel", "python", "data directory"}
    table = (out / "latest.md").read_text()
    assert all(f"| {workload} |" in table for workload in MEASURED)
    assert list(data.iterdir()) == []  # every sample cleaned up after itself


def test_an_unknown_workload_is_refused_by_name() -> None:
    command = [sys.executable, "-m", "bench", "--smoke", "--only", "W1,Z9"]

    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=30)

    assert done.returncode == 2
    assert "'Z9'" in done.stderr

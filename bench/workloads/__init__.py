"""The workloads of issue 4, one module each, in the order the suite runs them.

A new workload is a module with a ``WORKLOAD`` (see ``base.py``) added to ``WORKLOADS``; the
ones that need parts not built yet are listed in ``PENDING`` and shown in the table as such.
"""

from __future__ import annotations

from bench.report import Pending
from bench.workloads import e1, n1, o1, w1, w2, w3, w5
from bench.workloads.base import Workload

WORKLOADS: list[Workload] = [
    w1.WORKLOAD,
    w2.WORKLOAD,
    w3.WORKLOAD,
    w5.WORKLOAD,
    n1.WORKLOAD,
    e1.WORKLOAD,
    o1.WORKLOAD,
]

PENDING = [
    Pending(
        "A1",
        "API under load: 50 clients reading runs and jobs while 200 tasks run",
        "p99 < 50 ms",
        "needs the daemon",
    ),
    Pending(
        "U1", "job page of a 5,000-task plan: first paint in Chromium", "< 1 s", "needs the UI"
    ),
]

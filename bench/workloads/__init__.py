"""The workloads of issue 4, one module each, in the order the suite runs them.

A new workload is a module with a ``WORKLOAD`` (see ``base.py``) added to ``WORKLOADS``.
"""

from __future__ import annotations

from bench.workloads import a1, e1, n1, o1, u1, w1, w2, w3, w5
from bench.workloads.base import Workload

WORKLOADS: list[Workload] = [
    w1.WORKLOAD,
    w2.WORKLOAD,
    w3.WORKLOAD,
    w5.WORKLOAD,
    n1.WORKLOAD,
    e1.WORKLOAD,
    o1.WORKLOAD,
    a1.WORKLOAD,
    u1.WORKLOAD,
]

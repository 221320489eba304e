"""jobnest's benchmark suite: every workload against a plain-Python baseline, pair by pair.

Run ``python -m bench`` from the repository root (``--help`` for options); it writes
``bench/results/latest.md`` and ``latest.json``. ``baseline.py`` is the limit jobnest is
held to; ``sides.py`` runs each side; ``workloads/`` holds one module per workload of the
issue; ``report.py`` turns paired samples into the table.
"""

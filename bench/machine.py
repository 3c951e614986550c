"""Benchmark: how fast this machine is, with no gitops-dora code in it (issue #16).

The targets of issue #16 are seconds on "2 cores", and the machines these figures were taken on
were not equally fast: on 2026-12-02 the same commit ran the suite in 606 s where it had taken
305 s the day before (docs/performance.md, sessions 16-17). This script prints four fixed
workloads, best of N, so that a figure taken on one day can be set against one taken on another:

* a pure-Python loop (the interpreter alone, in the CPU's caches);
* Python building, sorting and looking up a million small records (the interpreter on a heap far
  larger than the caches, as tests, the CLI's own code and Streamlit's script runs use it);
* one DuckDB thread hashing and summing a range (the engine's vectorised execution);
* ``import duckdb`` in a fresh interpreter (start-up: imports and the shared library's load).

Divide a figure in docs/performance.md by the calibration of its day to compare two days.

Run:  .venv/bin/python bench/machine.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from collections.abc import Callable

LOOP_STEPS = 10_000_000
DUCKDB_ROWS = 50_000_000
RECORDS = 1_000_000


def python_loop() -> None:
    total = 0
    for i in range(LOOP_STEPS):
        total += i
    assert total == LOOP_STEPS * (LOOP_STEPS - 1) // 2


def python_records() -> None:
    records = {f"sha-{i * 7919 % RECORDS:08d}": (i, str(i)) for i in range(RECORDS)}
    ordered = sorted(records.items(), key=lambda kv: kv[1][1])
    found = sum(1 for key, _ in ordered[::3] if key in records)
    assert found == len(ordered[::3])


def duckdb_one_thread() -> None:
    import duckdb

    con = duckdb.connect(config={"threads": 1})
    try:
        row = con.execute(f"SELECT count(*), sum(hash(i) % 7) FROM range({DUCKDB_ROWS}) t(i)").fetchone()
        assert row is not None and row[0] == DUCKDB_ROWS
    finally:
        con.close()


def import_duckdb() -> None:
    subprocess.run([sys.executable, "-c", "import duckdb"], check=True)


def best(work: Callable[[], None], repeat: int) -> tuple[float, float]:
    """Fastest wall time of ``repeat`` runs, and the CPU time of that run (this process and the
    children it waited for)."""
    runs = []
    for _ in range(repeat):
        cpu0, t0 = _cpu(), time.perf_counter()
        work()
        runs.append((time.perf_counter() - t0, _cpu() - cpu0))
    return min(runs)


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"best of {args.repeat}; 1/5/15-minute load average at start {load}")
    for name, work in (
        (f"python loop, {LOOP_STEPS:,} additions", python_loop),
        (f"python dict, sort, lookups of {RECORDS:,} records", python_records),
        (f"duckdb, 1 thread, hash and sum of {DUCKDB_ROWS:,} rows", duckdb_one_thread),
        ('python -c "import duckdb"', import_duckdb),
    ):
        wall, cpu = best(work, args.repeat)
        print(f"{name:<52} {wall:7.3f} s   CPU {cpu:7.3f} s")


if __name__ == "__main__":
    main()

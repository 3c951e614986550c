"""Benchmark: importing a large incidents CSV (issue #16).

Writes an incidents CSV of N rows (default 1,000,000: 20 services, a tenth open, a seventh without
an environment, quoted titles with commas) and times, each in its own process with its peak RSS:

* baseline: DuckDB's own ``read_csv`` into a table of a new DuckDB file (no checks, no store);
* ``gitops-dora import FILE`` into a new store (first import);
* the same command again (a re-import: an idempotent upsert of the same rows);
* with ``--read``: ``gitops-dora incidents --format csv`` and ``--format json`` over that store,
  against DuckDB's own CSV round trip of the source file (read_csv, then COPY to a CSV file).

Prints seconds, rows/s, peak RSS and the ratios to the baselines. Targets: >= 100k rows/s and
<= 500 MB at 1M rows; a re-import <= 1.5x the first; a read command <= 10 s and <= 300 MB.
Absolute seconds swing with the machine's load (printed): compare the ratios of one run.

Run:  .venv/bin/python bench/import_scale.py [--rows 1000000] [--read]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# Runs a command and prints its peak RSS (KiB): the wrapper's only child is the command.
MEASURE = (
    "import resource, subprocess, sys\n"
    "proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(proc.stderr[-2000:])\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "sys.exit(proc.returncode)\n"
)


def write_csv(path: Path, rows: int) -> None:
    with path.open("w") as fh:
        fh.write("id,service,environment,created_at,resolved_at,title,root_cause\n")
        chunk = []
        for i in range(rows):
            month, day, hour = 1 + i % 12, 1 + i % 28, i % 24
            resolved = "" if i % 10 == 0 else f"2025-{month:02d}-{day:02d}T{hour:02d}:59:00Z"
            env = "" if i % 7 == 0 else "production"
            chunk.append(
                f"INC-{i},svc{i % 20},{env},2025-{month:02d}-{day:02d}T{hour:02d}:0{i % 10}:00+00:00,"
                f'{resolved},"Outage, number {i}",\n'
            )
            if len(chunk) >= 10_000:
                fh.write("".join(chunk))
                chunk = []
        fh.write("".join(chunk))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(argv: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command."""
    t0 = time.perf_counter()
    proc = subprocess.run([PY, "-c", MEASURE, *argv], cwd=ROOT, capture_output=True, text=True, check=False)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr}")
    return secs, int(proc.stdout.strip().splitlines()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--read", action="store_true", help="also time the incidents read command")
    args = parser.parse_args()
    print(f"load average at start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "incidents.csv"
        write_csv(src, args.rows)
        size_mb = src.stat().st_size / 1e6
        baseline_code = (
            "import duckdb, sys\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute(\"CREATE TABLE t AS SELECT * FROM read_csv(?, header = true, all_varchar = true)\", "
            "[sys.argv[2]])\n"
        )
        db = Path(tmp) / "s.ducklake"
        cli = [PY, "-c", "import sys\nfrom analytics.cli.main import run\nrun(sys.argv[1:])"]
        results = {
            "duckdb read_csv into a table": measure([PY, "-c", baseline_code, str(Path(tmp) / "b.duckdb"),
                                                     str(src)]),
            "gitops-dora import (first)": measure([*cli, "--db", str(db), "import", str(src)]),
            "gitops-dora import (again)": measure([*cli, "--db", str(db), "import", str(src)]),
        }
        reads: dict[str, tuple[float, float]] = {}
        if args.read:
            round_trip = (
                "import duckdb, sys\n"
                "duckdb.connect().execute(\"COPY (SELECT * FROM read_csv(?, header = true)) TO '\""
                " + sys.argv[2] + \"' (HEADER)\", [sys.argv[1]])\n"
            )
            reads["duckdb read_csv + COPY to CSV"] = measure([PY, "-c", round_trip, str(src),
                                                             str(Path(tmp) / "copy.csv")])
            for fmt in ("csv", "json"):
                reads[f"gitops-dora incidents --format {fmt}"] = measure(
                    [*cli, "--db", str(db), "incidents", "--format", fmt])
    base_secs, base_rss = results["duckdb read_csv into a table"]
    print(f"{args.rows:,} incidents, {size_mb:.0f} MB CSV; ratios against DuckDB's read_csv")
    for name, (secs, rss) in results.items():
        print(f"{name:32s} {secs:7.2f} s  {args.rows / secs:>10,.0f} rows/s  peak {rss:6.0f} MB"
              f"  x{secs / base_secs:5.2f} time  x{rss / base_rss:5.2f} memory")
    first, again = results["gitops-dora import (first)"][0], results["gitops-dora import (again)"][0]
    print(f"re-import / first import: x{again / first:.2f}")
    if reads:
        base_secs, base_rss = reads["duckdb read_csv + COPY to CSV"]
        print("read commands; ratios against DuckDB's CSV round trip")
        for name, (secs, rss) in reads.items():
            print(f"{name:36s} {secs:7.2f} s  peak {rss:6.0f} MB  x{secs / base_secs:5.2f} time"
                  f"  x{rss / base_rss:5.2f} memory")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()

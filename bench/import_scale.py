"""Benchmark: importing a large incidents CSV (issue #16).

Writes an incidents CSV of N rows (default 1,000,000: 20 services, a tenth open, a seventh without
an environment, quoted titles with commas) and times, each in its own process with its peak RSS:

* baseline: DuckDB's own ``read_csv`` into a table of a new DuckDB file (no checks, no store);
* ``gitops-dora import FILE`` into a new store (first import);
* the same command again (a re-import: an idempotent upsert of the same rows);
* with ``--read``: ``gitops-dora incidents --format csv`` and ``--format json`` over that store,
  against DuckDB's own CSV round trip of the source file (read_csv, then COPY to a CSV file);
* with ``--jsonl``: the same incidents as a JSON-lines file (one object a line, the CSV's values,
  empty fields as empty strings), DuckDB's own ``read_json`` of it into a table as its baseline,
  then ``gitops-dora import`` of it (first and again); with ``--old-code DIR`` (a worktree of an
  earlier commit) each JSON-lines run alternates with the same run of that code, ``--pairs``
  times, so both sides see the same load.

Prints seconds, rows/s, peak RSS and the ratios to the baselines. Targets: >= 100k rows/s and
<= 500 MB at 1M rows; a re-import <= 1.5x the first; a read command <= 10 s and <= 300 MB.
Absolute seconds swing with the machine's load (printed): compare the ratios of one run.

Run:  .venv/bin/python bench/import_scale.py [--rows 1000000] [--read] [--jsonl [--old-code DIR]]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
# Runs a command and prints its peak RSS (KiB) and CPU seconds (user + sys): the wrapper's only
# child is the command.
MEASURE = (
    "import resource, subprocess, sys\n"
    "proc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)\n"
    "sys.stderr.write(proc.stderr[-2000:])\n"
    "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(use.ru_maxrss, use.ru_utime + use.ru_stime)\n"
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


def write_jsonl(csv_path: Path, path: Path) -> None:
    """The CSV's rows as JSON lines (same keys and values; an empty field is an empty string)."""
    import csv

    with csv_path.open(newline="") as src, path.open("w") as out:
        chunk = []
        for row in csv.DictReader(src):
            chunk.append(json.dumps(row) + "\n")
            if len(chunk) >= 10_000:
                out.write("".join(chunk))
                chunk = []
        out.write("".join(chunk))


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def measure(argv: list[str], code: Path | None = None) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one command; ``code``: the analytics package to run."""
    return measure_cpu(argv, code)[:2]


def measure_cpu(argv: list[str], code: Path | None = None) -> tuple[float, float, float]:
    """(seconds, peak RSS in MB, CPU seconds) of one command, run from ``code`` (default: here;
    never with the tests' pause before a commit)."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_PAUSE_BEFORE_COMMIT"}
    if code is not None:
        env["PYTHONPATH"] = str(code)
    t0 = time.perf_counter()
    proc = subprocess.run([PY, "-c", MEASURE, *argv], cwd=code or ROOT, capture_output=True, text=True,
                          check=False, env=env)
    secs = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(argv)}\n{proc.stderr}")
    rss, cpu = proc.stdout.strip().splitlines()[-1].split()
    return secs, int(rss) / 1024, float(cpu)


def bench_jsonl(args: argparse.Namespace, src_csv: Path, tmp: Path, cli: list[str]) -> None:
    """The JSON-lines case: DuckDB's read_json into a table, then the import (first, again) of the
    code here and, with --old-code, of that code, alternating."""
    src = tmp / "incidents.jsonl"
    write_jsonl(src_csv, src)
    baseline = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute(\"CREATE TABLE t AS SELECT * FROM read_json(?, format = 'newline_delimited')\", "
        "[sys.argv[2]])\n"
    )
    runs: dict[str, list[tuple[float, float, float, str]]] = {}
    sides: list[tuple[str, Path | None]] = [("new", None)]
    if args.old_code:
        sides.append(("old", Path(args.old_code).resolve()))
    for pair in range(args.pairs):
        db_base = tmp / f"j{pair}.duckdb"
        runs.setdefault("duckdb read_json into a table", []).append(
            (*measure_cpu([PY, "-c", baseline, str(db_base), str(src)]), load()))
        db_base.unlink()
        order = sides if pair % 2 == 0 else sides[::-1]
        for side, code in order:
            db = tmp / f"j-{side}-{pair}.ducklake"
            for step in ("first", "again"):
                runs.setdefault(f"{side}: gitops-dora import ({step})", []).append(
                    (*measure_cpu([*cli, "--db", str(db), "import", str(src)], code), load()))
    size_mb = src.stat().st_size / 1e6
    base_secs = min(r[0] for r in runs["duckdb read_json into a table"])
    base_rss = min(r[1] for r in runs["duckdb read_json into a table"])
    print(f"{args.rows:,} incidents, {size_mb:.0f} MB JSON lines; ratios (best of {args.pairs}) against "
          "DuckDB's read_json")
    for name, measured in runs.items():
        secs, rss, cpu, _ = min(measured)
        print(f"{name:36s} {secs:7.2f} s  cpu {cpu:6.2f} s  {args.rows / secs:>10,.0f} rows/s  "
              f"peak {max(r[1] for r in measured):6.0f} MB  x{secs / base_secs:5.2f} time  "
              f"x{rss / base_rss:5.2f} memory")
        for one in measured:
            print(f"    {one[0]:7.2f} s  cpu {one[2]:6.2f} s  peak {one[1]:6.0f} MB  load {one[3]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--read", action="store_true", help="also time the incidents read command")
    parser.add_argument("--jsonl", action="store_true", help="also time a JSON-lines import of the rows")
    parser.add_argument("--skip-csv", action="store_true", help="no CSV import runs (with --jsonl)")
    parser.add_argument("--old-code", help="a worktree of earlier code whose JSON-lines import alternates")
    parser.add_argument("--pairs", type=int, default=1, help="JSON-lines runs of each side")
    args = parser.parse_args()
    print(f"load average at start: {load()}")
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "incidents.csv"
        write_csv(src, args.rows)
        size_mb = src.stat().st_size / 1e6
        cli = [PY, "-c", "import sys\nfrom analytics.cli.main import run\nrun(sys.argv[1:])"]
        results: dict[str, tuple[float, float]] = {}
        reads: dict[str, tuple[float, float]] = {}
        if not args.skip_csv:
            run_csv(args, src, Path(tmp), cli, results, reads)
        if args.jsonl:
            bench_jsonl(args, src, Path(tmp), cli)
    if results:
        report_csv(args, size_mb, results, reads)
    print(f"load average at end: {load()}")


def run_csv(args: argparse.Namespace, src: Path, tmp: Path, cli: list[str],
            results: dict[str, tuple[float, float]], reads: dict[str, tuple[float, float]]) -> None:
    baseline_code = (
        "import duckdb, sys\n"
        "con = duckdb.connect(sys.argv[1])\n"
        "con.execute(\"CREATE TABLE t AS SELECT * FROM read_csv(?, header = true, all_varchar = true)\", "
        "[sys.argv[2]])\n"
    )
    db = tmp / "s.ducklake"
    results.update({
        "duckdb read_csv into a table": measure([PY, "-c", baseline_code, str(tmp / "b.duckdb"),
                                                 str(src)]),
        "gitops-dora import (first)": measure([*cli, "--db", str(db), "import", str(src)]),
        "gitops-dora import (again)": measure([*cli, "--db", str(db), "import", str(src)]),
    })
    if args.read:
        round_trip = (
            "import duckdb, sys\n"
            "duckdb.connect().execute(\"COPY (SELECT * FROM read_csv(?, header = true)) TO '\""
            " + sys.argv[2] + \"' (HEADER)\", [sys.argv[1]])\n"
        )
        reads["duckdb read_csv + COPY to CSV"] = measure([PY, "-c", round_trip, str(src),
                                                         str(tmp / "copy.csv")])
        for fmt in ("csv", "json"):
            reads[f"gitops-dora incidents --format {fmt}"] = measure(
                [*cli, "--db", str(db), "incidents", "--format", fmt])


def report_csv(args: argparse.Namespace, size_mb: float, results: dict[str, tuple[float, float]],
               reads: dict[str, tuple[float, float]]) -> None:
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


if __name__ == "__main__":
    main()

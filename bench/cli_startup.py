"""Benchmark: CLI start-up (issue #16).

Times, best of N fresh interpreters each, in the same run:

* baselines: ``python -c pass`` and ``python -c "import duckdb"``;
* ``gitops-dora --help``;
* ``gitops-dora deployments --format json`` on a small store (three imported deployments).

Prints seconds and ratios against both baselines (the machine may be loaded: compare ratios).
Targets (issue #16): ``--help`` <= 0.3 s, ``deployments --format json`` <= 0.5 s.

Run:  .venv/bin/python bench/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLI = [PY, "-c", "import sys\nfrom analytics.cli.main import run\nrun(sys.argv[1:])"]


def best(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "s.ducklake"
        src = Path(tmp) / "dep.csv"
        src.write_text(
            "id,service,environment,revision,deployed_at,status,repository\n"
            + "".join(f"d{i},api,production,v{i},2026-01-0{i + 1}T10:00:00Z,success,api\n" for i in range(3))
        )
        subprocess.run([*CLI, "--db", str(db), "import", str(src)], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        cases = {
            "python -c pass": [PY, "-c", "pass"],
            'python -c "import duckdb"': [PY, "-c", "import duckdb"],
            "gitops-dora --help": [*CLI, "--help"],
            "gitops-dora deployments --format json": [
                *CLI, "--db", str(db), "deployments", "--format", "json"],
        }
        results = {name: best(argv, args.repeat) for name, argv in cases.items()}
    base, duck = results["python -c pass"], results['python -c "import duckdb"']
    print(f"best of {args.repeat}; ratios against python -c pass / python -c 'import duckdb'")
    for name, secs in results.items():
        print(f"{name:42s} {secs:7.3f} s  x{secs / base:5.2f}  x{secs / duck:5.2f}")


if __name__ == "__main__":
    main()

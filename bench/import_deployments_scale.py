"""Benchmark: importing a large deployments CSV with changes attributed through git (issue #16).

Builds two git repositories with ``git fast-import`` (``api``: a main line with a --no-ff merge
of a two-commit feature branch every 10 commits and release tags; ``web``: the same shape,
smaller), collects both with ``gitops-dora collect git`` into a store, and writes a deployments
CSV of N rows (default 1,000,000) over 6 services x 3 environments, in time order, whose
revisions walk forward through ``api``'s history: full shas (most), abbreviated shas (7-12
digits), release tags, a few unknown revisions, one row in 50 a multi-repository ``api=...
web=...`` pair, one in 20 failed, one in 50 a rollback, one in 40 without an environment.

Then it times, each in its own process with its peak RSS and CPU (user + sys):

* baseline: DuckDB's own ``read_csv`` of the file into a table of a new DuckDB file;
* ``gitops-dora import FILE`` into a copy of the collected store (first import);
* the same command again (a re-import: an idempotent upsert of the same rows and changes).

With ``--old-code DIR`` (a worktree of an earlier commit) each import alternates with the same
import by that code, ``--pairs`` times, so both sides see the same load. Prints rows/s, the
ratio to the baseline, and re-import / first. Targets: >= 100k rows/s and <= 500 MB at 1M rows,
re-import <= 1.5x the first. Absolute seconds swing with the machine's load (printed).

Run:  .venv/bin/python bench/import_deployments_scale.py [--rows 1000000] [--commits 20000]
      [--old-code DIR] [--pairs 1]
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.git_ingest import fast_import_repo  # noqa: E402
from bench.import_scale import load  # noqa: E402
from bench.import_scale import measure_cpu as measure  # noqa: E402

PY = sys.executable
SERVICES = [f"svc{i}" for i in range(6)]
ENVIRONMENTS = ["production", "staging", "dev"]


def history(repo: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """The main line's shas, oldest first, and (tag, sha) of its tags in the same order."""
    shas = subprocess.run(["git", "-C", str(repo), "rev-list", "--first-parent", "--reverse", "main"],
                          capture_output=True, text=True, check=True).stdout.split()
    listed = subprocess.run(["git", "-C", str(repo), "for-each-ref",
                             "--format=%(refname:short) %(*objectname) %(objectname)", "refs/tags"],
                            capture_output=True, text=True, check=True)
    position = {sha: i for i, sha in enumerate(shas)}
    tags = []
    for line in listed.stdout.splitlines():
        name, *objs = line.split()
        sha = objs[0] if len(objs) == 2 else objs[-1]
        if sha in position:
            tags.append((position[sha], name, sha))
    return shas, [(name, sha) for _, name, sha in sorted(tags)]


def write_csv(path: Path, rows: int, api: list[str], api_tags: list[tuple[str, str]], web: list[str]) -> None:
    """N deployments in time order; every scope's revisions move forward through ``api``."""
    tag_at = {sha: name for name, sha in api_tags}
    t0 = 1_600_000_000
    with path.open("w") as fh:
        fh.write("id,service,environment,revision,deployed_at,status,repository,started_at,rollback\n")
        chunk: list[str] = []
        for i in range(rows):
            position = min(len(api) - 1, i * len(api) // rows)
            sha = api[position]
            kind = i % 100
            if sha in tag_at and kind < 60:
                revision = tag_at[sha]
            elif kind < 70:
                revision = sha[: 7 + i % 6]
            elif kind == 99:
                revision = f"unknown-{i % 13}"
            else:
                revision = sha
            repository = "api"
            if i % 50 == 7:
                revision = f"api={sha[:10]} web={web[min(len(web) - 1, i * len(web) // rows)]}"
                repository = ""
            service = SERVICES[i % len(SERVICES)]
            env = "" if i % 40 == 3 else ENVIRONMENTS[(i // len(SERVICES)) % len(ENVIRONMENTS)]
            status = "failed" if i % 20 == 11 else "success"
            rollback = "true" if i % 50 == 13 else "false"
            when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i * 30))
            started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t0 + i * 30 - 120))
            chunk.append(f"D-{i},{service},{env},{revision},{when},{status},{repository},{started},{rollback}\n")
            if len(chunk) >= 10_000:
                fh.write("".join(chunk))
                chunk = []
        fh.write("".join(chunk))


def restore_store(pristine: Path, store_dir: Path) -> None:
    """The collected store back at its own path (a DuckLake catalog names its data directory by
    absolute path, so a copy elsewhere would not open)."""
    shutil.rmtree(store_dir, ignore_errors=True)
    shutil.copytree(pristine, store_dir)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--commits", type=int, default=20_000, help="commits of the api repository")
    parser.add_argument("--old-code", help="a worktree of earlier code whose imports alternate")
    parser.add_argument("--pairs", type=int, default=1)
    parser.add_argument("--keep", help="keep the fixture (repositories, store, CSV) in this directory")
    args = parser.parse_args()
    print(f"load average at start: {load()}")
    cli = [PY, "-c", "import sys\nfrom analytics.cli.main import run\nrun(sys.argv[1:])"]
    with tempfile.TemporaryDirectory(prefix="deploy-import-bench-") as scratch:
        tmp = Path(args.keep) if args.keep else Path(scratch)
        tmp.mkdir(parents=True, exist_ok=True)
        store_dir, pristine = tmp / "store", tmp / "collected"
        db = store_dir / "s.ducklake"
        if not pristine.exists():
            shutil.rmtree(store_dir, ignore_errors=True)
            store_dir.mkdir()
            for name, commits in (("api", args.commits), ("web", max(100, args.commits // 10))):
                fast_import_repo(tmp / name, commits)
                measure([*cli, "--db", str(db), "collect", "git", str(tmp / name), "--repo-id", name,
                         "--deploy-tags", ""])
            shutil.copytree(store_dir, pristine)
        api, api_tags = history(tmp / "api")
        web, _ = history(tmp / "web")
        src = tmp / f"deployments-{args.rows}.csv"
        if not src.exists():
            write_csv(src, args.rows, api, api_tags, web)
        baseline = (
            "import duckdb, sys\n"
            "con = duckdb.connect(sys.argv[1])\n"
            "con.execute(\"CREATE TABLE t AS SELECT * FROM read_csv(?, header = true, all_varchar = true)\", "
            "[sys.argv[2]])\n"
        )
        sides: list[tuple[str, Path | None]] = [("new", None)]
        if args.old_code:
            sides.append(("old", Path(args.old_code).resolve()))
        runs: dict[str, list[tuple[float, float, float, str]]] = {}
        for pair in range(args.pairs):
            db_base = tmp / f"b{pair}.duckdb"
            runs.setdefault("duckdb read_csv into a table", []).append(
                (*measure([PY, "-c", baseline, str(db_base), str(src)]), load()))
            db_base.unlink()
            for side, code in sides if pair % 2 == 0 else sides[::-1]:
                restore_store(pristine, store_dir)
                for step in ("first", "again"):
                    runs.setdefault(f"{side}: gitops-dora import ({step})", []).append(
                        (*measure([*cli, "--db", str(db), "import", str(src)], code), load()))
        size_mb = src.stat().st_size / 1e6
    base_secs = min(r[0] for r in runs["duckdb read_csv into a table"])
    base_rss = min(r[1] for r in runs["duckdb read_csv into a table"])
    print(f"{args.rows:,} deployments, {size_mb:.0f} MB CSV, api repository of {len(api):,} main-line "
          "commits "
          f"({args.commits:,} in all); ratios (best of {args.pairs}) against DuckDB's read_csv")
    for name, measured in runs.items():
        secs, rss, cpu, _ = min(measured)
        print(f"{name:36s} {secs:7.2f} s  cpu {cpu:6.2f} s  {args.rows / secs:>10,.0f} rows/s  "
              f"peak {max(r[1] for r in measured):6.0f} MB  x{secs / base_secs:5.2f} time  "
              f"x{rss / base_rss:5.2f} memory")
        for one in measured:
            print(f"    {one[0]:7.2f} s  cpu {one[2]:6.2f} s  peak {one[1]:6.0f} MB  load {one[3]}")
    for side, _ in sides:
        first = min(r[0] for r in runs[f"{side}: gitops-dora import (first)"])
        again = min(r[0] for r in runs[f"{side}: gitops-dora import (again)"])
        print(f"{side}: re-import / first import: x{again / first:.2f}")
    print(f"load average at end: {load()}")


if __name__ == "__main__":
    main()

"""DuckLake against native DuckDB, and concurrent writers against the same work in sequence.

    .venv/bin/python bench/store_engines.py [--commits 100000] [--writers 4] [--runs 3]

Measured in the same run, best of ``--runs``:

* ``collect git``'s unit of work (``analytics.collectors.git.ingest``: mining, tags, deployments,
  attribution, watermark) on the benchmark repository of bench/git_ingest.py, in a DuckLake
  transaction (SQLite catalog, the embedded default) and on a native DuckDB file created by the
  same migrations, the two interleaved. Target: DuckLake at most 1.1x native.
* ``--writers`` processes (0 skips this part) running ``gitops-dora collect git`` on their own
  repositories into ONE store at the same time, against the same collections run one after
  another into one store. Both orders end with the same rows; the ratio says what concurrency
  costs or gains on this machine (on 2 cores with a SQLite catalog, overlapping commits are retried, see
  docs/architecture.md).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from git_ingest import DEPLOY_TAGS, build_repo  # noqa: E402

CLI = str(Path(sys.executable).parent / "gitops-dora")


def ingest_on(con: duckdb.DuckDBPyConnection, repo: Path, location_of: object) -> tuple[float, float]:
    """The collector's whole unit of work on ``con`` inside one transaction: wall seconds, and CPU
    seconds of this process (all its threads; git's own CPU is not counted on either side)."""
    from analytics.collectors.git import GitOptions, GitSummary, ingest
    from analytics.collectors.git_source import ref_tips
    from analytics.store.connection import WriteSession
    from analytics.store.location import resolve

    location = location_of(str(repo), None)  # type: ignore[operator]
    options = GitOptions(service="bench", environment="production", deploy_tags=DEPLOY_TAGS)
    tips = ref_tips(location.local_path)
    session = WriteSession(con=con, location=resolve("/dev/null/unused"), source="bench", target="bench")
    started, cpu = time.perf_counter(), time.process_time()
    con.execute("BEGIN TRANSACTION")
    ingest(session, location, options, tips, GitSummary(location.repo_id), None)
    con.execute("COMMIT")
    return time.perf_counter() - started, time.process_time() - cpu


def lake_run(repo: Path, tmp: Path, location_of: object) -> tuple[float, float]:
    from analytics.store.connection import _open_migrated
    from analytics.store.location import resolve

    db = tmp / f"lake-{time.monotonic_ns()}.ducklake"
    con = _open_migrated(resolve(db))
    try:
        return ingest_on(con, repo, location_of)
    finally:
        con.close()


def native_run(repo: Path, tmp: Path, location_of: object) -> tuple[float, float]:
    from analytics.store.migrations import migrate

    db = tmp / f"native-{time.monotonic_ns()}.duckdb"
    con = duckdb.connect(str(db))
    try:
        migrate(con)
        return ingest_on(con, repo, location_of)
    finally:
        con.close()


def writers(repos: list[Path], tmp: Path, concurrent: bool) -> tuple[float, int]:
    db = tmp / f"writers-{'c' if concurrent else 's'}-{time.monotonic_ns()}.ducklake"
    started = time.perf_counter()
    cmds = [[CLI, "--db", str(db), "collect", "git", str(r), "--deploy-tags", DEPLOY_TAGS,
             "--service", f"svc-{i}"] for i, r in enumerate(repos)]
    if concurrent:
        procs = [subprocess.Popen(c, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                 for c in cmds]
        results = [(p.returncode, p.communicate()[1]) for p in procs]
        results = [(p.returncode, err) for p, (_, err) in zip(procs, results, strict=True)]
    else:
        results = []
        for c in cmds:
            proc = subprocess.run(c, capture_output=True, text=True, check=False)
            results.append((proc.returncode, proc.stderr))
    elapsed = time.perf_counter() - started
    for code, err in results:
        if code != 0:
            raise SystemExit(f"a writer failed: {err}")
    retries = sum(err.count("running it again") for _, err in results)
    out = subprocess.run([CLI, "--db", str(db), "deployments", "--format", "json"], capture_output=True,
                         text=True, check=True).stdout
    if len({d["service"] for d in json.loads(out)}) != len(repos):
        raise SystemExit("not every writer's deployments are in the store")
    return elapsed, retries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--writers", type=int, default=4)
    parser.add_argument("--writer-commits", type=int, default=5_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    from analytics.collectors.git_source import locate

    repo = build_repo(args.commits)
    with tempfile.TemporaryDirectory(prefix="store-engines-") as tmpdir:
        tmp = Path(tmpdir)
        native_run(repo, tmp, locate)  # warm git's and the OS's caches for both sides
        # interleaved, so a change in the machine's load hits both sides alike
        natives, lakes = [], []
        for _ in range(args.runs):
            natives.append(native_run(repo, tmp, locate))
            lakes.append(lake_run(repo, tmp, locate))
        native, lake = min(w for w, _ in natives), min(w for w, _ in lakes)
        native_cpu, lake_cpu = min(c for _, c in natives), min(c for _, c in lakes)
        print(f"collect git unit of work, {args.commits} commits: native DuckDB {native:.2f} s, "
              f"DuckLake {lake:.2f} s, ratio = {lake / native:.2f} (target <= 1.1; "
              f"1-minute load average now {os.getloadavg()[0]:.1f})")
        print(f"  CPU of the unit (less sensitive to other load): native {native_cpu:.2f} s, "
              f"DuckLake {lake_cpu:.2f} s, ratio = {lake_cpu / native_cpu:.2f}")
        if args.writers < 1:
            return
        small = build_repo(args.writer_commits)
        repos = []
        for i in range(args.writers):
            copy = tmp / f"repo-{i}"
            shutil.copytree(small, copy)
            repos.append(copy)
        seq = min(writers(repos, tmp, concurrent=False)[0] for _ in range(args.runs))
        conc_runs = [writers(repos, tmp, concurrent=True) for _ in range(args.runs)]
        conc = min(t for t, _ in conc_runs)
        print(f"{args.writers} collect git writers ({args.writer_commits} commits each) into one store: "
              f"one after another {seq:.2f} s, at once {conc:.2f} s, ratio at-once/sequential = "
              f"{conc / seq:.2f} (unit re-runs after conflicts: {[r for _, r in conc_runs]})")


if __name__ == "__main__":
    main()

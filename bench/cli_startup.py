"""Benchmark: CLI start-up (issue #16).

Times, best of N fresh interpreters each, in the same run:

* baselines: ``python -c pass`` and ``python -c "import duckdb"``;
* ``gitops-dora --help``;
* ``gitops-dora deployments --format json`` on a small store (three imported deployments);
* short writes, each into a new store every time: ``import`` of a 5-row incidents CSV, ``import``
  of an Argo CD dump (one Application, one Event) and ``assess --store`` of a small config
  repository, with whether the process imported pandas (a bound parameter or a registered
  DataFrame makes DuckDB's client load it, about 0.5 s: analytics/store/relations.py).

Prints seconds and ratios against both baselines (the machine may be loaded: compare ratios).
Targets (issue #16): ``--help`` <= 0.3 s, ``deployments --format json`` <= 0.5 s.

Run:  .venv/bin/python bench/cli_startup.py [--repeat 7]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable
CLI = [PY, "-c", "import sys\nfrom analytics.cli.main import run\nrun(sys.argv[1:])"]
# The same entry point, reporting on stderr (last line) which heavy modules the command loaded.
PROBE = [PY, "-c", "import sys, atexit\nfrom analytics.cli.main import run\n"
         "atexit.register(lambda: print('loaded:', ','.join(m for m in ('pandas', 'pyarrow') "
         "if m in sys.modules) or 'neither', file=sys.stderr))\nrun(sys.argv[1:])"]


def best(argv: list[str] | Callable[[int], list[str]], repeat: int) -> float:
    """Best wall time of ``repeat`` runs; ``argv`` may be a function of the run's number (a new
    store each time)."""
    times = []
    for n in range(repeat):
        t0 = time.perf_counter()
        subprocess.run(argv(n) if callable(argv) else argv, cwd=ROOT, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, check=True)
        times.append(time.perf_counter() - t0)
    return min(times)


def loaded(argv: list[str]) -> str:
    proc = subprocess.run([*PROBE, *argv], cwd=ROOT, capture_output=True, text=True, check=True)
    return proc.stderr.strip().splitlines()[-1].removeprefix("loaded: ")


def short_writes(tmp: Path) -> dict[str, Callable[[int], list[str]]]:
    """The short write commands' arguments, for run ``n`` (its own new store)."""
    sys.path.insert(0, str(ROOT))  # the tests' shapes of real repositories and Argo CD objects
    from tests.gitrepo import GitRepo
    from tests.reconciler_objects import application, argocd_event, as_list

    csv = tmp / "incidents.csv"
    csv.write_text("id,service,environment,created_at,resolved_at,title\n" + "".join(
        f"i{i},api,production,2026-01-0{i + 1}T10:00:00Z,2026-01-0{i + 1}T11:00:00Z,down\n"
        for i in range(5)))
    t0 = datetime(2026, 1, 5, 9, tzinfo=UTC)
    app = application("api-prod", repo_url="https://git.example.com/config.git", path="apps/api",
                      dest_namespace="api", history=[("a" * 40, t0), ("b" * 40, t0 + timedelta(hours=1))])
    event = argocd_event("api-prod", "ResourceUpdated", "Updated health status: Healthy -> Degraded",
                         t0 + timedelta(hours=2), uid="e-1")
    (tmp / "app.json").write_text(json.dumps(app))
    (tmp / "events.json").write_text(json.dumps(as_list("Event", [event])))
    repo = GitRepo.init(tmp / "config")
    repo.commit("config", "2026-01-05T10:00:00Z", files={
        "apps/api/kustomization.yaml": "resources:\n- deployment.yaml\n",
        "apps/api/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n"})
    return {
        "gitops-dora import incidents.csv (5 rows)": lambda n: [
            "--db", str(tmp / f"i{n}.ducklake"), "import", str(csv)],
        "gitops-dora import Argo CD dump (1 app)": lambda n: [
            "--db", str(tmp / f"a{n}.ducklake"), "import", str(tmp / "app.json"), str(tmp / "events.json")],
        "gitops-dora assess CONFIG --store": lambda n: [
            "--db", str(tmp / f"s{n}.ducklake"), "assess", str(repo.path), "--store", "--format", "json"],
    }


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
        writes = short_writes(Path(tmp))
        for name, argv in writes.items():
            results[name] = best(lambda n, f=argv: [*CLI, *f(n)], args.repeat)
        heavy = {name: loaded(argv(args.repeat)) for name, argv in writes.items()}
    base, duck = results["python -c pass"], results['python -c "import duckdb"']
    print(f"best of {args.repeat}; ratios against python -c pass / python -c 'import duckdb'")
    for name, secs in results.items():
        extra = f"  pandas/pyarrow loaded: {heavy[name]}" if name in heavy else ""
        print(f"{name:42s} {secs:7.3f} s  x{secs / base:5.2f}  x{secs / duck:5.2f}{extra}")


if __name__ == "__main__":
    main()

"""Benchmark: first server-side render of the dashboard's Overview, and a filter change, at scale.

Fixture: the `bench/metrics_scale.py` generator (200 services, 1M commits, 100k deployments, 1M
deployment changes, 10k incidents), built into its own file under bench/.work/.

Each measurement runs in a fresh Python process (so no Streamlit cache, no open connection, no
imported dashboard modules), after importing Streamlit and AppTest (the server's start-up, paid
once per server, not per page view). In that process and on the same snapshot it times:
* baseline: the raw engine call the Overview makes (``compute_metrics`` for the window with
  ``--compare-previous``, grouped by environment), on a fresh read connection;
* first render: ``AppTest.run()`` of the app with no URL parameters (Overview, default 90 days);
* filter change: picking one service in the sidebar and re-running;
* a new session's Overview once the default view is computed (what `gitops-dora dashboard`'s
  background warm-up gives the first visitor after each collection).
It prints the times and their ratios to the baseline, wall and CPU (``time.process_time``: every
thread of the process, the script runner's and DuckDB's included; far steadier than wall on a shared
machine). Targets: first render <= 3 s, filter change <= 1 s.

Usage: .venv/bin/python bench/dashboard_render.py [--rebuild] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

WORK = ROOT / "bench" / ".work"
DB = WORK / "dashboard_render.duckdb"
APP = ROOT / "dashboards" / "app.py"


def build_fixture() -> None:
    from metrics_scale import FIXTURE_SQL

    from analytics.store.connection import open_writer

    WORK.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".snapshot", ".wal", ".lock"):
        Path(str(DB) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    with open_writer(DB, source="bench", target="dashboard_render") as session:
        session.con.execute(FIXTURE_SQL)
    print(f"fixture built in {time.perf_counter() - started:.1f} s: {DB}", flush=True)


def child() -> None:
    """One measurement in this (fresh) process; prints a JSON line."""
    import streamlit  # noqa: F401 - server start-up, excluded from the render time
    from streamlit.testing.v1 import AppTest

    from analytics.metrics.engine import MetricsQuery, compute_metrics
    from analytics.store.connection import open_reader
    from dashboards.filters import default_window
    from dashboards.metrics_source import _midnight

    os.environ["GITOPS_DORA_DB"] = str(DB)
    con = open_reader(DB)
    (latest,) = con.execute(
        "SELECT CAST(max(deployed_at) AT TIME ZONE 'UTC' AS DATE) FROM deployments").fetchone() or (None,)
    con.close()
    since, until = default_window(latest, latest)
    times: dict[str, list[float]] = {}

    def timed(name: str, work: Any) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        work()
        times[name] = [time.perf_counter() - wall, time.process_time() - cpu]

    def engine_call() -> None:
        con = open_reader(DB)
        query = MetricsQuery(since=_midnight(since.isoformat()), until=_midnight(until.isoformat()),
                             group_by=("environment",), compare_previous=True)
        compute_metrics(con, query)
        con.close()

    timed("baseline", engine_call)
    at = AppTest.from_file(str(APP), default_timeout=300)
    timed("first", at.run)
    assert not at.exception and not at.error, (at.exception, at.error)
    assert len(at.metric) >= 5, "Overview drew no tiles"
    assert at.query_params["since"] == since.isoformat()
    at.sidebar.selectbox[1].set_value("svc-007")
    timed("change", at.run)
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.query_params["service"] == "svc-007" and len(at.metric) >= 5
    # a new browser session once the default view is computed (by the warm-up or an earlier session)
    again = AppTest.from_file(str(APP), default_timeout=300)
    timed("warm", again.run)
    assert len(again.metric) >= 5
    print(json.dumps({**times, "window": [since.isoformat(), until.isoformat()]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="regenerate the fixture")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes to measure (median)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.rebuild or not DB.exists():
        build_fixture()
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    results = []
    for _ in range(args.runs):
        proc = subprocess.run([sys.executable, __file__, "--child"], capture_output=True, text=True,
                              env=env, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"measurement failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    window = results[0]["window"]

    def median(name: str, index: int) -> float:
        return statistics.median(r[name][index] for r in results)

    base, base_cpu = median("baseline", 0), median("baseline", 1)
    print(f"default Overview window: [{window[0]}, {window[1]}), medians of {args.runs} fresh processes")
    print(f"{'':42s} {'wall':>8s} {'ratio':>6s} {'CPU':>8s} {'ratio':>6s}")
    rows = [("baseline", "baseline: the Overview's engine call", ""),
            ("first", "first render of Overview (server side)", "target 3 s"),
            ("change", "filter change (one service)", "target 1 s"),
            ("warm", "new session, default view computed", "(warm-up)")]
    for name, label, target in rows:
        wall, cpu = median(name, 0), median(name, 1)
        verdict = ""
        if target.startswith("target"):
            limit = float(target.split()[1])
            verdict = f"{target}: {'met' if wall <= limit else 'NOT met'}"
        print(f"{label:42s} {wall:7.3f}s {wall / base:5.2f}x {cpu:7.3f}s {cpu / base_cpu:5.2f}x   {verdict}")


if __name__ == "__main__":
    main()

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
It prints the times and their ratios to the baseline. Targets: first render <= 3 s, filter change
<= 1 s.

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
    started = time.perf_counter()
    con = open_reader(DB)
    compute_metrics(con, MetricsQuery(since=_midnight(since.isoformat()), until=_midnight(until.isoformat()),
                                      group_by=("environment",), compare_previous=True))
    con.close()
    baseline = time.perf_counter() - started

    at = AppTest.from_file(str(APP), default_timeout=300)
    started = time.perf_counter()
    at.run()
    first = time.perf_counter() - started
    assert not at.exception and not at.error, (at.exception, at.error)
    assert len(at.metric) >= 5, "Overview drew no tiles"
    assert at.query_params["since"] == since.isoformat()
    at.sidebar.selectbox[1].set_value("svc-007")
    started = time.perf_counter()
    at.run()
    change = time.perf_counter() - started
    assert not at.exception and not at.error, (at.exception, at.error)
    assert at.query_params["service"] == "svc-007" and len(at.metric) >= 5
    # a new browser session once the default view is computed (by the warm-up or an earlier session)
    again = AppTest.from_file(str(APP), default_timeout=300)
    started = time.perf_counter()
    again.run()
    warm = time.perf_counter() - started
    assert len(again.metric) >= 5
    print(json.dumps({"baseline": baseline, "first": first, "change": change, "warm": warm,
                      "window": [since.isoformat(), until.isoformat()]}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="regenerate the fixture")
    parser.add_argument("--runs", type=int, default=3, help="fresh processes to measure (median)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child()
        return
    if args.rebuild or not Path(str(DB) + ".snapshot").exists():
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
    base = statistics.median(r["baseline"] for r in results)
    first = statistics.median(r["first"] for r in results)
    change = statistics.median(r["change"] for r in results)
    warm = statistics.median(r["warm"] for r in results)
    print(f"default Overview window: [{window[0]}, {window[1]}), medians of {args.runs} fresh processes")
    print(f"baseline: the Overview's engine call      {base:.3f} s   1.00")
    print(f"first render of Overview (server side)   {first:.3f} s   {first / base:.2f} x baseline"
          f"   target 3 s: {'met' if first <= 3.0 else 'NOT met'}")
    print(f"filter change (one service)              {change:.3f} s   {change / base:.2f} x baseline"
          f"   target 1 s: {'met' if change <= 1.0 else 'NOT met'}")
    print(f"new session, default view computed       {warm:.3f} s   {warm / base:.2f} x baseline"
          f"   (what the warm-up gives the first visitor after a collection)")


if __name__ == "__main__":
    main()

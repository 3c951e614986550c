"""Benchmark: the throughput family (deployment frequency + lead time) and its views at scale.

Uses the same generated store as ``bench/metrics_scale.py`` (200 services, 1M commits, 100k
deployments, 1M deployment changes), built into its own file so the two benchmarks never share a
database. In one run it times:

* the baseline: a plain join of every deployment change with its commit
  (``deployment_changes JOIN commits``), aggregated, on the same read-only snapshot;
* ``change_lead_times``: the lead-time view over every change (start choice, PR start, baseline
  and negative flags), aggregated the same way;
* the throughput family as the engine runs it for ``metrics --trend week`` over two years
  (scoping to 104 weekly periods, then ``groups/10_throughput.sql``).

It prints absolute times and ratios to the baseline (best of 3 each).

Usage: .venv/bin/python bench/throughput_scale.py [--rebuild]
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORK = ROOT / "bench" / ".work"
DB = WORK / "throughput_scale.duckdb"


def build_fixture() -> None:
    from analytics.store.connection import open_writer
    from bench.metrics_scale import FIXTURE_SQL

    WORK.mkdir(parents=True, exist_ok=True)
    for suffix in ("", ".snapshot", ".wal", ".lock"):
        Path(str(DB) + suffix).unlink(missing_ok=True)
    started = time.perf_counter()
    with open_writer(DB, source="bench", target="throughput_scale") as session:
        session.con.execute(FIXTURE_SQL)
    print(f"fixture built in {time.perf_counter() - started:.1f} s: {DB}")


def best_of(runs: int, action: Callable[[], object]) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="regenerate the fixture")
    args = parser.parse_args()
    if args.rebuild or not Path(str(DB) + ".snapshot").exists():
        build_fixture()

    from analytics.metrics.engine import (
        MetricsQuery,
        _load_periods,
        _scope_changes,
        apply_settings,
        group_files,
        run_family,
    )
    from analytics.metrics.window import Window, parse_instant, periods
    from analytics.store.connection import open_reader
    from bench.metrics_scale import SINCE, UNTIL

    con = open_reader(DB)
    apply_settings(con)
    window = Window(parse_instant(SINCE, "--since"), parse_instant(UNTIL, "--until"))
    query = MetricsQuery(since=window.since, until=window.until, trend="week")
    throughput = next(gf for gf in group_files() if gf.name == "10_throughput")

    def baseline() -> object:
        return con.execute(
            "SELECT count(*), median(epoch(c.author_time)) FROM deployment_changes dc"
            " JOIN commits c ON c.repo = dc.repo AND c.sha = dc.sha"
        ).fetchall()

    def lead_view() -> object:
        return con.execute("SELECT count(*), median(lead_hours) FROM change_lead_times").fetchall()

    def family() -> object:
        # the family's cost includes the per-window lead-time table it joins
        _load_periods(con, periods(window, "week"))
        _scope_changes(con, query, window)
        return run_family(con, throughput, query, window)

    baseline()  # warm the page cache once for all sides
    base = best_of(3, baseline)
    view = best_of(3, lead_view)
    fam = best_of(3, family)
    rows = len(family().rows)  # type: ignore[attr-defined]
    con.close()
    print(f"service x environment x week rows: {rows}")
    print(f"baseline changes JOIN commits:       {base:.3f} s")
    print(f"change_lead_times (all changes):     {view:.3f} s   ratio to baseline = {view / base:.1f}")
    print(f"throughput family, trend week, 2y:   {fam:.3f} s   ratio to baseline = {fam / base:.1f}")


if __name__ == "__main__":
    main()

"""Benchmark: ``gitops-dora metrics --trend week`` over two years at scale.

Fixture (generated with DuckDB SQL straight into a store created by the real migrations; it is a
benchmark fixture, not a load path): 200 services in 20 teams, 1,000,000 commits, 100,000
deployments (80% production, 3% failed attempts, 0.5% rollbacks), 1,000,000 deployment changes,
10,000 incidents (10% naming a root-cause commit), reverts and hotfix commits.

It times, in the same run and on the same data:
* the engine (``compute_metrics``, views included) on the DuckLake store and on a native DuckDB
  file holding the same rows (target: DuckLake at most 1.2x native), checking both give the same JSON;
* the whole CLI command ``gitops-dora metrics --since S --until S+2y --trend week --format json``
  (a subprocess: start-up, views, every metric family, ratings, JSON), and the same without
  ``--trend`` (the plain window);
* the engine alone (``compute_metrics``) in this process;
* the baseline: a plain DuckDB scan of the same tables (an aggregate over every row of commits,
  deployments, deployment_changes and incidents) on a fresh read-only connection.
It prints absolute times, the ratios and the load average before and after (the machine is
shared: compare ratios from one run), with each side's CPU time (user + system, best of the runs),
which load moves far less than wall time. ``--statements`` adds each statement's time in one engine
run on each store.

Usage: .venv/bin/python bench/metrics_scale.py [--rebuild] [--runs N] [--statements]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WORK = ROOT / "bench" / ".work"
DB = WORK / "metrics_scale.ducklake"
NATIVE = WORK / "metrics_scale_native.duckdb"
SINCE = "2023-01-02"
UNTIL = "2025-01-06"  # 104 weeks after SINCE
SERVICES, COMMITS, DEPLOYMENTS, INCIDENTS = 200, 1_000_000, 100_000, 10_000

FIXTURE_TEMPLATE = """
INSERT INTO services
SELECT printf('svc-%03d', i), printf('team-%02d', i % 20) FROM range({SERVICES}) t(i);
INSERT INTO environments VALUES ('production', true), ('staging', false);
INSERT INTO repositories (id, url, local_path)
SELECT printf('svc-%03d', i), 'bench', 'bench' FROM range({SERVICES}) t(i);

-- deployment k of service s (k = i // 200): every ~35 hours over two years
CREATE TEMP TABLE gen_deployments AS
SELECT i,
       'd-' || i AS id,
       printf('svc-%03d', i % {SERVICES}) AS service,
       CASE WHEN i % 5 = 4 THEN 'staging' ELSE 'production' END AS environment,
       TIMESTAMPTZ '{SINCE} 00:00:00+00' + to_seconds(
           (i // {SERVICES}) * (728 * 86400 / ({DEPLOYMENTS} // {SERVICES})) + (i % {SERVICES}) * 97
       ) AS deployed_at,
       CASE WHEN hash(i) % 33 = 0 THEN 'failed' ELSE 'success' END AS status,
       hash(i * 7) % 200 = 0 AS is_rollback
FROM range({DEPLOYMENTS}) t(i);

-- commit j of service s belongs to that service's deployment j // 10, authored hours before it
CREATE TEMP TABLE gen_commits AS
SELECT c,
       printf('svc-%03d', c % {SERVICES}) AS repo,
       md5(c::VARCHAR) || left(md5((c + 1)::VARCHAR), 8) AS sha,
       ((c // {SERVICES}) // 10) * {SERVICES} + c % {SERVICES} AS deployment_index
FROM range({COMMITS}) t(c);

INSERT INTO commits
SELECT g.repo, g.sha,
       CASE WHEN g.c >= {SERVICES}
            THEN [md5((g.c - {SERVICES})::VARCHAR) || left(md5((g.c - {SERVICES} + 1)::VARCHAR), 8)]
            ELSE [] END,
       'Dev ' || (g.c % 50), 'dev' || (g.c % 50) || '@example.com',
       d.deployed_at - to_seconds(3600 + hash(g.c) % (5 * 86400)), '+0000',
       'CI', 'ci@example.com',
       d.deployed_at - to_seconds(1800 + hash(g.c) % 3600), '+0000',
       CASE WHEN g.c % 500 = 7 THEN 'hotfix: null total ' || g.c
            WHEN g.c % 400 = 9 THEN 'Revert "feat: change ' || (g.c - {SERVICES} * 10) || '"'
            WHEN g.c % 97 = 0 THEN 'fix INC-' || (g.c % {INCIDENTS}) || ' retry'
            ELSE 'feat: change ' || g.c END,
       false,
       CASE WHEN g.c % 400 = 9 THEN md5((g.c - {SERVICES} * 10)::VARCHAR)
                                    || left(md5((g.c - {SERVICES} * 10 + 1)::VARCHAR), 8) END
FROM gen_commits g
JOIN gen_deployments d ON d.i = g.deployment_index;

INSERT INTO deployments (id, service, environment, revision, repository, started_at, deployed_at,
                         status, source, source_ref, is_rollback, rollback_target, raw_revision,
                         revision_format)
SELECT d.id, d.service, d.environment, g.sha, d.service, d.deployed_at - INTERVAL 5 MINUTE,
       d.deployed_at, d.status, 'bench', d.id, d.is_rollback, NULL, g.sha, 'sha'
FROM gen_deployments d
LEFT JOIN (SELECT deployment_index, max(sha) AS sha FROM gen_commits GROUP BY ALL) g
  ON g.deployment_index = d.i;

-- each change with its commit's times, as the store's writers keep them (migration 1601)
INSERT INTO deployment_changes (deployment_id, repo, sha, author_time, committer_time)
SELECT 'd-' || g.deployment_index, g.repo, g.sha, c.author_time, c.committer_time
FROM gen_commits g
JOIN gen_deployments d ON d.i = g.deployment_index
JOIN commits c ON c.repo = g.repo AND c.sha = g.sha
WHERE d.status = 'success';

INSERT INTO incidents
SELECT 'INC-' || n,
       printf('svc-%03d', n % {SERVICES}),
       CASE WHEN n % 7 = 0 THEN 'staging' ELSE 'production' END,
       TIMESTAMPTZ '{SINCE} 00:00:00+00' + to_seconds(hash(n) % (728 * 86400)),
       CASE WHEN n % 50 = 0 THEN NULL
            ELSE TIMESTAMPTZ '{SINCE} 00:00:00+00'
                 + to_seconds(hash(n) % (728 * 86400) + 600 + hash(n * 3) % 86400)
       END,
       'generated incident ' || n,
       CASE WHEN n % 10 = 3 THEN left(md5((n * 37 % {COMMITS})::VARCHAR), 10) END,
       'bench', NULL, NULL, NULL
FROM range({INCIDENTS}) t(n);
"""


def fixture_sql(services: int = SERVICES, commits: int = COMMITS, deployments: int = DEPLOYMENTS,
                incidents: int = INCIDENTS) -> str:
    """The fixture's SQL at any scale (tests build a small store with it; every shape the bench
    has, reverts, hotfixes, rollbacks, failed attempts and root causes, is there at any size).
    Deployments must be a multiple of services, commits of 10 x services."""
    return FIXTURE_TEMPLATE.format(SERVICES=services, COMMITS=commits, DEPLOYMENTS=deployments,
                                   INCIDENTS=incidents, SINCE=SINCE)


FIXTURE_SQL = fixture_sql()


def build_fixture() -> None:
    import shutil

    from analytics.store.connection import connect, open_writer

    WORK.mkdir(parents=True, exist_ok=True)
    for path in (DB, Path(str(DB) + "-wal"), Path(str(DB) + "-shm"), NATIVE):
        path.unlink(missing_ok=True)
    shutil.rmtree(str(DB) + ".files", ignore_errors=True)
    started = time.perf_counter()
    with open_writer(DB, source="bench", target="metrics_scale") as session:
        session.con.execute(FIXTURE_SQL)
    print(f"fixture built in {time.perf_counter() - started:.1f} s: {DB}")
    # The same rows in a native DuckDB file: the "same run on a native DuckDB file" baseline.
    con = connect(DB, read_only=True)
    con.execute(f"ATTACH '{NATIVE}' AS native")
    for (table,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'"
    ).fetchall():
        con.execute(f'CREATE TABLE native."{table}" AS SELECT * FROM lake."{table}"')
    con.close()


def fixture_is_current() -> bool:
    """Whether both fixture stores have the schema the code writes (a fixture built before a
    migration, e.g. 1601's change times, would time the readers' fallback for an old store)."""
    from analytics.store.connection import _schema_is_current
    from analytics.store.location import resolve

    if not _schema_is_current(resolve(str(DB))):
        return False
    con = _native()
    try:
        row = con.execute("SELECT count(*) FROM duckdb_columns() WHERE table_name = 'deployment_changes'"
                          " AND column_name = 'author_time'").fetchone()
    finally:
        con.close()
    return bool(row and row[0])


def counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    tables = ("services", "commits", "deployments", "deployment_changes", "incidents")
    return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in tables}  # type: ignore[index]


_SCAN = (
    "SELECT count(*), max(author_time), max(length(subject)), count(reverts_sha) FROM commits",
    "SELECT count(*), max(deployed_at), count(DISTINCT service) FROM deployments",
    "SELECT count(*), max(length(sha)) FROM deployment_changes",
    "SELECT count(*), max(created_at), count(root_cause) FROM incidents",
)


def _native() -> duckdb.DuckDBPyConnection:
    """The native file with the same one-row-per-key views a store reader puts over services,
    environments and repositories: the two sides run the same SQL, so the ratio is the engine's."""
    from analytics.store.dimensions import install_views as install_dimension_views

    con = duckdb.connect(str(NATIVE), read_only=True)
    install_dimension_views(con, str(con.execute("SELECT current_database()").fetchone()[0]))  # type: ignore[index]
    return con


def _lake() -> duckdb.DuckDBPyConnection:
    from analytics.store.connection import open_reader

    return open_reader(DB, install_views=False)


def baseline_scan(opener: Callable[[], duckdb.DuckDBPyConnection]) -> float:
    """A plain scan: one aggregate over every row of each table the metrics read."""
    started = time.perf_counter()
    con = opener()
    for sql in _SCAN:
        con.execute(sql).fetchall()
    con.close()
    return time.perf_counter() - started


def _cpu(who: int = resource.RUSAGE_SELF) -> float:
    """CPU seconds (user + system) of this process's threads or of its finished children: far less
    noisy than wall time on a shared machine."""
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


def cli_metrics(trend: str | None = "week") -> tuple[float, int, float]:
    """The whole CLI command over the two years (weekly trend, or the plain window), JSON on stdout.
    Returns the time, how many groups (group x period rows) it printed and its CPU time."""
    cli = str(Path(sys.executable).with_name("gitops-dora"))
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_DORA_DB", "GITOPS_DORA_DATA_PATH")}
    args = [cli, "--db", str(DB), "metrics", "--since", SINCE, "--until", UNTIL, "--format", "json"]
    if trend:
        args += ["--trend", trend]
    started, cpu = time.perf_counter(), _cpu(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        raise SystemExit(f"metrics failed: {proc.stderr}")
    return elapsed, proc.stdout.count('"deployment_attempts"'), _cpu(resource.RUSAGE_CHILDREN) - cpu


class _TimedConnection:
    """Forwards to a connection and records each statement's time (for ``--statements``)."""

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self.timings: list[tuple[float, str]] = []

    def execute(self, sql: str, *args: object) -> duckdb.DuckDBPyConnection:
        started = time.perf_counter()
        result = self.con.execute(sql, *args)
        self.timings.append((time.perf_counter() - started, " ".join(sql.split())[:90]))
        return result

    def __getattr__(self, name: str) -> object:
        return getattr(self.con, name)


def statement_times(opener: Callable[[], duckdb.DuckDBPyConnection], label: str) -> None:
    """One engine run (--trend week) with the time of every statement over 10 ms printed: where
    the time goes, per family (family_N is the Nth file of analytics/metrics/sql/groups)."""
    from analytics.metrics.engine import MetricsQuery, compute_metrics
    from analytics.metrics.views import install_views
    from analytics.metrics.window import parse_instant

    con = opener()
    install_views(con)
    timed = _TimedConnection(con)
    query = MetricsQuery(since=parse_instant(SINCE, "--since"), until=parse_instant(UNTIL, "--until"),
                         trend="week")
    compute_metrics(timed, query)  # type: ignore[arg-type]
    con.close()
    total = sum(t for t, _ in timed.timings)
    print(f"{label}: {len(timed.timings)} statements, {total:.3f} s of SQL")
    for seconds, sql in timed.timings:
        if seconds >= 0.01:
            print(f"  {seconds:.3f}  {sql}")


def engine_metrics(opener: Callable[[], duckdb.DuckDBPyConnection]) -> tuple[float, str, float]:
    """compute_metrics on a connection from ``opener`` (views installed first, as readers do)."""
    from analytics.json_output import dumps_bytes
    from analytics.metrics.engine import MetricsQuery, compute_metrics
    from analytics.metrics.views import install_views
    from analytics.metrics.window import parse_instant

    started, cpu = time.perf_counter(), _cpu()
    con = opener()
    install_views(con)
    report = compute_metrics(con, MetricsQuery(since=parse_instant(SINCE, "--since"),
                                               until=parse_instant(UNTIL, "--until"), trend="week"))
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu
    con.close()
    return elapsed, hashlib.sha256(dumps_bytes(report.payload())).hexdigest(), cpu


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rebuild", action="store_true", help="regenerate the fixture")
    parser.add_argument("--runs", type=int, default=3, help="best of this many runs of each side")
    parser.add_argument("--statements", action="store_true",
                        help="also print each statement's time in one engine run on each store")
    args = parser.parse_args()
    if args.rebuild or not DB.exists() or not NATIVE.exists() or not fixture_is_current():
        build_fixture()
    print("start:", _load())
    con = _lake()
    print("rows:", counts(con))
    con.close()
    baseline_scan(_lake)
    baseline_scan(_native)  # warm the page cache for both sides
    scan = min(baseline_scan(_native) for _ in range(args.runs))
    lake_scan = min(baseline_scan(_lake) for _ in range(args.runs))
    # the two stores' runs alternate, so a change in the machine's load hits both alike
    native_runs, lake_runs = [], []
    for _ in range(args.runs):
        native_runs.append(engine_metrics(_native))
        lake_runs.append(engine_metrics(_lake))
    native, lake = min(t for t, _, _ in native_runs), min(t for t, _, _ in lake_runs)
    native_cpu, lake_cpu = min(c for _, _, c in native_runs), min(c for _, _, c in lake_runs)
    same = {h for _, h, _ in native_runs} == {h for _, h, _ in lake_runs}
    week_runs = [cli_metrics("week") for _ in range(args.runs)]
    plain_runs = [cli_metrics(None) for _ in range(args.runs)]
    cli, groups = min(t for t, _, _ in week_runs), week_runs[0][1]
    plain, plain_groups = min(t for t, _, _ in plain_runs), plain_runs[0][1]
    cli_cpu, plain_cpu = min(c for _, _, c in week_runs), min(c for _, _, c in plain_runs)
    print(f"groups x weeks returned: {groups} (plain window: {plain_groups} groups);"
          f" DuckLake and native JSON identical: {same}")
    print(f"baseline plain scan, native file:        {scan:.3f} s")
    print(f"plain scan, DuckLake:                    {lake_scan:.3f} s   "
          f"ratio to native = {lake_scan / scan:.2f}")
    print(f"compute_metrics --trend week, native:    {native:.3f} s   ratio to scan = {native / scan:.1f}"
          f"   CPU {native_cpu:.3f} s")
    print(f"compute_metrics --trend week, DuckLake:  {lake:.3f} s   ratio to native = {lake / native:.2f}"
          f" (target <= 1.2)   CPU {lake_cpu:.3f} s, ratio {lake_cpu / native_cpu:.2f}")
    print(f"metrics --trend week (CLI, DuckLake):    {cli:.3f} s   ratio to scan = {cli / scan:.1f}"
          f" (target <= 1.5 s)   CPU {cli_cpu:.3f} s")
    print(f"metrics, plain window (CLI, DuckLake):   {plain:.3f} s   ratio to scan = {plain / scan:.1f}"
          f" (target <= 1 s)   CPU {plain_cpu:.3f} s")
    print("end:", _load())
    if args.statements:
        statement_times(_native, "native")
        statement_times(_lake, "DuckLake")
    if not same:
        raise SystemExit("the two stores gave different metrics")


if __name__ == "__main__":
    main()

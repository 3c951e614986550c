"""The report's statements grouped into transactions, and store tables copied without column
statistics, give the numbers of the plain engine and leave the connection as they found it.

On DuckLake each auto-committed statement reads the catalog's snapshot row, and a table without
statistics (an empty one) is looked up again for every column by the optimizers that ask for
them; the engine therefore runs its statements in a few transactions (analytics/metrics/
transactions.py) and copies the small store tables with those optimizers off. Each test builds a
real store (the ``bench/metrics_scale.py`` fixture SQL at a small scale) and compares byte for
byte the JSON of the engine as it runs against the engine with every statement auto-committed,
the optimizers untouched and nothing copied or computed once (the plain definitions), on a store
whose tags, reconciler events, multi-repository deployments and pull requests are present, and on
one where they are empty.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from analytics.metrics import engine, transactions
from analytics.metrics.engine import MetricsQuery, _one_thread, _optimizers_off
from analytics.metrics.transactions import in_transaction
from analytics.store.connection import open_reader, open_writer
from bench.metrics_scale import fixture_sql
from tests.metrics_queries import QUERIES, payload, pull_requests_sql, reader
from tests.s12_h4_reports import EngineResults
from tests.store_query import catalog_reads_of

# Rows for the tables the bench fixture leaves empty: merged PRs (hotfix branches, titles naming
# incidents), tags (and incidents naming one as root cause), failed syncs and deployments that
# ship a second repository.
EXTRA_SQL = pull_requests_sql(100) + """
INSERT INTO tags
SELECT repo, 'rel-' || left(sha, 6), sha, true, author_time, 'dev'
FROM commits WHERE hash(sha) % 40 = 0;

INSERT INTO incidents
SELECT 'INC-T' || row_number() OVER (ORDER BY t.name), t.repo, 'production',
       t.tagged_at + INTERVAL 2 DAY, t.tagged_at + INTERVAL 3 DAY, 'tag incident', t.name,
       'bench', NULL, NULL, NULL
FROM tags t WHERE hash(t.name) % 3 = 0;

INSERT INTO reconciler_events (id, reconciler, kind, name, service, environment, event_type,
                               occurred_at, source, deployment_id)
SELECT 'ev-' || d.id, 'argocd', 'Application', d.service, d.service, d.environment, 'sync_failed',
       d.deployed_at + INTERVAL 10 MINUTE, 'cluster', d.id
FROM deployments d WHERE hash(d.id) % 13 = 0;

INSERT INTO deployment_revisions
SELECT d.id, 'shared-config', left(md5(d.id), 12), NULL, 'sha'
FROM deployments d WHERE hash(d.id) % 4 = 0;
"""
EMPTIED = ("pull_requests", "tags", "reconciler_events", "deployment_revisions")


def _build(path: Path, extra: str) -> Path:
    with open_writer(path, source="test-fixture") as session:
        session.con.execute(fixture_sql(services=10, commits=5_000, deployments=500, incidents=120))
        if extra:
            session.con.execute(extra)
    return path


@pytest.fixture(scope="module")
def full_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("full") / "store.duckdb", EXTRA_SQL)


@pytest.fixture(scope="module")
def bare_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _build(tmp_path_factory.mktemp("bare") / "store.duckdb", "")


@pytest.fixture(scope="module")
def full_as_is(full_db: Path) -> EngineResults:
    """The unpatched engine's JSON per query on ``full_db`` (which nothing writes to): ``by team,
    month`` is compared with the plain engine and with a run inside a caller's transaction, one run
    serves both (tests/s12_h4_reports.py)."""
    return EngineResults()


@pytest.fixture
def full(full_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from reader(full_db)


@pytest.fixture
def bare(bare_db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    yield from reader(bare_db)


def _plain_engine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every statement auto-committed, the optimizers as they are, nothing copied or shared."""
    monkeypatch.setattr(transactions, "in_transaction", lambda con: True)
    monkeypatch.setattr(engine, "STATISTICS_OPTIMIZERS", ())
    monkeypatch.setattr(engine, "COPIED_TABLES", ())
    monkeypatch.setattr(engine, "COPIED_WHEN_SMALL", {})
    monkeypatch.setattr(engine, "COPIED_WHEN_FEW_DEPLOYMENTS", {})
    monkeypatch.setattr(engine, "SHARED_VIEWS", ())


def _temp_tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    """The TEMP tables, apart from the two every report leaves for the next (the periods and the
    services in several teams, both rebuilt by each report)."""
    rows = con.execute("SELECT table_name FROM duckdb_tables() WHERE database_name = 'temp'").fetchall()
    return {str(r[0]) for r in rows} - {"metric_periods", engine.SERVICE_TEAMS}


def _disabled_optimizers(con: duckdb.DuckDBPyConnection) -> str:
    return str(con.execute("SELECT current_setting('disabled_optimizers')").fetchone()[0])  # type: ignore[index]


@pytest.mark.parametrize("name", list(QUERIES))
def test_grouped_statements_and_copies_change_no_number(
    full: duckdb.DuckDBPyConnection, full_as_is: EngineResults, monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    query = QUERIES[name]
    fast = full_as_is.payload(full, query)
    _plain_engine(monkeypatch)
    assert fast == payload(full, query)
    groups = json.loads(fast)["groups"]
    assert any(g["deployments"] for g in groups)
    if name != "default window, committer":  # the default window is the data's: some incidents
        assert any(g.get("prs_deployed") for g in groups)  # the copied PRs count


@pytest.mark.parametrize("name", ["trend week", "service filter, previous"])
def test_empty_tables_copied_change_no_number(
    bare: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, name: str,
) -> None:
    """The tables the fixture leaves empty are copied (empty) with the statistics optimizers off."""
    database = str(bare.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    for table in EMPTIED:
        assert bare.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    assert set(engine.small_tables(bare, database, deployments_copied=False)) == {
        "pull_requests", "tags", "reconciler_events"}
    fast = payload(bare, QUERIES[name])
    _plain_engine(monkeypatch)
    assert fast == payload(bare, QUERIES[name])


def test_the_report_leaves_the_connection_as_it_found_it(full: duckdb.DuckDBPyConnection) -> None:
    """No transaction left open, no TEMP copy or family table left, the optimizer setting and the
    shared views' definitions put back (the views read the store again afterwards)."""
    full.execute("SET disabled_optimizers = 'top_n'")
    before = _temp_tables(full)
    attribution = full.execute("SELECT count(*) FROM incident_attribution").fetchone()
    payload(full, QUERIES["trend week"])
    assert not in_transaction(full)
    assert _temp_tables(full) == before
    assert _disabled_optimizers(full) == "top_n"
    views = {str(r[0]): str(r[1]) for r in full.execute(
        "SELECT view_name, sql FROM duckdb_views() WHERE database_name = 'temp'").fetchall()}
    assert "__once" not in views["incident_attribution"] and "__once" not in views["revert_chain"]
    assert full.execute("SELECT count(*) FROM incident_attribution").fetchone() == attribution


def test_inside_a_callers_transaction_the_report_runs_in_it(
    full: duckdb.DuckDBPyConnection, full_as_is: EngineResults, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A BEGIN inside a transaction would abort the caller's: the engine runs in the caller's
    transaction instead, which stays open, with the same numbers."""
    query = QUERIES["by team, month"]
    alone = full_as_is.payload(full, query)
    full.execute("BEGIN TRANSACTION")
    assert in_transaction(full)
    inside = payload(full, query)
    assert in_transaction(full)
    full.execute("COMMIT")
    assert inside == alone
    assert not in_transaction(full)


def test_a_failing_family_rolls_back_and_reports_its_own_error(
    full: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
) -> None:
    """A statement that fails inside a group aborts that transaction: the error shown is the
    family's own (not the refusal of the clean-up statements that follow), the transaction is
    rolled back, and the connection is usable and as before (no TEMP leftovers, optimizers back)."""
    broken = tmp_path / "99_broken.sql"
    broken.write_text("-- fact: deployment_times\n-- time: deployed_at\n"
                      "SELECT {group_keys}, count(*) AS n, max(error('family failed on purpose')) AS boom\n"
                      "FROM scoped GROUP BY {group_keys};\n")
    files = [*engine.group_files(), engine.parse_group_file(broken)]
    monkeypatch.setattr(engine, "group_files", lambda: files)
    before = _temp_tables(full)
    with pytest.raises(duckdb.Error, match="family failed on purpose"):
        payload(full, QUERIES["trend week"])
    assert not in_transaction(full)
    assert _temp_tables(full) == before
    assert _disabled_optimizers(full) == ""
    assert full.execute("SELECT count(*) > 0 FROM deployments").fetchone() == (True,)
    monkeypatch.setattr(engine, "group_files", lambda: files[:-1])
    assert json.loads(payload(full, QUERIES["whole window"]))["groups"]


def _catalog_queries(db: Path, query: MetricsQuery, monkeypatch: pytest.MonkeyPatch | None) -> int:
    """How many queries DuckLake sent to its catalog for one report (its own log)."""
    con = open_reader(db)
    try:
        if monkeypatch is not None:
            _plain_engine(monkeypatch)
        con.execute("CALL enable_logging('DuckLakeMetadata')")
        payload(con, query)
        return int(con.execute("SELECT count(*) FROM duckdb_logs WHERE type = 'DuckLakeMetadata'")
                   .fetchone()[0])  # type: ignore[index]
    finally:
        con.close()


def test_grouping_and_plain_copies_read_the_catalog_less(
    bare_db: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the grouping is for: far fewer catalog queries than auto-committed statements and
    copies with every optimizer (measured on the bench fixture: 187 -> 82 per --trend week
    report)."""
    query = QUERIES["trend week"]
    grouped = _catalog_queries(bare_db, query, None)
    plain = _catalog_queries(bare_db, query, monkeypatch)
    assert 0 < grouped < plain * 0.75


def test_asking_the_connection_sends_no_catalog_query(bare_db: Path) -> None:
    """The transaction check and the setting reads of a report name their functions
    ``system.main.…``: unqualified, each statement started a transaction on the DuckLake catalog
    (about 1 ms of CPU each, six per report)."""
    con = open_reader(bare_db)
    try:
        def ask() -> None:
            assert in_transaction(con) is False
            with _optimizers_off(con, ["join_order"]), _one_thread(con):
                pass
        assert catalog_reads_of(con, ask) == 0
        # the same question unqualified does reach the catalog: the count above can fail
        assert catalog_reads_of(con, lambda: con.execute("SELECT current_setting('threads')")) > 0
    finally:
        con.close()


def test_commits_and_changes_are_copied_only_in_a_store_of_few_deployments(
    full: duckdb.DuckDBPyConnection, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The fixture's 500 deployments are few: its commits and changes (5,000 each) are copied,
    counted on the report's copy of the deployments; with a lower bar, or without that copy (a
    caller's own), they are not even counted."""
    database = str(full.execute("SELECT current_database()").fetchone()[0])  # type: ignore[index]
    assert engine.copy_table(full, database, "deployments")
    try:
        assert {"commits", "deployment_changes"} <= set(
            engine.small_tables(full, database, deployments_copied=True))
        assert not {"commits", "deployment_changes"} & set(
            engine.small_tables(full, database, deployments_copied=False))
        monkeypatch.setattr(engine, "FEW_DEPLOYMENTS", 499)
        assert not {"commits", "deployment_changes"} & set(
            engine.small_tables(full, database, deployments_copied=True))
        monkeypatch.setattr(engine, "FEW_DEPLOYMENTS", 500)
        monkeypatch.setitem(engine.COPIED_WHEN_FEW_DEPLOYMENTS, "commits", 4_999)
        assert set(engine.small_tables(full, database, deployments_copied=True)) & {
            "commits", "deployment_changes"} == {"deployment_changes"}
    finally:
        full.execute("DROP TABLE temp.main.deployments")


def test_copied_commits_and_changes_spare_the_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the copies of commits and changes are for: each statement that scanned them in the
    store asked the catalog for their files and, while they are empty (a store of imported or
    reconciler deployments only, as the demo's and many tests' are), for every column's statistics
    again (205 catalog statements per report on such a store, 53 with the copies)."""
    db = tmp_path / "deployments-only.ducklake"
    with open_writer(db, source="test-fixture") as session:
        session.con.execute(
            "INSERT INTO services VALUES ('api', 'team-a');"
            " INSERT INTO environments VALUES ('production', true);"
            " INSERT INTO deployments (id, service, environment, revision, deployed_at, status, source)"
            " SELECT 'd' || i, 'api', 'production', 'v' || i,"
            " TIMESTAMPTZ '2024-01-01 00:00:00+00' + to_days(i), 'success', 'test' FROM range(3) t(i)")
    query = QUERIES["trend week"]
    con = open_reader(db)
    try:
        fast = payload(con, query)
        copied = catalog_reads_of(con, lambda: payload(con, query))
        monkeypatch.setattr(engine, "COPIED_WHEN_FEW_DEPLOYMENTS", {})
        assert payload(con, query) == fast
        left = catalog_reads_of(con, lambda: payload(con, query))
    finally:
        con.close()
    assert json.loads(fast)["groups"], fast[:300]
    assert 0 < copied < left * 0.5, (copied, left)

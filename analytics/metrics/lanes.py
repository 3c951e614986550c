"""A report's metric families on two connections at once, so both cores work through its statements.

Opt-in: :func:`analytics.metrics.engine.compute_metrics` runs them only with ``lanes=True`` or
``GITOPS_DORA_METRICS_LANES=1`` (on two cores they saved CPU but no wall time, and some reports
stalled about a second: docs/performance.md, "Metrics lanes, session 11").

Why: a report is a chain of statements, most of them too small for DuckDB to spread over its
threads (the families' joins and aggregates over 100k deployments, the shared views), so on two
cores one mostly waits while the other works, and a second worker thread inside one statement
costs coordination CPU besides. The families split into two independent chains:

* lane A, the report's own connection: the copies, the SHARED_VIEWS computed once, then
  ``window_changes`` and the families that read it (throughput, PR breakdown), then the merge;
* lane B, a second connection (``con.cursor()``: the same DuckDB instance, hence the same attached
  store pinned at the same snapshot): every other family (stability, incidents, deployment
  frequency), reading the shared views lane A computed.

Each lane runs its statements on its own thread (DuckDB releases the GIL while it executes), with
DuckDB's ``threads`` lowered by one meanwhile (``threads`` is one setting for the whole instance:
two lanes on two cores then run one statement per core), and each lane groups its statements in
transactions (transactions.py) as the serial engine does. The results are the serial engine's: the
same views, settings and tables, the same SQL per family and the same merge.

What a second connection does not share with the first is its TEMP catalog, session variables and
search path, so lane B is set up like the first: the view files installed, :func:`apply_settings`
with the same config. The store tables the serial engine copies into TEMP tables (COPIED_TABLES,
the small COPIED_WHEN_SMALL ones) and the shared views' tables go to an in-memory database attached
for the report, which both lanes search before the store (their ``search_path``); the families of
lane B write their results there too, for lane A's merge. The database is detached afterwards.

A caller's own TEMP objects cannot be seen by lane B, so the report runs on one connection (the
serial engine) whenever the connection holds a TEMP object named like a store table the views read
(the dashboard's copies and its ``services`` view, a test's stand-in for ``deployment_changes``) or
a TEMP view that the view files do not define as they stand (a replaced metric view), inside a
caller's transaction, when DuckDB may use fewer than LANE_MIN_THREADS threads (one thread:
``GITOPS_DORA_DUCKDB_THREADS=1``, a CronJob limited to one CPU), or when either lane has no family.
A caller that replaces one of the view files' TEMP macros must call the serial engine
(``compute_metrics(..., lanes=False)``): macros are not compared.

DuckDB's ``disabled_optimizers`` is an instance setting too: only lane A changes it (the copies
before lane B starts, ``window_changes``' plan), lane B never does, so the two never restore each
other's value. Lane A computes the shared views before ``window_changes`` because incident
attribution planned without that optimizer costs twice the CPU (0.22-0.25 -> 0.37-0.43 s on the
bench store); lane B's families, planned with or without it, cost the same (stability 0.30-0.32 s
either way) and give the same rows in any case.
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field

import duckdb

from analytics.config import Config
from analytics.metrics import engine
from analytics.metrics.transactions import StatementGroups
from analytics.metrics.window import Period, Window

# Lanes only when DuckDB may use at least this many threads: with one (GITOPS_DORA_DUCKDB_THREADS=1,
# a CPU limit of one core) the second lane would only take turns with the first.
LANE_MIN_THREADS = 2
# The store tables the views and families read: a TEMP table of one of these names on the caller's
# connection would be read by lane A and not by lane B.
STORE_TABLES: tuple[str, ...] = (
    "deployments", "services", "environments", "incidents", "deployment_revisions", "pull_requests",
    "reconciler_events", "tags", "commits", "deployment_changes",
)
_VIEW_NAME = re.compile(r"TEMP\s+VIEW\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS", re.IGNORECASE)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = re.compile(r"--[^\n]*")
_work_names = itertools.count(1)


def split_families(files: Sequence[engine.GroupFile]) -> tuple[list[int], list[int]]:
    """The indices of the families for lane A and for lane B (see the module docstring).

    A family goes to lane A when the views it reaches (its fact view and the names its body
    mentions, then the names those views' files mention, transitively; comments left out) include
    ``window_changes``, which only lane A builds; every other family goes to lane B."""
    from analytics.metrics.views import view_files

    defined: dict[str, set[str]] = {}
    for path in view_files():
        text = _COMMENT.sub("", path.read_text())
        words = set(_WORD.findall(text))
        for name in _VIEW_NAME.findall(text):
            defined[name] = words
    lane_a: list[int] = []
    lane_b: list[int] = []
    for index, gf in enumerate(files):
        reached = {gf.fact, *_WORD.findall(_COMMENT.sub("", gf.body))}
        todo = [w for w in reached if w in defined]
        while todo:
            for word in defined[todo.pop()]:
                if word not in reached:
                    reached.add(word)
                    if word in defined:
                        todo.append(word)
        (lane_a if "window_changes" in reached else lane_b).append(index)
    return lane_a, lane_b


def _threads(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT current_setting('threads')").fetchone()
    return int(row[0]) if row and row[0] is not None else 1


def _temp_views(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """The connection's own TEMP views and their SQL (``duckdb_views()`` reads no store catalog:
    about 2 ms, against 45 ms for ``duckdb_tables()``, which sizes every store table)."""
    rows = con.execute("SELECT view_name, sql FROM duckdb_views() WHERE temporary AND NOT internal"
                       " AND database_name = 'temp'").fetchall()
    return {str(name): str(sql) for name, sql in rows}


def _temp_store_tables(con: duckdb.DuckDBPyConnection, transactions: StatementGroups) -> list[str]:
    """The STORE_TABLES names the connection has a TEMP object of, probed one by one in one
    transaction (about 0.5 ms each there, against 3 ms auto-committed)."""
    found = []
    with transactions.group():
        for name in STORE_TABLES:
            try:
                con.execute(f"SELECT 1 FROM temp.main.{name} LIMIT 0")
            except duckdb.CatalogException:
                continue
            found.append(name)
    return found


def wanted(con: duckdb.DuckDBPyConnection, files: Sequence[engine.GroupFile],
           transactions: StatementGroups) -> tuple[list[int], list[int]] | None:
    """The two lanes' families when the report may run in lanes, else None (the serial engine)."""
    if not transactions.own or _threads(con) < LANE_MIN_THREADS:
        return None
    lane_a, lane_b = split_families(files)
    if not lane_a or not lane_b or _temp_store_tables(con, transactions):
        return None
    return lane_a, lane_b


@dataclass
class _Pass:
    """One run of the families: a window and its periods (two for --compare-previous when a family
    body reads the window's edges), and lane B's family tables once they are written."""

    window: Window
    spans: list[Period]
    lane_b_tables: list[engine.FamilyTable] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)


class _LaneB:
    """Lane B's thread and what it hands over: readiness (set up and checked) and each pass."""

    def __init__(self) -> None:
        self.ready = threading.Event()
        self.copied = threading.Event()  # lane A's copies are in the work database
        self.planned = threading.Event()  # lane A knows the window and its passes
        self.shared = threading.Event()  # lane A has computed the shared views into the work database
        self.passes: list[_Pass] = []
        self.error: BaseException | None = None
        self.declined = False
        self.abort = False  # lane A failed: stop at the next step
        self.thread: threading.Thread | None = None

    def wait(self, event: threading.Event) -> None:
        """Block until lane B has set ``event``; re-raise lane B's error."""
        while not event.wait(0.5):
            if self.thread is not None and not self.thread.is_alive():
                break
        if self.error is not None:
            raise self.error
        if not event.is_set():
            raise RuntimeError("the second metrics lane stopped without a result")


def _copy_into(
    con: duckdb.DuckDBPyConnection, database: str, work: str, transactions: StatementGroups
) -> None:
    """Copy the COPIED_TABLES and small COPIED_WHEN_SMALL store tables into ``work`` as the serial
    engine copies them into TEMP tables: one transaction, statistics optimizers off, one thread."""
    names = [*engine.COPIED_TABLES, *engine._small_tables(con, database)]
    with engine._without_column_statistics(con), engine._one_thread(con), transactions.group():
        for name in names:
            source = f"{engine._quote(database)}.main.{name}"
            con.execute(f"CREATE TABLE {work}.main.{name} AS SELECT * FROM {source}")


def _search_path(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute("SELECT current_setting('search_path')").fetchone()
    return str(row[0]) if row and row[0] is not None else ""


def _search_work_first(con: duckdb.DuckDBPyConnection, work: str, before: str) -> None:
    """Resolve unqualified names in ``work`` before the store (after TEMP, which always comes first):
    the views then read the copies there as the serial engine's read its TEMP copies, ``rowid``
    included, and the store for every table not copied. A search path is the connection's own."""
    path = ",".join(p for p in (f"{work}.main", before) if p)
    con.execute(f"SET search_path = {engine._str_literal(path)}")


def _shared_into(con: duckdb.DuckDBPyConnection, work: str, transactions: StatementGroups) -> None:
    """Compute each SHARED_VIEWS view once into ``work`` (one transaction: no shared view reads
    another), as the serial engine does into TEMP tables, for lane B's families. Lane A's views are
    left as they are (its families do not read them): a report that lane B declines then runs
    serially over the caller's own definitions."""
    with transactions.group():
        for name in engine.SHARED_VIEWS:
            con.execute(f"CREATE TABLE {work}.main.{name}__once AS SELECT * FROM {name}")


def _point_at_shared(con: duckdb.DuckDBPyConnection, work: str, transactions: StatementGroups) -> None:
    """Lane B's shared views read the tables lane A computed (lane B's connection closes after)."""
    with transactions.group():
        for name in engine.SHARED_VIEWS:
            con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {work}.main.{name}__once")


def _lane_b(
    lane: _LaneB, con: duckdb.DuckDBPyConnection, database: str, config: Config, lead_time_start: str,
    expected_views: dict[str, str], work: str, files: Sequence[engine.GroupFile], indices: Sequence[int],
    query: engine.MetricsQuery,
) -> None:
    """Lane B's whole work, on its own connection and thread: set up like lane A's connection
    (declined when the views differ), then the shared views once and its families per pass."""
    from analytics.metrics.views import install_views

    try:
        con.execute(f"USE {engine._quote(database)}")
        engine.apply_settings(con, config, lead_time_start=lead_time_start)
        install_views(con)
        lane.declined = _temp_views(con) != expected_views
        lane.ready.set()
        lane.copied.wait()
        if lane.declined or lane.abort:
            return
        transactions = StatementGroups(con)
        _search_work_first(con, work, _search_path(con))
        lane.planned.wait()
        lane.shared.wait()
        if lane.abort:
            return
        _point_at_shared(con, work, transactions)
        for number, each in enumerate(lane.passes):
            if lane.abort:
                return
            only = engine._single_period(each.spans)
            with transactions.group():
                engine._load_periods(con, each.spans)
            with transactions.group():
                for index in indices:
                    table = f"{work}.main.family_{number}_{index}"
                    each.lane_b_tables.append(
                        engine._family_table(con, files[index], query, each.window, table, only))
            each.done.set()
    except BaseException as exc:  # handed to lane A, which raises it
        lane.error = exc
    finally:
        lane.ready.set()


@contextmanager
def _threads_for_lanes(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's instance-wide ``threads`` one lower while the lanes run (each lane's own thread
    executes its statements too: on two cores, one statement per core), put back afterwards.

    Tried and dropped: the connection's own setting while lane A works alone (``window_changes``,
    while lane B sets itself up and waits) and once it waits for lane B: on the bench store the
    weekly report's engine took 1.97-2.02 s of CPU against 1.73-1.80 (load 10, alternating)."""
    before = _threads(con)
    con.execute(f"SET threads = {max(1, before - 1)}")
    try:
        yield
    finally:
        con.execute(f"SET threads = {before}")


def run(
    con: duckdb.DuckDBPyConnection, config: Config, lead_time_start: str, files: list[engine.GroupFile],
    lanes: tuple[list[int], list[int]], query: engine.MetricsQuery, transactions: StatementGroups,
    make_passes: Callable[[Window, list[Period]], list[tuple[Window, list[Period]]]],
) -> tuple[Window, list[Period], list[engine.WindowResult]] | None:
    """The report's window, periods and each pass's merged result, computed in two lanes; None
    when lane B declined (the caller then runs the serial engine, on a connection left as it was)."""
    lane_a, lane_b = lanes
    row = con.execute("SELECT current_database()").fetchone()
    database = str(row[0]) if row else "main"
    work = f"gitops_dora_lane_{next(_work_names)}"
    try:
        con.execute(f"ATTACH ':memory:' AS {work}")
    except duckdb.Error:
        # an instance opened read-only (a native DuckDB file opened with read_only=True) refuses
        # any in-memory database; the serial engine needs none (review s11 R1)
        return None
    other = con.cursor()
    lane = _LaneB()
    search_path = _search_path(con)
    searched = False
    a_tables: list[str] = []
    failed = True
    try:
        with _threads_for_lanes(con):
            try:
                lane.thread = threading.Thread(
                    target=_lane_b, name="metrics-lane-b", daemon=True,
                    args=(lane, other, database, config, lead_time_start, _temp_views(con), work, files,
                          lane_b, query))
                lane.thread.start()
                try:
                    _copy_into(con, database, work, transactions)
                    searched = True
                    _search_work_first(con, work, search_path)
                finally:
                    lane.copied.set()
                window = engine.data_window(con, query)
                spans = engine.periods(window, query.trend)
                lane.passes.extend(_Pass(w, s) for w, s in make_passes(window, spans))
                lane.planned.set()
                try:
                    _shared_into(con, work, transactions)
                finally:
                    lane.shared.set()
                results = []
                for number, each in enumerate(lane.passes):
                    own = _lane_a_pass(con, files, lane_a, query, each, number, transactions, a_tables)
                    # checked this late so that lane A starts at once: lane B declines only for a
                    # caller that changed a view, whose report then runs serially from the start
                    lane.wait(lane.ready)
                    if lane.declined:
                        failed = False
                        return None
                    lane.wait(each.done)
                    by_index = {**dict(zip(lane_a, own, strict=True)),
                                **dict(zip(lane_b, each.lane_b_tables, strict=True))}
                    merged = [by_index[i] for i in sorted(by_index)]
                    results.append(engine._merge(con, merged, query.group_by))
                failed = False
                return window, spans, results
            finally:
                if failed:
                    lane.abort = True
                    with contextlib.suppress(duckdb.Error):
                        other.interrupt()
                lane.copied.set()
                lane.planned.set()
                lane.shared.set()
                if lane.thread is not None:
                    lane.thread.join()
    finally:
        with contextlib.suppress(duckdb.Error):
            other.close()
        statements = [*([f"SET search_path = {engine._str_literal(search_path)}"] if searched else []),
                      "DROP VIEW IF EXISTS scoped",
                      *(f"DROP TABLE IF EXISTS {table}" for table in ("window_changes", *a_tables))]
        engine._clean_up(con, statements, failed=failed, transactions=None if failed else transactions)
        with _no_error_if(failed):
            con.execute(f"DETACH {work}")


@contextmanager
def _no_error_if(failed: bool) -> Iterator[None]:
    """Best effort after a failure (the first error is the one to show), strict otherwise."""
    if failed:
        with contextlib.suppress(duckdb.Error):
            yield
        return
    yield


def _lane_a_pass(
    con: duckdb.DuckDBPyConnection, files: list[engine.GroupFile], indices: Sequence[int],
    query: engine.MetricsQuery, each: _Pass, number: int, transactions: StatementGroups,
    created: list[str],
) -> list[engine.FamilyTable]:
    """Lane A's part of one pass: the periods and ``window_changes``, then its families, in the
    serial engine's transactions."""
    only = engine._single_period(each.spans)
    with engine._optimizers_off(con, engine.WINDOW_CHANGES_OPTIMIZERS), transactions.group():
        engine._load_periods(con, each.spans)
        engine._scope_changes(con, query, each.window)
    tables = []
    with transactions.group():
        for index in indices:
            name = f"family_{number}_{index}"
            created.append(name)
            tables.append(engine._family_table(con, files[index], query, each.window, name, only))
    return tables


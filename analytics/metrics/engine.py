"""Composes the ``metrics`` groups from the metric-family SQL files.

Every metric family (throughput, stability, PR breakdown...) is one SQL file, so the definitions
live in SQL and each family can be read and reviewed on its own; this module only scopes, groups
and merges them. Other developers add families against this convention; keep it stable.

Convention for ``analytics/metrics/sql/groups/NN_name.sql``
------------------------------------------------------------
* Files run in name order; their value columns appear in that order in each group.
* Header comment lines declare how the engine scopes the file::

      -- fact: deployment_facts          the ONE fact view (or table) the family aggregates over
      -- time: deployed_at               its time column; the window and periods apply to it
      -- zero: deployments, changes      value columns that are 0 (not null) for a group with no rows
      -- note: text                      optional, repeatable: a line added to the report's notes

  The fact view must expose the dimension columns ``service, team, environment, repository``.
* The engine provides ``scoped`` to the file's query (a CTE of the statement, not materialized:
  it is read as a view would be, so the family's query computes only the fact columns it reads;
  a file must not define a CTE of that name itself; the views in SHARED_VIEWS are computed once
  per report for every family that reaches them): every row of the fact view
  whose time lies in the window [since, until) (UTC), that passes the filters (``--service``,
  ``--environment``, ``--team``), with four columns added: ``period_index``, ``period_start``,
  ``period_end`` and ``period_days``. Without ``--trend`` there is one period, the whole window;
  with ``--trend week|month`` the periods are ISO weeks (Monday 00:00 UTC) or calendar months,
  clipped to the window. ``period_days`` is the clipped period's length in days (fractional), so
  a per-week rate is ``count(...) * 7.0 / period_days`` and stays right for partial periods.
* A TEMP TABLE ``window_changes`` holds, per window, the ``change_lead_times`` rows of the
  deployments in the window that pass the filters (columns deployment_row, change_row,
  in_pull_request, lead_hours, is_negative, counts_for_lead_time, is_baseline: the change's own,
  which also holds for a repository a deployment of several ships for the first time): join it on
  ``deployment_row = scoped.deployment_row`` (the deployment's rowid, an integer: every fact view
  has it) instead of reading the view, which would recompute every
  change's lead time over all history for each family. ``change_row`` is the change's row in
  ``deployment_changes`` (its ``rowid``): a family that needs a change's repo and sha (the PR
  breakdown, for the few changes that came with a PR) joins ``deployment_changes`` on
  ``rowid = change_row``; the two strings of a million changes are not copied for every report.
* The file body is ONE query (it may start with WITH; a final semicolon is allowed) over
  ``scoped`` that returns one row per group key. Placeholders, replaced textually before running:

      {keys}          the group-key columns: the chosen dimensions (any of service, team,
                      environment, repository) then period_index, period_start, period_end,
                      period_days. Use it in SELECT and GROUP BY.
      {keys:alias}    the same, qualified with a table alias (``{keys:d}`` -> ``d.service, ...``),
                      for selecting keys out of a join
      {group_keys}    only the dimensions and period_index (also ``{group_keys:alias}``): grouping
                      by these is much cheaper over many rows than by the TIMESTAMPTZ and DOUBLE
                      period columns, which depend on period_index anyway; a query grouped so reads
                      a period column through an aggregate (``any_value(period_days)``)
      {since} {until} the window edges as TIMESTAMPTZ literals

  Every other column the query returns is a value column of the family. Period columns are keys,
  so they may be used without an aggregate (``... / period_days``) in a query grouped by ``{keys}``.
  The result needs only the dimensions and period_index; period_start, period_end and period_days,
  if returned, are dropped (the engine knows each period).
* Session variables, set by :func:`apply_settings` on the reading connection and readable in
  views with ``getvariable(name)``: ``gitops_dora_lead_time_start`` ('author'|'committer'),
  ``gitops_dora_max_attribution_gap_hours`` (DOUBLE), ``gitops_dora_hotfix_pattern`` (regex) and
  ``gitops_dora_hotfix_required_text`` (text every match of the default pattern contains, '' for
  another pattern) and ``gitops_dora_count_redeploys`` (BOOLEAN, ``deployments.count_redeploys``).

Merging: each family's rows go to a TEMP TABLE, and one SQL query joins them by group key (NULL
dimension values match each other) over every (group, period) pair, so the merge is not a Python
loop over tens of thousands of rows. The groups shown are those with at least one fact row in the
window (or in the previous window with ``--compare-previous``); with a trend, each such group gets
every period, and a family with no row for it shows its ``zero`` columns as 0 and the others as
null. A value column returned by two families takes the later file's value. Groups are ordered by
their dimension values (nulls last), then period.

``--compare-previous`` computes the same for the window of equal length just before and adds
``previous`` (the same value columns) and ``delta`` (current - previous, numeric columns) to each
group; with a trend, the k-th period is compared with the k-th period of the previous window.

Ratings: when the module ``analytics.metrics.ratings`` exists and has
``rate_group(group: dict, benchmark: int | None) -> dict``, each group gets a ``ratings`` object.
"""

from __future__ import annotations

import contextlib
import contextvars
import gc
import importlib
import importlib.util
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from analytics.config import DEFAULT_HOTFIX_PATTERN, DEFAULT_HOTFIX_REQUIRED_TEXT, Config
from analytics.errors import UserError
from analytics.metrics.transactions import StatementGroups
from analytics.metrics.window import TRENDS, Period, Window, default_window, periods

GROUPS_DIR = Path(__file__).resolve().parent / "sql" / "groups"
# Views that several families read (incident_attribution: the incidents family and, through
# failure_signals, the stability family; revert_chain: failure signals and rework). Each is
# computed once per report into a TEMP TABLE and the view is pointed at it meanwhile.
# deployment_baselines (read by the throughput family and by window_changes) is not: copying its
# 100k rows cost more CPU than the second window over the deployments it saves.
SHARED_VIEWS: tuple[str, ...] = ("revert_chain", "incident_attribution")
# Small store tables the views read many times per report (deployments about 24 times for a
# --trend run). On DuckLake every reference to a store table costs a catalog look-up of its data
# files (about 5-20 ms) besides the Parquet scan, so each is copied once per report into a TEMP
# table of the same name, which the views then read instead (TEMP shadows the store's table);
# the copies are dropped afterwards. commits and deployment_changes are too big to copy whole.
COPIED_TABLES: tuple[str, ...] = (
    "deployments", "services", "environments", "incidents", "deployment_revisions",
)
# The store tables every reader sees through a TEMP view of the same name that keeps one row per
# key (analytics/store/dimensions.py, SHARED_DIMENSIONS; the metrics package does not import the
# store, and tests/test_store_dimension_doubles.py checks the two lists agree): copy_table copies
# the view, not the store's table.
VIEWED_DIMENSIONS: tuple[str, ...] = ("services", "environments", "repositories")
# Store tables copied the same way only while they hold at most this many rows. pull_requests is
# read five times per report (PR change starts, the PR breakdown's join and its IN list, and the
# rework look-ups twice); on DuckLake each read costs a catalog look-up of 30-80 ms of CPU even
# when the table is empty (more for its many columns), while counting its rows costs about 5 ms.
# tags (incident attribution) and reconciler_events (failure signals) are read once each, but
# empty (a store without tags or reconcilers) each read cost 10-40 catalog queries, against about
# 7 to count and copy them (STATISTICS_OPTIMIZERS). Above the limit the views read the store as
# before, so a store with many rows does not hold a copy of all of them in memory.
COPIED_WHEN_SMALL: dict[str, int] = {"pull_requests": 100_000, "reconciler_events": 100_000, "tags": 100_000}
# commits and deployment_changes, copied the same way in a store of at most FEW_DEPLOYMENTS
# deployments (counted on the copy of deployments, which costs nothing). Left in the store, every
# statement that scans them asks the catalog for their files and each column's statistics again:
# on the demo store 205 catalog queries per report against 53 with the copies, and the report's
# CPU 0.34 -> 0.20 s (a two-deployment store) and 0.40 -> 0.25 s (the demo store), loaded machine,
# same output. A store with more deployments is not counted at all: counting a table of a million
# commits costs 5-20 ms of catalog queries, and above their limit they are not copied anyway.
COPIED_WHEN_FEW_DEPLOYMENTS: dict[str, int] = {"commits": 100_000, "deployment_changes": 100_000}
FEW_DEPLOYMENTS = 10_000
# The optimizers that ask the store for each column's statistics. A copy (or a count) has no
# filter, join or aggregate for them to improve, and on DuckLake a table without statistics (an
# empty one: pull_requests or deployment_revisions in a store without PRs or multi-repository
# deployments) is looked up again in the catalog for every column each time: copying the empty
# pull_requests cost 41 catalog queries (about 45 ms of CPU), and 5 without these two.
STATISTICS_OPTIMIZERS: tuple[str, ...] = ("statistics_propagation", "join_order")
# The optimizer that may swap a join's hash table to its other side. change_lead_times joins its
# million changes (left) to the few that are a merged PR's merge commit or a repository's first
# deployment (right, by row): DuckDB misjudged the PR side as the larger and built its hash table
# over the million changes instead (about 0.1-0.3 s of CPU per report on the bench store, with
# no PR at all). The view's joins are written with the small side on the right (a RIGHT JOIN
# where the lookup side is the big one: commits), so for window_changes they are taken as written.
WINDOW_CHANGES_OPTIMIZERS: tuple[str, ...] = ("build_side_probe_side",)
DIMENSIONS: tuple[str, ...] = ("service", "team", "environment", "repository")
DEFAULT_GROUP_BY: tuple[str, ...] = ("service", "environment")
PERIOD_KEYS: tuple[str, ...] = ("period_index", "period_start", "period_end", "period_days")
LEAD_TIME_STARTS: tuple[str, ...] = ("author", "committer")
SERVICE_TEAMS = "gitops_dora_service_teams"  # TEMP table: services in several teams (apply_settings)
_SERVICE_TEAMS_COLUMNS = "(service VARCHAR, team VARCHAR)"
_HEADER = re.compile(r"^--\s*(fact|time|zero|note):\s*(.*?)\s*$")
_KEYS_PLACEHOLDER = re.compile(r"\{(keys|group_keys)(?::([A-Za-z_][A-Za-z0-9_]*))?\}")
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BASE_NOTES = (
    "window [since, until) is half-open, in UTC, applied to each family's time column "
    "(deployment time for deployments and lead time)",
)


@dataclass(frozen=True)
class GroupFile:
    """One metric family: its fact view, time column, zero-when-empty columns and query body."""

    name: str
    path: Path
    fact: str
    time_column: str
    zero_columns: frozenset[str]
    notes: tuple[str, ...]
    body: str


def parse_group_file(path: Path) -> GroupFile:
    text = path.read_text()
    headers: dict[str, list[str]] = {"fact": [], "time": [], "zero": [], "note": []}
    for line in text.splitlines():
        m = _HEADER.match(line.strip())
        if m:
            headers[m.group(1)].append(m.group(2))
    if len(headers["fact"]) != 1 or len(headers["time"]) != 1:
        raise RuntimeError(f"{path}: a group file needs exactly one '-- fact:' and one '-- time:' line")
    fact, time_column = headers["fact"][0], headers["time"][0]
    for ident in (fact, time_column):
        if not _IDENT.match(ident):
            raise RuntimeError(f"{path}: {ident!r} is not a plain SQL identifier")
    zero = frozenset(
        col.strip() for spec in headers["zero"] for col in spec.split(",") if col.strip()
    )
    return GroupFile(path.stem, path, fact, time_column, zero, tuple(headers["note"]), text)


def group_files() -> list[GroupFile]:
    return [parse_group_file(p) for p in sorted(GROUPS_DIR.glob("*.sql"))]


def parse_group_by(text: str | Sequence[str] | None) -> tuple[str, ...]:
    """'service,environment' -> ('service', 'environment'); unknown names are a user error."""
    if text is None:
        return DEFAULT_GROUP_BY
    parts = text.split(",") if isinstance(text, str) else [p for item in text for p in item.split(",")]
    dims = tuple(dict.fromkeys(p.strip() for p in parts if p.strip()))
    if not dims:
        raise UserError(f"--group-by: give one or more of {', '.join(DIMENSIONS)}")
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise UserError(
            f"--group-by {','.join(dims)}: unknown dimension {unknown[0]!r} (use {', '.join(DIMENSIONS)})"
        )
    return dims


@dataclass(frozen=True)
class MetricsQuery:
    since: datetime | None = None
    until: datetime | None = None
    group_by: tuple[str, ...] = DEFAULT_GROUP_BY
    services: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    teams: tuple[str, ...] = ()
    trend: str | None = None
    compare_previous: bool = False
    benchmark: int | None = None
    lead_time_start: str | None = None  # None: the config's deployments.lead_time_start

    def __post_init__(self) -> None:
        if self.trend is not None and self.trend not in TRENDS:
            raise UserError(f"--trend {self.trend!r}: use one of {', '.join(TRENDS)}")
        if self.lead_time_start is not None and self.lead_time_start not in LEAD_TIME_STARTS:
            raise UserError(
                f"--lead-time-start {self.lead_time_start!r}: use one of {', '.join(LEAD_TIME_STARTS)}"
            )
        parse_group_by(self.group_by)


def apply_settings(
    con: duckdb.DuckDBPyConnection, config: Config | None = None, *, lead_time_start: str | None = None
) -> None:
    """Put the config's metric settings where the views read them (session variables), in UTC."""
    cfg = config or Config()
    start = lead_time_start or cfg.deployments.lead_time_start
    if start not in LEAD_TIME_STARTS:
        raise UserError(f"lead time start {start!r}: use one of {', '.join(LEAD_TIME_STARTS)}")
    con.execute("SET TimeZone = 'UTC'")
    con.execute(f"SET VARIABLE gitops_dora_lead_time_start = '{start}'")
    gap_hours = cfg.incidents.gap.total_seconds() / 3600.0
    con.execute(f"SET VARIABLE gitops_dora_max_attribution_gap_hours = {gap_hours!r}::DOUBLE")
    pattern = cfg.incidents.hotfix_pattern.replace("'", "''")
    con.execute(f"SET VARIABLE gitops_dora_hotfix_pattern = '{pattern}'")
    required = DEFAULT_HOTFIX_REQUIRED_TEXT if cfg.incidents.hotfix_pattern == DEFAULT_HOTFIX_PATTERN else ""
    con.execute(f"SET VARIABLE gitops_dora_hotfix_required_text = '{required}'")
    redeploys = "true" if cfg.deployments.count_redeploys else "false"
    con.execute(f"SET VARIABLE gitops_dora_count_redeploys = {redeploys}")
    _load_service_teams(con, cfg)


def _load_service_teams(con: duckdb.DuckDBPyConnection, cfg: Config) -> None:
    """The services the config puts in several teams (``services[].team`` + ``teams``), one row per
    team, read from the config on every report so a changed list needs no re-import."""
    pairs = [(s.name, team) for s in cfg.services if len(s.all_teams()) > 1 for team in s.all_teams()]
    con.execute(f"CREATE OR REPLACE TEMP TABLE {SERVICE_TEAMS} {_SERVICE_TEAMS_COLUMNS}")
    if pairs:
        # literals, not bound parameters: binding makes DuckDB's Python client import pandas (~0.5 s)
        rows = ", ".join(f"({_str_literal(service)}, {_str_literal(team)})" for service, team in pairs)
        con.execute(f"INSERT INTO {SERVICE_TEAMS} VALUES {rows}")


def _ensure_service_teams(con: duckdb.DuckDBPyConnection) -> None:
    """The SERVICE_TEAMS table the team filters read, empty where :func:`apply_settings` has not
    filled it: for the steps run without a report around them (``run_family``, ``data_window``,
    ``_scope_changes`` from bench/ and the tests)."""
    con.execute(f"CREATE TEMP TABLE IF NOT EXISTS {SERVICE_TEAMS} {_SERVICE_TEAMS_COLUMNS}")


def _str_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _ts_literal(moment: datetime) -> str:
    return f"TIMESTAMPTZ '{moment.isoformat()}'"


def render(body: str, dims: Sequence[str], window: Window) -> str:
    columns = {"keys": [*dims, *PERIOD_KEYS], "group_keys": [*dims, "period_index"]}

    def keys_for(m: re.Match[str]) -> str:
        alias = m.group(2)
        return ", ".join(f"{alias}.{k}" if alias else k for k in columns[m.group(1)])

    sql = _KEYS_PLACEHOLDER.sub(keys_for, body)
    return sql.replace("{since}", _ts_literal(window.since)).replace("{until}", _ts_literal(window.until))


def _filters(query: MetricsQuery, alias: str, *, fanned_out: bool = False) -> str:
    """The filters with values inlined as SQL string literals (``scoped`` is built as SQL text
    without parameters, so every filter is written the same way). Rows not yet fanned out to their
    service's several teams (``fanned_out`` false) carry the first team only, so a team filter also
    keeps the services the config puts in that team."""
    clauses = []
    for column, values in (("service", query.services), ("environment", query.environments),
                           ("team", query.teams)):
        if values:
            literals = ", ".join("'" + v.replace("'", "''") + "'" for v in values)
            clause = f"{alias}.{column} IN ({literals})"
            if column == "team" and not fanned_out:
                clause = (f"({clause} OR {alias}.service IN (SELECT service FROM {SERVICE_TEAMS}"
                          f" WHERE team IN ({literals})))")
            clauses.append(clause)
    return " AND ".join(clauses) or "TRUE"


def _fact_source(fact: str, query: MetricsQuery) -> str:
    """The family's fact view, with a row per team for a service in several teams when the report
    groups or filters by team: each team then counts the service's deployments, changes and
    incidents (so team totals add up to more than the organisation's). Otherwise the view as is.
    A row whose team is NULL stays one row: the dashboard's organisation row blanks every team to
    pool all services into one group, where a service must count once."""
    if "team" not in query.group_by and not query.teams:
        return fact
    return (f"(SELECT f0.* REPLACE (coalesce(st.team, f0.team) AS team) FROM {fact} f0"
            f" LEFT JOIN {SERVICE_TEAMS} st ON st.service = f0.service AND f0.team IS NOT NULL)")


@dataclass
class FamilyResult:
    file: GroupFile
    value_columns: list[str]
    rows: dict[tuple[Any, ...], dict[str, Any]]


@dataclass(frozen=True)
class FamilyTable:
    """A family's result for one window, kept in DuckDB as a TEMP TABLE keyed by dims + period_index."""

    file: GroupFile
    table: str
    value_columns: list[str]
    decimal_columns: frozenset[str]


def _load_periods(con: duckdb.DuckDBPyConnection, spans: list[Period]) -> None:
    """The periods as one statement of literals: bound parameters would make DuckDB's Python
    client import pandas (about 0.5 s of a CLI run), and a statement per period costs a round trip
    each. A float's ``repr`` cast from text reads back as the same DOUBLE (a bare numeric literal
    would go through DECIMAL)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE metric_periods (period_index INTEGER, period_start TIMESTAMPTZ,"
        " period_end TIMESTAMPTZ, period_days DOUBLE)"
    )
    if spans:
        rows = ", ".join(f"({i}, {_ts_literal(p.start)}, {_ts_literal(p.end)}, '{float(p.days)!r}'::DOUBLE)"
                         for i, p in enumerate(spans))
        con.execute(f"INSERT INTO metric_periods VALUES {rows}")


def _scope_changes(con: duckdb.DuckDBPyConnection, query: MetricsQuery, window: Window) -> None:
    """Compute change_lead_times once per window for every family that joins changes.

    The view recomputes every change's lead time on each read; the families that need changes
    (throughput, PR breakdown) read this table instead, restricted to the deployments the window
    and filters keep (a change carries its deployment's time and dimensions, so it is the same
    filter as ``scoped``). It is rebuilt on every call, so the lead-time setting always applies.
    """
    _ensure_service_teams(con)
    con.execute(
        "CREATE OR REPLACE TEMP TABLE window_changes AS SELECT l.deployment_row, l.change_row,"
        " l.in_pull_request, l.lead_hours, l.is_negative, l.counts_for_lead_time, l.is_baseline"
        " FROM change_lead_times l"
        f" WHERE l.deployed_at >= {_ts_literal(window.since)} AND l.deployed_at < {_ts_literal(window.until)}"
        f" AND {_filters(query, 'l')}"
    )


def _scoped_sql(gf: GroupFile, query: MetricsQuery, only: Period | None = None) -> str:
    """The query behind ``scoped``: the family's fact rows in the periods.

    Given to the family's statement as a CTE that is not materialized, so it is read as a view
    would be: the family's query computes only the fact columns it reads (a copy cost more than
    the aggregation). It used to be a TEMP VIEW created before each family, and creating one binds
    the whole stack of fact views (1.5-2 ms on a small store) only for the family's statement to
    bind it again. Periods tile the window, so an ASOF join on the period start plus the end check
    assigns each row its one period. When ``only`` is the one period of ``metric_periods`` (a
    window without trend or comparison), the same rows are selected with the period's edges and
    columns as literals: no ASOF join (it sorted every fact row, about 25 ms of CPU per family over
    100k deployments), and the time filter reaches the fact view's scans.
    """
    time_column = f"f.{gf.time_column}"
    if only is not None:
        return (
            "SELECT f.*, CAST(0 AS INTEGER) AS period_index,"
            f" {_ts_literal(only.start)} AS period_start, {_ts_literal(only.end)} AS period_end,"
            f" '{float(only.days)!r}'::DOUBLE AS period_days FROM {_fact_source(gf.fact, query)} f"
            f" WHERE {time_column} >= {_ts_literal(only.start)} AND {time_column} < {_ts_literal(only.end)}"
            f" AND {_filters(query, 'f', fanned_out=True)}"
        )
    return (
        "SELECT f.*, p.period_index, p.period_start, p.period_end,"
        f" p.period_days FROM {_fact_source(gf.fact, query)} f ASOF JOIN metric_periods p"
        f" ON {time_column} >= p.period_start"
        f" WHERE {time_column} < p.period_end AND {_filters(query, 'f', fanned_out=True)}"
    )


def _single_period(spans: list[Period]) -> Period | None:
    """The window's one period when there is exactly one (no trend, no comparison), else None."""
    return spans[0] if len(spans) == 1 else None


def _family_table(
    con: duckdb.DuckDBPyConnection, gf: GroupFile, query: MetricsQuery, window: Window,
    table: str, only: Period | None = None,
) -> FamilyTable:
    """Run one family into a TEMP TABLE (its period_start/end/days dropped: the spans give them)."""
    dropped = ", ".join(f"'{k}'" for k in PERIOD_KEYS if k != "period_index")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE {table} AS WITH scoped AS NOT MATERIALIZED ("
        f"{_scoped_sql(gf, query, only)}) SELECT COLUMNS(lambda c: c NOT IN ({dropped}))"
        f" FROM ({_statement(render(gf.body, query.group_by, window))}\n)"
    )
    described = con.execute(f"DESCRIBE {table}").fetchall()
    names = [str(row[0]) for row in described]
    missing = [k for k in (*query.group_by, "period_index") if k not in names]
    if missing:
        raise RuntimeError(f"{gf.path}: the query does not return key column(s) {', '.join(missing)}")
    key_cols = set(query.group_by) | set(PERIOD_KEYS)
    value_columns = [n for n in names if n not in key_cols]
    decimals = frozenset(str(row[0]) for row in described if str(row[1]).startswith("DECIMAL"))
    return FamilyTable(gf, table, value_columns, decimals)


def _statement(sql: str) -> str:
    """The body as a subquery: without its closing semicolon (a trailing comment ends at the newline)."""
    return sql.rstrip().removesuffix(";")


def run_family(
    con: duckdb.DuckDBPyConnection, gf: GroupFile, query: MetricsQuery, window: Window
) -> FamilyResult:
    """One family's rows by group key (dims..., period_index): for benchmarks and inspection."""
    _ensure_service_teams(con)
    family = _family_table(con, gf, query, window, "family_single")
    keys = ", ".join(_quote(k) for k in (*query.group_by, "period_index"))
    values = ", ".join(_value_expr(family, c) for c in family.value_columns)
    cursor = con.execute(f"SELECT {keys}, {values} FROM {family.table}")
    width = len(query.group_by) + 1
    rows = {tuple(r[:width]): dict(zip(family.value_columns, r[width:], strict=True))
            for r in cursor.fetchall()}
    return FamilyResult(gf, family.value_columns, rows)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _value_expr(family: FamilyTable, column: str, prefix: str = "") -> str:
    """A value column as selected: DECIMAL (e.g. a sum over DECIMAL) as DOUBLE, so every output
    format takes it."""
    ref = f"{prefix}{_quote(column)}"
    return f"CAST({ref} AS DOUBLE)" if column in family.decimal_columns else ref


@dataclass
class WindowResult:
    """Every family merged by group key, as one row per group and period of ``metric_periods``.

    ``rows`` are ordered by the dimensions (nulls last) then period_index, and hold the dimension
    values, the period_index, then the ``columns`` values (zero columns already 0 where empty).
    """

    columns: list[str]
    zero_columns: frozenset[str]
    rows: list[tuple[Any, ...]]

    def empty(self) -> tuple[Any, ...]:
        return tuple(0 if c in self.zero_columns else None for c in self.columns)


def _merge(
    con: duckdb.DuckDBPyConnection, families: list[FamilyTable], dims: Sequence[str]
) -> WindowResult:
    """Join the family tables on the group key over every (seen group, period) pair.

    A value column returned by several families takes the last family's value (file order).
    Dimension values may be NULL (a service without a team), so keys match with IS NOT DISTINCT FROM.
    """
    owner: dict[str, int] = {}
    for index, family in enumerate(families):
        for column in family.value_columns:
            owner[column] = index
    columns = list(owner)
    zero = frozenset(c for c in columns if c in families[owner[c]].file.zero_columns)
    quoted = [_quote(d) for d in dims]
    seen = " UNION ".join(f"SELECT DISTINCT {', '.join(quoted)} FROM {f.table}" for f in families)
    selected = []
    for column in columns:
        ref = _value_expr(families[owner[column]], column, f"f{owner[column]}.")
        selected.append(f"coalesce({ref}, 0)" if column in zero else ref)
    joins = []
    for index, family in enumerate(families):
        on = [f"f{index}.{q} IS NOT DISTINCT FROM g.{q}" for q in quoted]
        on.append(f"f{index}.period_index = g.period_index")
        joins.append(f"LEFT JOIN {family.table} f{index} ON {' AND '.join(on)}")
    key_select = ", ".join([*(f"g.{q}" for q in quoted), "g.period_index"])
    order = ", ".join([*(f"g.{q} ASC NULLS LAST" for q in quoted), "g.period_index"])
    sql = (
        f"WITH seen_groups AS ({seen}), "
        "group_periods AS (SELECT s.*, p.period_index FROM seen_groups s CROSS JOIN metric_periods p) "
        f"SELECT {key_select}{''.join(', ' + s for s in selected)} FROM group_periods g "
        f"{' '.join(joins)} ORDER BY {order}"
    )
    with no_gc_pauses():  # the fetch builds a tuple per row: 42,000 of them for a weekly trend
        rows = con.execute(sql).fetchall()
    return WindowResult(columns, zero, rows)


def _window_results(
    con: duckdb.DuckDBPyConnection, files: list[GroupFile], query: MetricsQuery, window: Window,
    spans: list[Period], transactions: StatementGroups,
) -> WindowResult:
    """The window's families merged. Three transactions (transactions.py: a group never reads a
    table it created): the periods and ``window_changes``; every family (each reads those, none
    reads another's table); the merge with the clean-up."""
    families: list[FamilyTable] = []
    only = _single_period(spans)
    failed = True
    try:
        with _optimizers_off(con, WINDOW_CHANGES_OPTIMIZERS), transactions.group():
            _load_periods(con, spans)
            _scope_changes(con, query, window)
        with transactions.group():
            for index, gf in enumerate(files):
                families.append(_family_table(con, gf, query, window, f"family_{index}", only))
        result = _merge(con, families, query.group_by)
        failed = False
        return result
    finally:
        tables = ("window_changes", *(f.table for f in families))
        _clean_up(con, [f"DROP TABLE IF EXISTS {t}" for t in tables],
                  failed=failed, transactions=transactions)


# True while compute_metrics(..., closing=True) runs: its caller closes the connection next, so
# the report's TEMP tables and views are left for the close to free instead of being dropped (and
# the shared views' definitions put back) one statement at a time: about 15 statements, 0.012-0.014 s
# of the plain window's report on the bench store, with the close no slower.
_CLOSING: contextvars.ContextVar[bool] = contextvars.ContextVar("gitops_dora_metrics_closing", default=False)


def _clean_up(
    con: duckdb.DuckDBPyConnection, statements: Sequence[str], *, failed: bool,
    transactions: StatementGroups | None = None,
) -> None:
    """Run the statements that put the connection back as it was (in one transaction of
    ``transactions``, when given). After a failure they are best effort, one by one: inside a caller's
    transaction that a failed statement aborted, every further statement is refused, and the error
    to show is the first one. None when the caller closes the connection next (``_CLOSING``)."""
    if _CLOSING.get():
        return
    if failed:
        for sql in statements:
            with contextlib.suppress(duckdb.Error):
                con.execute(sql)
        return
    with transactions.group() if transactions is not None else contextlib.nullcontext():
        for sql in statements:
            con.execute(sql)


def _by_key(result: WindowResult, ndims: int) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    """Values by (dims..., period_index)."""
    return {(*row[:ndims], row[ndims]): row[ndims + 1:] for row in result.rows}


def _current_and_previous(
    con: duckdb.DuckDBPyConnection, files: list[GroupFile], query: MetricsQuery, window: Window,
    spans: list[Period], transactions: StatementGroups,
) -> tuple[WindowResult, dict[tuple[Any, ...], tuple[Any, ...]], dict[tuple[Any, ...], tuple[Any, ...]]]:
    """Both windows in one pass when the family bodies allow it, so the views run once.

    The previous window's periods follow the current ones in ``metric_periods`` (indices shifted by
    the current count); every family groups by period, so its rows split back exactly. A body that
    reads ``{since}``/``{until}`` needs each window's own edges and gets two passes.
    Returns the result (for its columns) and the current and previous values by key.
    """
    runs = _passes(files, query, window, spans)
    return _compared(query, spans, [_window_results(con, files, query, w, s, transactions) for w, s in runs])


def _passes(
    files: list[GroupFile], query: MetricsQuery, window: Window, spans: list[Period]
) -> list[tuple[Window, list[Period]]]:
    """The windows and periods the families run over: the window's; with ``--compare-previous``
    both windows as one (the previous periods after the current ones), or each on its own when a
    body reads ``{since}``/``{until}``."""
    if not query.compare_previous:
        return [(window, spans)]
    before = window.previous()
    previous_spans = periods(before, query.trend)
    if any("{since}" in gf.body or "{until}" in gf.body for gf in files):
        return [(window, spans), (before, previous_spans)]
    return [(Window(before.since, window.until), [*spans, *previous_spans])]


def _compared(
    query: MetricsQuery, spans: list[Period], results: list[WindowResult]
) -> tuple[WindowResult, dict[tuple[Any, ...], tuple[Any, ...]], dict[tuple[Any, ...], tuple[Any, ...]]]:
    """The result (for its columns) and the current and previous values by key, from the passes
    of :func:`_passes` with ``--compare-previous``."""
    ndims = len(query.group_by)
    if len(results) == 2:
        return results[0], _by_key(results[0], ndims), _by_key(results[1], ndims)
    both = results[0]
    count = len(spans)
    keyed = _by_key(both, ndims)
    current_values = {k: v for k, v in keyed.items() if k[-1] < count}
    previous_values = {(*k[:-1], k[-1] - count): v for k, v in keyed.items() if k[-1] >= count}
    return both, current_values, previous_values


@contextmanager
def _shared_views_computed_once(
    con: duckdb.DuckDBPyConnection, transactions: StatementGroups
) -> Iterator[None]:
    """Compute each SHARED_VIEWS view once (after the settings are applied) for every family to
    read; the original definitions are put back afterwards, so later queries see live data. One
    transaction: no shared view reads another."""
    from analytics.metrics.views import view_definition

    done: list[str] = []
    failed = True
    try:
        with transactions.group():
            for name in SHARED_VIEWS:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {name}__once AS SELECT * FROM {name}")
                done.append(name)
                con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM {name}__once")
        yield
        failed = False
    finally:
        _clean_up(con, [sql for name in done
                        for sql in (view_definition(name), f"DROP TABLE IF EXISTS {name}__once")],
                  failed=failed, transactions=transactions)


@contextmanager
def _tables_copied_once(con: duckdb.DuckDBPyConnection, transactions: StatementGroups) -> Iterator[None]:
    """Copy each COPIED_TABLES table of the store (the connection's current database, i.e. the
    snapshot it reads) into a TEMP table of the same name for the report's queries, then drop the
    copies, so later queries on the connection read the store again. A name that is already a
    TEMP object (a caller's own copy) is left alone (listing the TEMP tables first would read
    every attached catalog). The copies run in one transaction of their own, with the optimizers
    that ask for column statistics off (:func:`_without_column_statistics`) and on one DuckDB
    thread (:func:`_one_thread`)."""
    row = con.execute("SELECT system.main.current_database()").fetchone()
    database = str(row[0]) if row else "main"
    copied: list[str] = []
    failed = True
    try:
        with _without_column_statistics(con), _one_thread(con), transactions.group():
            copy_report_tables(con, database, copied)
        yield
        failed = False
    finally:
        _clean_up(con, [sql for name in copied for sql in uncopy_statements(name)], failed=failed)


@contextmanager
def _without_column_statistics(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Plan the block's statements without STATISTICS_OPTIMIZERS, put back afterwards (outside the
    copies' transaction, so never refused by an aborted one)."""
    with _optimizers_off(con, STATISTICS_OPTIMIZERS):
        yield


@contextmanager
def _optimizers_off(con: duckdb.DuckDBPyConnection, optimizers: Sequence[str]) -> Iterator[None]:
    """Plan the block's statements without ``optimizers`` (added to the connection's
    ``disabled_optimizers``), the setting put back afterwards, outside the block's transaction."""
    row = con.execute("SELECT system.main.current_setting('disabled_optimizers')").fetchone()
    before = str(row[0]) if row and row[0] is not None else ""
    names = [n for n in before.split(",") if n]
    wanted = ",".join([*names, *(n for n in optimizers if n not in names)])
    con.execute(f"SET disabled_optimizers = {_str_literal(wanted)}")
    try:
        yield
    finally:
        con.execute(f"SET disabled_optimizers = {_str_literal(before)}")


@contextmanager
def _one_thread(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Run the block's statements on one DuckDB thread, the connection's setting put back
    afterwards (outside the copies' transaction, like :func:`_without_column_statistics`).

    A copy is a scan and an append of at most 100k rows: a second thread only adds its
    coordination. On the bench store (DuckLake, load 13-15, best of 5, alternating twice) the
    100k deployments copied in 0.054-0.060 s of CPU on one thread against 0.105-0.133 s on two,
    and in less wall time too (0.13-0.15 against 0.31-0.36 s)."""
    row = con.execute("SELECT system.main.current_setting('threads')").fetchone()
    before = int(row[0]) if row and row[0] is not None else 0
    if before <= 1:
        yield
        return
    con.execute("SET threads = 1")
    try:
        yield
    finally:
        con.execute(f"SET threads = {before}")


def copy_table(con: duckdb.DuckDBPyConnection, database: str, name: str) -> bool:
    """Copy the store's table ``name`` into a TEMP table of that name; False when a TEMP table of
    that name exists already (a caller's own copy) or the store has no such table.

    A shared dimension table (services, environments, repositories) is a TEMP view already on
    every connection the metric views are installed on: the store's one-row-per-key view
    (analytics/store/dimensions.py), or the dashboard's pooled-teams view over it. That view is
    renamed ``<name>__shadowed`` and copied, the copy standing in front of it until
    :func:`uncopy_statements` puts it back, so the report reads what the view shows."""
    source = f"{_quote(database)}.main.{name}"
    shadowed = False
    if name in VIEWED_DIMENSIONS:
        try:
            con.execute(f"ALTER VIEW temp.main.{name} RENAME TO {name}__shadowed")
            shadowed = True
            source = f"temp.main.{name}__shadowed"
        except duckdb.CatalogException:
            pass  # a caller's TEMP table of that name, or no view (a connection without them)
    try:
        con.execute(f"CREATE TEMP TABLE {name} AS SELECT * FROM {source}")
    except duckdb.CatalogException:
        if shadowed:
            con.execute(f"ALTER VIEW temp.main.{name}__shadowed RENAME TO {name}")
        return False  # this aborts no transaction
    return True


def uncopy_statements(name: str) -> list[str]:
    """What drops the copy :func:`copy_table` made of ``name`` and puts back a view it shadowed."""
    drop = f"DROP TABLE IF EXISTS temp.main.{name}"
    if name not in VIEWED_DIMENSIONS:
        return [drop]
    return [drop, f"ALTER VIEW IF EXISTS temp.main.{name}__shadowed RENAME TO {name}"]


def copy_report_tables(con: duckdb.DuckDBPyConnection, database: str, copied: list[str], *,
                       leave_out: Sequence[str] = ()) -> None:
    """Copy the tables a report reads many times (COPIED_TABLES, then :func:`small_tables`) with
    :func:`copy_table`, each name noted in ``copied`` as its copy is made (a failure half-way still
    knows which exist); a name in ``leave_out`` is not copied. The engine and the dashboard's
    engine connections (dashboards/metrics_source.py) copy through here."""
    for name in COPIED_TABLES:
        if name not in leave_out and copy_table(con, database, name):
            copied.append(name)
    for name in small_tables(con, database, deployments_copied="deployments" in copied):
        if name not in leave_out and copy_table(con, database, name):
            copied.append(name)


def small_tables(con: duckdb.DuckDBPyConnection, database: str, *, deployments_copied: bool) -> list[str]:
    """The COPIED_WHEN_SMALL tables of the store that are within their row limit, and the
    COPIED_WHEN_FEW_DEPLOYMENTS ones too when the caller copied the deployments (counted on that
    copy) and there are at most FEW_DEPLOYMENTS of them. A table the store does not have is left
    out."""
    limits = dict(COPIED_WHEN_SMALL)
    if deployments_copied:
        row = con.execute("SELECT count(*) FROM temp.main.deployments").fetchone()
        if row is not None and int(row[0]) <= FEW_DEPLOYMENTS:
            limits.update(COPIED_WHEN_FEW_DEPLOYMENTS)
    small = []
    for name, limit in limits.items():
        try:
            row = con.execute(f"SELECT count(*) FROM {_quote(database)}.main.{name}").fetchone()
        except duckdb.CatalogException:
            continue
        if row is not None and int(row[0]) <= limit:
            small.append(name)
    return small


@contextmanager
def no_gc_pauses() -> Iterator[None]:
    """Building tens of thousands of group dicts (or fetching as many row tuples) triggers the
    cyclic collector again and again, each pass walking every live object; none of them can form a
    cycle, so it is held off meanwhile (the weekly merge's fetch on the bench store: 0.085-0.095
    against 0.095-0.114 s). The ``metrics`` command holds it off for the whole report."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _sort_key(dims: tuple[Any, ...]) -> tuple[tuple[bool, str], ...]:
    return tuple((v is None, "" if v is None else str(v)) for v in dims)


def _delta(current: Any, previous: Any) -> Any:
    numeric = (int, float)
    if (isinstance(current, numeric) and isinstance(previous, numeric)
            and not isinstance(current, bool) and not isinstance(previous, bool)):
        return current - previous
    return None


def _groups(
    result: WindowResult, query: MetricsQuery, spans: list[Period]
) -> list[dict[str, Any]]:
    """One dict per merged row, in the result's order (the no-comparison path: no lookups)."""
    ndims = len(query.group_by)
    if query.trend:
        names = (*query.group_by, "period_start", "period_end", *result.columns)
        edges = [(span.start, span.end) for span in spans]
        # one zip per row: tens of thousands of groups with a weekly trend (tuples joined with +
        # rather than unpacked into a new one: 0.063 against 0.066 s for the bench store's 42,000)
        return [dict(zip(names, row[:ndims] + edges[row[ndims]] + row[ndims + 1:], strict=True))
                for row in result.rows]
    names = (*query.group_by, *result.columns)
    return [dict(zip(names, row[:ndims] + row[ndims + 1:], strict=True)) for row in result.rows]


def _compared_groups(
    result: WindowResult, current: dict[tuple[Any, ...], tuple[Any, ...]],
    previous: dict[tuple[Any, ...], tuple[Any, ...]], query: MetricsQuery, spans: list[Period],
) -> list[dict[str, Any]]:
    ndims = len(query.group_by)
    columns = result.columns
    empty = result.empty()
    seen = {key[:ndims] for key in (*current, *previous)}
    groups: list[dict[str, Any]] = []
    for dims in sorted(seen, key=_sort_key):
        for index, span in enumerate(spans):
            group: dict[str, Any] = dict(zip(query.group_by, dims, strict=True))
            if query.trend:
                group["period_start"], group["period_end"] = span.start, span.end
            values = dict(zip(columns, current.get((*dims, index), empty), strict=True))
            before = dict(zip(columns, previous.get((*dims, index), empty), strict=True))
            group.update(values)
            group["previous"] = before
            group["delta"] = {c: _delta(values[c], before.get(c)) for c in values}
            groups.append(group)
    return groups


def _rate(groups: list[dict[str, Any]], benchmark: int | None) -> bool:
    """Add ``ratings`` through analytics.metrics.ratings when that module is installed."""
    if importlib.util.find_spec("analytics.metrics.ratings") is None:
        return False
    module = importlib.import_module("analytics.metrics.ratings")
    rate_group = getattr(module, "rate_group", None)
    if rate_group is None:
        return False
    for group in groups:
        group["ratings"] = rate_group(group, benchmark)
    return True


@dataclass
class MetricsReport:
    since: datetime
    until: datetime
    group_by: tuple[str, ...]
    trend: str | None
    lead_time_start: str
    benchmark: int | None
    columns: list[str]
    groups: list[dict[str, Any]]
    notes: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        """The ``metrics --format json`` document."""
        return {
            "since": self.since,
            "until": self.until,
            "groups": self.groups,
            "group_by": list(self.group_by),
            "trend": self.trend,
            "lead_time_start": self.lead_time_start,
            "benchmark": self.benchmark,
            "notes": self.notes,
        }


def data_window(con: duckdb.DuckDBPyConnection, query: MetricsQuery) -> Window:
    """The query's window, with missing edges taken from the (filtered) deployments."""
    if query.since is not None and query.until is not None:
        return Window(query.since, query.until)
    _ensure_service_teams(con)
    row = con.execute(
        f"SELECT min(f.deployed_at), max(f.deployed_at) FROM deployment_times f WHERE {_filters(query, 'f')}"
    ).fetchone()
    first, last = (row[0], row[1]) if row else (None, None)
    return default_window(first, last, query.since, query.until)


def compute_metrics(
    con: duckdb.DuckDBPyConnection, query: MetricsQuery, config: Config | None = None, *,
    closing: bool = False,
) -> MetricsReport:
    """Run every family for the window (and the previous one when asked) and merge by group.

    ``closing``: the caller closes ``con`` right after (the CLI), so the report's TEMP tables and
    views are not dropped first (``_CLOSING``); the connection is then not left as it was found."""
    token = _CLOSING.set(closing)
    try:
        return _compute_metrics(con, query, config)
    finally:
        _CLOSING.reset(token)


def _compute_metrics(
    con: duckdb.DuckDBPyConnection, query: MetricsQuery, config: Config | None,
) -> MetricsReport:
    """:func:`compute_metrics` itself."""
    cfg = config or Config()
    lead_time_start = query.lead_time_start or cfg.deployments.lead_time_start
    apply_settings(con, cfg, lead_time_start=lead_time_start)
    files = group_files()
    transactions = StatementGroups(con)
    with _tables_copied_once(con, transactions):
        window = data_window(con, query)
        spans = periods(window, query.trend)
        with _shared_views_computed_once(con, transactions):
            if query.compare_previous:
                result, current, previous = _current_and_previous(
                    con, files, query, window, spans, transactions)
            else:
                result = _window_results(con, files, query, window, spans, transactions)
    with no_gc_pauses():
        if query.compare_previous:
            groups = _compared_groups(result, current, previous, query, spans)
        else:
            groups = _groups(result, query, spans)

    columns = [*query.group_by, *(["period_start", "period_end"] if query.trend else []), *result.columns]
    notes = [*_BASE_NOTES, *(n for gf in files for n in gf.notes)]
    with no_gc_pauses():
        rated = _rate(groups, query.benchmark)
    if rated:
        columns.append("ratings")
    return MetricsReport(
        since=window.since, until=window.until, group_by=query.group_by, trend=query.trend,
        lead_time_start=lead_time_start, benchmark=query.benchmark, columns=columns, groups=groups,
        notes=notes,
    )

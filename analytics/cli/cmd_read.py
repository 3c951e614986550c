"""``gitops-dora deployments`` and ``gitops-dora metrics``: read the published snapshot."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import TYPE_CHECKING, Any

import typer

from analytics.cli.app import AS_OF_OPTION, AppContext, app, get_ctx
from analytics.cli.filters import check_known, metrics_query, team_clause
from analytics.cli.output import WIDE_OPTION_HELP, Format, csv_text, print_cursor, print_rows
from analytics.cli.output import option_values as _values
from analytics.reports import short_id

if TYPE_CHECKING:  # duckdb and the engine load inside the commands (analytics/cli/app.py)
    import duckdb

    from analytics.metrics.engine import MetricsQuery, MetricsReport

DEPLOYMENT_COLUMNS = (
    "id", "service", "team", "environment", "revision", "deployed_at", "status", "source", "source_ref",
    "changes", "mapped_by",
)

# How the reconciler object behind a deployment was mapped to its service and environment
# (rule:<n>, label:<key>, name-suffix, ...), so a wrong mapping can be traced to its rule.
# Reconciler deployments carry source = reconciler and source_ref = kind/namespace/name;
# every other source has no object, hence NULL.
DEPLOYMENTS_SQL = """
SELECT d.id, d.service, d.team, d.environment, d.revision, d.deployed_at, d.status, d.source,
       d.source_ref, d.changes, o.mapped_by
FROM deployment_facts AS d
LEFT JOIN reconciler_objects AS o
  ON d.source = o.reconciler AND d.source_ref = o.kind || '/' || o.namespace || '/' || o.name
WHERE {where}
ORDER BY d.deployed_at, d.id
"""


# The table's columns in the order shown; when the terminal is narrow the optional ones go, in
# DEPLOYMENT_OPTIONAL's order (what identifies a deployment and its outcome stays).
DEPLOYMENT_TABLE = (
    "deployed_at", "service", "environment", "status", "changes", "revision", "id", "team", "source",
    "mapped_by", "source_ref",
)
DEPLOYMENT_OPTIONAL = ("source_ref", "mapped_by", "source", "team", "id", "revision")
TABLE_LABELS = {
    "environment": "env", "deployed_at": "deployed (UTC)", "deployments": "deploys",
    "deployments_per_week": "per week", "lead_time_median_hours": "lead h",
    "lead_time_p90_hours": "lead p90 h", "change_failure_rate": "CFR",
    "failed_deployment_recovery_median_hours": "recover h", "rework_rate": "rework",
    "period_start": "period",
}

# The table shows the headline figures; JSON and CSV carry every field.
TABLE_METRICS = (
    "deployments", "deployments_per_week", "lead_time_median_hours", "lead_time_p90_hours",
    "change_failure_rate", "failed_deployment_recovery_median_hours", "rework_rate",
)
# left out first when the terminal is narrow: the least read figures
METRICS_OPTIONAL = (
    "lead_time_p90_hours", "deployments", "rework_rate", "failed_deployment_recovery_median_hours",
    "change_failure_rate", "lead_time_median_hours", "deployments_per_week",
)


@app.command("deployments")
def deployments_command(
    ctx: typer.Context,
    service: list[str] | None = typer.Option(None, "--service", help="only these services (repeatable)"),
    environment: list[str] | None = typer.Option(None, "--environment", help="only these environments"),
    team: list[str] | None = typer.Option(None, "--team", help="only these teams"),
    since: str | None = typer.Option(None, "--since", help="YYYY-MM-DD or ISO 8601 with zone (inclusive)"),
    until: str | None = typer.Option(None, "--until", help="YYYY-MM-DD or ISO 8601 with zone (exclusive)"),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv"),
    as_of: str | None = AS_OF_OPTION,
    wide: bool = typer.Option(False, "--wide", help=WIDE_OPTION_HELP),
) -> None:
    """List deployments (all statuses), oldest first, with how many changes each shipped.

    A reconciler deployment also shows how its object was mapped to a service and environment."""
    from analytics.listing import print_deployments
    from analytics.metrics.window import parse_edges
    from analytics.store.connection import open_reader, parse_as_of

    lo, hi = parse_edges(since, until)
    clauses, params = ["TRUE"], []  # type: tuple[list[str], list[Any]]
    for column, values in (("service", _values(service)), ("environment", _values(environment))):
        if values:
            clauses.append(f"d.{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if team:
        clause, team_params = team_clause("d.team", "d.service", _values(team), get_ctx(ctx).config)
        clauses.append(clause)
        params.extend(team_params)
    if lo is not None:
        clauses.append("d.deployed_at >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append("d.deployed_at < ?")
        params.append(hi)
    # CSV and JSON are listed from the store's tables (analytics/listing/deployments.sql): the
    # metric views (about 0.04 s to install) only when the table's DEPLOYMENTS_SQL needs them
    views = fmt == Format.table
    con = open_reader(get_ctx(ctx).db_path, as_of=parse_as_of(as_of), install_views=views)
    try:
        if service or environment or team:  # the config (pydantic, ~0.08 s) only names what filters
            check_known(con, services=_values(service), teams=_values(team),
                        environments=_values(environment), config=get_ctx(ctx).config)
        where = " AND ".join(clauses)
        if fmt != Format.table and print_deployments(con, where, params, columns=DEPLOYMENT_COLUMNS, fmt=fmt,
                                                     header=csv_text([], DEPLOYMENT_COLUMNS)):
            return  # DuckDB wrote each line (analytics/listing)
        if not views:
            from analytics.metrics.views import install_views

            install_views(con)
        cursor = con.execute(DEPLOYMENTS_SQL.format(where=where), params)
        if fmt != Format.table:  # JSON times in a session time zone other than UTC
            print_cursor(cursor, DEPLOYMENT_COLUMNS, fmt)
            return
        rows = [dict(zip(DEPLOYMENT_COLUMNS, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    if wide:
        print_rows(rows, DEPLOYMENT_COLUMNS, fmt, title="Deployments", wide=True)
        return
    # a full sha or reconciler id does not fit a terminal column: --wide and JSON have them whole
    rows = [{**r, "revision": (r["revision"] or "")[:12], "id": short_id(r["id"])} for r in rows]
    print_rows(rows, DEPLOYMENT_TABLE, fmt, title="Deployments", labels=TABLE_LABELS,
               optional=DEPLOYMENT_OPTIONAL)


def _flatten(group: dict[str, Any]) -> dict[str, Any]:
    """previous/delta objects become previous_<field>/delta_<field> columns for table and CSV."""
    flat = {k: v for k, v in group.items() if k not in ("previous", "delta")}
    for prefix in ("previous", "delta"):
        for key, value in (group.get(prefix) or {}).items():
            flat[f"{prefix}_{key}"] = value
    return flat


def _short_time(value: Any) -> Any:
    """A period boundary at midnight UTC reads better as a date in a narrow table."""
    if isinstance(value, datetime) and (value.hour, value.minute, value.second) == (0, 0, 0):
        return value.date().isoformat()
    return value


class _BackgroundReader:
    """``open_reader`` for ``metrics`` on a thread of its own, started before the command's imports.

    Why: attaching the store and installing the metric views (about 0.1-0.15 s, nearly all of it
    inside DuckDB and SQLite, which release the GIL) used to wait for the engine's imports (the
    config's pydantic models, the ratings' YAML) and the config; on a second core both now run at
    once. The modules the thread runs are imported here, before it starts, so the two threads
    never import the same module at once. Errors keep their order: the thread's error (no store,
    a bad ``--as-of``) is raised by :meth:`connection`, which the command calls where it used to
    open the reader, after its own checks of the options and the config."""

    def __init__(self, app_ctx: AppContext, as_of: str | None) -> None:
        import analytics.metrics.views  # noqa: F401  (open_reader imports it: see above)
        from analytics.store.connection import open_reader, parse_as_of

        self._con: duckdb.DuckDBPyConnection | None = None
        self._error: BaseException | None = None

        def run() -> None:
            try:
                self._con = open_reader(app_ctx.db_path, as_of=parse_as_of(as_of))
            except BaseException as exc:  # noqa: BLE001 - handed to the main thread as it was
                self._error = exc

        self._thread = threading.Thread(target=run, name="gitops-dora-open-reader", daemon=True)
        self._thread.start()

    def connection(self) -> duckdb.DuckDBPyConnection:
        """The reader, or the error opening it raised."""
        self._thread.join()
        if self._error is not None:
            error, self._error = self._error, None
            raise error
        assert self._con is not None
        return self._con

    def discard(self) -> None:
        """Wait for the thread and close what it opened (the command failed before using it)."""
        self._thread.join()
        if self._con is not None:
            self._con.close()
            self._con = None


def _warm_up(query: MetricsQuery) -> None:
    """Import and load, while the store attaches, what the report reads after the SQL: the
    ratings' benchmark table (YAML) and the JSON encoder. A ``--benchmark`` year without a table
    is left for the ratings to refuse where they always did."""
    import orjson  # noqa: F401

    from analytics.metrics.ratings import available_years, load_benchmark

    years = available_years()
    year = query.benchmark if query.benchmark is not None else (years[-1] if years else None)
    if year in years:
        load_benchmark(year)


@app.command("metrics")
def metrics_command(
    ctx: typer.Context,
    service: list[str] | None = typer.Option(None, "--service", help="only these services (repeatable)"),
    environment: list[str] | None = typer.Option(None, "--environment", help="only these environments"),
    team: list[str] | None = typer.Option(None, "--team", help="only these teams"),
    since: str | None = typer.Option(
        None, "--since", help="YYYY-MM-DD or ISO 8601 with zone (inclusive) [first deployment day]"
    ),
    until: str | None = typer.Option(
        None, "--until", help="YYYY-MM-DD or ISO 8601 with zone (exclusive) [day after the last deployment]"
    ),
    group_by: str = typer.Option(
        "service,environment", "--group-by", help="any of service, team, environment, repository"
    ),
    trend: str | None = typer.Option(None, "--trend", help="week or month: one row per group and period"),
    compare_previous: bool = typer.Option(
        False, "--compare-previous", help="add the window of equal length just before, with deltas"
    ),
    benchmark: int | None = typer.Option(
        None, "--benchmark", help="DORA report year to rate against [latest]"
    ),
    lead_time_start: str | None = typer.Option(
        None, "--lead-time-start", help="author or committer: which commit time starts lead time [config]"
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv"),
    as_of: str | None = AS_OF_OPTION,
    wide: bool = typer.Option(False, "--wide", help=WIDE_OPTION_HELP),
    verbose: bool = typer.Option(
        False, "--verbose", help="table: also print how each figure is counted (JSON has it as notes)"
    ),
) -> None:
    """DORA metrics per group over the half-open window [since, until) in UTC."""
    app_ctx = get_ctx(ctx)
    reader = _BackgroundReader(app_ctx, as_of)
    try:
        from analytics.metrics.engine import compute_metrics, no_gc_pauses

        query = metrics_query(
            since=since, until=until, group_by=group_by, service=service, environment=environment,
            team=team, trend=trend, compare_previous=compare_previous, benchmark=benchmark,
            lead_time_start=lead_time_start,
        )
        config = app_ctx.config
        _warm_up(query)
        con = reader.connection()
    except BaseException:
        reader.discard()
        raise
    # The cyclic collector is held off for the report and its output: what they build (row tuples,
    # group dicts, the JSON pieces) forms no cycle, and each of the 70-80 collections it started
    # walked them again (about 0.01 s for the plain window, 0.03 s for a weekly trend).
    with no_gc_pauses():
        try:
            check_known(con, services=query.services, teams=query.teams,
                        environments=query.environments, config=config)
            report = compute_metrics(con, query, config, closing=True)
        except BaseException:
            con.close()
            raise
        # Closing the store (about 0.025 s: the report's tables, the attached catalog) needs
        # nothing the output does, so it runs meanwhile on a thread of its own, ended before we return.
        closing = threading.Thread(target=con.close, name="gitops-dora-close-reader", daemon=True)
        closing.start()
        try:
            _print_report(report, query, fmt, wide=wide, verbose=verbose)
        finally:
            closing.join()
        del report  # freed here: the first collection after the block would walk its groups again


def _print_report(
    report: MetricsReport, query: MetricsQuery, fmt: Format, *, wide: bool, verbose: bool
) -> None:
    """The report as a table, JSON or CSV, then (table) the line about notes."""
    compare_previous = query.compare_previous
    # JSON prints the report's own payload; only table and CSV need the flattened rows
    rows = [] if fmt == Format.json else [_flatten(g) for g in report.groups]
    columns = list(report.columns)
    if compare_previous:
        values = [c for c in columns if c not in (*query.group_by, "period_start", "period_end", "ratings")]
        columns += [f"previous_{c}" for c in values] + [f"delta_{c}" for c in values]
    optional: list[str] = []
    if fmt == Format.table and wide:
        columns = [c for c in columns if c != "ratings"]
        rated = list(dict.fromkeys(m for r in rows for m in (r.get("ratings") or {})))
        rows = [{**r, **{f"{m}_rating": (r.get("ratings") or {}).get(m, {}).get("cluster") for m in rated}}
                for r in rows]
        columns += [f"{m}_rating" for m in rated]
    elif fmt == Format.table:
        keys = [c for c in columns if c in (*query.group_by, "period_start")]
        shown = [c for c in TABLE_METRICS if c in columns]
        deltas = [f"delta_{c}" for c in shown] if compare_previous else []
        columns = keys + [c for s in shown for c in (s, *([f"delta_{s}"] if compare_previous else []))]
        optional = [c for m in METRICS_OPTIONAL if m in shown
                    for c in ((f"delta_{m}", m) if f"delta_{m}" in deltas else (m,))]
    if fmt == Format.table:
        rows = [{**r, "period_start": _short_time(r.get("period_start"))} for r in rows]
    labels = {**TABLE_LABELS, **{f"delta_{k}": f"Δ {v}" for k, v in TABLE_LABELS.items()}}
    title = f"DORA metrics {report.since:%Y-%m-%d %H:%M} .. {report.until:%Y-%m-%d %H:%M} UTC"
    print_rows(rows, columns, fmt, title=title, json_payload=report.payload(), labels=labels,
               optional=optional, wide=wide)
    if fmt == Format.table:
        from analytics.progress import say

        if verbose:
            for note in report.notes:
                say(f"note: {note}")
        else:
            say("note: --verbose says how each figure is counted; --format json or csv gives every field")

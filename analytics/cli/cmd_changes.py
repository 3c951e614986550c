"""``gitops-dora changes``: every deployed change with its start, lead time and whether it counted.

The rows come from ``analytics/metrics/sql/change_audit.sql`` over the same views the metrics
read, so the median of the counted rows of a window is ``lead_time_median_hours`` for that window
(same filters, same ``--lead-time-start``). :func:`audit_rows` is the query for other readers
(the dashboard's drill-down).
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

from analytics.cli.app import AS_OF_OPTION, app, get_ctx
from analytics.cli.filters import check_known
from analytics.cli.output import WIDE_OPTION_HELP, Format, print_rows
from analytics.cli.output import option_values as _values
from analytics.reports import short_id

if TYPE_CHECKING:  # duckdb costs ~0.1 s to import: only the command itself loads it
    import duckdb

AUDIT_SQL = Path(__file__).resolve().parent.parent / "metrics" / "sql" / "change_audit.sql"

COLUMNS = (
    "deployment_id", "service", "team", "environment", "deployed_at", "deployment_status", "repo", "sha",
    "subject", "author_at", "committer_at", "pr_number", "pr_first_commit_at", "start_at", "start_source",
    "lead_hours", "outcome", "counted",
)
# The table's columns in the order shown; the optional ones go first, in this order, when the
# terminal is narrow (--wide shows every column, shas and ids whole).
TABLE_COLUMNS = (
    "deployed_at", "repo", "sha", "lead_hours", "outcome", "start_at", "start_source", "deployment_id",
    "service", "environment", "subject",
)
TABLE_OPTIONAL = ("subject", "environment", "service", "deployment_id", "start_source", "start_at")
TABLE_LABELS = {
    "deployed_at": "deployed (UTC)", "lead_hours": "lead h", "start_at": "start (UTC)",
    "start_source": "start", "deployment_id": "deployment", "environment": "env",
}


def audit_rows(
    con: duckdb.DuckDBPyConnection,
    *,
    deployments: Sequence[str] = (),
    services: Sequence[str] = (),
    environments: Sequence[str] = (),
    teams: Sequence[str] = (),
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """The audit rows on a reader whose views are installed and settings applied
    (:func:`analytics.metrics.engine.apply_settings`); the window is [since, until) on deployed_at."""
    clauses, params = ["TRUE"], []  # type: tuple[list[str], list[Any]]
    for column, values in (("deployment_id", deployments), ("service", services),
                           ("environment", environments), ("team", teams)):
        if values:
            clauses.append(f"l.{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if since is not None:
        clauses.append("l.deployed_at >= ?")
        params.append(since)
    if until is not None:
        clauses.append("l.deployed_at < ?")
        params.append(until)
    sql = AUDIT_SQL.read_text().replace("{where}", " AND ".join(clauses))
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]


@app.command("changes")
def changes_command(
    ctx: typer.Context,
    deployment: list[str] | None = typer.Option(None, "--deployment", help="only these deployment ids"),
    service: list[str] | None = typer.Option(None, "--service", help="only these services (repeatable)"),
    environment: list[str] | None = typer.Option(None, "--environment", help="only these environments"),
    team: list[str] | None = typer.Option(None, "--team", help="only these teams"),
    since: str | None = typer.Option(None, "--since", help="deployed at or after (YYYY-MM-DD or ISO 8601)"),
    until: str | None = typer.Option(None, "--until", help="deployed before (half-open window, UTC)"),
    lead_time_start: str | None = typer.Option(
        None, "--lead-time-start", help="author or committer: which commit time starts lead time [config]"
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv"),
    as_of: str | None = AS_OF_OPTION,
    wide: bool = typer.Option(False, "--wide", help=WIDE_OPTION_HELP),
) -> None:
    """List every change deployments shipped: its start (author, committer or PR first commit),
    lead time, and whether it counted for lead time (counted, baseline, negative,
    failed_deployment, no_start)."""
    from analytics.errors import UserError
    from analytics.metrics.engine import apply_settings
    from analytics.metrics.window import parse_instant
    from analytics.store.connection import open_reader, parse_as_of

    app_ctx = get_ctx(ctx)
    lo = parse_instant(since, "--since") if since else None
    hi = parse_instant(until, "--until") if until else None
    if lo is not None and hi is not None and hi <= lo:
        raise UserError(f"--until {until} must be after --since {since}")
    con = open_reader(app_ctx.db_path, as_of=parse_as_of(as_of))
    try:
        check_known(con, services=_values(service), teams=_values(team), environments=_values(environment),
                    config=app_ctx.config)
        apply_settings(con, app_ctx.config, lead_time_start=lead_time_start)
        rows = audit_rows(
            con, deployments=_values(deployment), services=_values(service),
            environments=_values(environment), teams=_values(team), since=lo, until=hi,
        )
    finally:
        con.close()
    if fmt == Format.table:
        if wide:
            print_rows(rows, COLUMNS, fmt, title="Changes", wide=True)
        else:
            shown = [{**r, "sha": (r["sha"] or "")[:12], "deployment_id": short_id(r["deployment_id"] or "")}
                     for r in rows]
            print_rows(shown, TABLE_COLUMNS, fmt, title="Changes", labels=TABLE_LABELS,
                       optional=TABLE_OPTIONAL)
        from analytics.progress import say

        counted = [float(r["lead_hours"]) for r in rows if r["counted"]]
        outcomes = {o: sum(1 for r in rows if r["outcome"] == o) for o in
                    ("counted", "baseline", "negative", "failed_deployment", "no_start")}
        median = f"{statistics.median(counted):.2f} h" if counted else "none"
        say(f"note: {len(rows)} changes; " + ", ".join(f"{k} {v}" for k, v in outcomes.items() if v)
            + f"; median lead time of the counted changes: {median}")
        return
    print_rows(rows, COLUMNS, fmt, title="Changes")

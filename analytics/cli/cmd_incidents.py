"""``gitops-dora incidents``: each incident with the deployment it counts against and why."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

import typer

from analytics.cli.app import AS_OF_OPTION, app, get_ctx
from analytics.cli.filters import check_known, team_clause
from analytics.cli.output import (
    WIDE_OPTION_HELP,
    Format,
    csv_text,
    option_values,
    print_cursor,
    print_rows,
)
from analytics.reports import short_id

COLUMNS = (
    "id", "service", "environment", "created_at", "resolved_at", "status", "restore_hours",
    "attribution_rule", "deployment_id", "deployment_deployed_at", "root_cause", "title",
)


# The table's columns in the order shown; the optional ones go first, in this order, when the
# terminal is narrow (--wide shows all, the deployment id whole).
TABLE_COLUMNS = (
    "id", "created_at", "service", "environment", "status", "restore_hours", "attribution_rule",
    "deployment_id", "resolved_at", "title", "root_cause", "deployment_deployed_at",
)
TABLE_OPTIONAL = (
    "deployment_deployed_at", "root_cause", "title", "resolved_at", "deployment_id", "attribution_rule",
    "restore_hours", "id",
)
TABLE_LABELS = {
    "created_at": "created (UTC)", "environment": "env", "restore_hours": "restore h",
    "attribution_rule": "rule", "deployment_id": "deployment", "resolved_at": "resolved (UTC)",
    "deployment_deployed_at": "deployed (UTC)",
}


class Status(StrEnum):
    open = "open"
    resolved = "resolved"
    closed = "closed"  # what GitHub and GitLab call a resolved issue: the same filter


@app.command("incidents")
def incidents_command(
    ctx: typer.Context,
    service: list[str] = typer.Option([], "--service", help="only these services (repeatable)"),
    environment: list[str] = typer.Option([], "--environment", help="only these environments (repeatable)"),
    team: list[str] = typer.Option([], "--team", help="only incidents of these teams' services (repeatable)"),
    since: str | None = typer.Option(None, "--since", help="created at or after (YYYY-MM-DD or ISO 8601)"),
    until: str | None = typer.Option(None, "--until", help="created before (half-open window, UTC)"),
    status: Status | None = typer.Option(
        None, "--status", help="open, or resolved (closed means the same)"
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv"),
    as_of: str | None = AS_OF_OPTION,
    wide: bool = typer.Option(False, "--wide", help=WIDE_OPTION_HELP),
) -> None:
    """List incidents and the deployment each was attributed to (rule: root_cause, gap, unattributed)."""
    from analytics.listing import prepare_incidents, print_incidents
    from analytics.metrics.engine import apply_settings
    from analytics.metrics.window import parse_edges
    from analytics.store.connection import open_reader, parse_as_of

    app_ctx = get_ctx(ctx)
    lo, hi = parse_edges(since, until)  # an inverted window is an error, as in every read command
    service, environment = list(option_values(service)), list(option_values(environment))
    team = list(option_values(team))
    clauses: list[str] = []
    params: list[Any] = []
    if service:
        clauses.append(f"service IN ({', '.join('?' for _ in service)})")
        params.extend(service)
    if environment:
        clauses.append(f"environment IN ({', '.join('?' for _ in environment)})")
        params.extend(environment)
    if team:
        clause, values = team_clause("team", "service", team, app_ctx.config)
        clauses.append(clause)
        params.extend(values)
    if lo is not None:
        clauses.append("created_at >= ?")
        params.append(lo)
    if hi is not None:
        clauses.append("created_at < ?")
        params.append(hi)
    if status is not None:
        clauses.append("is_open" if status == Status.open else "NOT is_open")
    where = " AND ".join(clauses) or "TRUE"
    con = open_reader(app_ctx.db_path, as_of=parse_as_of(as_of))
    try:
        check_known(con, services=service, teams=team, environments=environment, config=app_ctx.config)
        apply_settings(con, app_ctx.config)
        if fmt != Format.table and print_incidents(con, where, params, columns=COLUMNS, fmt=fmt,
                                                   header=csv_text([], COLUMNS)):
            return  # DuckDB wrote each line (analytics/listing)
        _, sql = prepare_incidents(con, where, params)
        cursor = con.execute(f"{sql} ORDER BY created_at, id", params)
        if fmt != Format.table or wide:
            print_cursor(cursor, COLUMNS, fmt, title="Incidents", wide=wide)
            return
        names = [d[0] for d in cursor.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    finally:
        con.close()
    rows = [{**r, "deployment_id": short_id(r["deployment_id"]) if r["deployment_id"] else None}
            for r in rows]
    print_rows(rows, TABLE_COLUMNS, fmt, title="Incidents", labels=TABLE_LABELS, optional=TABLE_OPTIONAL)

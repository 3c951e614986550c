"""``gitops-dora changes``: every deployed change with its start, lead time and whether it counted.

The rows come from ``analytics/metrics/sql/change_audit.sql`` over the same views the metrics
read, so the median of the counted rows of a window is ``lead_time_median_hours`` for that window
(same filters, same ``--lead-time-start``). The query is
:func:`analytics.metrics.audit.audit_rows`, which the dashboard's drill-down runs too.
"""

from __future__ import annotations

import statistics
from typing import TYPE_CHECKING

import typer

from analytics.cli.app import AS_OF_OPTION, app, get_ctx
from analytics.cli.filters import check_known
from analytics.cli.output import WIDE_OPTION_HELP, Format, print_rows
from analytics.cli.output import option_values as _values
from analytics.reports import short_id

if TYPE_CHECKING:  # duckdb costs ~0.1 s to import: only the command itself loads it
    pass

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
    """List every change deployments shipped, with its start, lead time and whether it counted.

    Start: the author, committer or PR first commit time.
    Whether it counted: counted, baseline, negative, failed_deployment or no_start."""
    from analytics.metrics.audit import audit_rows
    from analytics.metrics.engine import apply_settings
    from analytics.metrics.window import parse_edges
    from analytics.store.connection import open_reader, parse_as_of

    app_ctx = get_ctx(ctx)
    lo, hi = parse_edges(since, until)
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
        by_outcome = ", ".join(f"{k} {v}" for k, v in outcomes.items() if v)
        say(f"note: {len(rows)} changes" + (f"; {by_outcome}" if by_outcome else "")
            + f"; median lead time of the counted changes: {median}")
        return
    print_rows(rows, COLUMNS, fmt, title="Changes")

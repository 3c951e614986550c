"""Every change a deployment shipped, with its start, lead time and whether it counted: the rows
behind ``gitops-dora changes`` and the dashboard's drill-down, from one query
(``sql/change_audit.sql``), so the two can never tell a change's story differently."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb

AUDIT_SQL = Path(__file__).resolve().parent / "sql" / "change_audit.sql"
SERVICE_TEAMS = "gitops_dora_service_teams"  # the TEMP table apply_settings fills


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
    (:func:`analytics.metrics.engine.apply_settings`); the window is [since, until) on deployed_at.
    A team filter keeps a service the config puts in that team as one of several
    (``services[].teams``), as the metrics engine counts it, not only its first team."""
    clauses, params = ["TRUE"], []  # type: tuple[list[str], list[Any]]
    for column, values in (("deployment_id", deployments), ("service", services),
                           ("environment", environments)):
        if values:
            clauses.append(f"l.{column} IN ({', '.join('?' for _ in values)})")
            params.extend(values)
    if teams:
        marks = ", ".join("?" for _ in teams)
        clauses.append(f"(l.team IN ({marks}) OR l.service IN (SELECT service FROM {SERVICE_TEAMS} "
                       f"WHERE team IN ({marks})))")
        params.extend([*teams, *teams])
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

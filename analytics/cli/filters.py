"""Checking ``--service``, ``--team`` and ``--environment`` values against the store.

A misspelt filter used to give an empty table and exit 0, which reads as "nothing happened in that
service"; a leader then trusts a wrong answer. The read commands call :func:`check_known` on the
reader they already hold, so the known values are those of the same snapshot (``--as-of``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from analytics.errors import UserError

if TYPE_CHECKING:
    import duckdb

    from analytics.config import Config
    from analytics.metrics.engine import MetricsQuery

# Every place a value can come from: what the config loaded and what collectors and importers saw.
KNOWN_SQL = {
    "service": "SELECT name FROM services UNION SELECT service FROM deployments "
               "UNION SELECT service FROM incidents",
    "team": "SELECT team FROM services",
    "environment": "SELECT name FROM environments UNION SELECT environment FROM deployments "
                   "UNION SELECT environment FROM incidents",
}
PLURAL = {"service": "services", "team": "teams", "environment": "environments"}
SHOWN_KNOWN = 12  # more than this and the line stops being one a terminal shows whole


def known_values(con: duckdb.DuckDBPyConnection, dimension: str, config: Config | None = None) -> list[str]:
    """What the store saw, plus what the config names (a service's further teams live only there:
    the engine reads them on each run, so they filter as well as the stored one)."""
    sql = f"SELECT DISTINCT v FROM ({KNOWN_SQL[dimension]}) AS t(v) WHERE v IS NOT NULL"
    values = {str(r[0]) for r in con.execute(sql).fetchall()}
    if config is not None:
        if dimension == "service":
            values.update(s.name for s in config.services)
        elif dimension == "team":
            values.update(t for s in config.services for t in s.all_teams())
        else:
            values.update(e.name for e in config.environments)
    return sorted(values)


def unknown_message(dimension: str, unknown: Sequence[str], known: Sequence[str]) -> str:
    """``--service nosuch: not in the store or the config; known services: a, b, c`` (at most
    SHOWN_KNOWN named)."""
    names = ", ".join(known[:SHOWN_KNOWN])
    if len(known) > SHOWN_KNOWN:
        names += f", … ({len(known) - SHOWN_KNOWN} more)"
    listing = f"known {PLURAL[dimension]}: {names}" if known else f"the store has no {PLURAL[dimension]} yet"
    return f"--{dimension} {', '.join(unknown)}: not in the store or the config; {listing}"


def check_known(
    con: duckdb.DuckDBPyConnection,
    *,
    services: Sequence[str] = (),
    teams: Sequence[str] = (),
    environments: Sequence[str] = (),
    config: Config | None = None,
) -> None:
    """Raise a one-line UserError (exit 2) for the first dimension with a value the store never saw."""
    for dimension, chosen in (("service", services), ("team", teams), ("environment", environments)):
        if not chosen:
            continue
        known = known_values(con, dimension, config)
        unknown = [v for v in dict.fromkeys(chosen) if v not in known]
        if unknown:
            raise UserError(unknown_message(dimension, unknown, known))


def team_clause(column: str, service_column: str, teams: Sequence[str], config: Config | None) -> tuple[
        str, list[str]]:
    """A ``--team`` filter as SQL: the row's stored team is one of ``teams``, or its service is one
    the config puts in one of them as a further team (``services[].teams``), as the metrics engine
    counts it. Returns the clause and its parameters."""
    wanted = set(teams)
    extra = sorted(s.name for s in (config.services if config else []) if wanted & set(s.all_teams()))
    clause = f"{column} IN ({', '.join('?' for _ in teams)})"
    if extra:
        clause = f"({clause} OR {service_column} IN ({', '.join('?' for _ in extra)}))"
    return clause, [*teams, *extra]


def metrics_query(
    *, since: str | None, until: str | None, group_by: str, service: list[str] | None,
    environment: list[str] | None, team: list[str] | None, **rest: Any,
) -> MetricsQuery:
    """The engine's query from the options `metrics` and `report` share (the window, the grouping
    and the filters, read the same way by both), plus the command's own fields in ``rest``."""
    from analytics.cli.output import option_values
    from analytics.metrics.engine import MetricsQuery, parse_group_by
    from analytics.metrics.window import parse_instant

    return MetricsQuery(
        since=parse_instant(since, "--since") if since else None,
        until=parse_instant(until, "--until") if until else None,
        group_by=parse_group_by(group_by),
        services=option_values(service),
        environments=option_values(environment),
        teams=option_values(team),
        **rest,
    )

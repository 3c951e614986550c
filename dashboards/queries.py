"""Read-only queries behind the pages. Every result is cached on (database, snapshot stamp, SQL, params).

Listings live here; anything that is metric logic lives in ``sql/*.sql`` beside this module or in
the metrics engine.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from dashboards.filters import Filters
from dashboards.source import data_stamp, existing_relations, reader

SQL_DIR = Path(__file__).resolve().parent / "sql"


def sql_file(name: str) -> str:
    return (SQL_DIR / f"{name}.sql").read_text()


@st.cache_data(show_spinner=False, max_entries=512)
def _frame(db: str, stamp: int, sql: str, params: tuple[tuple[str, Any], ...]) -> pd.DataFrame:
    del stamp  # part of the cache key only
    with reader(Path(db)) as con:
        return con.execute(sql, dict(params)).df()


@st.cache_data(show_spinner=False, max_entries=16)
def _relations(db: str, stamp: int) -> frozenset[str]:
    del stamp
    with reader(Path(db)) as con:
        return frozenset(existing_relations(con))


def has_database(db: Path) -> bool:
    return data_stamp(db) != 0


def relations(db: Path) -> frozenset[str]:
    if not has_database(db):
        return frozenset()
    return _relations(str(db), data_stamp(db))


def frame(db: Path, sql: str, **params: Any) -> pd.DataFrame:
    return _frame(str(db), data_stamp(db), sql, tuple(sorted(params.items())))


def window_params(f: Filters) -> dict[str, Any]:
    return {
        "since": f"{f.since.isoformat()} 00:00:00+00",
        "until": f"{f.until.isoformat()} 00:00:00+00",
        "team": f.team,
        "service": f.service,
        "environment": f.environment,
    }


# The same predicate on every deployment listing: half-open window on deployed_at, then the slicers.
DEPLOYMENT_FILTER = """
    d.deployed_at >= CAST($since AS TIMESTAMPTZ) AND d.deployed_at < CAST($until AS TIMESTAMPTZ)
    AND ($service IS NULL OR d.service = $service)
    AND ($environment IS NULL OR d.environment = $environment)
    AND ($team IS NULL OR d.service IN (SELECT name FROM services WHERE team = $team))
"""


def dimensions(db: Path) -> dict[str, Any]:
    """Services, teams, environments and the newest deployment date, for the filter widgets."""
    empty: dict[str, Any] = {"services": [], "teams": [], "environments": [], "latest": None,
                             "service_team": {}}
    if not has_database(db):
        return empty
    services = frame(
        db,
        """
        SELECT name AS service, team FROM services
        UNION SELECT DISTINCT service, NULL FROM deployments WHERE service NOT IN (SELECT name FROM services)
        ORDER BY service
        """,
    )
    envs = frame(
        db,
        "SELECT name FROM environments UNION SELECT DISTINCT environment FROM deployments ORDER BY 1",
    )
    latest = frame(db, "SELECT CAST(max(deployed_at) AT TIME ZONE 'UTC' AS DATE) AS d FROM deployments")
    latest_value = latest["d"].iloc[0] if len(latest) else None
    latest_date: date | None = None
    if latest_value is not None and not pd.isna(latest_value):
        latest_date = pd.Timestamp(latest_value).date()
    return {
        "services": [str(s) for s in services["service"]],
        "teams": sorted({str(t) for t in services["team"].dropna()}),
        "environments": [str(e) for e in envs["name"]],
        "latest": latest_date,
        "service_team": {str(r.service): r.team for r in services.itertuples() if not pd.isna(r.team)},
    }


def deployment_count(db: Path) -> int:
    if not has_database(db):
        return 0
    return int(frame(db, "SELECT count(*) AS n FROM deployments")["n"].iloc[0])


def _filtered(db: Path, name: str, f: Filters, needs: tuple[str, ...] = ()) -> pd.DataFrame | None:
    """Run ``sql/<name>.sql`` with the deployment filter; None when a relation it needs is missing."""
    if not has_database(db):
        return None
    if needs and not set(needs) <= relations(db):
        return None
    sql = sql_file(name).replace("{filter}", DEPLOYMENT_FILTER)
    return frame(db, sql, **window_params(f))


def weekly_deployments(db: Path, f: Filters) -> pd.DataFrame | None:
    return _filtered(db, "weekly_deployments", f)


def lead_time_distribution(db: Path, f: Filters) -> pd.DataFrame | None:
    return _filtered(db, "lead_time_distribution", f, needs=("change_lead_times",))


def pr_breakdown(db: Path, f: Filters) -> pd.DataFrame | None:
    out = _filtered(db, "pr_breakdown", f, needs=("pr_lead_times",))
    return out if out is not None and len(out) else None


def deployment_list(db: Path, f: Filters) -> pd.DataFrame | None:
    return _filtered(db, "deployment_list", f, needs=("failure_signals",))


def failed_deployments(db: Path, f: Filters) -> pd.DataFrame | None:
    return _filtered(db, "failed_deployments", f, needs=("failure_signals",))


def incident_timeline(db: Path, f: Filters) -> pd.DataFrame | None:
    return _filtered(db, "incident_timeline", f, needs=("incident_attribution",))

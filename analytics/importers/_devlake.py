"""What the Apache DevLake import kinds share: DevLake's time format, and turning DevLake scopes
(repos, boards, CI/CD scopes) into services through its ``project_mapping``.

A DevLake *project* is what gitops-dora calls a service (its team comes from the config's
``services``). Every imported DevLake deployment and incident keeps the scopes it came from in
``devlake_row_scopes``, so the mapping may be imported before or after them: whichever file comes
last moves the rows to their project. A row in several projects takes the first project by name
(DevLake would count it in each); a row in none keeps its fallback service (the repository for a
deployment, nothing for an incident).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from analytics.config import Config
from analytics.deployments.dimensions import register_named
from analytics.importers._fields import RowContext, Timestamp, timestamp
from analytics.store.connection import WriteSession

# DevLake's MySQL/PostgreSQL exports write "2023-4-10 6:51:47" as well as ISO 8601.
_LOOSE = re.compile(r"^(\d{4})-(\d{1,2})-(\d{1,2})[ T](\d{1,2}):(\d{1,2})(?::(\d{1,2}))?(\.\d+)?(.*)$")
SCOPE_TABLES = ("cicd_scopes", "repos", "boards")


def devlake_time(record: dict[str, Any], key: str, where: RowContext) -> Timestamp | None:
    """A DevLake time column: ISO 8601, or the same with unpadded fields; naive means UTC (DevLake
    stores UTC)."""
    value = record.get(key)
    if isinstance(value, str):
        m = _LOOSE.match(value.strip())
        if m:
            year, month, day, hour, minute, second, fraction, zone = m.groups()
            zone = zone.strip()
            if zone.upper() in ("UTC", "Z"):
                zone = "+00:00"
            value = (f"{year}-{int(month):02d}-{int(day):02d}T{int(hour):02d}:{int(minute):02d}:"
                     f"{int(second or 0):02d}{fraction or ''}{zone}")
    return timestamp({key: value}, key, where)


def store_scopes(session: WriteSession, rows: Iterable[tuple[str, str, str, str, str | None]]) -> None:
    """Remember (record_kind, record_id, scope_table, scope_id, fallback_service) rows."""
    data = [{"record_kind": k, "record_id": i, "scope_table": t, "scope_id": s, "fallback_service": f}
            for k, i, t, s, f in rows]
    if data:
        session.upsert("devlake_row_scopes", data)


def apply_mapping(session: WriteSession, config: Config) -> tuple[int, int, list[tuple[str, str]]]:
    """Give every DevLake deployment and incident the service of its project (else its fallback).

    Returns (deployments moved, incidents moved, the (service, environment) scopes whose
    deployments changed, old and new) so the caller attributes exactly those again."""
    con = session.con
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _devlake_services AS
           WITH candidates AS (
               SELECT s.record_kind, s.record_id, s.fallback_service, m.project_name,
                      CASE s.scope_table WHEN 'cicd_scopes' THEN 1 WHEN 'repos' THEN 2 ELSE 3 END AS rank
               FROM devlake_row_scopes s
               LEFT JOIN devlake_project_mapping m
                   ON m.table_name = s.scope_table AND m.mapped_id = s.scope_id
           )
           SELECT record_kind, record_id,
                  coalesce(arg_min(project_name, rank::VARCHAR || ':' || project_name)
                               FILTER (WHERE project_name IS NOT NULL),
                           max(fallback_service)) AS service
           FROM candidates
           GROUP BY record_kind, record_id"""
    )
    moved = con.execute(
        """SELECT d.id, d.service, d.environment, n.service FROM deployments d
           JOIN _devlake_services n ON n.record_kind = 'deployment' AND n.record_id = d.id
           WHERE n.service IS NOT NULL AND n.service <> d.service"""
    ).fetchall()
    scopes = sorted({(str(old), str(env)) for _, old, env, _ in moved}
                    | {(str(new), str(env)) for _, _, env, new in moved})
    if moved:
        con.execute(
            """UPDATE deployments SET service = n.service FROM _devlake_services n
               WHERE n.record_kind = 'deployment' AND n.record_id = deployments.id
                 AND n.service IS NOT NULL AND n.service <> deployments.service"""
        )
    incidents = con.execute(
        """SELECT count(*) FROM incidents i
           JOIN _devlake_services n ON n.record_kind = 'incident' AND n.record_id = i.id
           WHERE n.service IS DISTINCT FROM i.service AND n.service IS NOT NULL"""
    ).fetchone()
    moved_incidents = int(incidents[0]) if incidents else 0
    if moved_incidents:
        con.execute(
            """UPDATE incidents SET service = n.service FROM _devlake_services n
               WHERE n.record_kind = 'incident' AND n.record_id = incidents.id
                 AND n.service IS NOT NULL AND n.service IS DISTINCT FROM incidents.service"""
        )
    services = [str(r[0]) for r in con.execute(
        "SELECT DISTINCT service FROM _devlake_services WHERE service IS NOT NULL").fetchall()]
    register_named(session, config, services, [])
    con.execute("DROP TABLE _devlake_services")
    return len(moved), moved_incidents, scopes

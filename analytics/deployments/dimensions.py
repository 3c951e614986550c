"""The services and environments rows name, registered in their dimension tables.

Rows are only added when missing, so a team or production flag that the config or a collector set
is never overwritten by a later import, webhook or code-host collection. Each table gets one
set-based MERGE: on a DuckLake catalog every statement is a catalog round trip, so a merge per
name would cost a round trip per service.
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics.config import Config
from analytics.store.connection import WriteSession
from analytics.store.upsert import merge


def register_named(
    session: WriteSession, config: Config, services: Iterable[str], environments: Iterable[str]
) -> None:
    """Add the named services (team from the config) and environments (production flag from the
    config) that are not registered yet."""
    names = sorted({s for s in services if s is not None})
    envs = sorted({e for e in environments if e is not None})
    production = set(config.production_environments())
    if names:
        # a service in several teams is stored with its first; the metrics engine fans it out
        teams = [next(iter(svc.all_teams()), None) if (svc := config.service(name)) else None
                 for name in names]
        merge(session.con, "services",
              "SELECT unnest(?::VARCHAR[]) AS name, unnest(?::VARCHAR[]) AS team",
              ["name", "team"], [names, teams], on_match="ignore")
    if envs:
        merge(session.con, "environments",
              "SELECT unnest(?::VARCHAR[]) AS name, unnest(?::BOOLEAN[]) AS is_production",
              ["name", "is_production"], [envs, [e in production for e in envs]], on_match="ignore")


def ensure_dimensions(session: WriteSession, config: Config) -> None:
    """Every service and environment of the config, and every service a deployment names, exists;
    for code-host and webhook rows, which name services the config may not list."""
    register_named(session, config, [s.name for s in config.services],
                   [e.name for e in config.environments])
    merge(session.con, "services",
          "SELECT DISTINCT service AS name, NULL AS team FROM deployments WHERE service IS NOT NULL",
          ["name", "team"], on_match="ignore")

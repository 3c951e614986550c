"""Registering the services and environments an imported file mentions.

Rows are only added when missing, so a collector's or the config's team and production flag are
never overwritten by an import.
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics.config import Config
from analytics.store.connection import WriteSession
from analytics.store.upsert import merge_values


def ensure_dimensions(
    session: WriteSession, config: Config, services: Iterable[str], environments: Iterable[str]
) -> None:
    production = set(config.production_environments())
    for name in sorted(set(services)):
        known = config.service(name)
        merge_values(session.con, "services", {"name": name, "team": known.team if known else None},
                     on_match="ignore")
    for env in sorted(set(environments)):
        merge_values(session.con, "environments", {"name": env, "is_production": env in production},
                     on_match="ignore")

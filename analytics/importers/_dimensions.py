"""Registering the services and environments an imported file mentions.

Rows are only added when missing, so a collector's or the config's team and production flag are
never overwritten by an import.
"""

from __future__ import annotations

from collections.abc import Iterable

from analytics.config import Config
from analytics.store.connection import WriteSession


def ensure_dimensions(
    session: WriteSession, config: Config, services: Iterable[str], environments: Iterable[str]
) -> None:
    production = set(config.production_environments())
    for name in sorted(set(services)):
        known = config.service(name)
        session.con.execute(
            "INSERT INTO services (name, team) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [name, known.team if known else None],
        )
    for env in sorted(set(environments)):
        session.con.execute(
            "INSERT INTO environments (name, is_production) VALUES (?, ?) ON CONFLICT DO NOTHING",
            [env, env in production],
        )

"""Two writers that register the same new service at the same moment leave one row, not two."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from analytics.store.connection import open_writer
from analytics.store.location import resolve
from analytics.store.upsert import merge_values
from tests.store_query import query


def test_overlapping_writers_registering_one_new_service_leave_one_row(
    pg_database: Any, tmp_path: Path
) -> None:
    """A PostgreSQL catalog lets two transactions overlap; both MERGEs find ``checkout`` missing and
    DuckLake commits both inserts (adding rows never conflicts). The barrier holds both units open
    until each has written, so the race happens every time, not by chance."""
    loc = resolve(pg_database.url, str(tmp_path / "data"))
    with open_writer(loc, source="setup") as session:
        merge_values(session.con, "services", {"name": "existing", "team": "a"})
    both_written = threading.Barrier(2, timeout=120)
    errors: list[BaseException] = []

    def register(team: str | None, environment: str) -> None:
        try:
            with open_writer(loc, source=f"writer-{team}") as session:
                merge_values(session.con, "services", {"name": "checkout", "team": team},
                             on_match="replace" if team else "ignore")
                merge_values(session.con, "environments", {"name": environment, "is_production": True},
                             on_match="ignore")
                both_written.wait()
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=register, args=(team, "prod")) for team in ("payments", None)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert errors == []
    assert query(loc, "SELECT name, team FROM lake.main.services ORDER BY name") == [
        ("checkout", "payments"), ("existing", "a")]
    assert query(loc, "SELECT name, is_production FROM lake.main.environments") == [("prod", True)]

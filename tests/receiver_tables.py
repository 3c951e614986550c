"""Every row of the tables a receiver test compares between two stores, read on one reader.

Three receiver modules compared a large-body store with an in-memory one table by table, a reader
per table (``tests.store_query.query``: some 0.05 CPU-s to open each, 13 tables, two or three
stores per test); one reader per store reads the same rows of the same newest snapshot.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from tests.store_query import store_reader


def every_row(db: Path, tables: Iterable[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows, sorted; ``reconciler_objects`` without ``last_seen`` (the receiver's
    clock when it saw the object)."""
    con = store_reader(db)
    try:
        return {t: sorted(con.execute(f"SELECT * EXCLUDE (last_seen) FROM {t}" if t == "reconciler_objects"
                                      else f"SELECT * FROM {t}").fetchall(), key=repr) for t in tables}
    finally:
        con.close()

"""The store: a DuckLake catalog (SQLite file or PostgreSQL) over Parquet data files.

Every module reads and writes through this package, so the engine underneath can change; see
docs/architecture.md ("Store and concurrency") for the design.
"""

from analytics.store.connection import (
    Snapshot,
    StoreConflictError,
    WriteSession,
    latest_snapshot,
    open_reader,
    open_writer,
    reader_snapshot,
    write_unit,
)
from analytics.store.location import StoreLocation, StoreRef, resolve

__all__ = [
    "Snapshot", "StoreConflictError", "StoreLocation", "StoreRef", "WriteSession", "latest_snapshot",
    "open_reader", "open_writer", "reader_snapshot", "resolve", "write_unit",
]

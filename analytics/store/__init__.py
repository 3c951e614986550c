"""The DuckDB store: one writer at a time, readers on an atomically published snapshot.

See docs/architecture.md ("Store and concurrency") for the design.
"""

from analytics.store.connection import ReadOnlyStore, WriteSession, open_reader, open_writer, snapshot_path

__all__ = ["ReadOnlyStore", "WriteSession", "open_reader", "open_writer", "snapshot_path"]

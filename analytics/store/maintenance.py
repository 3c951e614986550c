"""Keeping a DuckLake store small and fast: compaction, snapshot expiry, file clean-up; and copying
a 0.1 single-file DuckDB store into a new DuckLake store.

Every commit adds a snapshot and (past the inlining limit) a small Parquet file. Readers stay fast
while the files are merged now and then, and disk use stays bounded while snapshots older than the
retention are expired; time travel (``--as-of``) reaches back exactly as far as that retention.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from analytics.errors import UserError
from analytics.store.connection import CATALOG, StoreRef, _open_migrated, resolve, tables_present
from analytics.store.keys import TABLE_KEYS

RETENTION_ENV = "GITOPS_DORA_RETENTION_DAYS"
DEFAULT_RETENTION_DAYS = 30


def retention_days(option: int | None) -> int:
    if option is not None:
        days = option
    else:
        text = os.environ.get(RETENTION_ENV, "").strip()
        try:
            days = int(text) if text else DEFAULT_RETENTION_DAYS
        except ValueError:
            raise UserError(f"${RETENTION_ENV}={text!r}: give a whole number of days") from None
    if days < 0:
        raise UserError(f"retention {days} days: give 0 or more days")
    return days


@dataclass
class MaintainSummary:
    retention_days: int
    merged_files: int = 0
    expired_snapshots: int = 0
    deleted_files: int = 0
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (f"maintain: merged {self.merged_files} files, expired {self.expired_snapshots} snapshot"
                f"{'' if self.expired_snapshots == 1 else 's'} older than {self.retention_days} days, deleted"
                f" {self.deleted_files} unreferenced files")


def maintain(db: StoreRef, retention: int) -> MaintainSummary:
    """Flush inlined rows, merge small files, expire old snapshots, delete files nothing uses.

    Each step is DuckLake's own, safe to run while collectors and dashboards work: merging writes a
    new snapshot, and files are deleted only once no snapshot within the retention references them.
    """
    loc = resolve(db)
    summary = MaintainSummary(retention)
    con = _open_migrated(loc)
    older = f"now() - INTERVAL {int(retention)} DAY"
    try:
        try:
            con.execute(f"CALL ducklake_flush_inlined_data('{CATALOG}')").fetchall()
        except duckdb.Error as exc:  # rows stay inlined in the catalog: slower, never wrong
            summary.notes.append(f"inlined rows not flushed: {str(exc).splitlines()[0]}")
        merged = con.execute(f"CALL ducklake_merge_adjacent_files('{CATALOG}')").fetchall()
        summary.merged_files = sum(int(r[2]) for r in merged if len(r) > 2 and r[2] is not None)
        # counted after the merge, which writes a snapshot only when it merged something
        before = con.execute(f"SELECT count(*) FROM ducklake_snapshots('{CATALOG}')").fetchall()[0][0]
        con.execute(f"CALL ducklake_expire_snapshots('{CATALOG}', older_than => {older})").fetchall()
        after = con.execute(f"SELECT count(*) FROM ducklake_snapshots('{CATALOG}')").fetchall()[0][0]
        summary.expired_snapshots = int(before) - int(after)
        deleted = con.execute(f"CALL ducklake_cleanup_old_files('{CATALOG}', cleanup_all => true)").fetchall()
        orphans = con.execute(
            f"CALL ducklake_delete_orphaned_files('{CATALOG}', older_than => now() - INTERVAL 1 HOUR)"
        ).fetchall()
        summary.deleted_files = len(deleted) + len(orphans)
    except duckdb.Error as exc:
        raise UserError(f"maintain {loc}: {str(exc).splitlines()[0]}") from None
    finally:
        con.close()
    return summary


@dataclass
class MigrateSummary:
    counts: dict[str, int]

    def line(self) -> str:
        total = sum(self.counts.values())
        return f"migrate-store: copied {total} rows in {len(self.counts)} tables, counts verified"


def migrate_store(old: Path, new: StoreRef) -> MigrateSummary:
    """Copy every table of a 0.1 single-file DuckDB store into an empty DuckLake store, in one
    transaction, and check the row count of each table against the source before committing."""
    old = Path(old)
    if not old.is_file():
        raise UserError(f"migrate-store: {old}: no such file")
    loc = resolve(new)
    con = _open_migrated(loc)
    counts: dict[str, int] = {}
    try:
        try:
            con.execute(f"ATTACH '{str(old).replace(chr(39), chr(39) * 2)}' AS old_store (READ_ONLY)")
        except duckdb.Error as exc:
            raise UserError(
                f"migrate-store: {old} is not a DuckDB store: {str(exc).splitlines()[0]}"
            ) from None
        old_tables = {r[0] for r in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = 'old_store'").fetchall()}
        if "schema_migrations" not in old_tables:
            raise UserError(f"migrate-store: {old} has no schema_migrations table: not a gitops-dora store")
        present = tables_present(con)
        busy = [t for t in sorted(present & set(TABLE_KEYS)) if t != "schema_migrations"
                and con.execute(f'SELECT count(*) FROM {CATALOG}."{t}"').fetchall()[0][0]]
        if busy:
            raise UserError(f"migrate-store: {loc} already holds data (in {', '.join(busy[:3])}); "
                            "give a new, empty store")
        con.execute("BEGIN TRANSACTION")
        for table in sorted(set(TABLE_KEYS) & old_tables & present):
            if table == "schema_migrations":
                continue
            new_cols = [r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = ? "
                "AND table_name = ? ORDER BY ordinal_position", [CATALOG, table]).fetchall()]
            old_cols = {r[0] for r in con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_catalog = 'old_store' "
                "AND table_name = ?", [table]).fetchall()}
            cols = ", ".join(f'"{c}"' for c in new_cols if c in old_cols)
            con.execute(f'INSERT INTO {CATALOG}."{table}" ({cols}) SELECT {cols} FROM old_store."{table}"')
            want = con.execute(f'SELECT count(*) FROM old_store."{table}"').fetchall()[0][0]
            got = con.execute(f'SELECT count(*) FROM {CATALOG}."{table}"').fetchall()[0][0]
            if want != got:
                raise UserError(f"migrate-store: {table}: copied {got} rows of {want}; nothing was committed")
            counts[table] = int(got)
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
    return MigrateSummary(counts)

"""Versioned schema: numbered ``NNNN_name.sql`` files applied in order on every writer open.

Two processes opening a new store at once race to create the tables; the loser's transaction
conflicts and the store layer runs the migration again, which then finds the work done."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import duckdb

from analytics.store.literals import sql_string

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    path: Path


def available() -> list[Migration]:
    found = []
    for path in MIGRATIONS_DIR.glob("*.sql"):
        m = _NAME.match(path.name)
        if m:
            found.append(Migration(int(m.group(1)), m.group(2), path))
    found.sort(key=lambda mig: mig.version)
    versions = [mig.version for mig in found]
    if len(set(versions)) != len(versions):
        raise RuntimeError(f"duplicate migration versions in {MIGRATIONS_DIR}")
    return found


_CREATES = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?\"?([A-Za-z_][A-Za-z0-9_]*)\"?", re.I)
_ADDS = re.compile(
    r"\bALTER\s+TABLE\s+(?:IF\s+EXISTS\s+)?\"?([A-Za-z_][A-Za-z0-9_]*)\"?\s+ADD\s+(?:COLUMN\s+)?"
    r"(?:IF\s+NOT\s+EXISTS\s+)?\"?([A-Za-z_][A-Za-z0-9_]*)\"?", re.I)


def created_tables() -> frozenset[str] | None:
    """Every table the migrations create, or None when some migration neither creates a table nor
    adds a column (then the catalog cannot tell whether it ran). Pending migrations are applied in
    one transaction, so when all of these tables (and every :func:`added_columns` column) exist
    every migration has run: a writer can skip the check against ``schema_migrations``, two
    catalog statements on every open."""
    names: set[str] = {"schema_migrations"}
    for mig in available():
        text = mig.path.read_text()
        found = _CREATES.findall(text)
        if not found and not _ADDS.search(text):
            return None
        names.update(name.lower() for name in found)
    return frozenset(names)


def added_columns() -> frozenset[tuple[str, str]]:
    """Every (table, column) a migration adds with ``ALTER TABLE ... ADD COLUMN``: a migration
    that only adds columns leaves no new table behind, so the fast check looks for these too."""
    return frozenset((table.lower(), column.lower()) for mig in available()
                     for table, column in _ADDS.findall(mig.path.read_text()))


_CREATE_LEDGER = ("CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version INTEGER NOT NULL, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")


def applied(con: duckdb.DuckDBPyConnection) -> set[int]:
    con.execute(_CREATE_LEDGER)
    return {row[0] for row in con.execute("SELECT version FROM schema_migrations").fetchall()}


def migrate(con: duckdb.DuckDBPyConnection,
            on_new_store: Callable[[duckdb.DuckDBPyConnection], None] | None = None) -> list[int]:
    """Apply pending migrations, all in ONE transaction with the check of what is applied (each
    DuckLake commit is a catalog round trip, and a new store used to pay three: the ledger, the
    tables, the file options). ``on_new_store`` runs in the same transaction when the first
    migration is among those applied. Returns the versions applied."""
    con.execute("BEGIN TRANSACTION")
    try:
        done = applied(con)
        pending = [mig for mig in available() if mig.version not in done]
        for mig in pending:
            con.execute(mig.path.read_text())
            con.execute(f"INSERT INTO schema_migrations VALUES ({mig.version}, {sql_string(mig.name)}, "
                        "now())")
        if on_new_store is not None and any(mig.version == 1 for mig in pending):
            on_new_store(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return [mig.version for mig in pending]


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    row = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()
    return int(row[0]) if row else 0

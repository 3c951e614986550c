"""The SQL pieces a streamed import (a large CSV or JSON-lines file read by DuckDB, checked in SQL)
shares across kinds: Python's strip, the ISO forms both readers accept, the scratch memory and the
store's bounded MERGE, and the typed read of a CSV. One copy, so incidents and deployments check a
value the same way their record paths (``analytics/importers/_fields.py``) do."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from analytics.store.literals import sql_string

# Python's str.strip() whitespace, for RE2: the values parse_file strips before anything else.
_WS = (r"[\t\n\x0b\x0c\r\x1c-\x1f \x{85}\x{a0}\x{1680}\x{2000}-\x{200a}\x{2028}\x{2029}\x{202f}"
       r"\x{205f}\x{3000}]")
# The ISO 8601 forms datetime.fromisoformat and DuckDB read alike; any other form is left to the
# exact path (which accepts more, or names the line of a bad value).
ISO = r"^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]\d{2}:\d{2})?)?$"
ZONED = r"(Z|[+-]\d{2}:\d{2})$"


# DuckDB's memory for the scratch database that reads and checks a streamed file, and for the
# store's MERGE of it (one after the other; the process is ~150 MB besides): the target is 500 MB
# in all for a million rows. Both spill to disk beyond it.
SCRATCH_MEMORY = "160MB"
MERGE_MEMORY = "256MB"


@contextlib.contextmanager
def bounded(con: Any, limit: str = MERGE_MEMORY) -> Iterator[None]:
    """The store connection's DuckDB memory capped at ``limit`` for one statement, then reset
    (the connection is the unit's). It spills to the connection's temp_directory (DuckDB's
    default, ``.tmp`` under the working directory: the store sets no other, and one already used
    cannot be switched)."""
    con.execute(f"SET memory_limit = {sql_string(limit)}")
    try:
        yield
    finally:
        with contextlib.suppress(Exception):
            con.execute("RESET memory_limit")


# the record path's strip as a replacement pattern, and the test for whitespace at a value's end
STRIP = f"'^{_WS}+|{_WS}+$'"
_WS_AT_END = f"'{_WS}$'"


def stripped(expr: str) -> str:
    """A text column as the record path's ``text()`` leaves it: Python-stripped, empty as NULL.
    The usual value has nothing to strip and is kept after two cheap tests: its first byte is
    printable ASCII (a byte comparison: every whitespace character starts with a lower byte or a
    non-ASCII one) and an end-anchored match finds no whitespace at its end (the pattern with
    both ends scanned each whole value). Anything else (empty text included) is replaced."""
    return (f"CASE WHEN {expr} >= '!' AND {expr} < chr(127) AND NOT regexp_matches({expr}, {_WS_AT_END}) "
            f"THEN {expr} ELSE nullif(regexp_replace({expr}, {STRIP}, '', 'g'), '') END")


def csv_source(path: Any, header: Sequence[str], fields: Sequence[str]) -> str | None:
    """A SELECT of ``fields`` (stripped text, NULL for a column the file lacks) from the CSV at
    ``path`` with ``header``, typed as VARCHAR in one pass; None when the header repeats a name or
    has an empty one (the record path says which)."""
    names = [name.strip().lower() for name in header]
    if len(set(names)) != len(names) or "" in names:
        return None
    col = {n: f"c{i}" for i, n in enumerate(names)}
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
    values = ", ".join(f"{stripped(col[n]) if n in col else 'CAST(NULL AS VARCHAR)'} AS {n}" for n in fields)
    return (f"SELECT {values} "
            f"FROM read_csv({sql_string(str(path))}, header = true, auto_detect = false, "
            f"columns = {columns}, delim = ',', quote = '\"', escape = '\"', strict_mode = true, "
            f"encoding = 'utf-8')")

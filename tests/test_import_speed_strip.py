"""The streamed imports strip text in SQL as the record path's ``text()`` does in Python
(``str.strip()``, empty as NULL). The SQL keeps a value after two cheap tests (first byte printable
ASCII, no whitespace at the end) and only replaces the rest: every whitespace character Python
strips, at either end, and the bytes around the first test's bounds must come out as Python's."""

from __future__ import annotations

import sys

import duckdb

from analytics.importers.stream_sql import stripped as _stripped

# Every character str.strip() removes (Python's whitespace), found rather than listed.
WHITESPACE = [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
EDGES = ["!", "~", "\x7f", "\x01", "\x1b", " ", "a", "\u00e9", "\u2603", "\U0001f525", "\u200b", "\ufeff"]


def _values() -> list[str]:
    values = ["", "x", "plain text", "a b", "  ", *EDGES]
    for ws in WHITESPACE:
        values += [ws, f"{ws}x", f"x{ws}", f"{ws}x{ws}", f"x{ws}y", ws * 3]
    for edge in EDGES:
        values += [f"{edge}x", f"x{edge}", f"{edge}", f" {edge} ", f"{edge}x{edge}"]
    return values


def test_sql_strip_equals_python_strip() -> None:
    values = _values()
    con = duckdb.connect()
    try:
        rows = con.execute(
            f"SELECT i, {_stripped('v')} FROM (SELECT unnest($1) AS v, generate_subscripts($1, 1) AS i) "
            "ORDER BY i", [values]).fetchall()
    finally:
        con.close()
    got = [r[1] for r in rows]
    want = [v.strip() or None for v in values]
    assert len(got) == len(values) > 200
    mismatches = [(v, g, w) for v, g, w in zip(values, got, want, strict=True) if g != w]
    assert mismatches == []

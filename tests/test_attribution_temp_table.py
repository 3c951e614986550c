"""attribution._temp_table builds the same TEMP table from literal lists (few values: no pandas in
``collect git``) as from a registered DataFrame (many values)."""

from __future__ import annotations

import duckdb
import pytest

from analytics.deployments import attribution
from analytics.store import literals

VALUES = ["api", "it's", 'say "hi"', "ünïcode ✓", "", None, "a\nb", "x" * 300, "--", "$1", "NULL"]


def _table(monkeypatch: pytest.MonkeyPatch, limit: int) -> list[tuple[object, ...]]:
    monkeypatch.setattr(attribution, "MAX_INLINE_ITEMS", limit)
    con = duckdb.connect()
    try:
        attribution._temp_table(con, "t", {"repo": VALUES, "rev": list(reversed(VALUES))}, "k")
        types = con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall()
        rows = con.execute("SELECT * FROM t ORDER BY k").fetchall()
        return [tuple(types), *rows]
    finally:
        con.close()


def test_literal_lists_and_dataframe_give_the_same_table(monkeypatch: pytest.MonkeyPatch) -> None:
    inlined = _table(monkeypatch, literals.MAX_INLINE_ITEMS)
    framed = _table(monkeypatch, 0)
    assert inlined == framed
    assert inlined[0] == (("repo", "VARCHAR"), ("rev", "VARCHAR"), ("k", "INTEGER"))
    assert inlined[1:] == [(a, b, i) for i, (a, b) in enumerate(zip(VALUES, reversed(VALUES), strict=True))]

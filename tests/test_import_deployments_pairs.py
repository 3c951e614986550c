"""The streamed deployments import hands the pairs of rows that ship several repositories to the
store as a CSV file it writes itself, and resolves every revision in SQL
(analytics/importers/deployments_resolve.sql) rather than through resolve_many's DataFrame. Pair
cells and ids that a hand-rolled CSV would get wrong (quotes, commas, semicolons, formula-looking
and non-ASCII text) and every resolution outcome (full, upper-case and abbreviated shas, an
abbreviation two commits share, tags, unknown names, unknown repositories) give the record path's
tables and summary, and the stream imports no pandas."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from tests.test_import_deployments_stream import (
    HEADER,
    LAB,
    _exact,
    _store,
    _streamed,
    _tables,
    _write,
    base,  # noqa: F401 - the module-scoped fixtures: the store every test copies, built once
    repos,  # noqa: F401
)

IDS = ['pair "quoted"', "pair, comma", "pair; semi", "=SUM(A1)", "paire-é-✓", "pair 'single'", "plain"]


def _rows(shas: list[str], side: str) -> list[list[str]]:
    revisions = [
        f"api={shas[3]} lab={LAB[0][0]}", f"api={shas[2][:9].upper()};lab=abcdef1", "api=v1.3.0,lab=abcdef2",
        f"api=\"{shas[1][:8]}\" lab=nope", f"web=v1 api={side}", "api=nightly-10 other=x",
        f"api={shas[5][:7]}",
    ]
    rows = []
    for k in range(60):
        dep_id = f"{IDS[k % len(IDS)]} #{k}"
        paired = k % 3 != 2
        rows.append([dep_id, ["api", "web"][k % 2], ["production", "staging"][k % 4 // 2],
                     revisions[k % len(revisions)] if paired else shas[k % len(shas)][: 7 + k % 5],
                     f"2025-01-{1 + k // 6:02d}T10:{k:02d}:00Z", ["success", "failed"][k % 7 == 3],
                     "" if paired else "api", "", ""])
    return rows


def test_pairs_and_resolution_equal_the_record_path(
    tmp_path: Path, repos: dict[str, Any], base: Path,  # noqa: F811
) -> None:
    src = _write(tmp_path / "pairs.csv", _rows(repos["shas"], repos["side"]), HEADER)
    a, b = _store(tmp_path / "a", base), _store(tmp_path / "b", base)
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "pandas", None)  # any import of pandas in the stream now fails
        streamed = _streamed(a, src)
    assert streamed is not None
    assert streamed == _exact(b, src)
    stream_tables, exact_tables = _tables(a), _tables(b)
    assert stream_tables == exact_tables
    deps, pairs = exact_tables[:2]
    assert {p[0] for p in pairs} >= {f"{IDS[0]} #0", f"{IDS[1]} #1", f"{IDS[4]} #4"}
    assert {p[4] for p in pairs} == {"sha", "tag", "unknown"}
    assert '"' in "".join(p[3] for p in pairs)
    # a re-import changes nothing, streamed or not
    assert _streamed(a, src) == _exact(b, src)
    assert _tables(a) == stream_tables

"""``collect git`` writes its statement values as SQL literals, so a whole collection (new store,
full history, deployments, attribution) never makes DuckDB's Python binding import pandas or
pyarrow (about 0.4 s of CPU on every run); and a literal gives the same result as the bound
parameter it replaces."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from analytics.store.connection import open_reader
from analytics.store.literals import (
    MAX_INLINE_CHARS,
    MAX_INLINE_ITEMS,
    NotInlinable,
    execute,
    inline,
    sql_literal,
)

ROOT = Path(__file__).resolve().parent.parent

_PROBE = """
import sys
from analytics.cli.main import run
sys.argv = ["gitops-dora", *sys.argv[1:]]
try:
    run()
except SystemExit as exc:
    code = exc.code
else:
    code = 0
print("IMPORTED=" + ",".join(m for m in ("pandas", "pyarrow", "numpy") if m in sys.modules))
sys.exit(code)
"""


def _git(repo: Path, *args: str, when: int = 0) -> str:
    env = {**os.environ, "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@x", "GIT_COMMITTER_NAME": "A",
           "GIT_COMMITTER_EMAIL": "a@x", "GIT_AUTHOR_DATE": f"{1_700_000_000 + when} +0000",
           "GIT_COMMITTER_DATE": f"{1_700_000_000 + when} +0000"}
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True,
                          env=env).stdout.strip()


def _collect(db: Path, repo: Path, *extra: str) -> str:
    proc = subprocess.run([sys.executable, "-c", _PROBE, "--db", str(db), "collect", "git", str(repo),
                           *extra], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_full_and_incremental_collection_import_no_pandas(tmp_path: Path) -> None:
    repo = tmp_path / "svc"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for i in range(6):
        (repo / "f.txt").write_text(str(i))
        _git(repo, "add", "f.txt")
        _git(repo, "commit", "-q", "-m", f"change {i}", when=i * 60)
        if i % 2:
            _git(repo, "tag", "-a", f"v1.{i}.0", "-m", "release", when=i * 60 + 1)
    _git(repo, "revert", "--no-edit", "HEAD", when=900)
    _git(repo, "tag", "v1.9.0", when=901)
    db = tmp_path / "store.ducklake"
    first = _collect(db, repo, "--deploy-tags", r"^v[0-9.]+$", "--service", "svc")
    assert "IMPORTED=\n" in first
    (repo / "f.txt").write_text("again")
    _git(repo, "commit", "-qam", "one more", when=1000)
    _git(repo, "tag", "v2.0.0", when=1001)
    again = _collect(db, repo)
    assert "IMPORTED=\n" in again
    con = open_reader(db, install_views=False)
    try:
        assert con.execute("SELECT count(*) FROM commits").fetchall() == [(8,)]
        assert con.execute("SELECT count(*) FROM deployments").fetchall() == [(5,)]
        assert con.execute("SELECT count(*) FROM deployment_changes").fetchall() == [(8,)]
        assert con.execute("SELECT count(*) FROM commits WHERE reverts_sha IS NOT NULL"
                           ).fetchall() == [(1,)]
    finally:
        con.close()


_VALUES: list[object] = [
    None, True, False, 0, -7, 2 ** 31, 2 ** 62, -(2 ** 63), 1.5, -0.1, -2.5, 1e-300, "", "it's", "a?b",
    "it's $a -- ?",
    "$1 -- not /* a */ comment", "naïve ✓ 🚀", "tab\tand\nline",
    datetime(2026, 11, 30, 9, 15, 1, 123456, tzinfo=UTC),
    datetime(2026, 11, 30, 9, 15, 1, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    datetime(2026, 11, 30, 9, 15), date(2026, 2, 28),
    timedelta(days=90), timedelta(days=-1, seconds=3, microseconds=7), timedelta(0), timedelta(seconds=-5),
    ["a", None, "b'c"], [1, 2, 3], [], [True, False], [1.25, 2.5],
]


@pytest.mark.parametrize("value", _VALUES, ids=[repr(v)[:30] for v in _VALUES])
def test_literal_equals_bound_parameter(value: object) -> None:
    """Positional and named placeholders alike, a cast right after one included (a bare negative
    literal would take the cast before its sign)."""
    con = duckdb.connect()
    try:
        con.execute("SET TimeZone = 'UTC'")
        sql = "SELECT ? AS v, typeof(?) AS t, ?::VARCHAR AS text"
        assert con.execute(inline(sql, [value] * 3)).fetchall() == con.execute(sql, [value] * 3).fetchall()
        sql = "SELECT $value AS v, typeof($value) AS t, $other_1 AS o, $value::VARCHAR AS text"
        params = {"value": value, "other_1": "b"}
        assert con.execute(inline(sql, params)).fetchall() == con.execute(sql, params).fetchall()
    finally:
        con.close()


def test_placeholders_in_strings_comments_and_identifiers_are_left_alone() -> None:
    sql = "SELECT $1 AS \"a?\", '?$2' AS b, $2 -- ? $1\n, /* ? */ $1"
    assert inline(sql, ["x", 5]) == "SELECT 'x' AS \"a?\", '?$2' AS b, 5 -- ? $1\n, /* ? */ 'x'"


def test_what_cannot_be_a_literal_is_bound() -> None:
    for params in ([float("nan")], [b"bytes"], ["nul\0"], [list(range(MAX_INLINE_ITEMS + 1))],
                   [[False, []]], [["a", 1]], [[[1], [2]]],
                   [[datetime(2026, 1, 1), datetime(2026, 1, 1, tzinfo=UTC)]]):
        with pytest.raises(NotInlinable):
            inline("SELECT ?", params)
    with pytest.raises(NotInlinable):
        inline("SELECT ?, $1", ["a"])  # mixed styles
    with pytest.raises(NotInlinable):
        inline("SELECT ?, ?", ["a"])  # too few parameters
    with pytest.raises(NotInlinable):
        inline("SELECT $$ ? $$, ?", ["a"])  # a dollar-quoted string
    with pytest.raises(NotInlinable):
        inline("SELECT $0", ["a"])
    with pytest.raises(NotInlinable):
        inline("SELECT ?, ?", ["x" * (MAX_INLINE_CHARS // 2), "y" * (MAX_INLINE_CHARS // 2)])
    with pytest.raises(NotInlinable):
        sql_literal(object())
    con = duckdb.connect()
    try:
        long = list(range(MAX_INLINE_ITEMS + 1))
        assert execute(con, "SELECT len(?::BIGINT[])", [long]).fetchall() == [(len(long),)]
        assert execute(con, "SELECT ? || 'x'", ["a\0b"]).fetchall() == [("a\0bx",)]
    finally:
        con.close()


class _Recording:
    """A real connection that notes whether each statement came with bound parameters."""

    def __init__(self) -> None:
        self.con = duckdb.connect()
        self.bound: list[bool] = []

    def execute(self, sql: str, params: object = None) -> duckdb.DuckDBPyConnection:
        self.bound.append(params is not None)
        return self.con.execute(sql) if params is None else self.con.execute(sql, params)


def test_lists_are_bound_once_literals_no_longer_pay(monkeypatch: pytest.MonkeyPatch) -> None:
    from analytics.store import literals

    rec = _Recording()
    sql = "SELECT sum(x) FROM (SELECT unnest(?::BIGINT[]) AS x)"
    hundred = list(range(100))
    monkeypatch.setattr(literals, "_binding_paid", lambda: False)
    monkeypatch.setattr(literals, "_inlined_items", 0)
    # pandas not imported yet and the budget not spent: written as literals
    assert execute(rec, sql, [hundred]).fetchall() == [(4950,)]
    assert literals._inlined_items == 100
    # the process's budget spent: bound, same result
    monkeypatch.setattr(literals, "_inlined_items", literals.PROCESS_INLINE_BUDGET - 50)
    assert execute(rec, sql, [hundred]).fetchall() == [(4950,)]
    # pandas imported: a long list is bound, a short one and plain values are still literals
    monkeypatch.setattr(literals, "_inlined_items", 0)
    monkeypatch.setattr(literals, "_binding_paid", lambda: True)
    assert execute(rec, sql, [hundred]).fetchall() == [(4950,)]
    assert execute(rec, sql, [[1, 2, 3]]).fetchall() == [(6,)]
    assert execute(rec, "SELECT ? || ?", ["a", "b"]).fetchall() == [("ab",)]
    assert rec.bound == [False, True, True, False, False]
    rec.con.close()

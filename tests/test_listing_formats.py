"""The SQL twins of the CSV and JSON writers (analytics/listing/formats.sql) against the Python
path they replace (analytics.cli.output.print_rows): the same bytes for every character class the
writers treat differently (controls, escape sequences, bidi marks, formula starts, plain numbers,
quotes, commas, newlines), every float form (exponents, -0.0, NaN, infinities), times with and
without microseconds and before the year 1000, over enough rows that DuckDB sorts and projects
them in several chunks and threads."""

from __future__ import annotations

import random

import duckdb
import pytest

from analytics import listing
from analytics.cli import output
from tests.stdout_capture import captured

SPECIAL = [
    "", " ", "=1+2", " =x", "  -3.5", "-3.5", "+1e5", "-.5", "-3.", "-3\n", "-3\n\n", "-\u0663", "@a",
    "\t1", "\r\n", "a\r\nb", "a\rb", "\x1b[31mred\x1b[0m", "\x1b]8;;http://x\x07link\x1b]8;;\x07", "\x9b31m",
    "\x1bM",
    "a,b", 'a"b', "a\nb", "|cmd", "\uff1d1", "\uff0d1", "  ", "-", "+", "x\x00y", "\x0b\x0c", "\u2028",
    " \n-1",
    "1e5", "-1e+5", "- 1", "--1", "-1 ", " -1 ", "-1\t", "\t-1", "\n=1", "-Infinity", "\x1b", "\x1b]open",
    "\x1b\\", "e\u0301", "\u202eevil", "\u061c", "caf\u00e9 \U0001f600", "back\\slash", "\x7f\x85\x9f",
]
ALPHABET = [chr(c) for c in range(0x250)] + [chr(c) for c in (
    0x61C, 0x200E, 0x200F, 0x202A, 0x202E, 0x2066, 0x2069, 0x2028, 0x2029, 0xFF1D, 0xFF0B, 0xFF0D, 0xFF20,
    0xFF5C, 0x660, 0x663, 0x1F600, 0xFEFF)]


def _python(con: duckdb.DuckDBPyConnection, sql: str, columns: list[str], fmt: str) -> bytes:
    cursor = con.execute(f"SELECT * FROM ({sql}) ORDER BY k")
    names = [d[0] for d in cursor.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    return captured(lambda: output.print_rows(rows, columns, output.Format(fmt)))


def _sql(con: duckdb.DuckDBPyConnection, sql: str, columns: list[str], fmt: str) -> bytes:
    printed: list[bool] = []
    result = captured(lambda: printed.append(listing.print_listing(
        con, sql, [], order_by=["k"], columns=columns, fmt=fmt, header=output.csv_text([], columns))))
    assert printed == [True]
    return result



@pytest.fixture(scope="module")
def con() -> duckdb.DuckDBPyConnection:
    rng = random.Random(7)
    strings = [*SPECIAL,
               *("".join(rng.choice(ALPHABET) for _ in range(rng.randrange(0, 9))) for _ in range(30_000))]
    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")
    db.execute("CREATE TABLE s (k INTEGER, v VARCHAR)")
    # one INSERT of two lists (0.08 CPU-s) rather than executemany's 30,000 (2.9 CPU-s): the same rows
    keys = [*range(len(strings)), len(strings)]
    db.execute("INSERT INTO s SELECT unnest($1), unnest($2)", [keys, [*strings, None]])
    db.execute("""
        CREATE TABLE n AS
        SELECT i AS k,
               CASE WHEN i % 7 = 0 THEN NULL
                    ELSE random() * 10 ^ (random() * 30 - 12) * CASE WHEN i % 3 = 0 THEN -1 ELSE 1 END
               END AS d,
               TIMESTAMPTZ '1970-01-01 00:00:00+00' + to_microseconds(
                   CASE WHEN i % 5 = 0 THEN CAST(random() * 4e9 AS BIGINT) * 1000000
                        ELSE CAST(random() * 4e15 AS BIGINT) END) AS t,
               CASE WHEN i % 4 = 0 THEN NULL ELSE i % 2 = 0 END AS b,
               CASE WHEN i % 6 = 0 THEN NULL ELSE i * 1000003 - 5 END AS big
        FROM range(30000) AS r(i)""")
    db.execute("""
        INSERT INTO n VALUES
            (30000, 'nan', TIMESTAMPTZ '0999-03-04 05:06:07+00', NULL, NULL),
            (30001, 'inf', TIMESTAMPTZ '0999-03-04 05:06:07.25+00', true, 0),
            (30002, '-inf', TIMESTAMPTZ '1969-12-31 23:59:59.5+00', false, -1),
            (30003, -0.0, NULL, NULL, NULL),
            (30004, 0.0, TIMESTAMPTZ '1970-01-01 00:00:00+00', NULL, NULL),
            (30005, 1e-5, TIMESTAMPTZ '2100-12-31 23:59:59.999999+00', NULL, NULL),
            (30006, -1.5e-5, NULL, NULL, NULL), (30007, 1e-4, NULL, NULL, NULL),
            (30008, 9.99e-5, NULL, NULL, NULL), (30009, 2.5e-7, NULL, NULL, NULL),
            (30010, 1e16, NULL, NULL, NULL), (30011, 1e22, NULL, NULL, NULL),
            (30012, 1.5e-10, NULL, NULL, NULL)""")
    return db


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_text_cells_equal_the_python_writers(con: duckdb.DuckDBPyConnection, fmt: str) -> None:
    expected = _python(con, "SELECT k, v FROM s", ["v", "k"], fmt)
    assert _sql(con, "SELECT k, v FROM s", ["v", "k"], fmt) == expected
    assert expected.count(b"\n") > 30_000


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_numbers_times_and_booleans_equal_the_python_writers(
    con: duckdb.DuckDBPyConnection, fmt: str
) -> None:
    columns = ["k", "d", "t", "b", "big", "missing"]  # a column the query lacks prints empty
    expected = _python(con, "SELECT k, d, t, b, big FROM n", columns, fmt)
    assert _sql(con, "SELECT k, d, t, b, big FROM n", columns, fmt) == expected
    assert expected.count(b"\n") > 30_000


def test_formula_cells_are_escaped(con: duckdb.DuckDBPyConnection) -> None:
    text = _sql(con, "SELECT k, v FROM s WHERE k < 12", ["v"], "csv").decode()
    assert text.splitlines()[1:4] == ["", " ", "'=1+2"]
    assert "\n' =x\n" in text and "\n  -3.5\n" in text and "\n-3.5\n" in text


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_no_rows(con: duckdb.DuckDBPyConnection, fmt: str) -> None:
    sql = "SELECT k, v FROM s WHERE k < 0"
    assert _sql(con, sql, ["k", "v"], fmt) == _python(con, sql, ["k", "v"], fmt) == (
        b"k,v\n" if fmt == "csv" else b"[]\n")


def test_json_times_outside_utc_take_the_python_path(con: duckdb.DuckDBPyConnection) -> None:
    """DuckDB hands Python pytz datetimes in the session's zone; their offsets are not SQL's."""
    con.execute("SET TimeZone = 'Europe/Berlin'")
    try:
        printed = listing.print_listing(con, "SELECT k, t FROM n", [], order_by=["k"],
                                        columns=["k", "t"], fmt="json", header="")
        assert printed is False
        csv_sql = _sql(con, "SELECT k, t FROM n", ["k", "t"], "csv")
        assert csv_sql == _python(con, "SELECT k, t FROM n", ["k", "t"], "csv")  # CSV is in UTC anyway
    finally:
        con.execute("SET TimeZone = 'UTC'")

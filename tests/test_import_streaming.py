"""Streaming CSV imports (issue #16): a large incidents CSV is read by DuckDB's CSV reader and
checked in SQL, loading exactly what the record-by-record path loads; anything unusual goes to
that path, whose error names the line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analytics.importers import incidents
from analytics.importers.base import detect_csv_kind, sniff_csv
from analytics.store.connection import open_reader
from analytics.store.location import resolve
from tests.import_paths import exact, streamed
from tests.stability_env import INCIDENT_HEADER, run_cli_inprocess

HEADER = ",".join([*INCIDENT_HEADER, "url", "labels"]) + "\n"
ROWS = [
    'INC-1,api,production,2025-01-02T10:00:00Z,2025-01-02T11:30:00Z,"Outage, big",abc1234,,"sev1; db"\n',
    "INC-2,api,,2025-01-03 09:15,,Open one,,https://x.example/2,\n",
    "INC-3, web ,staging,2025-01-04T08:00:00.5+02:00,2025-01-04T09:00:00+02:00,  spaced  ,,, \n",
    "INC-4,web,production,2025-02-01,2025-02-02,Date only,,,\",\"\n",
    "INC-5,\u00a0db\u3000,production,2025-03-01T00:00:00-05:00,,Unicode spaces,,,\"a,,b\"\n",
]


def _write(path: Path, rows: list[str], newline: str = "\n") -> Path:
    path.write_text((HEADER + "".join(rows)).replace("\n", newline), encoding="utf-8", newline="")
    return path


def _table(db: Path) -> list[tuple[Any, ...]]:
    con = open_reader(resolve(str(db)))
    try:
        rows = con.execute("SELECT * FROM incidents ORDER BY id").fetchall()
        dims = con.execute(
            "SELECT (SELECT list(name ORDER BY name) FROM services), "
            "(SELECT list(name || ':' || is_production ORDER BY name) FROM environments)"
        ).fetchall()
    finally:
        con.close()
    return [*rows, *dims]


def _stream(db: Path, src: Path) -> str | None:
    return streamed(db, src, sniff_csv, detect_csv_kind, incidents.load_csv_stream)


def _exact(db: Path, src: Path) -> str:
    return exact(db, src)


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
def test_streamed_rows_equal_the_exact_path(tmp_path: Path, newline: str) -> None:
    src = _write(tmp_path / "inc.csv", ROWS, newline)
    streamed = _stream(tmp_path / "a.ducklake", src)
    exact = _exact(tmp_path / "b.ducklake", src)
    assert streamed == exact
    assert _table(tmp_path / "a.ducklake") == _table(tmp_path / "b.ducklake")


def test_reimport_is_idempotent(tmp_path: Path) -> None:
    src = _write(tmp_path / "inc.csv", ROWS)
    db = tmp_path / "a.ducklake"
    _stream(db, src)
    first = _table(db)
    _stream(db, src)
    assert _table(db) == first


def test_reimport_of_changed_rows_equals_the_exact_path(tmp_path: Path) -> None:
    """The streamed MERGE takes only rows that differ from the stored ones: a changed title, a
    resolved incident, a new row and an unchanged one end as the record path leaves them."""
    first = _write(tmp_path / "first.csv", ROWS)
    changed = [
        ROWS[0].replace('"Outage, big"', '"Outage, bigger"'),
        ROWS[1].replace("2025-01-03 09:15,,", "2025-01-03 09:15,2025-01-04T00:00:00Z,"),
        *ROWS[2:],
        "INC-6,api,production,2025-04-01T00:00:00Z,,New,,,\n",
    ]
    second = tmp_path / "second.csv"
    second.write_text(HEADER + "".join(changed), encoding="utf-8")
    _stream(tmp_path / "a.ducklake", first)
    _stream(tmp_path / "a.ducklake", second)
    _exact(tmp_path / "b.ducklake", first)
    _exact(tmp_path / "b.ducklake", second)
    streamed = _table(tmp_path / "a.ducklake")
    assert streamed == _table(tmp_path / "b.ducklake")
    assert [r[5] for r in streamed[:2]] == ["Outage, bigger", "Open one"]
    assert streamed[1][4] is not None and len(streamed) == 6 + 1  # six incidents, then the dimensions


@pytest.mark.parametrize(
    "row",
    [
        "INC-9,api,production,2025-13-02T10:00:00Z,,bad month,,,\n",
        "INC-9,api,production,1969-12-31T23:00:00Z,,too early,,,\n",
        "INC-9,api,production,2025-01-02T10:00:00Z,2025-01-01T10:00:00Z,resolved first,,,\n",
        "INC-1,api,production,2025-01-02T10:00:00Z,,duplicate id,,,\n",
        ",api,production,2025-01-02T10:00:00Z,,no id,,,\n",
        "INC-9,api,production,02/01/2025,,other format,,,\n",
        'INC-9,api,production,2025-01-02T10:00:00Z,,"two\nlines",,,\n',
        "INC-9,api,production,2025-01-02T10:00:00Z,,too many,,,,extra\n",
    ],
)
def test_an_unusual_row_goes_to_the_exact_path(tmp_path: Path, row: str) -> None:
    src = _write(tmp_path / "inc.csv", [*ROWS, row])
    assert _stream(tmp_path / "a.ducklake", src) is None


@pytest.mark.parametrize(
    "text",
    [
        "id: 1\nservice: a\n",  # YAML
        '[{"id": "1"}]\n',  # JSON
        "id,service,created_at\n---\nx: 1\n",  # a YAML document marker
        "\ufeffid,service,created_at\n1,a,2025-01-01\n",  # a BOM: left to parse_file
        "id,service,created_at\r1,a,2025-01-01\r",  # lone carriage returns
    ],
)
def test_files_parse_file_might_not_read_as_csv_do_not_stream(tmp_path: Path, text: str) -> None:
    src = tmp_path / "f.csv"
    src.write_bytes(text.encode())
    assert sniff_csv(src, min_bytes=0) is None


def test_cli_streams_a_large_file_and_names_the_line_of_a_bad_value(tmp_path: Path) -> None:
    rows = [
        f"INC-{i},svc{i % 7},production,2025-01-{1 + i % 28:02d}T10:00:00Z,,Incident number {i:08d},,,\n"
        for i in range(15_000)
    ]
    src = _write(tmp_path / "big.csv", rows)
    assert src.stat().st_size > 1024 * 1024
    db = tmp_path / "s.ducklake"
    proc = run_cli_inprocess(db, "import", str(src))
    assert "imported 15000 incidents rows (15000 open)" in proc.stderr
    bad = _write(tmp_path / "bad.csv", [*rows, "INC-X,svc,production,2025-01-01T10:00:00Z,1999-01-01,,,,\n"])
    proc = run_cli_inprocess(db, "import", str(bad), check=False)
    assert proc.returncode != 0
    assert "line 15002: 'resolved_at' is outside the years 1970-2100" in proc.stderr or \
        "line 15002: 'resolved_at' is earlier than 'created_at'" in proc.stderr


@pytest.mark.parametrize(("row", "reason"), [
    # the rest of the file is one value: past the csv module's limit before the end of the data
    ('INC-X,svc,production,2025-01-01T10:00:00Z,,"Quote never closed,,,\n',
     "(or a quoted value that starts here and is never closed)"),
    ('INC-X,svc,production,2025-01-01T10:00:00Z,,"abc"def,,,\n', "text after a closing quote"),
], ids=["unclosed", "after-closing-quote"])
def test_a_large_file_with_malformed_quoting_fails_on_its_line_and_imports_nothing(
        tmp_path: Path, row: str, reason: str) -> None:
    """DuckDB's strict reader refuses the file and hands it to parse_file, which is strict too: one
    line naming the row, and nothing stored (the lenient reader used to store "abc"def as abcdef)."""
    rows = [f"INC-{i},svc{i % 7},production,2025-01-{1 + i % 28:02d}T10:00:00Z,,Incident {i:08d},,,\n"
            for i in range(40_000)]
    src = _write(tmp_path / "big.csv", [*rows[:20_000], row, *rows[20_000:]])
    assert src.stat().st_size > 1024 * 1024
    db = tmp_path / "s.ducklake"
    proc = run_cli_inprocess(db, "import", str(src), check=False)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {src}: line 20002: malformed CSV: "), lines
    assert reason in lines[0]
    assert _table(db) == [(None, None)]  # no incident, service or environment: nothing half-written


@pytest.mark.parametrize("fmt", ["json", "csv"])
@pytest.mark.parametrize("count", [0, 1, 7])
def test_streamed_output_equals_the_whole_list(
    tmp_path: Path, capsysbinary: pytest.CaptureFixture[bytes], monkeypatch: pytest.MonkeyPatch,
    fmt: str, count: int,
) -> None:
    import duckdb

    from analytics.cli import output

    monkeypatch.setattr(output, "STREAM_BATCH", 3)
    con = duckdb.connect()
    sql = ("SELECT 'd' || i AS id, TIMESTAMPTZ '2025-01-01 00:00:00+00' + i * INTERVAL 1 HOUR AS at, "
           "CASE WHEN i % 2 = 0 THEN '=cmd' ELSE 'a\nb' END AS note, [i, i] AS xs "
           f"FROM range({count}) t(i) ORDER BY i")
    names = ["id", "at", "note", "xs"]
    rows = [dict(zip(names, r, strict=True)) for r in con.execute(sql).fetchall()]
    output.print_rows(rows, names, output.Format(fmt))
    whole = capsysbinary.readouterr().out
    output.print_cursor(con.execute(sql), names, output.Format(fmt))
    assert capsysbinary.readouterr().out == whole

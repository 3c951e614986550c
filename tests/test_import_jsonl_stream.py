"""Streaming JSON-lines imports (issue #16): a large incidents JSON-lines file is read by DuckDB's
JSON reader and checked in SQL, loading exactly what the record path (parse_file + incidents.load)
loads; anything that path might read differently, or reject, goes to that path."""

from __future__ import annotations

import json
import random
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from analytics.importers import incidents
from analytics.importers.base import detect_jsonl_kind, sniff_csv, sniff_jsonl
from analytics.store.connection import open_reader
from analytics.store.location import resolve
from tests.import_paths import exact, streamed
from tests.stability_env import run_cli_inprocess

HOSTILE_TEXT = [
    'say "hi"', "it's", "=cmd|' /C calc'!A0", "+SUM(1)", "-2+3", "@x", "\u00e9t\u00e9 \u2603 \U0001f525",
    "\u00a0padded\u3000", "  spaced  ", "", "   ", "a,b;c", "back\\slash", "<script>x</script>",
    "line\nbreak", "tab\there", "x" * 100_000,
]
STAMPS = [
    "2025-01-02T10:00:00Z", "2025-01-02T10:00:00+02:00", "2025-01-02T10:00:00.123456-05:30",
    "2025-01-02 10:00", "2025-01-02", " 2025-01-02T10:00:00+00:00 ", "2025-01-02T10:00:00",
]


def _rows(count: int, seed: int = 7) -> list[dict[str, Any]]:
    """Generated incidents mixing hostile text, nulls, empty strings, missing keys and offsets."""
    rng = random.Random(seed)
    rows = []
    for i in range(count):
        row: dict[str, Any] = {
            "id": f"INC-{i}" if i % 11 else f"  INC-{i}\u00a0",
            "service": rng.choice(["api", " web ", "db\u3000", "=cmd|x"]),
            "environment": rng.choice(["production", "staging", "", None, " prod "]),
            "created_at": rng.choice(STAMPS),
            "title": rng.choice(HOSTILE_TEXT),
            "root_cause": rng.choice([None, "", "abc1234", '"quoted"']),
        }
        if i % 3:
            row["resolved_at"] = rng.choice(["2025-06-01T00:00:00Z", "2025-06-01T00:00:00+09:00", "", None])
        if i % 4 == 0:
            row["url"] = rng.choice(["https://x.example/i?a=1&b=2", "", None])
        if i % 5 == 0:
            row["labels"] = rng.choice(["sev1; db", " a ,, b ", "", None, ";", "\u00e9"])
        if i % 6 == 0:
            row["extra_note"] = rng.choice(["ignored", 3, None, True, 1.5])
        if i % 9 == 0:
            del row["root_cause"]
        rows.append(row)
    return rows


def _write(path: Path, rows: list[dict[str, Any]], *, ascii_only: bool = False, newline: str = "\n") -> Path:
    text = "".join(json.dumps(r, ensure_ascii=ascii_only) + newline for r in rows)
    path.write_bytes(text.encode("utf-8"))
    return path


def _tables(db: Path) -> list[Any]:
    """Every table an incidents import writes, sorted (warnings without their time)."""
    con = open_reader(resolve(str(db)))
    try:
        return [
            con.execute("SELECT * FROM incidents ORDER BY id").fetchall(),
            con.execute("SELECT * FROM services ORDER BY ALL").fetchall(),
            con.execute("SELECT * FROM environments ORDER BY ALL").fetchall(),
            con.execute("SELECT source, target, kind, detail, count FROM data_warnings "
                        "ORDER BY ALL").fetchall(),
        ]
    finally:
        con.close()


def _stream(db: Path, src: Path) -> str | None:
    return streamed(db, src, sniff_jsonl, detect_jsonl_kind, incidents.load_jsonl_stream)


def _exact(db: Path, src: Path) -> str:
    return exact(db, src, "jsonl")


@pytest.mark.parametrize(("ascii_only", "newline"), [(False, "\n"), (True, "\n"), (False, "\r\n")])
def test_streamed_store_equals_the_record_path(tmp_path: Path, ascii_only: bool, newline: str) -> None:
    src = _write(tmp_path / "inc.jsonl", _rows(400), ascii_only=ascii_only, newline=newline)
    streamed = _stream(tmp_path / "a.ducklake", src)
    exact = _exact(tmp_path / "b.ducklake", src)
    assert streamed is not None
    assert streamed == exact
    a, b = _tables(tmp_path / "a.ducklake"), _tables(tmp_path / "b.ducklake")
    assert a == b
    assert len(a[0]) == 400 and any(len(r[5] or "") == 100_000 for r in a[0])


def _data_files(db: Path) -> list[tuple[Any, ...]]:
    """The incidents table's live data and delete files in the store's SQLite catalog."""
    catalog = sqlite3.connect(resolve(str(db)).catalog)
    try:
        table = ("(SELECT table_id FROM ducklake_table WHERE table_name = 'incidents' "
                 "AND end_snapshot IS NULL)")
        return [
            *catalog.execute(f"SELECT 'data', path FROM ducklake_data_file WHERE table_id IN {table} "
                             "AND end_snapshot IS NULL ORDER BY path").fetchall(),
            *catalog.execute(f"SELECT 'delete', path FROM ducklake_delete_file WHERE table_id IN {table} "
                             "AND end_snapshot IS NULL ORDER BY path").fetchall(),
        ]
    finally:
        catalog.close()


def test_reimport_rewrites_nothing(tmp_path: Path) -> None:
    src = _write(tmp_path / "inc.jsonl", _rows(300))
    db = tmp_path / "a.ducklake"
    _stream(db, src)
    first, files = _tables(db), _data_files(db)
    assert files
    assert _stream(db, src) is not None
    assert _tables(db) == first
    assert _data_files(db) == files


def test_reimport_of_changed_rows_equals_the_record_path(tmp_path: Path) -> None:
    rows = _rows(120)
    changed = [dict(r) for r in rows]
    changed[1]["title"] = "changed"
    changed[2]["resolved_at"] = "2025-07-01T00:00:00Z"
    changed[3].pop("url", None)
    changed.append({"id": "NEW", "service": "api", "created_at": "2025-01-01T00:00:00Z"})
    first, second = _write(tmp_path / "1.jsonl", rows), _write(tmp_path / "2.jsonl", changed)
    for path in (first, second):
        assert _stream(tmp_path / "a.ducklake", path) is not None
        _exact(tmp_path / "b.ducklake", path)
    assert _tables(tmp_path / "a.ducklake") == _tables(tmp_path / "b.ducklake")


GOOD = '{"id": "OK-1", "service": "api", "created_at": "2025-01-01T00:00:00Z"}\n'
GOOD2 = GOOD.replace("OK-1", "OK-2")


@pytest.mark.parametrize(
    "line",
    [
        '{"id": 5, "service": "api", "created_at": "2025-01-01T00:00:00Z"}\n',  # a number: str() in Python
        '{"id": "X", "service": true, "created_at": "2025-01-01T00:00:00Z"}\n',
        '{"id": "X", "service": "api", "created_at": 1735689600}\n',  # epoch seconds
        '{"id": "X", "service": "api", "created_at": "2025-13-01T00:00:00Z"}\n',
        '{"id": "X", "service": "api", "created_at": "1969-12-31T23:00:00Z"}\n',
        '{"id": "X", "service": "api", "created_at": "01/02/2025"}\n',
        '{"id": "X", "service": "api", "created_at": "2025-01-02", "resolved_at": "2025-01-01"}\n',
        '{"id": "OK-1", "service": "api", "created_at": "2025-01-01T00:00:00Z"}\n',  # duplicate id
        '{"id": "", "service": "api", "created_at": "2025-01-01T00:00:00Z"}\n',
        '{"service": "api", "created_at": "2025-01-01T00:00:00Z"}\n',
        '{"id": "X", "service": "api", "created_at": "2025-01-01T00:00:00Z", "title": NaN}\n',
    ],
)
def test_a_value_the_record_path_reads_otherwise_is_not_streamed(tmp_path: Path, line: str) -> None:
    src = tmp_path / "inc.jsonl"
    src.write_text(GOOD + line, encoding="utf-8")
    assert _stream(tmp_path / "a.ducklake", src) is None


@pytest.mark.parametrize(
    "text",
    [
        GOOD + '{"id": "X", "id": "Y", "service": "api", "created_at": "2025-01-01"}\n',  # repeated key
        GOOD + '{"ID": "X", "service": "api", "created_at": "2025-01-01"}\n',  # key case
        GOOD + '{"id": "X", "service": "api", "created_at": "2025-01-01", "x": {"y": 1}}\n',  # nested
        GOOD + GOOD2 + "\n" + GOOD.replace("OK-1", "OK-3"),  # a blank line
        GOOD + GOOD2 + "   \n",  # a line of spaces
        GOOD + GOOD2 + "[1]\n",
        GOOD + '{"id": "X", "service": "api", "created_at": "2025-01-01", "labels": ["a"]}\n',  # a list
        GOOD + '{"id": "X", "service": "api", "created_at": "2025-01-01", "deployed_at": "x"}\n',
        GOOD + '{"id": "X", "service": "api", "created_at": "2025-01-01T00:00:00Z"\n',  # malformed
    ],
)
def test_files_whose_shape_the_record_path_must_read_do_not_stream(tmp_path: Path, text: str) -> None:
    src = tmp_path / "inc.jsonl"
    src.write_text(text, encoding="utf-8")
    sniff = sniff_jsonl(src, min_bytes=0)
    assert sniff is not None
    assert detect_jsonl_kind(sniff) is None


@pytest.mark.parametrize(
    "text",
    [
        GOOD,  # one line: parse_file reads a JSON document
        '[{"id": "1"},\n{"id": "2"}]\n',
        "\ufeff" + GOOD + GOOD,  # a BOM
        GOOD + GOOD.replace("api", "a\\ud800"),  # a surrogate escape
        GOOD + GOOD.replace("api", "a\u2028b"),  # a line break to str.splitlines
        GOOD.replace("\n", "\r") + GOOD,  # a lone carriage return
        "id,service,created_at\n1,a,2025-01-01\n",
    ],
)
def test_files_parse_file_might_read_otherwise_are_not_sniffed(tmp_path: Path, text: str) -> None:
    src = tmp_path / "f.jsonl"
    src.write_bytes(text.encode())
    assert sniff_jsonl(src, min_bytes=0) is None


def _big(count: int) -> list[dict[str, Any]]:
    return [{"id": f"INC-{i}", "service": f"svc{i % 7}", "environment": "production",
             "created_at": f"2025-01-{1 + i % 28:02d}T10:00:00Z", "title": f"Incident number {i:08d}"}
            for i in range(count)]


def test_cli_streams_a_large_file_and_names_the_line_of_malformed_json(tmp_path: Path) -> None:
    rows = _big(12_000)
    src = _write(tmp_path / "big.jsonl", rows)
    assert src.stat().st_size > 1024 * 1024
    assert sniff_csv(src) is None and sniff_jsonl(src) is not None
    db = tmp_path / "s.ducklake"
    proc = run_cli_inprocess(db, "import", str(src))
    assert "imported 12000 incidents rows (12000 open)" in proc.stderr
    before = _tables(db)
    bad = tmp_path / "bad.jsonl"
    text = src.read_text().splitlines(keepends=True)
    text[7000] = text[7000].replace('"title"', '"title" "x"')
    bad.write_text("".join(text).replace("INC-", "NEW-"))
    proc = run_cli_inprocess(db, "import", str(bad), check=False)
    assert proc.returncode == 2
    errors = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert errors == [f"error: {bad}: line 7001: malformed JSON line: Expecting ':' delimiter"] or \
        (len(errors) == 1 and f"{bad}: line 7001: malformed JSON line" in errors[0])
    assert _tables(db) == before

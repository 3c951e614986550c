"""Import files are recognised by content and every record keeps its source line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from analytics.errors import SourceError
from analytics.importers.base import parse_file


def test_csv_records_and_lines(tmp_path: Path) -> None:
    f = tmp_path / "incidents.txt"  # extension is irrelevant: content decides
    f.write_text("id,service\nINC-1,pay\n\nINC-2,shop\n")
    parsed = parse_file(f)
    assert parsed.format == "csv"
    assert parsed.records == [{"id": "INC-1", "service": "pay"}, {"id": "INC-2", "service": "shop"}]
    assert parsed.lines == [2, 4]


def test_yaml_list_under_a_key_keeps_lines(tmp_path: Path) -> None:
    f = tmp_path / "x.yaml"
    f.write_text("incidents:\n  - id: A\n    title: one\n  - id: B\n")
    parsed = parse_file(f)
    assert parsed.format == "yaml"
    assert [r["id"] for r in parsed.records] == ["A", "B"]
    assert parsed.lines == [2, 4]
    assert "__line__" not in parsed.documents[0]["incidents"][0]


def test_json_array_lines(tmp_path: Path) -> None:
    f = tmp_path / "x.json"
    f.write_text('[\n  {"id": "A", "nested": {"k": 1}},\n\n  {"id": "B"}\n]\n')
    parsed = parse_file(f)
    assert parsed.format == "json"
    assert parsed.lines == [2, 4]


def test_json_lines(tmp_path: Path) -> None:
    f = tmp_path / "events"
    f.write_text('{"reason": "a"}\n\n{"reason": "b"}\n')
    parsed = parse_file(f)
    assert parsed.format == "jsonl"
    assert parsed.records == [{"reason": "a"}, {"reason": "b"}]
    assert parsed.lines == [1, 3]


def test_quotes_csv_allows_are_kept_as_written(tmp_path: Path) -> None:
    """A quote inside an unquoted value and a doubled quote inside a quoted one are valid CSV: the
    strict reader keeps them."""
    f = tmp_path / "quotes.csv"
    f.write_text('id,service,title\nA,web,12" screen\nB,web,"say ""hi"", then go"\n')
    parsed = parse_file(f)
    assert [r["title"] for r in parsed.records] == ['12" screen', 'say "hi", then go']
    assert parsed.lines == [2, 3]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "file is empty"),
        ('{"id": 1,,}', "malformed JSON"),
        ("key: [unclosed\n", "malformed YAML"),
        ("id,service\nA,b,extra\n", "line 2: more values than header columns"),
        # a quote never closed: the lenient reader took the rest of the file as one value
        ('id,service,title\nA,b,ok\nC,"d,never closed\nE,f,g\n',
         "line 3: malformed CSV: a quoted value that starts here is never closed"),
        # text after a closing quote: the lenient reader stored "abc"def as abcdef
        ('id,service\nA,"abc"def\n', "line 2: malformed CSV: text after a closing quote"),
        ("just a sentence\n", "not a CSV, JSON or YAML file of records"),
    ],
)
def test_malformed_files_name_the_file(tmp_path: Path, content: str, message: str) -> None:
    f = tmp_path / "bad.input"
    f.write_text(content)
    with pytest.raises(SourceError) as err:
        parse_file(f)
    assert str(err.value).startswith(str(f)) and message in str(err.value)

"""The large-file sniff (issue #16) reads a file in chunks and skips, per chunk, the tests that
chunk cannot fail: the UTF-8 decode of an ASCII chunk, the search for line-break characters
outside ASCII, the lone-surrogate search where no backslash is, the carriage-return counts where
no CR is. These files put what each skipped test looks for past the first chunk, after ASCII
ones, where only a wrong skip would miss it (a file of one chunk cannot show that)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analytics.errors import SourceError
from analytics.importers.base import _SNIFF_CHUNK, parse_file, sniff_csv, sniff_jsonl

LINE = json.dumps({"id": "INC-{:08d}", "service": "api", "created_at": "2025-01-02T10:00:00Z",
                   "title": "Outage"}) + "\n"


def _ascii_lines(size: int, start: int = 0) -> bytes:
    """ASCII JSON lines of exactly ``size`` bytes (the last one's title pads the rest)."""
    lines, total, i = [], 0, start
    while size - total > 200:
        line = LINE.replace("{:08d}", f"{i:08d}").encode()
        lines.append(line)
        total += len(line)
        i += 1
    pad = size - total - len(b'{"id": "F%d", "title": ""}\n' % i)
    assert pad >= 0
    return b"".join(lines) + b'{"id": "F%d", "title": "%s"}\n' % (i, b"x" * pad)


def _chunks(*parts: bytes) -> bytes:
    return b"".join(parts)


def _line_ending_with(tail: bytes, size: int, start: int) -> bytes:
    """ASCII JSON lines of ``size`` bytes whose last bytes (inside an open title string) are
    ``tail``; the next chunk must close the string."""
    body = _ascii_lines(size - len(tail) - len(b'{"id": "T", "title": "'), start)
    return body + b'{"id": "T", "title": "' + tail


def test_a_character_split_between_chunks_is_valid_utf8(tmp_path: Path) -> None:
    first = _line_ending_with(b"\xc3", _SNIFF_CHUNK, 0)
    second = b'\xa9"}\n' + _ascii_lines(_SNIFF_CHUNK, 10**6)
    src = tmp_path / "ok.jsonl"
    src.write_bytes(_chunks(first, second))
    assert len(first) == _SNIFF_CHUNK
    sniff = sniff_jsonl(src)
    assert sniff is not None
    assert sniff.lines == src.read_bytes().count(b"\n")
    assert parse_file(src).format == "jsonl"


def test_an_ascii_chunk_after_an_unfinished_character_is_invalid_utf8(tmp_path: Path) -> None:
    """The first chunk ends with a UTF-8 lead byte, the second is all ASCII, the third starts with
    a continuation byte: the lead byte and the continuation byte would pair up if the ASCII chunk
    in between were not given to the decoder."""
    first = _line_ending_with(b"\xc3", _SNIFF_CHUNK, 0)
    second = b'"}\n' + _ascii_lines(_SNIFF_CHUNK - 3, 10**6)
    third = b'\xa9"}\n' + _ascii_lines(1000, 2 * 10**6)
    src = tmp_path / "bad.jsonl"
    src.write_bytes(_chunks(first, second, third))
    assert second.isascii() and len(first) == len(second) == _SNIFF_CHUNK
    assert sniff_jsonl(src) is None
    with pytest.raises(SourceError, match="not UTF-8"):
        parse_file(src)


@pytest.mark.parametrize(
    "late",
    [
        '{"id": "L", "title": "a\u2028b"}\n'.encode(),  # a line break to str.splitlines
        '{"id": "L", "title": "a\u0085b"}\n'.encode(),
        b'{"id": "L", "title": "a\\ud800b"}\n',  # a lone surrogate escape
        b'{"id": "L", "title": "a\\uDC00b"}\n',
        b'{"id": "L", "title": "ab"}\r{"id": "M"}\n',  # a lone carriage return
        b'{"id": "L", "title": "a\x1fb"}\n',  # a control character
    ],
)
def test_what_the_record_path_reads_otherwise_is_found_after_ascii_chunks(
    tmp_path: Path, late: bytes,
) -> None:
    src = tmp_path / "late.jsonl"
    src.write_bytes(_chunks(_ascii_lines(2 * _SNIFF_CHUNK), late, _ascii_lines(1000, 10**7)))
    assert sniff_jsonl(src) is None
    clean = tmp_path / "clean.jsonl"
    clean.write_bytes(_chunks(_ascii_lines(2 * _SNIFF_CHUNK), _ascii_lines(1000, 10**7)))
    assert sniff_jsonl(clean) is not None


def test_a_surrogate_pair_escape_after_ascii_chunks_streams(tmp_path: Path) -> None:
    src = tmp_path / "pair.jsonl"
    src.write_bytes(_chunks(_ascii_lines(2 * _SNIFF_CHUNK), b'{"id": "P", "title": "\\ud83d\\ude00"}\n'))
    assert sniff_jsonl(src) is not None


def test_a_lone_carriage_return_after_ascii_chunks_is_found_in_a_csv(tmp_path: Path) -> None:
    row = b"INC-1,api,2025-01-02T10:00:00Z,Outage\n"
    body = b"id,service,created_at,title\n" + row * (2 * _SNIFF_CHUNK // len(row) + 1)
    src = tmp_path / "late.csv"
    src.write_bytes(body + b"INC-2,api,2025-01-02T10:00:00Z,a\rb\n")
    assert sniff_csv(src) is None
    src.write_bytes(body + b"INC-2,api,2025-01-02T10:00:00Z,a\r\n")
    assert sniff_csv(src) is not None


@pytest.mark.parametrize(
    "first_line", [LINE.replace("{:08d}", "1"), "---\n", "name: x\n", "# a, b\n", "one\n"],
)
def test_a_file_whose_first_line_is_no_csv_header_is_not_scanned_for_csv(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, first_line: str,
) -> None:
    """The import asks sniff_csv first of every file: a JSON-lines file of 200 MB was scanned whole
    (0.9 s) before its first line ruled it out."""
    import analytics.importers.base as base

    src = tmp_path / "f.txt"
    src.write_bytes(first_line.encode() + _ascii_lines(2 * 1024 * 1024))

    def scan(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("the whole file was scanned")

    monkeypatch.setattr(base, "_scan", scan)
    assert sniff_csv(src) is None
    csv_file = tmp_path / "f.csv"
    csv_file.write_bytes(b"id,service,created_at\n" + b"INC-1,api,2025-01-02\n" * 100_000)
    with pytest.raises(AssertionError, match="scanned"):
        sniff_csv(csv_file)

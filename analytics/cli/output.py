"""Rendering rows as a Rich table, JSON or CSV: one place so every command formats alike.

Data is never trusted as markup or as terminal input: table cells are Rich ``Text`` (an incident
titled ``route [/checkout] returns 500`` or ``[link=...]`` prints literally) with C0/C1 control
characters (ESC, BEL, ...) and bidi overrides removed; CSV cells lose the same characters and
go through the one formula-escaping function, :func:`analytics.reports.escape_cell`.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from enum import StrEnum
from typing import Any

from analytics.json_output import dumps_bytes, to_jsonable
from analytics.redaction import needs_stripping, strip_controls
from analytics.reports import FORMULA_FIRST, escape_cell


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def csv_cell(value: Any) -> Any:
    """One CSV value: text without control characters (tab and newlines kept) and formula-escaped."""
    value = to_jsonable(value)
    if isinstance(value, dict | list):
        value = json.dumps(value)
    if isinstance(value, str):
        return escape_cell(strip_controls(value, keep_newlines=True))
    return value


def csv_text(rows: Sequence[Mapping[str, Any]], columns: Sequence[str], *, header: bool = True) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    if header:
        writer.writerow([csv_cell(c) for c in columns])
    # csv_cell inlined: trend output runs to hundreds of thousands of cells
    for row in rows:
        cells = []
        for key in columns:
            value = to_jsonable(row.get(key))
            if isinstance(value, dict | list):
                value = json.dumps(value)
            if isinstance(value, str) and value:
                if needs_stripping(value):
                    value = strip_controls(value, keep_newlines=True)
                if value[:1] in FORMULA_FIRST or value[:1] == " ":
                    value = escape_cell(value)
            cells.append(value)
        writer.writerow(cells)
    return buf.getvalue()


def safe_text(value: Any, style: str = "") -> Any:
    """A Rich ``Text`` of ``value``: never parsed as markup, control characters removed."""
    from rich.text import Text

    return Text(strip_controls(str(value)), style=style)


def print_rows(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    json_payload: Any = None,
) -> None:
    """Print rows; ``json_payload`` overrides the JSON shape (default: a list of row objects)."""
    if fmt == Format.json:
        _write_json(json_payload if json_payload is not None else list(rows))
        return
    if fmt == Format.csv:
        sys.stdout.write(csv_text(rows, columns))
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=safe_text(title) if title is not None else None, show_lines=False)
    for col in columns:
        table.add_column(safe_text(col), overflow="fold")
    for row in rows:
        table.add_row(*(safe_text("" if row.get(c) is None else _cell(row.get(c))) for c in columns))
    Console().print(table)
    if not rows:
        Console(stderr=True).print("[dim](no rows)[/dim]")


STREAM_BATCH = 10_000


def print_cursor(
    cursor: Any,
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
) -> None:
    """Print a query's rows as :func:`print_rows` would, reading JSON and CSV in batches of
    STREAM_BATCH rows (``fetchmany``) so memory holds one batch, not the whole result. The JSON
    bytes are those of ``dumps_bytes`` over the whole list; a table still needs every row."""
    names = [d[0] for d in cursor.description or []]

    def batches() -> Iterator[list[dict[str, Any]]]:
        while chunk := cursor.fetchmany(STREAM_BATCH):
            yield [dict(zip(names, r, strict=True)) for r in chunk]

    if fmt == Format.table:
        print_rows([row for chunk in batches() for row in chunk], columns, fmt, title=title)
        return
    buffer = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()

    def emit(data: bytes) -> None:
        if buffer is None:
            sys.stdout.write(data.decode())
        else:
            buffer.write(data)

    if fmt == Format.csv:
        header = True
        for chunk in batches():
            text = csv_text(chunk, columns, header=header)
            header = False
            emit(text.encode())
        if header:
            emit(csv_text([], columns).encode())
    else:
        # dumps_bytes of a list is "[\n" + items joined by ",\n" + "\n]": each batch's items are
        # written as they come, with the same indentation.
        first = True
        for chunk in batches():
            body = dumps_bytes(chunk)[2:-2]
            emit((b"[\n" if first else b",\n") + body)
            first = False
        emit(b"[]\n" if first else b"\n]\n")
    if buffer is not None:
        buffer.flush()
    else:
        sys.stdout.flush()


def _write_json(payload: Any) -> None:
    """Write the encoded bytes straight to stdout: a weekly trend is tens of megabytes, and
    decoding them to text only for the text layer to encode them again costs a noticeable share."""
    data = dumps_bytes(payload)
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a stream without a byte layer (some test runners)
        sys.stdout.write(data.decode() + "\n")
        return
    sys.stdout.flush()
    buffer.write(data)
    buffer.write(b"\n")
    buffer.flush()


def _cell(value: Any) -> str:
    value = to_jsonable(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def option_values(option: list[str] | None) -> tuple[str, ...]:
    """Repeatable options also accept comma lists: --service a,b == --service a --service b."""
    return tuple(v.strip() for item in option or [] for v in item.split(",") if v.strip())

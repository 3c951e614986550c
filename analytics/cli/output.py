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
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from analytics.json_output import dumps_bytes, dumps_pieces, to_jsonable
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
    labels: Mapping[str, str] | None = None,
    optional: Sequence[str] = (),
    wide: bool = False,
) -> None:
    """Print rows; ``json_payload`` overrides the JSON shape (default: a list of row objects).

    A table must stay readable in the terminal it lands in (80 columns when nothing says
    otherwise): ``labels`` gives short headers, and the ``optional`` columns are left out, in that
    order, until the rest fits, with one stderr line naming what was left out. ``wide`` shows
    every column under its field name at full width, whatever the terminal (for a pager or a file).
    """
    if fmt == Format.json:
        _write_json(json_payload if json_payload is not None else list(rows))
        return
    if fmt == Format.csv:
        sys.stdout.write(csv_text(rows, columns))
        return
    print_table(rows, columns, title=title, labels=labels, optional=optional, wide=wide)


TABLE_GAP = 3  # what box.SIMPLE_HEAD with padding (0, 1) and no edge puts between two columns
# A column that cannot be left out folds its values to lines this wide, when that brings back
# columns its longest value pushed out: one 150-character service name left `metrics` with the
# service column alone. Wider than a short id (32), a table time (19) and usual names.
FOLD_WIDTH = 40


def table_cells(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> list[list[str]]:
    """Every cell as the table shows it: numbers rounded, times to the minute when that loses
    nothing, missing values empty."""
    return [["" if row.get(c) is None else _cell(row.get(c)) for c in columns] for row in rows]


def fit_columns(
    widths: Mapping[str, int], columns: Sequence[str], optional: Sequence[str], width: int
) -> tuple[list[str], list[str]]:
    """(shown, hidden): ``optional`` columns dropped in order until the table is ``width`` wide;
    then any dropped column that fits in the room left comes back, the most important first (a
    wide id dropped late must not take a narrow figure dropped before it along)."""
    shown = list(columns)
    hidden: list[str] = []
    for name in optional:
        if _table_width(widths, shown) <= width:
            break
        if name in shown:
            shown.remove(name)
            hidden.append(name)
    for name in reversed(list(hidden)):
        candidate = [c for c in columns if c in shown or c == name]
        if _table_width(widths, candidate) <= width:
            shown = candidate
            hidden.remove(name)
    return shown, hidden


def _table_width(widths: Mapping[str, int], shown: Sequence[str]) -> int:
    return sum(widths[c] for c in shown) + TABLE_GAP * max(len(shown) - 1, 0)


def fold_long_columns(
    widths: Mapping[str, int], heads: Mapping[str, int], columns: Sequence[str], optional: Sequence[str],
    width: int,
) -> tuple[dict[str, int], list[str], list[str]]:
    """(widths, shown, hidden) for a table ``width`` wide. As :func:`fit_columns`, unless a column
    that cannot be left out is wider than :data:`FOLD_WIDTH` (never narrower than its header,
    ``heads``) and capping it there brings back columns that its longest value alone pushed out:
    then its values fold at that width (a long value costs lines, not the headline figures).
    Normal data, which fits or has no such long value, is laid out exactly as before."""
    shown, hidden = fit_columns(widths, columns, optional, width)
    if not hidden:
        return dict(widths), shown, hidden
    capped = {c: w if c in optional else min(w, max(FOLD_WIDTH, heads[c])) for c, w in widths.items()}
    if capped == dict(widths):
        return dict(widths), shown, hidden
    folded_shown, folded_hidden = fit_columns(capped, columns, optional, width)
    if len(folded_hidden) < len(hidden):
        return capped, folded_shown, folded_hidden
    return dict(widths), shown, hidden


def print_table(
    rows: Sequence[Mapping[str, Any]],
    columns: Sequence[str],
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    optional: Sequence[str] = (),
    wide: bool = False,
) -> None:
    from rich import box
    from rich.cells import cell_len
    from rich.console import Console
    from rich.table import Table

    heads = {c: c if wide else (labels or {}).get(c, c) for c in columns}
    cells = table_cells(rows, columns)
    widths = {c: max([cell_len(strip_controls(heads[c]))]
                     + [cell_len(strip_controls(r[i])) for r in cells]) for i, c in enumerate(columns)}
    console = Console()
    hidden: list[str] = []
    layout = widths  # the width each column is given; narrower than its longest value: it folds
    if wide:
        shown = list(columns)
        needed = max(_table_width(widths, shown), cell_len(title or ""))
        console = Console(width=max(needed, 20))
    else:
        head_widths = {c: cell_len(strip_controls(heads[c])) for c in columns}
        layout, shown, hidden = fold_long_columns(widths, head_widths, columns, optional, console.width)
    # Values are never cut: a column that still does not fit folds rather than hiding its end.
    fits = _table_width(layout, shown) <= console.width
    table = Table(title=safe_text(title) if title is not None else None, box=box.SIMPLE_HEAD,
                  show_edge=False, pad_edge=False, padding=(0, 1),
                  min_width=min(cell_len(title or ""), console.width))
    index = {c: i for i, c in enumerate(columns)}
    for col in shown:
        folded = layout[col] < widths[col]  # fixed at its capped width, wrapping (folding) within it
        table.add_column(safe_text(heads[col]), no_wrap=fits and not folded, overflow="fold",
                         min_width=layout[col] if fits else None, width=layout[col] if folded else None)
    for row in cells:
        table.add_row(*(safe_text(row[index[c]]) for c in shown))
    console.print(table)
    if not rows:
        Console(stderr=True).print("[dim](no rows)[/dim]")
    if hidden:
        from analytics.progress import say

        names = ", ".join(heads[c] for c in hidden)
        say(f"note: {len(hidden)} column{'s' if len(hidden) > 1 else ''} left out to fit "
            f"{console.width} columns ({names}); --wide shows every column")


STREAM_BATCH = 10_000


def print_cursor(
    cursor: Any,
    columns: Sequence[str],
    fmt: Format,
    *,
    title: str | None = None,
    labels: Mapping[str, str] | None = None,
    optional: Sequence[str] = (),
    wide: bool = False,
) -> None:
    """Print a query's rows as :func:`print_rows` would, reading JSON and CSV in batches of
    STREAM_BATCH rows (``fetchmany``) so memory holds one batch, not the whole result. The JSON
    bytes are those of ``dumps_bytes`` over the whole list; a table still needs every row."""
    names = [d[0] for d in cursor.description or []]

    def batches() -> Iterator[list[dict[str, Any]]]:
        while chunk := cursor.fetchmany(STREAM_BATCH):
            yield [dict(zip(names, r, strict=True)) for r in chunk]

    if fmt == Format.table:
        print_table([row for chunk in batches() for row in chunk], columns, title=title, labels=labels,
                    optional=optional, wide=wide)
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


# The metrics payload's list of groups: tens of thousands with a weekly trend (76 MB of JSON on
# the bench store), written in pieces of STREAMED_ITEMS groups (about 1.8 MB) by _write_json.
STREAMED_KEY = "groups"
STREAMED_ITEMS = 1024


def _write_json(payload: Any) -> None:
    """Write the encoded bytes straight to stdout: a weekly trend is tens of megabytes, and
    decoding them to text only for the text layer to encode them again costs a noticeable share.

    A payload with more than STREAMED_ITEMS groups is encoded in pieces
    (:func:`analytics.json_output.dumps_pieces`: the same bytes) and each piece is written by a
    thread of its own while the next is encoded: writing (to a pipe the reader drains, or to a
    file's page cache: 0.14 s of CPU for 76 MB) releases the GIL, encoding (0.06 s) holds it, so
    on two cores the two overlap."""
    buffer = getattr(sys.stdout, "buffer", None)
    if buffer is None:  # a stream without a byte layer (some test runners)
        sys.stdout.write(dumps_bytes(payload).decode() + "\n")
        return
    sys.stdout.flush()
    groups = payload.get(STREAMED_KEY) if isinstance(payload, dict) else None
    if isinstance(groups, list) and len(groups) > STREAMED_ITEMS:
        with _BackgroundWriter(buffer) as write:
            for piece in dumps_pieces(payload, STREAMED_KEY, STREAMED_ITEMS):
                write(piece)
    else:
        buffer.write(dumps_bytes(payload))
    buffer.write(b"\n")
    buffer.flush()


class _BackgroundWriter:
    """Writes the pieces handed to it, in order, on a thread of its own (see :func:`_write_json`).

    At most a few pieces wait (a bounded queue), so memory holds a few pieces, not the document.
    A write error (BrokenPipeError when the reader has gone, a full disk) is raised in the calling
    thread by the next call or on leaving the block, as an unthreaded write would raise it; an
    error of the block itself is raised as is, once the thread has stopped."""

    _END = None

    def __init__(self, buffer: Any) -> None:
        import queue
        import threading

        self._buffer = buffer
        self._queue: queue.Queue[bytes | memoryview | None] = queue.Queue(maxsize=4)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="gitops-dora-json-writer", daemon=True)

    def _run(self) -> None:
        while (piece := self._queue.get()) is not self._END:
            if self._error is None:
                try:
                    self._buffer.write(piece)
                except BaseException as exc:  # noqa: BLE001 - raised again in the calling thread
                    self._error = exc

    def __enter__(self) -> Callable[[bytes | memoryview], None]:
        self._thread.start()
        return self._put

    def _put(self, piece: bytes | memoryview) -> None:
        self._raise_error()
        self._queue.put(piece)

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    def __exit__(self, kind: type[BaseException] | None, *_: Any) -> None:
        self._queue.put(self._END)
        self._thread.join()
        if kind is None:
            self._raise_error()


def _cell(value: Any) -> str:
    if isinstance(value, datetime):
        return _table_time(value)
    value = to_jsonable(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


def _table_time(value: datetime) -> str:
    """A time in UTC as a table shows it: no seconds or zone suffix when they add nothing (the
    titles say UTC), a date alone at midnight; JSON and CSV keep ISO 8601 with ``Z``."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    if (value.hour, value.minute, value.second, value.microsecond) == (0, 0, 0, 0):
        return value.date().isoformat()
    if (value.second, value.microsecond) == (0, 0):
        return value.strftime("%Y-%m-%d %H:%M")
    return value.strftime("%Y-%m-%d %H:%M:%S.%f" if value.microsecond else "%Y-%m-%d %H:%M:%S")


def option_values(option: list[str] | None) -> tuple[str, ...]:
    """Repeatable options also accept comma lists: --service a,b == --service a --service b."""
    return tuple(v.strip() for item in option or [] for v in item.split(",") if v.strip())


WIDE_OPTION_HELP = "table: every column at full width, whatever the terminal's width"

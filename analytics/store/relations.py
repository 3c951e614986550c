"""Python rows as a relation that set-based statements read (a MERGE source, a join of keys).

Registering a pandas DataFrame makes DuckDB's Python client import pandas and pyarrow (about 0.5 s
of CPU: :mod:`analytics.store.literals`), which a short command (`import` of a small file,
`assess --store`, a reconciler dump of a few objects) paid for a few dozen rows. So while pandas
is not loaded, a few rows go in as a VALUES list of literals; many rows, or rows once pandas is
loaded anyway, as a DataFrame, which is then the cheaper way. Both give the same rows.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any

import duckdb

from analytics.store.literals import MAX_INLINE_CHARS, NotInlinable, sql_identifier, sql_literal

# At most this many values (rows x columns) go in as literals: parsing one costs tens of
# microseconds, so a larger load is cheaper as a frame even counting the import.
VALUES_MAX_CELLS = 2000


def values_pay(rows: int, width: int) -> bool:
    """Whether literals are the cheaper way for ``rows`` x ``width`` values in this process."""
    return "pandas" not in sys.modules and fits_values(rows, width)


def is_frame(rows: Any) -> bool:
    """Whether ``rows`` is a pandas DataFrame, without importing pandas to ask."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(rows, pandas.DataFrame)


def fits_values(rows: int, width: int) -> bool:
    return rows * width <= VALUES_MAX_CELLS


def cell(value: Any) -> Any:
    """A value as the DataFrame path stores it: a float NaN is NULL there (DuckDB reads a pandas
    NaN as a missing value), so it is NULL here too rather than a stored NaN."""
    return None if isinstance(value, float) and value != value else value


def _kind(value: Any) -> object:
    """What decides a literal's type in a VALUES column (None: NULL, which joins any kind)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return bool
    if isinstance(value, int | float):
        return float  # INTEGER and DOUBLE literals combine into DOUBLE, as a frame's float column
    if isinstance(value, datetime):
        return (datetime, value.tzinfo is not None)
    if isinstance(value, list | tuple):
        items = {_kind(item) for item in value} - {None}
        return (list, items.pop() if len(items) == 1 else None if not items else object())
    return type(value)


def _one_kind_per_column(rows: Sequence[Sequence[Any]]) -> None:
    """VALUES gives each column one type from its literals, and refuses some mixes a DataFrame
    takes as text (``Cannot combine types VARCHAR and INTEGER_LITERAL``: a Flux condition's reason
    given as 404 in one object and as text in another). Such rows go the DataFrame way."""
    for column in zip(*rows, strict=True):
        kinds = {_kind(value) for value in column} - {None}
        if len(kinds) > 1 and (list, None) in kinds:
            kinds.discard((list, None))  # an empty list takes the other lists' type
        if len(kinds) > 1:
            raise NotInlinable("a column of values of different kinds")


def values_select(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """``SELECT`` of ``rows`` as literals with the given column names; raises NotInlinable for a
    value without an exact literal, or a column whose values are of different kinds. No rows gives
    no rows, with text columns."""
    names = ", ".join(sql_identifier(c) for c in columns)
    if not rows:
        nulls = ", ".join(f"NULL::VARCHAR AS {sql_identifier(c)}" for c in columns)
        return f"SELECT {nulls} WHERE false"
    _one_kind_per_column(rows)
    values = ", ".join("(" + ", ".join(sql_literal(cell(v)) for v in row) + ")" for row in rows)
    if len(values) > MAX_INLINE_CHARS:
        raise NotInlinable("values too large for literals")
    return f"SELECT * FROM (VALUES {values}) AS v({names})"


def values_source(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> str | None:
    """:func:`values_select` of ``rows``, or None when literals cannot say them (a value without
    one, a column of mixed kinds) and they must go as a DataFrame. Callers ask
    :func:`values_pay` first, before they build the rows."""
    try:
        return values_select(columns, rows)
    except NotInlinable:
        return None


def records_frame(records: Sequence[Any], columns: Sequence[str] | None) -> Any:
    """``records`` (dicts, or sequences in ``columns``' order) as a DataFrame that stores what the
    VALUES list stores. pandas turns a column of ints with a missing value into floats, which
    DuckDB then wrote into a text column as '404.0' (a Flux condition's numeric reason) and which
    loses digits past 2**53; such a column is made a nullable integer column from the original
    values instead. A column that also holds a fraction stays a float column, as in VALUES."""
    import pandas as pd

    frame = pd.DataFrame.from_records(records, columns=list(columns) if columns else None)
    for position, name in enumerate(frame.columns):
        if frame[name].dtype.kind != "f" or not frame[name].isna().any():
            continue
        if records and isinstance(records[0], dict):
            values = [record.get(name) for record in records]
        else:
            values = [record[position] for record in records]
        if _whole_numbers_or_missing(values):
            ints = [None if cell(v) is None else v for v in values]
            if all(v is None or -2**63 <= v < 2**63 for v in ints):
                frame[name] = pd.array(ints, dtype="Int64")
            else:  # past BIGINT: Python ints, which DuckDB reads as HUGEINT, as it reads the literal
                frame[name] = pd.Series(ints, index=frame.index, dtype=object)
    return frame


def _whole_numbers_or_missing(values: Sequence[Any]) -> bool:
    """Python ints (not bools) and missing values (None, NaN) only, at least one int."""
    seen_int = False
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool):
            seen_int = True
        elif cell(value) is not None:
            return False
    return seen_int


@contextmanager
def rows_relation(
    con: duckdb.DuckDBPyConnection, name: str, columns: Sequence[str], rows: Sequence[Sequence[Any]],
    *, as_objects: bool = False,
) -> Iterator[str]:
    """``rows`` as relation ``name`` for the statements in the block (a TEMP TABLE of literals or a
    registered DataFrame, of object columns with ``as_objects``), dropped after it."""
    select = values_source(columns, rows) if values_pay(len(rows), len(columns)) else None
    if select is not None:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sql_identifier(name)} AS {select}")
        try:
            yield name
        finally:
            with contextlib.suppress(duckdb.Error):  # a failed transaction drops it with the rest
                con.execute(f"DROP TABLE IF EXISTS temp.main.{sql_identifier(name)}")
        return
    frame = records_frame([tuple(r) for r in rows], columns)
    if as_objects:
        frame = frame.astype(object)
    con.register(name, frame)
    try:
        yield name
    finally:
        con.unregister(name)

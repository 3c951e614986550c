"""Idempotent loads without key constraints: ``MERGE INTO`` on each table's natural key.

Every writer goes through :func:`merge` (or ``WriteSession.upsert``, which calls it), so the
choice "a re-load replaces" or "the first row wins" is made here, once, rather than by
``INSERT OR REPLACE`` statements scattered over the collectors (DuckLake refuses those: it has no
PRIMARY KEY to conflict on).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import duckdb

from analytics.errors import NUL_REFUSED, UserError
from analytics.store.keys import key_of
from analytics.store.literals import execute
from analytics.store.literals import sql_identifier as _q

OnMatch = Literal["replace", "ignore"] | Mapping[str, str]

# DuckLake prunes a MERGE's data files with the join's key values written into the catalog's SQL,
# where a NUL character ends the string: the statement then fails with a parser error about the
# catalog ("Failed to get data file list from DuckLake: unterminated quoted string"), which says
# nothing about the input, and which the webhook receiver took for an unavailable store (503, so
# the sender retried the delivery for ever). The failed transaction cannot be asked which value
# it was, so the error is recognised by its text and named for what it is. The NUL ends the
# literal early: when it is the last value written the parser finds an unterminated string, when
# other values follow (a key of several text columns, e.g. reconciler_objects' name before its
# namespace) a syntax error at the next one ('syntax error at or near "flux"'). 24 other
# characters that could upset quoting (quotes, backslashes, control characters, comment and
# dollar-quote markers, U+2028) were stored as they are, so no other value gives either form.
_NUL_IN_KEY = "Failed to get data file list from DuckLake"
_NUL_FORMS = ("unterminated quoted string", "syntax error at")
# DuckLake reads no file list at all for many MERGEs (a few rows given as values, a table with no
# data files yet, a source with more rows than the table), and then stored a key with a NUL as it
# was: a later statement that filtered on it failed instead. So every MERGE's source is checked
# for it in the statement itself (:func:`merge_sql`), which then fails with this text.
_NUL_GUARD = "gitops-dora: a key value contains a NUL character"


class UnstorableKeyError(UserError, ValueError):
    """A key value the store cannot hold (a NUL character): bad input (exit 2), never worth a retry."""


def is_nul_in_key(exc: BaseException) -> bool:
    """Whether a statement failed on a key value holding a NUL (see ``_NUL_IN_KEY``): writers that
    run their own MERGE (the receiver's finalize steps) classify their failures with it."""
    if isinstance(exc, UnstorableKeyError):
        return True
    text = str(exc)
    if isinstance(exc, duckdb.InvalidInputException) and _NUL_GUARD in text:
        return True
    return (isinstance(exc, duckdb.ParserException) and _NUL_IN_KEY in text
            and any(form in text for form in _NUL_FORMS))


def merge_sql(table: str, source_sql: str, columns: Sequence[str], on_match: OnMatch = "replace") -> str:
    """The MERGE statement that loads ``source_sql`` (whose columns are named ``columns``).

    ``on_match``: "replace" overwrites the given columns of an existing row (columns not given keep
    their value, as INSERT OR REPLACE with a column list did); "ignore" keeps the existing row; a
    mapping gives the SQL expression (over ``tgt`` and ``src``) each named column is set to.
    The source's rows are checked for a NUL in a key column first (``_NUL_GUARD``): 5 ms per
    million rows for a text key, about 40 for a number, which is cast to text for it.
    """
    keys = key_of(table)
    missing = [k for k in keys if k not in columns]
    if missing:
        raise ValueError(f"loading {table} needs its key columns {missing}")
    on = " AND ".join(f"tgt.{_q(k)} = src.{_q(k)}" for k in keys)
    if on_match == "replace":
        sets = {c: f"src.{_q(c)}" for c in columns if c not in keys}
    elif on_match == "ignore":
        sets = {}
    else:
        sets = dict(on_match)
    matched = ""
    if sets:
        matched = " WHEN MATCHED THEN UPDATE SET " + ", ".join(f"{_q(c)} = {e}" for c, e in sets.items())
    cols = ", ".join(_q(c) for c in columns)
    vals = ", ".join(f"src.{_q(c)}" for c in columns)
    nul = " OR ".join(f"contains(CAST(unchecked.{_q(k)} AS VARCHAR), chr(0))" for k in keys)
    checked = (f"SELECT * FROM ({source_sql}) AS unchecked"
               f" WHERE CASE WHEN {nul} THEN error('{_NUL_GUARD}') ELSE TRUE END")
    return (f"MERGE INTO {_q(table)} AS tgt USING ({checked}) AS src ON {on}{matched}"
            f" WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({vals})")


# For a MERGE of a few rows: the optimizers that ask DuckLake for table and column statistics
# (each ask is several catalog queries) cannot improve the plan of a join with a handful of rows,
# and turning them off halved such a statement's CPU on a SQLite catalog (11 -> 6 ms).
_LEAN_PLANNING = "SET disabled_optimizers = 'statistics_propagation,join_order,build_side_probe_side'"
RESET_PLANNING = "RESET disabled_optimizers"
LEAN_MAX_ROWS = 10


def merge(
    con: duckdb.DuckDBPyConnection,
    table: str,
    source_sql: str,
    columns: Sequence[str],
    params: Sequence[Any] | Mapping[str, Any] | None = None,
    *,
    on_match: OnMatch = "replace",
    few_rows: bool = False,
) -> None:
    """Run :func:`merge_sql` on ``con`` (parameters written as literals where they can be: see
    :mod:`analytics.store.literals`). ``few_rows``: the source holds at most a handful of rows,
    so the statement is planned without DuckLake's statistics (same result, less catalog work)."""
    sql = merge_sql(table, source_sql, columns, on_match)
    if not few_rows:
        _execute_merge(con, table, sql, params)
        return
    con.execute(_LEAN_PLANNING)
    try:
        _execute_merge(con, table, sql, params)
    finally:
        # refused in a transaction the MERGE aborted; the unit's ROLLBACK path resets it then
        with contextlib.suppress(duckdb.Error):
            con.execute(RESET_PLANNING)


def _execute_merge(con: duckdb.DuckDBPyConnection, table: str, sql: str,
                   params: Sequence[Any] | Mapping[str, Any] | None) -> None:
    try:
        execute(con, sql, params)
    except (duckdb.ParserException, duckdb.InvalidInputException) as exc:
        if is_nul_in_key(exc):
            keys = ", ".join(key_of(table))
            raise UnstorableKeyError(
                f"a {table} key value ({keys}) contains {NUL_REFUSED}; remove it from the input") from None
        raise


def merge_values(
    con: duckdb.DuckDBPyConnection,
    table: str,
    row: Mapping[str, Any],
    *,
    on_match: OnMatch = "replace",
    expressions: Mapping[str, str] | None = None,
) -> None:
    """Load one row given as column -> value; ``expressions`` gives columns computed in SQL
    (``now()``) instead."""
    exprs = dict(expressions or {})
    columns = [*row.keys(), *exprs.keys()]
    select = ", ".join([*(f"? AS {_q(c)}" for c in row), *(f"{e} AS {_q(c)}" for c, e in exprs.items())])
    merge(con, table, f"SELECT {select}", columns, list(row.values()), on_match=on_match, few_rows=True)


def merge_rows(
    con: duckdb.DuckDBPyConnection,
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    on_match: OnMatch = "replace",
) -> None:
    """Load a handful of rows in one MERGE over a bound VALUES list (registering a DataFrame costs
    more than the statement for a few rows)."""
    if not rows:
        return
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    names = ", ".join(_q(c) for c in columns)
    source = f"SELECT * FROM (VALUES {', '.join(marks for _ in rows)}) AS v({names})"
    merge(con, table, source, columns, [value for row in rows for value in row], on_match=on_match,
          few_rows=len(rows) <= LEAN_MAX_ROWS)

"""Listing rows as CSV or JSON text computed by DuckDB (issue #16).

``deployments`` and ``incidents`` with ``--format csv`` or ``json`` print up to millions of rows.
Turning each row into Python objects (a ``datetime`` per time, a dict per row) and formatting them
in Python took minutes at a million rows; here DuckDB computes each row's finished text (the
macros in ``formats.sql``, SQL twins of :func:`analytics.cli.output.csv_text` and
:func:`analytics.json_output.dumps_bytes`) and sorts those lines, and Python only copies them to
stdout in batches. The bytes are those of the Python path (``tests/test_listing_formats.py``).

DuckDB's own memory for the query is bounded (:data:`MEMORY_LIMIT`), with a private spill
directory, so the sort of a million lines spills to disk instead of growing the process.
"""

from __future__ import annotations

import contextlib
import itertools
import math
import shutil
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics.store.literals import sql_string

FORMATS_SQL = Path(__file__).resolve().parent / "formats.sql"
# DuckDB's buffer memory while a listing runs: the process itself (interpreter, DuckDB, the
# extensions, the attached catalog) is ~110 MB, and the target is 300 MB in all.
MEMORY_LIMIT = "128MB"
BATCH = 10_000  # lines fetched at a time

# Each column type's cell, by the type name DuckDB reports. A type missing here (lists, structs,
# decimals, naive times) makes :func:`row_text_sql` return None: the caller prints in Python.
_CSV = {
    "VARCHAR": "gd_csv_text({c})",
    "TIMESTAMP WITH TIME ZONE": "gd_csv_time({c})",
    "DOUBLE": "gd_csv_float({c})",
    "BOOLEAN": "CASE WHEN {c} IS NULL THEN '' WHEN {c} THEN 'True' ELSE 'False' END",
}
_JSON = {
    "VARCHAR": "gd_json_text({c})",
    "TIMESTAMP WITH TIME ZONE": "gd_json_time({c})",
    "DOUBLE": "gd_json_float({c})",
    "BOOLEAN": "CASE WHEN {c} IS NULL THEN 'null' WHEN {c} THEN 'true' ELSE 'false' END",
}
_INTEGERS = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT", "UINTEGER",
             "UBIGINT", "UHUGEINT")
for _name in _INTEGERS:
    _CSV[_name] = "coalesce(CAST({c} AS VARCHAR), '')"
    _JSON[_name] = "coalesce(CAST({c} AS VARCHAR), 'null')"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def install_formats(con: duckdb.DuckDBPyConnection) -> None:
    """Define the cell macros (TEMP, so a read-only snapshot takes them too)."""
    con.execute(FORMATS_SQL.read_text())


# Session time zones in which DuckDB hands Python datetimes at offset zero all year round.
UTC_ZONES = frozenset({"UTC", "Etc/UTC", "GMT", "Etc/GMT", "UCT", "Etc/UCT", "Universal", "Etc/Universal",
                       "Zulu", "Etc/Zulu", "Etc/GMT+0", "Etc/GMT-0", "Etc/GMT0", "GMT+0", "GMT-0", "GMT0"})


def row_text_sql(
    fields: Sequence[tuple[str, str]], columns: Sequence[str] | None, fmt: str, *, utc: bool = True
) -> str | None:
    """One SQL expression giving a row's text: the CSV line (without its LF) of ``columns`` as
    ``csv_text`` writes it, or the JSON object of every field as ``dumps_bytes`` indents it
    inside a list (without the separators between objects). ``fields``: (name, DuckDB type) of
    the query's columns; ``utc``: the session's time zone is UTC (JSON times carry the offset of the
    pytz datetimes DuckDB hands Python, which only UTC makes computable in SQL). None when a type
    has no SQL twin here."""
    types = dict(fields)
    if fmt == "csv":
        cells = []
        for name in columns or [f for f, _ in fields]:
            if name not in types:  # a column the query lacks prints empty, as row.get() gave None
                cells.append("''")
                continue
            template = _CSV.get(types[name])
            if template is None:
                return None
            cells.append(template.format(c=_ident(name)))
        # one concat() call: a chain of || builds every intermediate string
        return "concat(" + ", ',', ".join(cells) + ")" if len(cells) > 1 else (cells or ["''"])[0]
    parts = []
    for i, (name, kind) in enumerate(fields):
        template = _JSON.get(kind)
        if kind == "TIMESTAMP WITH TIME ZONE" and not utc:
            return None
        if template is None or not name.isidentifier():  # keys are written without escaping
            return None
        prefix = ("  {\n" if i == 0 else ",\n") + f'    "{name}": '
        parts += [sql_string(prefix), template.format(c=_ident(name))]
    if not parts:
        return None
    return "concat(" + ", ".join([*parts, sql_string("\n  }")]) + ")"


@contextlib.contextmanager
def bounded_memory(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """DuckDB's memory capped at :data:`MEMORY_LIMIT` for the listing, spilling to a private
    temporary directory that is removed afterwards (an in-memory database would otherwise spill
    to ``.tmp`` in the user's working directory). Insertion order is preserved (explicitly: the
    sorted rows must keep their order through the projection that makes their text). DuckDB's
    progress bar, which would land in the middle of the listing, is off on every store connection
    already (``analytics.store.connection``). The settings are reset on the way out."""
    spill = tempfile.mkdtemp(prefix="gitops-dora-listing-")
    try:
        con.execute(f"SET temp_directory = {sql_string(spill)}")
        con.execute(f"SET memory_limit = {sql_string(MEMORY_LIMIT)}")
        con.execute("SET preserve_insertion_order = true")
        yield
    finally:
        for setting in ("memory_limit", "preserve_insertion_order"):
            with contextlib.suppress(duckdb.Error):
                con.execute(f"RESET {setting}")
        shutil.rmtree(spill, ignore_errors=True)


def query_fields(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any]) -> list[tuple[str, str]]:
    """(name, type) of each column ``sql`` returns, from a LIMIT 0 run (planned, not executed)."""
    cursor = con.execute(f"SELECT * FROM ({sql}) AS q LIMIT 0", list(params))
    return [(str(d[0]), str(d[1])) for d in cursor.description or []]


def line_expression(
    con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any], *, columns: Sequence[str], fmt: str
) -> str | None:
    """:func:`row_text_sql` for the columns ``sql`` returns, in this session's time zone."""
    zone = con.execute("SELECT system.main.current_setting('TimeZone')").fetchone()
    utc = zone is not None and str(zone[0]) in UTC_ZONES
    return row_text_sql(query_fields(con, sql, params), columns, fmt, utc=utc)


def lines_query(expr: str, sql: str, order_by: Sequence[str]) -> str:
    """The query of ``expr`` (a :func:`line_expression`) over the rows of ``sql`` (which has no
    ORDER BY of its own), sorted by ``order_by``. The rows are sorted before their text is made:
    a JSON object is three times the size of its values, and the sort is what may spill. DuckDB
    keeps a subquery's order through the projection (insertion order is preserved)."""
    order = ", ".join(_ident(c) for c in order_by)
    return f"SELECT {expr} AS line FROM (SELECT * FROM ({sql}) AS rows ORDER BY {order}) AS q"


def print_lines(
    con: duckdb.DuckDBPyConnection, queries: Iterable[str], params: Sequence[Any], *, fmt: str, header: str
) -> None:
    """Run :func:`lines_query` queries one after the other and write their lines to stdout as
    one listing, :data:`BATCH` lines at a time: CSV after ``header`` (the header line csv_text
    writes), JSON as ``dumps_bytes`` lays out a list and print ends it."""
    install_formats(con)
    buffer = getattr(sys.stdout, "buffer", None)
    sys.stdout.flush()

    def emit(text: str) -> None:
        if buffer is None:
            sys.stdout.write(text)
        else:
            buffer.write(text.encode())

    first = True
    if fmt == "csv":
        emit(header)
    for query in queries:
        cursor = con.execute(query, list(params))
        while chunk := cursor.fetchmany(BATCH):
            lines = [row[0] for row in chunk]
            if fmt == "csv":
                emit("\n".join(lines) + "\n")
            else:  # dumps_bytes of a list: "[\n" + objects joined by ",\n" + "\n]"
                emit(("[\n" if first else ",\n") + ",\n".join(lines))
            first = False
    if fmt != "csv":
        emit("[]\n" if first else "\n]\n")
    if buffer is not None:
        buffer.flush()
    else:
        sys.stdout.flush()


def print_listing(
    con: duckdb.DuckDBPyConnection,
    sql: str,
    params: Sequence[Any],
    *,
    order_by: Sequence[str],
    columns: Sequence[str],
    fmt: str,
    header: str,
) -> bool:
    """Print ``sql`` sorted by ``order_by`` as CSV or JSON text computed by DuckDB, in bounded
    memory. False, having printed nothing, when :func:`line_expression` has no SQL for it: the
    caller then takes the Python path."""
    with bounded_memory(con):
        expr = line_expression(con, sql, params, columns=columns, fmt=fmt)
        if expr is None:
            return False
        print_lines(con, [lines_query(expr, sql, order_by)], params, fmt=fmt, header=header)
    return True


# --- incidents ----------------------------------------------------------------------------------
INCIDENTS_SQL = Path(__file__).resolve().parent / "incidents.sql"
# Rows per slice of the incidents listing: each slice's ASOF join and sort hold this many rows.
SLICE_ROWS = 100_000


def _timestamp(value: datetime) -> str:
    return f"TIMESTAMPTZ {sql_string(value.isoformat())}"


def incidents_sql(
    where: str, *, since: datetime | None = None, until: datetime | None = None,
    gap_hours: float | None = None, earliest: datetime | None = None,
) -> tuple[list[str], str, str]:
    """The incidents listing (``incidents.sql``) for the filter ``where`` (SQL over id, service,
    team, environment, created_at and is_open, with the command's parameters): the statements that
    fill the root-cause tables, the query of the listed creation times, and the listing query (no
    ORDER BY) of the incidents created in [since, until), whose gap rule looks at deployments from
    ``since`` (or, without one, ``earliest``, the first listed creation time) less ``gap_hours``
    (and a day, against rounding) on. Each takes the parameters."""
    *prepare, created, listing = INCIDENTS_SQL.read_text().replace("{where}", where).split("\n-- statement\n")
    deployments = ["TRUE"]
    start = since if since is not None else earliest
    if start is not None and gap_hours is not None and math.isfinite(gap_hours) and 0 <= gap_hours < 1e6:
        deployments.append(f"deployed_at >= {_timestamp(start - timedelta(hours=gap_hours + 24))}")
    if until is not None:
        deployments.append(f"deployed_at < {_timestamp(until)}")
    listing = listing.replace("{slice}", _range("created_at", since, until)).replace(
        "{deployments_slice}", " AND ".join(deployments))
    return prepare, created, listing


def prepare_incidents(con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any]) -> tuple[str, str]:
    """Fill the root-cause tables for the filter ``where`` (only the first statement holds it, so
    only it takes the parameters); returns the creation-times query and the whole listing query."""
    prepare, created, listing = incidents_sql(where)
    for i, statement in enumerate(prepare):
        con.execute(statement, list(params) if i == 0 else [])
    return created, listing


def time_slices(con: duckdb.DuckDBPyConnection, times_sql: str, params: Sequence[Any]) -> list[
        tuple[datetime | None, datetime | None]]:
    """[since, until) ranges of the one time column ``times_sql`` returns, each holding about
    :data:`SLICE_ROWS` of its rows (cut at its quantiles; equal times stay in one slice)."""
    row = con.execute(f"SELECT count(*) FROM ({times_sql})", list(params)).fetchone()
    count = int(row[0]) if row else 0
    parts = math.ceil(count / SLICE_ROWS)
    if parts <= 1:
        return [(None, None)]
    fractions = ", ".join(repr(i / parts) for i in range(1, parts))
    row = con.execute(f"SELECT quantile_disc(t.moment, [{fractions}]) FROM ({times_sql}) AS t(moment)",
                      list(params)).fetchone()
    cuts = sorted(set(row[0])) if row and row[0] else []
    edges: list[datetime | None] = [None, *cuts, None]
    return list(itertools.pairwise(edges))


def _range(column: str, since: datetime | None, until: datetime | None) -> str:
    bounds = ["TRUE"]
    if since is not None:
        bounds.append(f"{column} >= {_timestamp(since)}")
    if until is not None:
        bounds.append(f"{column} < {_timestamp(until)}")
    return " AND ".join(bounds)


def print_incidents(
    con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], *, columns: Sequence[str], fmt: str,
    header: str,
) -> bool:
    """``gitops-dora incidents`` as CSV or JSON in bounded memory: the root-cause table, then each
    slice of :func:`time_slices` listed in order, oldest first. False, having printed nothing,
    when :func:`line_expression` has no SQL for the listing (the caller takes the Python path)."""
    row = con.execute("SELECT CAST(getvariable('gitops_dora_max_attribution_gap_hours') AS DOUBLE)"
                      ).fetchone()
    gap_hours = 168.0 if row is None or row[0] is None else float(row[0])  # the view's default
    with bounded_memory(con):
        created, listing = prepare_incidents(con, where, params)
        expr = line_expression(con, listing, params, columns=columns, fmt=fmt)
        if expr is None:
            return False
        # The first slice's deployments start from the first listed incident's time, less the gap:
        # without that bound its ASOF join would number every earlier deployment of the store.
        row = con.execute(f"SELECT min(t.moment) FROM ({created}) AS t(moment)", list(params)).fetchone()
        earliest = row[0] if row and isinstance(row[0], datetime) else None
        queries = (lines_query(expr, incidents_sql(where, since=since, until=until, gap_hours=gap_hours,
                                                   earliest=earliest)[2], ("created_at", "id"))
                   for since, until in time_slices(con, created, params))
        print_lines(con, queries, params, fmt=fmt, header=header)
    return True


# --- deployments --------------------------------------------------------------------------------
DEPLOYMENTS_SQL = Path(__file__).resolve().parent / "deployments.sql"


def deployments_sql(where: str, *, since: datetime | None = None, until: datetime | None = None) -> tuple[
        str, str]:
    """The deployments listing (``deployments.sql``) for the filter ``where`` (SQL over d.id,
    d.service, d.team, d.environment and d.deployed_at, with the command's parameters): the query of
    the listed deployment times, and the listing query (no ORDER BY) of those deployed in
    [since, until). Both take the parameters."""
    times, listing = DEPLOYMENTS_SQL.read_text().replace("{where}", where).split("\n-- statement\n")
    return times, listing.replace("{slice}", _range("d.deployed_at", since, until))


def print_deployments(
    con: duckdb.DuckDBPyConnection, where: str, params: Sequence[Any], *, columns: Sequence[str], fmt: str,
    header: str,
) -> bool:
    """``gitops-dora deployments`` as CSV or JSON in bounded memory, slice by slice of deployment
    time, oldest first. False, having printed nothing, when :func:`line_expression` has no SQL for
    the listing (JSON times in a session time zone other than UTC): the caller takes the Python
    path."""
    with bounded_memory(con):
        times, listing = deployments_sql(where)
        expr = line_expression(con, listing, params, columns=columns, fmt=fmt)
        if expr is None:
            return False
        queries = (lines_query(expr, deployments_sql(where, since=since, until=until)[1],
                               ("deployed_at", "id"))
                   for since, until in time_slices(con, times, params))
        print_lines(con, queries, params, fmt=fmt, header=header)
    return True

"""Incidents from CSV, JSON or YAML: ``id, service, environment, created_at, resolved_at, title, root_cause``.

``resolved_at`` is empty while an incident is open; ``root_cause`` optionally names a commit sha,
a revision or a deployment id. An empty environment means the config's first production
environment, because incidents are, by definition, about what users see.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from analytics.config import Config
from analytics.deployments.dimensions import register_named
from analytics.importers._fields import (
    RowContext,
    columns_present,
    normalise_keys,
    required_text,
    text,
    timestamp,
)
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.importers.stream_sql import ISO, SCRATCH_MEMORY, STRIP, ZONED, bounded, csv_source, stripped
from analytics.store.connection import WriteSession
from analytics.store.literals import sql_string

KIND = "incidents"
COLUMNS = ("id", "service", "environment", "created_at", "resolved_at", "title", "root_cause")
_REQUIRED_TO_DETECT = {"id", "service", "created_at"}


def detect(parsed: ParsedFile) -> bool:
    """An incident file has id, service and created_at columns and no deployment time."""
    keys = columns_present(parsed.records)
    return bool(parsed.records) and keys >= _REQUIRED_TO_DETECT and "deployed_at" not in keys


def _labels(value: Any) -> list[str] | None:
    if value is None or value == "":
        return None
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).replace(";", ",").split(",") if part.strip()]


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    default_env = (config.production_environments() or ["production"])[0]
    rows: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    defaulted_env = 0
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        incident_id = required_text(record, "id", where)
        if incident_id in first_line:
            first = first_line[incident_id]
            raise where.error(f"duplicate incident id {incident_id!r} (first on line {first})")
        first_line[incident_id] = line
        created = timestamp(record, "created_at", where)
        if created is None:
            raise where.error("missing value for 'created_at'")
        resolved = timestamp(record, "resolved_at", where)
        if resolved is not None and resolved.value < created.value:
            raise where.error("'resolved_at' is earlier than 'created_at'")
        summary.naive_timestamps += sum(1 for t in (created, resolved) if t is not None and not t.had_zone)
        environment = text(record, "environment")
        if environment is None:
            environment = default_env
            defaulted_env += 1
        rows.append(
            {
                "id": incident_id,
                "service": text(record, "service"),
                "environment": environment,
                "created_at": created.value,
                "resolved_at": resolved.value if resolved else None,
                "title": text(record, "title"),
                "root_cause": text(record, "root_cause"),
                "source": "import",
                "source_ref": f"{parsed.path.name}:{line}",
                "url": text(record, "url"),
                "labels": _labels(record.get("labels")),
            }
        )
    register_named(
        session,
        config,
        [r["service"] for r in rows if r["service"]],
        [r["environment"] for r in rows],
    )
    session.upsert("incidents", rows)
    summary.rows = len(rows)
    open_count = sum(1 for r in rows if r["resolved_at"] is None)
    if open_count:
        summary.notes.append(f"{open_count} open")
    if defaulted_env:
        summary.notes.append(f"{defaulted_env} without an environment assigned to {default_env}")
        session.warn("default_environment", f"incidents without an environment assigned to {default_env}",
                     defaulted_env)
    return summary


# --- streaming CSV and JSON lines (issue #16): shared pieces in analytics/importers/stream_sql.py
_FIELDS = ("id", "service", "environment", "created_at", "resolved_at", "title", "root_cause", "url",
           "labels")


def load_csv_stream(session: WriteSession, sniff: Any, config: Config) -> ImportSummary | None:
    """Load a large incidents CSV with DuckDB's CSV reader, checked in SQL; the same rows and
    summary as :func:`load` over parse_file. None when any row needs the exact path (a bad or
    unusual value, a duplicate id, a record over several lines): the caller then runs that path,
    whose error names the line."""
    source = csv_source(sniff.path, sniff.header, _FIELDS)
    if source is None:
        return None
    # the header is line 1: a record over several lines, or blank lines, leave the count short
    return _load_checked(session, config, sniff.path, source, first_line=2, rows_expected=sniff.lines - 1)


def load_jsonl_stream(session: WriteSession, sniff: Any, config: Config) -> ImportSummary | None:
    """Load a large incidents JSON-lines file with DuckDB's JSON reader (one object a line, as
    ``detect_jsonl_kind`` checked), then the checks, Parquet copy and MERGE of the CSV stream.
    A field the key pass saw with a value the record path would read other than as text (a
    number, a boolean: ``text()`` turns them into Python's ``str()``) sends the file to the exact
    path."""
    if any(sniff.types.get(n, set()) - {"VARCHAR", "NULL"} for n in _FIELDS):
        return None  # the key pass saw a number, boolean... for a field
    # The fields as declared VARCHAR columns: no sampling, one parse a line, other keys skipped.
    # The key pass vouched for what a column could not tell: every line one object, no repeated
    # key (the reader would refuse one), keys in lower case (its match is case-sensitive), and
    # only strings or nulls in these fields (it would turn a number into its text).
    columns = "{" + ", ".join(f"'{n}': 'VARCHAR'" for n in _FIELDS) + "}"
    values = ", ".join(f"{stripped(n)} AS {n}" for n in _FIELDS)
    source = (f"SELECT {values} FROM read_json({sql_string(str(sniff.path))}, columns = {columns}, "
              f"format = 'newline_delimited', records = true)")
    return _load_checked(session, config, sniff.path, source, first_line=1, rows_expected=sniff.lines)


def _load_checked(session: WriteSession, config: Config, path: Path, source: str, *, first_line: int,
                  rows_expected: int) -> ImportSummary | None:
    """Read ``source`` (a SELECT of the stripped text of _FIELDS, one row per record in the file's
    order) into a scratch Parquet file, check it with the record path's rules, and merge it into
    the store. None when any row needs the exact path.

    The file is read and checked in a scratch in-memory DuckDB (a reader error there must not
    abort the store's transaction); the checked rows reach the store through that Parquet file."""
    import tempfile

    import duckdb

    from analytics.store.connection import scratch_connection

    scratch = tempfile.TemporaryDirectory(prefix="gitops-dora-import-")
    con = scratch_connection(scratch.name, memory_limit=SCRATCH_MEMORY)
    default_env = (config.production_environments() or ["production"])[0]
    stamp = (
        "CASE WHEN {v} IS NULL THEN NULL WHEN {zoned} "
        "THEN try_cast({v} AS TIMESTAMPTZ) ELSE timezone('UTC', try_cast({v} AS TIMESTAMP)) END"
    )
    labels = (
        f"CASE WHEN labels_text IS NULL THEN NULL ELSE list_filter(list_transform("
        f"string_split(replace(labels_text, ';', ','), ','), "
        f"x -> regexp_replace(x, {STRIP}, '', 'g')), x -> x <> '') END"
    )
    parquet = str(Path(scratch.name) / "incidents.parquet")
    try:
        # One pass over the file, straight into the Parquet file the store reads (no table in
        # between): each value is stripped and typed as it is read, and each row carries what the
        # checks need (whether it breaks a rule, how many of its times had no zone). The file is
        # written in the input's order (a plain scan keeps it), so a row's position in it is its
        # record's: the store side derives source_ref from it. Uncompressed: it lives for this
        # import only.
        con.execute(
            f"""COPY (
            WITH f AS ({source}),
            zoned AS (
                SELECT *, regexp_matches(created_at, '{ZONED}') AS created_zoned,
                       regexp_matches(resolved_at, '{ZONED}') AS resolved_zoned
                FROM f),
            typed AS (
                SELECT id, service, coalesce(environment, {sql_string(default_env)}) AS environment,
                       environment IS NULL AS defaulted, created_at AS created_text,
                       resolved_at AS resolved_text, created_zoned, resolved_zoned,
                       {stamp.format(v='created_at', zoned='created_zoned')} AS created_at,
                       {stamp.format(v='resolved_at', zoned='resolved_zoned')} AS resolved_at,
                       title, root_cause, url, labels AS labels_text
                FROM zoned)
            SELECT id, service, environment, created_at, resolved_at, title, root_cause, url,
                   {labels} AS labels, defaulted,
                   (id IS NULL OR created_text IS NULL
                    OR NOT regexp_matches(created_text, '{ISO}') OR created_at IS NULL
                    OR (resolved_text IS NOT NULL AND (NOT regexp_matches(resolved_text, '{ISO}')
                        OR resolved_at IS NULL OR resolved_at < created_at))
                    OR created_at < TIMESTAMPTZ '1970-01-01 00:00:00+00'
                    OR created_at >= TIMESTAMPTZ '2101-01-01 00:00:00+00'
                    OR resolved_at < TIMESTAMPTZ '1970-01-01 00:00:00+00'
                    OR resolved_at >= TIMESTAMPTZ '2101-01-01 00:00:00+00') AS bad,
                   (CASE WHEN created_zoned THEN 0 ELSE 1 END
                    + CASE WHEN resolved_text IS NOT NULL AND NOT resolved_zoned THEN 1 ELSE 0 END
                   )::UTINYINT AS naive
            FROM typed
            ) TO {sql_string(parquet)} (FORMAT parquet, COMPRESSION uncompressed)"""
        )
    except duckdb.Error:
        con.close()
        scratch.cleanup()
        return None
    try:
        checked = f"read_parquet({sql_string(parquet)})"
        bad = con.execute(
            f"""SELECT count(*), count(*) FILTER (WHERE bad), count(*) - count(DISTINCT id),
                   sum(naive), count(*) FILTER (WHERE resolved_at IS NULL),
                   count(*) FILTER (WHERE defaulted)
            FROM {checked}"""
        ).fetchone()
        if bad is None or not bad[0] or bad[0] != rows_expected or bad[1] or bad[2]:
            return None
        rows, _bad, _dups, naive, open_count, defaulted_env = (int(v or 0) for v in bad)
        services = [r[0] for r in con.execute(
            f"SELECT DISTINCT service FROM {checked} WHERE service IS NOT NULL").fetchall()]
        environments = [r[0] for r in con.execute(
            f"SELECT DISTINCT environment FROM {checked}").fetchall()]
        con.close()  # the scratch database's memory is free before the store's MERGE
        from analytics.store.upsert import merge

        register_named(session, config, services, environments)
        out_cols = ["id", "service", "environment", "created_at", "resolved_at", "title", "root_cause",
                    "source", "source_ref", "url", "labels"]
        # The checked rows, each with its record's line (the Parquet file is in the input's order).
        parquet_rows = (
            f"(SELECT id, service, environment, created_at, resolved_at, title, root_cause, "
            f"'import' AS source, {sql_string(path.name + ':')} || (file_row_number + {first_line}) "
            f"AS source_ref, url, labels FROM read_parquet({sql_string(parquet)}, file_row_number = true))"
        )
        # Only rows that differ from the stored ones are written (IS DISTINCT FROM: NULLs equal):
        # a re-import of the same file rewrites nothing. Rows whose id the store holds with other
        # values are replaced by a MERGE; new ids are a plain INSERT, a third of the cost of a
        # MERGE's join with the table (the result is the one MERGE of both would give). The store
        # connection's memory is capped meanwhile.
        columns_sql = ", ".join(out_cols)
        with bounded(session.con):
            differs = " OR ".join(f"new.{c} IS DISTINCT FROM known.{c}" for c in out_cols if c != "id")
            merge(session.con, "incidents",
                  f"SELECT {', '.join('new.' + c for c in out_cols)} FROM {parquet_rows} AS new "
                  f"JOIN incidents AS known ON known.id = new.id WHERE {differs}", out_cols)
            session.con.execute(
                f"INSERT INTO incidents ({columns_sql}) SELECT {columns_sql} FROM {parquet_rows} AS new "
                f"WHERE NOT EXISTS (SELECT 1 FROM incidents AS known WHERE known.id = new.id)")
        session.rows_written += rows
    finally:
        con.close()
        scratch.cleanup()
    summary = ImportSummary(kind=KIND, path=path, rows=rows, naive_timestamps=naive)
    if open_count:
        summary.notes.append(f"{open_count} open")
    if defaulted_env:
        summary.notes.append(f"{defaulted_env} without an environment assigned to {default_env}")
        session.warn("default_environment", f"incidents without an environment assigned to {default_env}",
                     defaulted_env)
    return summary

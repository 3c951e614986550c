"""Deployments from CI systems the tool does not integrate with (CSV, JSON or YAML).

Columns: ``id, service, environment, revision, deployed_at, status, repository`` (plus optional
``started_at`` and ``rollback``: true when the deployment rolled back to an earlier revision).
A revision that names a commit (full or abbreviated sha) or a tag of a collected repository is
resolved to the full sha and the deployment's changes are attributed through git like any other
deployment's.

A deployment that ships several repositories at once (one pipeline deploying many) lists
``repository=revision`` pairs in ``revision`` and leaves ``repository`` empty: ``api=1a2b3c4
web=v2.1`` (separated by spaces, commas or semicolons), or a mapping / list of pairs in JSON and
YAML. Each repository's changes are its commits since its own previous deployment to the same
service and environment (docs/metrics.md, "Deployments of several repositories").

An empty environment means ``deployments.default_environment`` (else the first production
environment), counted in the summary and as a ``default_environment`` data warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
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
from analytics.importers.stream_sql import ISO, SCRATCH_MEMORY, ZONED, bounded, csv_source
from analytics.store.connection import WriteSession
from analytics.store.literals import execute
from analytics.store.relations import rows_relation

KIND = "deployments"
COLUMNS = ("id", "service", "environment", "revision", "deployed_at", "status", "repository")
_REQUIRED_TO_DETECT = {"id", "service", "deployed_at", "revision"}
_HEX = re.compile(r"^[0-9a-fA-F]{7,40}$")
_PAIR_SPLIT = re.compile(r"[\s,;]+")
_BOOL = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}
_STATUS = {
    "success": "success", "succeeded": "success", "successful": "success", "ok": "success",
    "failed": "failed", "failure": "failed", "error": "failed",
}


def detect(parsed: ParsedFile) -> bool:
    """A deployment file has id, service, revision and deployed_at columns."""
    return bool(parsed.records) and columns_present(parsed.records) >= _REQUIRED_TO_DETECT


def _resolve(session: WriteSession, repository: str | None, revision: str) -> tuple[str, str | None, str]:
    """(revision, repository, format): a full sha and its repo when a collected repo knows it."""
    params: list[Any] = []
    repo_filter = ""
    if repository:
        repo_filter = " AND repo = ?"
        params.append(repository)
    if _HEX.match(revision):
        hits = execute(
            session.con,
            f"SELECT DISTINCT repo, sha FROM commits WHERE starts_with(sha, ?){repo_filter} LIMIT 2",
            [revision.lower(), *params],
        ).fetchall()
        if len(hits) == 1:
            return hits[0][1], hits[0][0], "sha"
        return revision.lower(), repository, "sha"
    hits = execute(
        session.con, f"SELECT DISTINCT repo, sha FROM tags WHERE name = ?{repo_filter} LIMIT 2",
        [revision, *params]
    ).fetchall()
    if len(hits) == 1:
        return hits[0][1], hits[0][0], "tag"
    return revision, repository, "unknown"


Resolution = tuple[str, str | None, str]


def resolve_many(session: WriteSession, requests: Iterable[tuple[str | None, str]]) -> dict[
        tuple[str | None, str], Resolution]:
    """:func:`_resolve` of every (repository, revision) request, in two set-based queries (a
    file of a million deployments used to take a query per row): a hex revision is the one
    (repo, sha) of the commits it prefixes, a name the one (repo, sha) of the tags so named, in
    the given repository when there is one; otherwise the revision as given."""
    keys = list(dict.fromkeys(requests))
    if not keys:
        return {}
    import uuid

    hexes = [bool(_HEX.match(rev)) for _, rev in keys]
    asked = [(i, repo or None, rev.lower() if is_hex else rev, is_hex)
             for i, ((repo, rev), is_hex) in enumerate(zip(keys, hexes, strict=True))]
    with rows_relation(session.con, f"_resolve_{uuid.uuid4().hex[:8]}", ["i", "repo", "rev", "hex"],
                       asked) as name:
        # the 7-character prefix makes the sha match an equi-join (a revision is 7+ hex digits)
        shas = session.con.execute(
            f"SELECT i, count(*), min(repo), min(sha) FROM (SELECT DISTINCT q.i, c.repo, c.sha FROM {name} q "
            "JOIN commits c ON q.hex AND left(c.sha, 7) = left(q.rev, 7) AND starts_with(c.sha, q.rev) "
            "AND (q.repo IS NULL OR c.repo = q.repo)) GROUP BY i").fetchall()
        tags = session.con.execute(
            f"SELECT i, count(*), min(repo), min(sha) FROM (SELECT DISTINCT q.i, t.repo, t.sha FROM {name} q "
            "JOIN tags t ON NOT q.hex AND t.name = q.rev AND (q.repo IS NULL OR t.repo = q.repo)) GROUP BY i"
        ).fetchall()
    found = {int(i): (str(sha), str(repo)) for i, count, repo, sha in [*shas, *tags] if count == 1}
    out: dict[tuple[str | None, str], Resolution] = {}
    for i, ((repository, revision), is_hex) in enumerate(zip(keys, hexes, strict=True)):
        if i in found:
            out[(repository, revision)] = (found[i][0], found[i][1], "sha" if is_hex else "tag")
        elif is_hex:
            out[(repository, revision)] = (revision.lower(), repository, "sha")
        else:
            out[(repository, revision)] = (revision, repository, "unknown")
    return out


def revision_pairs(value: Any, repository: str | None, where: RowContext) -> list[tuple[str, str]] | None:
    """The ``repository=revision`` pairs of a deployment shipping several repositories, or None
    for a plain revision. Pairs only when no ``repository`` column value is given, so a tag that
    happens to hold ``=`` stays one revision of its repository."""
    if repository is not None:
        return None
    if isinstance(value, dict):
        items = [f"{k}={v}" for k, v in value.items()]
    elif isinstance(value, list):
        items = [str(v) for v in value]
    elif isinstance(value, str) and "=" in value:
        items = [part for part in _PAIR_SPLIT.split(value.strip()) if part]
    else:
        return None
    pairs: list[tuple[str, str]] = []
    for item in items:
        repo, sep, revision = str(item).partition("=")
        if not sep or not repo.strip() or not revision.strip():
            raise where.error(f"revision pair {item!r} is not repository=revision")
        if any(repo.strip() == known for known, _ in pairs):
            raise where.error(f"repository {repo.strip()!r} is listed twice in 'revision'")
        pairs.append((repo.strip(), revision.strip()))
    if not pairs:
        raise where.error("missing value for 'revision'")
    return pairs


def revision_rows(session: WriteSession, dep_id: str, pairs: list[tuple[str, str]],
                  summary: ImportSummary) -> list[dict[str, Any]]:
    """deployment_revisions rows for the pairs, each revision resolved in its repository."""
    out = []
    for repo, raw in pairs:
        revision, repository, fmt = _resolve(session, repo, raw)
        if fmt == "unknown":
            summary.unknown_revisions += 1
        out.append({"deployment_id": dep_id, "repository": repository or repo, "revision": revision,
                    "raw_revision": raw, "revision_format": fmt})
    return out


def replace_revisions(session: WriteSession, ids: list[str], rows: list[dict[str, Any]]) -> None:
    """Make the stored pairs of these deployments exactly ``rows`` (a deployment imported again
    with one repository loses its earlier pairs)."""
    if ids:
        execute(session.con, "DELETE FROM deployment_revisions WHERE deployment_id IN "
                "(SELECT unnest(?::VARCHAR[]))", [ids])
    if rows:
        session.upsert("deployment_revisions", rows)


def note_default_environment(session: WriteSession, summary: ImportSummary, count: int, env: str,
                             what: str = "deployments") -> None:
    """A row that named no environment was put in the default one: said in the summary and kept
    as a data warning, because metrics of that environment now include rows nobody placed there."""
    if count:
        summary.notes.append(f"{count} {what} without an environment assigned to {env}")
        session.warn("default_environment", f"{what} without an environment assigned to {env}", count)


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    rows: list[dict[str, Any]] = []
    pair_rows: list[dict[str, Any]] = []
    pending: list[tuple[list[tuple[str, str]] | None, str | None, str]] = []
    first_line: dict[str, int] = {}
    default_env = config.default_deployment_environment()
    defaulted = 0
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        dep_id = required_text(record, "id", where)
        if dep_id in first_line:
            raise where.error(f"duplicate deployment id {dep_id!r} (first on line {first_line[dep_id]})")
        first_line[dep_id] = line
        service = required_text(record, "service", where)
        environment = text(record, "environment")
        if environment is None:
            environment = default_env
            defaulted += 1
        pairs = revision_pairs(record.get("revision"), text(record, "repository"), where)
        raw_revision = pairs[0][1] if pairs else required_text(record, "revision", where)
        deployed = timestamp(record, "deployed_at", where)
        if deployed is None:
            raise where.error("missing value for 'deployed_at'")
        started = timestamp(record, "started_at", where)
        if started is not None and started.value > deployed.value:
            raise where.error("'started_at' is later than 'deployed_at'")
        summary.naive_timestamps += sum(1 for t in (deployed, started) if t is not None and not t.had_zone)
        status_text = (text(record, "status") or "success").lower()
        if status_text not in _STATUS:
            raise where.error(f"unknown status {status_text!r} (use success or failed)")
        rollback_text = (text(record, "rollback") or "false").lower()
        if rollback_text not in _BOOL:
            raise where.error(f"'rollback' is not true or false: {rollback_text!r}")
        is_rollback = _BOOL[rollback_text]
        # the revision is resolved below, for every row at once
        pending.append((pairs, text(record, "repository"), raw_revision))
        rows.append(
            {
                "id": dep_id,
                "service": service,
                "environment": environment,
                "started_at": started.value if started else None,
                "deployed_at": deployed.value,
                "status": _STATUS[status_text],
                "source": "import",
                "source_ref": dep_id,
                "is_rollback": is_rollback,
                "raw_revision": raw_revision,
            }
        )
    requests: list[tuple[str | None, str]] = []
    for pairs, repo, raw_rev in pending:
        requests.extend(pairs or [(repo, raw_rev)])
    resolved = resolve_many(session, requests)
    for row, (pairs, repo, raw_rev) in zip(rows, pending, strict=True):
        if pairs:
            shipped = []
            for pair_repo, pair_raw in pairs:
                revision, repository, fmt = resolved[(pair_repo, pair_raw)]
                if fmt == "unknown":
                    summary.unknown_revisions += 1
                shipped.append({"deployment_id": row["id"], "repository": repository or pair_repo,
                                "revision": revision, "raw_revision": pair_raw, "revision_format": fmt})
            pair_rows.extend(shipped)
            revision, repository, fmt = shipped[0]["revision"], shipped[0]["repository"], \
                shipped[0]["revision_format"]
        else:
            revision, repository, fmt = resolved[(repo, raw_rev)]
            if fmt == "unknown":
                summary.unknown_revisions += 1
        row.update(revision=revision, repository=repository, revision_format=fmt,
                   rollback_target=revision if row["is_rollback"] else None)
    order = ("id", "service", "environment", "revision", "repository", "started_at", "deployed_at", "status",
             "source", "source_ref", "is_rollback", "rollback_target", "raw_revision", "revision_format")
    rows = [{key: row[key] for key in order} for row in rows]  # the columns in the table's order
    register_named(session, config, [r["service"] for r in rows], [r["environment"] for r in rows])
    session.upsert("deployments", rows)
    replace_revisions(session, [r["id"] for r in rows], pair_rows)
    summary.rows = len(rows)
    if pair_rows:
        several = len({r["deployment_id"] for r in pair_rows})
        summary.notes.append(f"{several} deployments of several repositories")
    note_default_environment(session, summary, defaulted, default_env)
    attributed = _attribute(session, rows, pair_rows)
    if attributed:
        summary.notes.append(f"{attributed} deployments with changes attributed through git")
    return summary


def _attribute(session: WriteSession, rows: list[dict[str, Any]],
               pair_rows: list[dict[str, Any]] | None = None) -> int | None:
    """Attribute changes for deployments whose revision is in a collected repo (git developer's code)."""
    collected = {r[0] for r in session.con.execute("SELECT id FROM repositories").fetchall()}
    several = {r["deployment_id"] for r in pair_rows or [] if r["repository"] in collected}
    ids = [r["id"] for r in rows if r["repository"] in collected or r["id"] in several]
    if not ids:
        return 0
    try:
        from analytics.deployments.attribution import attribute_changes
    except ImportError:  # the git collector is not installed in this build
        return None
    attribute_changes(session, deployment_ids=ids)
    return len(ids)


# --- streaming CSV (issue #16) ------------------------------------------------------------------
# The incidents stream's pieces (Python-strip in SQL, the ISO forms both readers agree on, the
# memory caps), imported as they are so that both kinds read a file alike.
_FIELDS = ("id", "service", "environment", "revision", "deployed_at", "status", "repository",
           "started_at", "rollback")
# The store connection's DuckDB memory while the stream writes and attributes: the INSERT of a
# million rows from the Parquet view added 122 MB to the peak at MERGE_MEMORY (256 MB).
STORE_MEMORY = "128MB"
_WORDS = r"'^[A-Za-z0-9]*$'"  # status and rollback values Python and DuckDB lower-case alike
_OUT = ("id", "service", "environment", "revision", "repository", "started_at", "deployed_at", "status",
        "source", "source_ref", "is_rollback", "rollback_target", "raw_revision", "revision_format")


def load_csv_stream(session: WriteSession, sniff: Any, config: Config) -> ImportSummary | None:
    """Load a large deployments CSV with DuckDB's CSV reader, checked in SQL; the same rows,
    revisions, changes and summary as :func:`load` over parse_file. None when any row needs the
    exact path (a bad or unusual value, a duplicate id, a record over several lines): the caller
    then runs that path, whose error names the line."""
    source = csv_source(sniff.path, sniff.header, _FIELDS)
    if source is None:
        return None
    return _load_checked(session, config, sniff.path, source, rows_expected=sniff.lines - 1)


def _load_checked(session: WriteSession, config: Config, path: Path, source: str, *,
                  rows_expected: int) -> ImportSummary | None:
    """Read ``source`` (a SELECT of the stripped text of _FIELDS, one row per record in the
    file's order) into a scratch table, check it with :func:`load`'s rules, resolve its revisions
    with :func:`resolve_many`, and write it to the store. None when any row needs the exact path.

    Only the few rows that ship several repositories are read into Python (their pairs are parsed
    by :func:`revision_pairs`, as the record path does); the revisions are resolved once per
    distinct (repository, revision). The rows reach the store through a temporary Parquet file:
    new ids are INSERTed, changed ones MERGEd, so a re-import writes nothing."""
    import tempfile

    import duckdb

    from analytics.errors import SourceError
    from analytics.store.connection import scratch_connection
    from analytics.store.literals import sql_string

    scratch = tempfile.TemporaryDirectory(prefix="gitops-dora-import-")
    con = scratch_connection(scratch.name, memory_limit=SCRATCH_MEMORY)  # no progress bar on stdout
    default_env = config.default_deployment_environment()
    stamp = (
        "CASE WHEN {v} IS NULL THEN NULL WHEN regexp_matches({v}, '{zoned}') "
        "THEN try_cast({v} AS TIMESTAMPTZ) ELSE timezone('UTC', try_cast({v} AS TIMESTAMP)) END"
    )
    status_keys = ", ".join(sql_string(k) for k in _STATUS)
    status_case = " ".join(f"WHEN {sql_string(k)} THEN {sql_string(v)}" for k, v in _STATUS.items())
    true_words = ", ".join(sql_string(k) for k, v in _BOOL.items() if v)
    bool_words = ", ".join(sql_string(k) for k in _BOOL)
    try:
        con.execute(
            f"""CREATE TEMP TABLE _dep_rows AS
            WITH f AS ({source})
            SELECT id, service, coalesce(environment, {sql_string(default_env)}) AS environment,
                   environment IS NULL AS defaulted, revision, repository,
                   deployed_at AS deployed_text, started_at AS started_text,
                   {stamp.format(v='f.deployed_at', zoned=ZONED)} AS deployed_at,
                   {stamp.format(v='f.started_at', zoned=ZONED)} AS started_at,
                   lower(coalesce(status, 'success')) AS status_text,
                   lower(coalesce(rollback, 'false')) AS rollback_text,
                   status IS NULL OR regexp_matches(status, {_WORDS}) AS status_plain,
                   rollback IS NULL OR regexp_matches(rollback, {_WORDS}) AS rollback_plain,
                   repository IS NULL AND contains(revision, '=') AS paired
            FROM f"""
        )
    except duckdb.Error:
        con.close()
        scratch.cleanup()
        return None
    try:
        count = con.execute("SELECT count(*) FROM temp._dep_rows").fetchone()
        rows = int(count[0]) if count else 0
        if rows == 0 or rows != rows_expected:
            return None
        in_range = ("{v} < TIMESTAMPTZ '1970-01-01 00:00:00+00' "
                    "OR {v} >= TIMESTAMPTZ '2101-01-01 00:00:00+00'")
        bad = con.execute(
            f"""SELECT count(*) FILTER (WHERE id IS NULL OR service IS NULL OR revision IS NULL
                    OR deployed_text IS NULL OR NOT regexp_matches(deployed_text, '{ISO}')
                    OR deployed_at IS NULL OR {in_range.format(v='deployed_at')}
                    OR (started_text IS NOT NULL AND (NOT regexp_matches(started_text, '{ISO}')
                        OR started_at IS NULL OR {in_range.format(v='started_at')}
                        OR started_at > deployed_at))
                    OR NOT status_plain OR status_text NOT IN ({status_keys})
                    OR NOT rollback_plain OR rollback_text NOT IN ({bool_words})),
                   count(*) - count(DISTINCT id),
                   count(*) FILTER (WHERE NOT regexp_matches(deployed_text, '{ZONED}'))
                     + count(*) FILTER (WHERE started_text IS NOT NULL
                                         AND NOT regexp_matches(started_text, '{ZONED}')),
                   count(*) FILTER (WHERE defaulted)
            FROM temp._dep_rows"""
        ).fetchone()
        if bad is None or bad[0] or bad[1]:
            return None
        naive, defaulted = int(bad[2] or 0), int(bad[3] or 0)
        # The rows shipping several repositories: few, parsed by the record path's own function.
        pairs: list[tuple[str, int, str, str]] = []  # deployment id, position, repository, raw
        where = RowContext(path, 0)
        for dep_id, value in con.execute(
                "SELECT id, revision FROM temp._dep_rows WHERE paired ORDER BY rowid").fetchall():
            try:
                shipped = revision_pairs(value, None, where)
            except SourceError:
                return None
            pairs.extend((dep_id, k, repo, raw) for k, (repo, raw) in enumerate(shipped or []))
        if any("\x00" in field for _, _, repo, raw in pairs for field in (repo, raw)) or any(
                "\x00" in dep_id for dep_id, *_ in pairs):
            return None  # not a value a CSV file carries: the record path takes it
        keys = str(Path(scratch.name) / "keys.parquet")
        con.execute("COPY (SELECT DISTINCT repository, revision FROM temp._dep_rows WHERE NOT paired) "
                    f"TO {sql_string(keys)} (FORMAT parquet, COMPRESSION uncompressed)")
        pair_file = _pairs_csv(Path(scratch.name), pairs)
        services = [r[0] for r in con.execute("SELECT DISTINCT service FROM temp._dep_rows").fetchall()]
        environments = [r[0] for r in con.execute(
            "SELECT DISTINCT environment FROM temp._dep_rows").fetchall()]
        parquet = str(Path(scratch.name) / "deployments.parquet")
        con.execute(
            f"COPY (SELECT id, service, environment, revision, repository, started_at, deployed_at, "
            f"CASE status_text {status_case} END AS status, rollback_text IN ({true_words}) AS is_rollback, "
            f"paired FROM temp._dep_rows) TO {sql_string(parquet)} (FORMAT parquet, COMPRESSION uncompressed)"
        )
        con.close()  # the scratch database's memory is free before the store's work
        summary = ImportSummary(kind=KIND, path=path, rows=rows, naive_timestamps=naive)
        _store(session, config, summary, parquet, keys, pair_file, len(pairs), services, environments)
        chosen = _attributable(session)  # before the Parquet file the view _dep_new reads is gone
    finally:
        con.close()
        scratch.cleanup()
    if pairs:
        summary.notes.append(f"{len({p[0] for p in pairs})} deployments of several repositories")
    note_default_environment(session, summary, defaulted, default_env)
    attributed = _attribute_stream(session, chosen)
    if attributed:
        summary.notes.append(f"{attributed} deployments with changes attributed through git")
    return summary


def _store(session: WriteSession, config: Config, summary: ImportSummary, parquet: str, keys: str,
           pair_file: str, pair_count: int, services: list[str], environments: list[str]) -> None:
    """The checked rows of ``parquet`` into ``deployments`` and ``deployment_revisions``, each
    revision resolved as :func:`load` resolves it (in the TEMP view ``_dep_new``, over the Parquet
    file: a table of a million rows was about 200 MB of the peak, and the table ``_dep_pairs``;
    :func:`_attributable` reads both next). The store connection's DuckDB memory is capped
    meanwhile (it spills beyond)."""

    with bounded(session.con, STORE_MEMORY):
        _store_bounded(session, config, summary, parquet, keys, pair_file, pair_count, services, environments)


def _pairs_csv(directory: Path, pairs: list[tuple[str, int, str, str]]) -> str:
    """The parsed pairs as a CSV file for the store connection's reader (binding Python lists
    would import pandas, about 40 MB of the peak and a second of CPU)."""
    import csv

    path = directory / "pairs.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        csv.writer(fh, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(pairs)
    return str(path)


_RESOLVE_SQL = Path(__file__).resolve().parent / "deployments_resolve.sql"


def _store_bounded(session: WriteSession, config: Config, summary: ImportSummary, parquet: str, keys: str,
                   pair_file: str, pair_count: int, services: list[str], environments: list[str]) -> None:
    from analytics.store.literals import sql_string
    from analytics.store.upsert import merge

    con = session.con
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE _dep_pair_keys AS
            SELECT * FROM read_csv({sql_string(pair_file)}, header = false, auto_detect = false,
                columns = {{'id': 'VARCHAR', 'pos': 'BIGINT', 'repo': 'VARCHAR', 'raw': 'VARCHAR'}},
                delim = ',', quote = '"', escape = '"', strict_mode = true, encoding = 'utf-8')""")
    con.execute(_RESOLVE_SQL.read_text().replace("{keys}", sql_string(keys)))
    con.execute(
        """CREATE OR REPLACE TEMP TABLE _dep_pairs AS
           SELECT p.id AS deployment_id, p.pos, p.repo, p.raw, r.revision,
                  coalesce(r.repository, p.repo) AS repository, r.fmt
           FROM _dep_pair_keys p JOIN _dep_res r ON r.k_repo = p.repo AND r.k_rev = p.raw""")
    con.execute("DROP TABLE _dep_pair_keys")
    # '' stands for no repository in the join keys: a stripped empty value is None, never ''
    con.execute(
        f"""CREATE OR REPLACE TEMP VIEW _dep_new AS
            WITH rows AS (SELECT * FROM read_parquet({sql_string(parquet)})),
            first_pair AS (SELECT deployment_id, repo, raw FROM _dep_pairs WHERE pos = 0),
            keyed AS (
                SELECT d.*, CASE WHEN d.paired THEN f.repo ELSE d.repository END AS k_repo,
                       CASE WHEN d.paired THEN f.raw ELSE d.revision END AS k_rev
                FROM rows d LEFT JOIN first_pair f ON f.deployment_id = d.id
            )
            SELECT k.id, k.service, k.environment, r.revision, r.repository, k.started_at, k.deployed_at,
                   k.status, 'import' AS source, k.id AS source_ref, k.is_rollback,
                   CASE WHEN k.is_rollback THEN r.revision END AS rollback_target,
                   k.k_rev AS raw_revision, r.fmt AS revision_format, k.paired
            FROM keyed k JOIN _dep_res r ON coalesce(r.k_repo, '') = coalesce(k.k_repo, '')
                                AND r.k_rev = k.k_rev"""
    )
    unknown = con.execute(
        "SELECT (SELECT count(*) FROM _dep_new WHERE NOT paired AND revision_format = 'unknown') "
        "+ (SELECT count(*) FROM _dep_pairs WHERE fmt = 'unknown'), (SELECT count(*) FROM _dep_new)"
    ).fetchone()
    assert unknown is not None and int(unknown[1]) == summary.rows  # every row has its resolution
    summary.unknown_revisions = int(unknown[0] or 0)
    register_named(session, config, services, environments)
    out = ", ".join(_OUT)
    differs = " OR ".join(f"new.{c} IS DISTINCT FROM known.{c}" for c in _OUT if c != "id")
    merge(con, "deployments",
          f"SELECT {', '.join('new.' + c for c in _OUT)} FROM _dep_new AS new "
          f"JOIN deployments AS known ON known.id = new.id WHERE {differs}", list(_OUT))
    con.execute(f"INSERT INTO deployments ({out}) SELECT {out} FROM _dep_new AS new "
                "WHERE NOT EXISTS (SELECT 1 FROM deployments AS known WHERE known.id = new.id)")
    # deployment_revisions of the file's ids become exactly the pairs: only the difference
    # is deleted and inserted (replace_revisions' result, without rewriting what is there).
    same = ("p.deployment_id = dr.deployment_id AND p.repository IS NOT DISTINCT FROM dr.repository "
            "AND p.revision IS NOT DISTINCT FROM dr.revision "
            "AND p.raw IS NOT DISTINCT FROM dr.raw_revision "
            "AND p.fmt IS NOT DISTINCT FROM dr.revision_format")
    con.execute("DELETE FROM deployment_revisions dr WHERE dr.deployment_id IN (SELECT id FROM _dep_new) "
                f"AND NOT EXISTS (SELECT 1 FROM _dep_pairs p WHERE {same})")
    con.execute(
        "INSERT INTO deployment_revisions "
        "(deployment_id, repository, revision, raw_revision, revision_format) "
        f"SELECT deployment_id, repository, revision, raw, fmt FROM _dep_pairs p WHERE NOT EXISTS ("
        f"SELECT 1 FROM deployment_revisions dr WHERE {same}) ORDER BY deployment_id, pos")
    session.rows_written += summary.rows + pair_count


def _attributable(session: WriteSession) -> tuple[int, list[tuple[str, str]]]:
    """The file's deployments whose repository, or one of whose pairs' repositories, is
    collected: how many, and their scopes (read from the TEMP view and tables :func:`_store`
    left, which are dropped)."""
    con = session.con
    found = con.execute(
        """WITH collected AS (SELECT id FROM repositories),
           chosen AS (
               SELECT id, service, environment FROM _dep_new
               WHERE repository IN (SELECT id FROM collected)
                  OR id IN (SELECT deployment_id FROM _dep_pairs
                            WHERE repository IN (SELECT id FROM collected))
           )
           SELECT count(*), list(DISTINCT [service, environment]) FROM chosen""").fetchone()
    con.execute("DROP VIEW IF EXISTS _dep_new; DROP TABLE IF EXISTS _dep_pairs; "
                "DROP TABLE IF EXISTS _dep_res")
    if found is None or not found[0]:
        return 0, []
    return int(found[0]), [(str(s), str(e)) for s, e in found[1]]


def _attribute_stream(session: WriteSession, chosen: tuple[int, list[tuple[str, str]]]) -> int | None:
    """:func:`_attribute` of the deployments :func:`_attributable` counted, by their scopes (what
    ``deployment_ids`` would select, without sending a million ids back)."""
    count, scopes = chosen
    if not count:
        return 0
    try:
        from analytics.deployments.attribution import attribute_changes
    except ImportError:  # the git collector is not installed in this build
        return None
    with bounded(session.con, STORE_MEMORY):  # its TEMP tables hold a row per deployment
        attribute_changes(session, scopes=scopes)
    return count

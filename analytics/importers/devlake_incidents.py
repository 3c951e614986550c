"""Apache DevLake incidents: its ``issues`` domain table exported as CSV (or JSON), rows of type
INCIDENT, or its newer ``incidents`` table (example in docs/metrics.md, "DevLake tables").

* Only ``issues`` rows whose ``type`` is INCIDENT are incidents; other types are skipped and counted
  (the ``incidents`` table has no type: every row is one).
* ``created_date`` is the start; ``resolution_date`` the resolution (a DONE issue without one is
  resolved at its ``updated_date``, as DevLake's own e2e data does); open otherwise.
* Service: the DevLake project whose ``project_mapping`` holds the issue's board (a ``board_id``
  column, or a ``devlake_board_issues`` file imported before or after) or the ``incidents`` table's
  ``table``/``scope_id``; else a ``service`` column; else none (the incident stays unattributed).
* Environment: an ``environment`` column, else the first production environment, as for every
  incident (DevLake only relates incidents to PRODUCTION deployments).
"""

from __future__ import annotations

from typing import Any

from analytics.config import Config
from analytics.deployments.dimensions import register_named
from analytics.importers._devlake import SCOPE_TABLES, apply_mapping, devlake_time, store_scopes
from analytics.importers._fields import RowContext, columns_present, normalise_keys, required_text, text
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession

KIND = "devlake_incidents"


_NOT_ISSUES = {"commit_sha", "pull_request_key", "base_repo_id", "merged_date", "pull_request_id"}


def detect(parsed: ParsedFile) -> bool:
    """id and created_date, and the issues table's type with issue_key or resolution_date, or the
    incidents table's incident_key or table/scope_id; never a DevLake pull request, PR comment or
    deployment commit (those have a ``type`` column too)."""
    keys = columns_present(parsed.records)
    issues = "type" in keys and bool(keys & {"issue_key", "resolution_date"})
    incidents = "incident_key" in keys or {"table", "scope_id"} <= keys
    return (bool(parsed.records) and {"id", "created_date"} <= keys and not keys & _NOT_ISSUES
            and (issues or incidents))


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    default_env = (config.production_environments() or ["production"])[0]
    keys = columns_present(parsed.records)
    typed = "type" in keys
    rows: list[dict[str, Any]] = []
    scopes: list[tuple[str, str, str, str, str | None]] = []
    first_line: dict[str, int] = {}
    skipped: dict[str, int] = {}
    defaulted = 0
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        if typed and (kind := (text(record, "type") or "").upper()) != "INCIDENT":
            skipped[kind or "(no type)"] = skipped.get(kind or "(no type)", 0) + 1
            continue
        incident_id = required_text(record, "id", where)
        if incident_id in first_line:
            first = first_line[incident_id]
            raise where.error(f"duplicate incident id {incident_id!r} (first on line {first})")
        first_line[incident_id] = line
        created = devlake_time(record, "created_date", where)
        if created is None:
            raise where.error("missing value for 'created_date'")
        resolved = devlake_time(record, "resolution_date", where)
        if resolved is None and (text(record, "status") or "").upper() == "DONE":
            resolved = devlake_time(record, "updated_date", where)
        if resolved is not None and resolved.value < created.value:
            raise where.error("the resolution is earlier than 'created_date'")
        summary.naive_timestamps += sum(1 for t in (created, resolved) if t is not None and not t.had_zone)
        environment = text(record, "environment")
        if environment is None:
            environment = default_env
            defaulted += 1
        service = text(record, "service")
        rows.append({
            "id": incident_id, "service": service, "environment": environment.lower(),
            "created_at": created.value, "resolved_at": resolved.value if resolved else None,
            "title": text(record, "title"), "root_cause": None, "source": "devlake",
            "source_ref": text(record, "issue_key") or text(record, "incident_key") or incident_id,
            "url": text(record, "url"), "labels": None,
        })
        if (board := text(record, "board_id")) is not None:
            scopes.append(("incident", incident_id, "boards", board, service))
        table, scope_id = text(record, "table"), text(record, "scope_id")
        if table in SCOPE_TABLES and scope_id is not None:
            scopes.append(("incident", incident_id, table, scope_id, service))
    register_named(session, config, [r["service"] for r in rows if r["service"]],
                   [r["environment"] for r in rows])
    session.upsert("incidents", rows)
    store_scopes(session, scopes)
    apply_mapping(session, config)
    summary.rows = len(rows)
    without = session.con.execute(
        "SELECT count(*) FROM incidents WHERE service IS NULL AND id IN (SELECT unnest(?::VARCHAR[]))",
        [[r["id"] for r in rows]]).fetchone()
    if without and without[0]:
        summary.notes.append(f"{without[0]} without a project or service (unattributed until a "
                             "project_mapping or board_issues file names one)")
    if defaulted:
        summary.notes.append(f"{defaulted} without an environment assigned to {default_env}")
    if skipped:
        summary.notes.append("skipped " + ", ".join(f"{n} {k} issues" for k, n in sorted(skipped.items())))
    return summary

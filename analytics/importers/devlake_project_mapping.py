"""Apache DevLake's ``project_mapping`` (``project_name, table, row_id``) and ``board_issues``
(``board_id, issue_id``) tables exported as CSV (or JSON): which project each repo, board and CI/CD
scope belongs to, and which board each issue is on.

A DevLake project becomes a service. Importing the mapping moves the DevLake deployments and
incidents already stored to their project's service (and attributes the moved deployments'
changes again); those imported later find it stored. A project's rows in the file replace the
rows stored for that project, so a repository removed from a project in DevLake leaves it here too.
"""

from __future__ import annotations

from typing import Any

from analytics.config import Config
from analytics.importers._devlake import SCOPE_TABLES, apply_mapping, store_scopes
from analytics.importers._fields import RowContext, columns_present, normalise_keys, required_text
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession

KIND = "devlake_project_mapping"


def detect(parsed: ParsedFile) -> bool:
    """project_name, table and row_id (project_mapping), or board_id and issue_id (board_issues)."""
    keys = columns_present(parsed.records)
    return bool(parsed.records) and ({"project_name", "table", "row_id"} <= keys
                                     or {"board_id", "issue_id"} <= keys)


def load(session: WriteSession, parsed: ParsedFile, config: Config) -> ImportSummary:
    summary = ImportSummary(kind=KIND, path=parsed.path)
    keys = columns_present(parsed.records)
    mapping: dict[tuple[str, str, str], dict[str, Any]] = {}
    boards: list[tuple[str, str, str, str, str | None]] = []
    skipped = 0
    for raw, line in zip(parsed.records, parsed.lines, strict=True):
        record = normalise_keys(raw)
        where = RowContext(parsed.path, line)
        if {"project_name", "table", "row_id"} <= keys:
            table = required_text(record, "table", where)
            if table not in SCOPE_TABLES:
                skipped += 1
                continue
            row = {"project_name": required_text(record, "project_name", where), "table_name": table,
                   "mapped_id": required_text(record, "row_id", where)}
            mapping[(row["project_name"], table, row["mapped_id"])] = row
        else:
            boards.append(("incident", required_text(record, "issue_id", where), "boards",
                           required_text(record, "board_id", where), None))
    projects = sorted({p for p, _, _ in mapping})
    if projects:
        session.con.execute("DELETE FROM devlake_project_mapping WHERE project_name IN "
                            "(SELECT unnest(?::VARCHAR[]))", [projects])
        session.upsert("devlake_project_mapping", list(mapping.values()))
    store_scopes(session, boards)
    deployments, incidents, scopes = apply_mapping(session, config)
    if scopes:
        from analytics.deployments.attribution import attribute_changes

        attribute_changes(session, scopes=scopes)
    summary.rows = len(mapping) + len(boards)
    if projects:
        summary.notes.append(f"{len(projects)} projects")
    if boards:
        summary.notes.append(f"{len(boards)} issues on boards")
    summary.notes.append(f"{deployments} deployments and {incidents} incidents moved to their project")
    if skipped:
        summary.notes.append(f"skipped {skipped} rows of other tables")
    return summary

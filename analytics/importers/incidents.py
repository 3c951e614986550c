"""Incidents from CSV, JSON or YAML: ``id, service, environment, created_at, resolved_at, title, root_cause``.

``resolved_at`` is empty while an incident is open; ``root_cause`` optionally names a commit sha,
a revision or a deployment id. An empty environment means the config's first production
environment, because incidents are, by definition, about what users see.
"""

from __future__ import annotations

from typing import Any

from analytics.config import Config
from analytics.importers._dimensions import ensure_dimensions
from analytics.importers._fields import (
    RowContext,
    columns_present,
    normalise_keys,
    required_text,
    text,
    timestamp,
)
from analytics.importers.base import ImportSummary, ParsedFile
from analytics.store.connection import WriteSession

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
    ensure_dimensions(
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
    return summary

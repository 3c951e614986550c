"""The read and write halves of a GitHub or GitLab collection run, shared by both collectors.

A run reads where it resumes (the repository id and one watermark per kind) from the published
snapshot, without the writer lock; fetches everything from the API; and only then opens the
store for writing: all rows, what depends on them and the moved watermarks in one transaction.
So a long fetch, or an hour-long rate-limit wait, never keeps other writers (the webhook receiver,
other collections) out of the store. Watermarks only bound what is fetched and rows are upserts, so
two runs of the same repository overlapping in time fetch some rows twice and lose none.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from analytics.collectors.codehost_mapping import later, note_unmatched_merges, resolve_repo_id
from analytics.config import Config
from analytics.store.connection import WriteSession


@dataclass(frozen=True)
class RunStart:
    """Where a run resumes: the store's id for the repository and each kind's watermark."""

    repo_id: str
    marks: dict[str, datetime | None]


def plan_run(
    db_path: Path,
    source: str,
    name: str,
    config: Config,
    explicit_repo_id: str | None,
    keys: Iterable[str],
    parse: Callable[[str | None], datetime | None],
    *,
    full: bool,
    since: datetime | None,
) -> RunStart:
    """Read the repository id and the watermarks from the published snapshot (no writer lock);
    each kind resumes at its watermark (none with --full), but never before --since."""
    import duckdb

    from analytics.store.connection import open_reader, snapshot_path

    state: dict[str, str] = {}
    reader = None
    if snapshot_path(db_path).exists() or db_path.exists():
        reader = open_reader(db_path, install_views=False)
    try:
        try:
            if reader is not None:
                state = {str(k): str(v) for k, v in reader.execute(
                    "SELECT key, value FROM collector_state WHERE source = ?", [source]
                ).fetchall()}
            rid = resolve_repo_id(reader, name, config, explicit_repo_id)
        except duckdb.CatalogException:  # a store older than these tables: the writer migrates it
            rid = resolve_repo_id(None, name, config, explicit_repo_id)
    finally:
        if reader is not None:
            reader.close()
    marks = {k: later(None if full else parse(state.get(k)), since) for k in keys}
    return RunStart(rid, marks)


def store_run(
    session: WriteSession,
    config: Config,
    repo: str,
    source: str,
    tables: dict[str, list[dict[str, Any]]],
    marks: dict[str, datetime | None],
) -> tuple[dict[str, int], int]:
    """Upserts ``tables`` in their order, then services/environments, change attribution of the
    new deployments, the watermarks that moved and the unmatched-merge note; gives the row count
    per table and the number of linked changes."""
    from analytics.attribution import attribute_changes
    from analytics.webhooks.derive import ensure_dimensions

    counts = {table: session.upsert(table, rows) for table, rows in tables.items()}
    ensure_dimensions(session, config)
    deployments = tables.get("deployments", [])
    changes = attribute_changes(session, deployment_ids=[d["id"] for d in deployments]) if deployments else 0
    for key, mark in marks.items():
        if mark is not None:
            session.set_state(source, key, mark.isoformat())
    note_unmatched_merges(session, repo)
    return counts, changes

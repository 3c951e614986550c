"""The write half of a GitHub or GitLab collection run, shared by both collectors.

Both read one watermark per kind before fetching and, once everything is fetched, write all rows,
derive what depends on them and move the watermarks, inside the run's single write session.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from analytics.collectors.codehost_mapping import later, note_unmatched_merges
from analytics.config import Config
from analytics.store.connection import WriteSession


def read_marks(
    session: WriteSession,
    source: str,
    keys: Iterable[str],
    parse: Callable[[str | None], datetime | None],
    *,
    full: bool,
    since: datetime | None,
) -> dict[str, datetime | None]:
    """Where each kind resumes: its stored watermark (none with --full), but never before --since."""
    return {k: later(None if full else parse(session.get_state(source, k)), since) for k in keys}


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

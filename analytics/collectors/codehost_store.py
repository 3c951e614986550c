"""A GitHub or GitLab collection run in its fixed order, shared by both collectors.

A run (:func:`run_collection`) reads where it resumes (the repository id and one watermark per
kind) from the published snapshot, without the writer lock; fetches everything from the API; and
only then opens the store for writing: all rows, what depends on them and the moved watermarks in
one transaction. So a long fetch, or an hour-long rate-limit wait, never keeps other writers (the
webhook receiver, other collections) out of the store. Watermarks only bound what is fetched and
rows are upserts, so two runs of the same repository overlapping in time fetch some rows twice and
lose none.
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
from analytics.store.literals import execute


@dataclass(frozen=True)
class RunStart:
    """Where a run resumes: the store's id for the repository and each kind's watermark."""

    repo_id: str
    marks: dict[str, datetime | None]


def _plan_run(
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
    """Read the repository id and the watermarks from the latest snapshot (no transaction held);
    each kind resumes at its watermark (none with --full), but never before --since."""
    import duckdb

    from analytics.store.connection import open_reader
    from analytics.store.location import resolve

    state: dict[str, str] = {}
    reader = None
    if resolve(db_path).exists():
        reader = open_reader(db_path, install_views=False)
    try:
        try:
            if reader is not None:
                state = {str(k): str(v) for k, v in execute(
                    reader, "SELECT key, value FROM collector_state WHERE source = ?", [source]
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
    from analytics.deployments.attribution import attribute_changes
    from analytics.deployments.dimensions import ensure_dimensions

    counts = {table: session.upsert(table, rows) for table, rows in tables.items()}
    ensure_dimensions(session, config)
    deployments = tables.get("deployments", [])
    changes = attribute_changes(session, deployment_ids=[d["id"] for d in deployments]) if deployments else 0
    for key, mark in marks.items():
        if mark is not None:
            session.set_state(source, key, mark.isoformat())
    note_unmatched_merges(session, repo)
    return counts, changes


@dataclass(frozen=True)
class Fetched:
    """What one run fetched: rows per table (written in this order) and each kind's new watermark."""

    tables: dict[str, list[dict[str, Any]]]
    marks: dict[str, datetime | None]


@dataclass(frozen=True)
class Stored:
    """What one run wrote: the repository id, rows per table and the changes linked to deployments."""

    repo_id: str
    counts: dict[str, int]
    changes: int


def run_collection(
    db_path: Path,
    config: Config,
    *,
    host: str,
    name: str,
    explicit_repo_id: str | None,
    mark_keys: Iterable[str],
    parse: Callable[[str | None], datetime | None],
    full: bool,
    since: datetime | None,
    fetch: Callable[[RunStart], Fetched],
    describe: Callable[[Stored], str],
) -> Stored:
    """Plan from the snapshot, ``fetch`` with no lock held (a failure is still logged as a failed
    run), then write everything in one transaction; ``describe`` gives the run's one-line message."""
    from analytics.store.connection import failures_recorded, write_unit

    source = f"{host}:{name}"
    start = _plan_run(db_path, source, name, config, explicit_repo_id, mark_keys, parse,
                      full=full, since=since)
    with failures_recorded(db_path, source=host, target=name) as started:
        fetched = fetch(start)

    def work(session: WriteSession) -> Stored:
        counts, changes = store_run(session, config, start.repo_id, source, fetched.tables, fetched.marks)
        stored = Stored(start.repo_id, counts, changes)
        session.messages.append(describe(stored))
        return stored

    return write_unit(db_path, work, source=host, target=name, started=started)

"""Where the dashboard's data comes from: one DuckLake snapshot of the store the CLI selected.

Every query's cache key includes the snapshot id, and a page reads through a connection pinned to
that snapshot, so a page is consistent (a deployment never shows without its changes) and a
collection that commits a new snapshot refreshes the pages without a restart.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC
from pathlib import Path

import duckdb

from analytics.store.connection import Snapshot, open_reader, snapshot_bounds

DB_ENV = "GITOPS_DORA_DB"
CONFIG_ENV = "GITOPS_DORA_CONFIG"
DEFAULT_DB = "gitops-dora.ducklake"


def db_path() -> Path:
    return Path(os.environ.get(DB_ENV) or DEFAULT_DB)


def config_path() -> Path | None:
    value = os.environ.get(CONFIG_ENV)
    return Path(value) if value else None


_PINNED = threading.local()


@contextmanager
def pinned_render(db: Path) -> Iterator[int]:
    """Within one script run, every query reads the snapshot that was newest when it started."""
    _PINNED.stamp = None
    stamp = data_stamp(db)
    _PINNED.stamp = stamp
    try:
        yield stamp
    finally:
        _PINNED.stamp = None


def data_stamp(db: Path) -> int:
    """1 + the snapshot id pages read (0 when there is no store): the render's pinned one, else the
    newest."""
    pinned = getattr(_PINNED, "stamp", None)
    if pinned is not None:
        return int(pinned)
    bounds = snapshot_bounds(_ref(db))
    _forget_if_replaced(db, bounds)
    return 0 if bounds is None else bounds[1].id + 1


# What each cache (Streamlit's, the shared reader, the engine's connections, the caption) keys on is
# the snapshot id, and a store built again at the same path (`gitops-dora demo` re-run, a store
# deleted and collected anew) reuses ids from 0: a page would show the old store's figures for a
# snapshot id both have. The oldest and newest snapshots seen last per store tell: a different
# oldest snapshot, the same newest id with another time, or a smaller newest id (ids only grow in
# one store) means another store, and every cache is emptied.
_SEEN: dict[str, tuple[Snapshot, Snapshot]] = {}
_SEEN_LOCK = threading.Lock()
_ON_REPLACED: list[Callable[[], None]] = []


def on_store_replaced(forget: Callable[[], None]) -> None:
    """Call ``forget`` when a store is found replaced (modules that cache per snapshot register)."""
    _ON_REPLACED.append(forget)


def _forget_if_replaced(db: Path, bounds: tuple[Snapshot, Snapshot] | None) -> None:
    if bounds is None:   # no store now: the last one seen stays the reference for the next store
        return
    with _SEEN_LOCK:
        before = _SEEN.get(str(db))
        _SEEN[str(db)] = bounds
    if before is None or before == bounds:
        return
    (old_first, old_last), (first, last) = before, bounds
    if first == old_first and (last.id > old_last.id or last == old_last):
        return   # the same store, written since
    import streamlit as st

    st.cache_data.clear()
    with _SHARED_LOCK:
        entry = _SHARED.pop(str(db), None)
    if entry is not None:
        entry[1].close()
    _CAPTIONS.pop(str(db), None)
    for forget in _ON_REPLACED:
        forget()


def _ref(db: Path) -> str:
    text = str(db)
    return text.replace("postgresql:/", "postgresql://", 1) if text.startswith("postgresql:/") \
        and not text.startswith("postgresql://") else text


_SHARED: dict[str, tuple[int, duckdb.DuckDBPyConnection]] = {}
_SHARED_LOCK = threading.RLock()


@contextmanager
def reader(db: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read connection pinned to the current snapshot, shared by all sessions (queries take turns).

    Opening a connection installs every metric view, which costs more than most dashboard queries,
    so one connection per snapshot is kept and replaced when a newer snapshot is read. The config's
    metric settings (lead-time start, attribution gap, hotfix pattern, redeploys, multi-team
    services) are put on it when it opens, as the engine does for the Overview's figures: every
    listing reads the views as the figures do, whatever was clicked before.
    """
    key = str(db)
    with _SHARED_LOCK:
        stamp = data_stamp(db)
        entry = _SHARED.get(key)
        if entry is None or entry[0] != stamp:
            if entry is not None:
                entry[1].close()
            con = open_reader(_ref(db), as_of=stamp - 1 if stamp else None)
            try:
                _apply_config_settings(con)
            except BaseException:
                con.close()
                raise
            _SHARED[key] = (stamp, con)
        yield _SHARED[key][1]


def _apply_config_settings(con: duckdb.DuckDBPyConnection) -> None:
    from analytics.config import load_config
    from analytics.metrics.engine import apply_settings

    apply_settings(con, load_config(config_path()))


_CAPTIONS: dict[str, tuple[int, str]] = {}


def snapshot_caption(db: Path) -> str:
    """"data as of <time> (snapshot N)" for the read snapshot, asked of the catalog once per
    snapshot stamp (every script run shows it: a rerun of the page would ask again otherwise)."""
    from analytics.store.connection import reader_snapshot

    stamp = data_stamp(db)
    known = _CAPTIONS.get(str(db))
    if known is not None and known[0] == stamp:
        return known[1]
    with reader(db) as con:
        snap = reader_snapshot(con)
    when = snap.time.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    caption = f"data as of {when} (snapshot {snap.id})"
    _CAPTIONS[str(db)] = (stamp, caption)
    return caption


def show_snapshot(db: Path) -> None:
    """The snapshot caption in the sidebar, so a reader can tell what a page shows and reproduce it
    with ``--as-of N``."""
    import streamlit as st

    st.sidebar.caption(snapshot_caption(db))


def existing_relations(con: duckdb.DuckDBPyConnection) -> set[str]:
    """Tables and views (including the TEMP metric views) visible on this connection."""
    rows = con.execute(
        "SELECT table_name FROM information_schema.tables UNION SELECT view_name FROM duckdb_views()"
    ).fetchall()
    return {r[0] for r in rows}

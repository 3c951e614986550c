"""Opening the store: a DuckLake catalog (SQLite file or PostgreSQL) over Parquet data files.

DuckLake gives what a home-made lock and a copied snapshot only approximated:

* **Writers** run each unit of work as one DuckLake transaction (:func:`open_writer`). Any number
  of processes, on one machine (SQLite catalog) or many (PostgreSQL), write at once. A commit that
  meets another writer's commit is retried by DuckLake itself; one it cannot merge (both changed
  the same rows, or the SQLite catalog moved on under a long transaction) raises
  :class:`StoreConflictError`, and :func:`write_unit` runs the whole unit again, a bounded number
  of times, saying so in one stderr line. Nothing of a failed or killed unit is ever visible.
* **Readers** (:func:`open_reader`) attach the catalog read-only *pinned to one snapshot*, so a
  command, a report or a dashboard page reads one consistent state however many queries it runs,
  and never waits for a writer. ``as_of`` pins an older snapshot (time travel).

Extensions are loaded from the files the ``duckdb-extension-*`` packages install, never
downloaded, so the store works on air-gapped clusters.
"""

from __future__ import annotations

import contextlib
import glob
import importlib.util
import os
import random
import re
import sys
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from analytics.errors import NUL_REFUSED, UserError
from analytics.redaction import redact
from analytics.store import relations
from analytics.store.dimensions import KEEP_FIRST, SHARED_DIMENSIONS
from analytics.store.dimensions import install_views as install_dimension_views
from analytics.store.literals import execute, sql_string
from analytics.store.location import (
    DATA_PATH_ENV,
    StoreLocation,
    StoreRef,
    files_beside,
    redact_url,
    resolve,
)
from analytics.store.migrations import migrate
from analytics.store.upsert import (
    LEAN_MAX_ROWS,
    RESET_PLANNING,
    OnMatch,
    UnstorableKeyError,
    is_nul_in_key,
    merge,
    merge_rows,
)

PAUSE_ENV = "GITOPS_DORA_PAUSE_BEFORE_COMMIT"  # fault injection for kill/concurrency tests
RETRIES_ENV = "GITOPS_DORA_WRITE_RETRIES"  # how often a conflicting unit of work is run again
RETRY_SECONDS_ENV = "GITOPS_DORA_WRITE_RETRY_SECONDS"  # ... and for how long at least
COMPRESSION_ENV = "GITOPS_DORA_PARQUET_COMPRESSION"  # data files of a new store
CATALOG = "lake"
_DEFAULT_RETRIES = 20
_DEFAULT_RETRY_SECONDS = 600.0
_CATALOG_EXTENSION = {"sqlite": "sqlite_scanner", "postgres": "postgres_scanner"}
T = TypeVar("T")
_RUN_COLUMNS = ["id", "source", "target", "started_at", "finished_at", "status", "rows_written", "message"]
_INSERT_RUN = (f"INSERT INTO collection_runs ({', '.join(_RUN_COLUMNS)}) "
               "SELECT ?, ?, ?, ?::TIMESTAMPTZ, now(), 'ok', ?, ?")


class StoreConflictError(UserError):
    """A commit met a concurrent change DuckLake could not merge; running the unit again helps."""


class StoreSpaceError(UserError):
    """The disk (or quota) under the data path or the catalog is full."""


# Extensions come only from the installed duckdb-extension-* packages, whose files pip checked
# against the lock file's hashes at install. DuckDB's own signature check of a 36 MB extension costs
# 0.3 s per LOAD, paid by every CLI command, so it is not repeated; nothing is ever auto-installed
# or auto-loaded, and no SQL from outside is run on these connections.
_CONFIG: dict[str, str | bool | int | float | list[str]] = {
    "autoinstall_known_extensions": False, "autoload_known_extensions": False,
    "allow_unsigned_extensions": True,
}
# DuckDB draws a progress bar on stdout for any query that runs over 2 s, terminal or not: it would
# land in the middle of `--format json`/`csv` output, a report or a pipe. A session setting only
# (refused in the connect config), set on every connection this module opens.
_NO_PROGRESS_BAR = "SET enable_progress_bar = false"


def _extension_file(name: str) -> str:
    """The ``.duckdb_extension`` file the ``duckdb-extension-<name>`` package installed."""
    spec = importlib.util.find_spec(f"duckdb_extension_{name}")
    folders = list(spec.submodule_search_locations or []) if spec else []
    version = duckdb.__version__
    for folder in folders:
        file_name = f"{name}.duckdb_extension"
        hits = sorted(glob.glob(os.path.join(folder, "extensions", f"v{version}", file_name)))
        hits = hits or sorted(glob.glob(os.path.join(folder, "extensions", "*", file_name)))
        if hits:
            return hits[0]
    package = "duckdb-extension-" + name.replace("_", "-")
    raise UserError(f"DuckDB extension {name} is not installed: install the package {package}=={version} "
                    "(scripts/bootstrap.sh installs it from the lock file)")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def is_conflict(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.TransactionException) or "database is locked" in text \
        or "Transaction conflict" in text or "conflict" in text.lower() and "commit" in text.lower()


def is_space_error(exc: BaseException) -> bool:
    text = str(exc).lower()
    return "no space left" in text or "disk is full" in text or "disk quota" in text \
        or "database or disk is full" in text


def _translate(exc: duckdb.Error, loc: StoreLocation, doing: str) -> UserError:
    if is_space_error(exc):
        return StoreSpaceError(f"store {loc}: no space left while {doing}; nothing of this run was committed")
    if is_conflict(exc):
        return StoreConflictError(f"store {loc}: another writer committed a conflicting change while {doing}")
    if is_nul_in_key(exc):  # a statement other than merge()'s (an INSERT ... WHERE NOT EXISTS)
        return UnstorableKeyError(f"store {loc}: {doing} failed: a value this write matches on contains "
                                  f"{NUL_REFUSED}; remove it from input")
    return UserError(f"store {loc}: {doing} failed: {_first_line(exc)}")


def _s3_secret(con: duckdb.DuckDBPyConnection) -> None:
    """S3 credentials come from the standard AWS variables, never from arguments."""
    con.execute(f"LOAD {sql_string(_extension_file('httpfs'))}")
    parts = ["TYPE s3"]
    for env, option in (("AWS_ACCESS_KEY_ID", "KEY_ID"), ("AWS_SECRET_ACCESS_KEY", "SECRET"),
                        ("AWS_SESSION_TOKEN", "SESSION_TOKEN"), ("AWS_REGION", "REGION")):
        if os.environ.get(env):
            parts.append(f"{option} {sql_string(os.environ[env])}")
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    if endpoint:
        parts.append(f"ENDPOINT {sql_string(re.sub(r'^https?://', '', endpoint))}")
        if endpoint.startswith("http://"):
            parts.append("USE_SSL false")
        parts.append("URL_STYLE 'path'")
    con.execute(f"CREATE OR REPLACE TEMPORARY SECRET gitops_dora_s3 ({', '.join(parts)})")


_MOVED = "does not match existing data path in the catalog"
_RECORDED = re.compile(_MOVED + r' "(.*)"\.?$', re.MULTILINE)


def _snapshot_range(loc: StoreLocation) -> str | None:
    """What ``--as-of`` can name in this store ("its 11 snapshots are 0 (2026-...) to 11
    (2026-...)"), for the error of one it cannot: DuckDB's own line names only the value that
    failed. The count says when ``maintain`` has expired those in between. None where the catalog
    is not read here (PostgreSQL)."""
    rows = loc.read_catalog("SELECT min(snapshot_id), min(snapshot_time), max(snapshot_id),"
                            " max(snapshot_time), count(*) FROM ducklake_snapshot")
    if not rows or rows[0][0] is None:
        return None
    first, first_at, last, last_at, count = rows[0]
    if count == 1:
        return f"its only snapshot is {first} ({str(first_at)[:19]} UTC)"
    return (f"its {count} snapshots are {first} ({str(first_at)[:19]} UTC) to {last}"
            f" ({str(last_at)[:19]} UTC)")


def _attach(con: duckdb.DuckDBPyConnection, loc: StoreLocation, options: list[str]) -> None:
    """ATTACH the store. DuckLake records the data folder's absolute path when it creates a store
    (file paths inside it are relative), so a store moved or copied with its folder (``mv`` of a
    directory, a restore to another mount) was refused on every later open. When the folder sits
    where the layout puts it (``<catalog>.files/``, no explicit data path) it is the store's, and it
    is attached there for this connection; anything else is one line naming both paths."""
    attach = f"ATTACH {sql_string(loc.attach_target())} AS {CATALOG} "
    try:
        con.execute(attach + f"({', '.join(options)})")
        return
    except duckdb.Error as exc:
        if _MOVED not in str(exc):
            raise
        refusal = str(exc)
    beside = files_beside(loc.catalog)
    if loc.kind == "sqlite" and loc.data_path == beside and _holds_store_files(loc, beside):
        con.execute(attach + f"({', '.join([*options, 'OVERRIDE_DATA_PATH true'])})")
        return
    rows = loc.read_catalog("SELECT value FROM ducklake_metadata WHERE key = 'data_path'")
    # a PostgreSQL catalog is not read here: DuckLake's refusal quotes the recorded path
    quoted = _RECORDED.search(refusal)
    recorded = str(rows[0][0]) if rows else quoted.group(1) if quoted else "another folder"
    raise UserError(f"store {loc}: its data files were recorded at {redact_url(recorded)}, not at "
                    f"{redact_url(loc.data_path)}; set --data-path (or {DATA_PATH_ENV}) to where the "
                    "folder is now, or move the folder back")


def _holds_store_files(loc: StoreLocation, folder: str) -> bool:
    """Whether ``folder`` is the store's data folder: a data file the catalog lists is in it. A
    folder merely named right is not (a writer creates ``<catalog>.files/`` before it opens a store
    whose data lives elsewhere, and attaching that empty folder would write files where no reader
    of the real folder finds them)."""
    rows = loc.read_catalog(
        "SELECT s.path || t.path || f.path FROM ducklake_data_file f"
        " JOIN ducklake_table t ON t.table_id = f.table_id AND t.end_snapshot IS NULL"
        " JOIN ducklake_schema s ON s.schema_id = t.schema_id AND s.end_snapshot IS NULL"
        " WHERE f.end_snapshot IS NULL AND f.path_is_relative AND t.path_is_relative"
        " AND s.path_is_relative LIMIT 1")
    if not rows:
        return False
    return os.path.isfile(os.path.join(folder, str(rows[0][0])))


def connect(
    db: StoreRef,
    *,
    read_only: bool = False,
    snapshot: int | None = None,
    snapshot_time: datetime | None = None,
    threads: int | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the store attached as ``lake`` and made the default catalog.
    ``threads``: DuckDB's worker threads when ``GITOPS_DORA_DUCKDB_THREADS`` does not say (a
    caller whose statements are mostly small catalog queries asks for one: a second worker made
    them cost more CPU); DuckDB's default, one per core, otherwise."""
    loc = resolve(db)
    if read_only and not loc.exists():
        raise UserError(
            f"no database at {loc}: run `gitops-dora demo` or a `gitops-dora collect` command first"
        )
    if loc.kind == "sqlite" and Path(loc.catalog).is_file() and Path(loc.catalog).stat().st_size == 0 \
            and not loc.data_path.startswith("s3://") and any(Path(loc.data_path).rglob("*.parquet")):
        # SQLite would take an empty file for a new catalog and orphan every data file
        raise UserError(f"store {loc}: the catalog file is empty but {loc.data_path} holds data files; "
                        "restore the catalog from a backup (docs/operations.md#backups)")
    if loc.kind == "sqlite" and not read_only:
        try:
            Path(loc.catalog).parent.mkdir(parents=True, exist_ok=True)
            if not loc.data_path.startswith("s3://"):
                Path(loc.data_path).mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # a read-only folder, a file where a folder belongs
            raise UserError(f"store {loc}: cannot create {exc.filename or loc.data_path}: "
                            f"{exc.strerror or exc}") from None
    config: dict[str, Any] = {**_CONFIG, "temp_directory": _spill_directory()}
    if threads is not None:
        config["threads"] = threads
    con = duckdb.connect(config={**config, **_thread_setting()})
    try:
        con.execute(f"LOAD {sql_string(_extension_file('ducklake'))}")
        con.execute(f"LOAD {sql_string(_extension_file(_CATALOG_EXTENSION[loc.kind]))}")
        if loc.data_path.startswith("s3://"):
            _s3_secret(con)
        options = [f"DATA_PATH {sql_string(loc.data_path)}"]
        if loc.kind == "sqlite":
            options += ["META_JOURNAL_MODE 'WAL'", "META_BUSY_TIMEOUT 10000"]
        if read_only:
            options.append("READ_ONLY")
        if snapshot is not None:
            options.append(f"SNAPSHOT_VERSION {int(snapshot)}")
        elif snapshot_time is not None:
            options.append(f"SNAPSHOT_TIME {sql_string(snapshot_time.astimezone(UTC).isoformat())}")
        _attach(con, loc, options)
        con.execute(f"USE {CATALOG}")
        # DuckLake never rewrites a data file (a change writes a new one), so a Parquet footer read
        # once stays valid; the metric queries scan the same files many times per command.
        # Times are shown in UTC whatever the machine's zone, so output (and a report reproduced
        # --as-of) does not depend on where it runs.
        con.execute("SET ducklake_max_retry_count = 30; SET ducklake_retry_wait_ms = 20; "
                    "SET ducklake_retry_backoff = 1.3; SET parquet_metadata_cache = true; "
                    f"{_NO_PROGRESS_BAR}; SET TimeZone = 'UTC'")
    except duckdb.Error as exc:
        con.close()
        if snapshot is not None or snapshot_time is not None:
            when = snapshot if snapshot is not None else snapshot_time
            known = _snapshot_range(loc) or _first_line(exc)
            raise UserError(f"store {loc}: no snapshot {when} ({known})") from None
        if "malformed" in str(exc) or "not a database" in str(exc):
            reason = "disk image is malformed" if "malformed" in str(exc) else "not a database"
            raise UserError(f"store {loc}: the catalog file is damaged ({reason}); nothing was written; "
                            "restore it from a backup (docs/operations.md#backups)") from None
        raise _translate(exc, loc, "opening the catalog") from None
    except BaseException:
        con.close()
        raise
    return con


def _thread_setting() -> dict[str, int]:
    """DuckDB's worker threads from ``GITOPS_DORA_DUCKDB_THREADS``. DuckDB starts one per core it
    sees, which in a container is the node's cores, not the pod's CPU limit: a CronJob limited to one
    CPU then spends its quota switching threads. The test suite runs two workers on two cores and
    sets 1 for the same reason."""
    text = os.environ.get("GITOPS_DORA_DUCKDB_THREADS", "").strip()
    if not text:
        return {}
    if not text.isdigit() or not 1 <= int(text) <= 256:
        raise UserError(f"GITOPS_DORA_DUCKDB_THREADS must be a whole number from 1 to 256, not {text[:20]!r}")
    return {"threads": int(text)}


@contextmanager
def duckdb_threads(con: duckdb.DuckDBPyConnection, threads: int) -> Iterator[int]:
    """Run the block's statements on ``threads`` DuckDB threads and put the connection's own
    setting back afterwards; yields that setting. The put-back is quiet: inside an aborted
    transaction DuckDB refuses SET, the block's error is the one that counts, and the unit's
    connection is closed anyway."""
    row = con.execute("SELECT system.main.current_setting('threads')").fetchone()
    before = int(row[0]) if row and row[0] is not None else threads
    if threads != before:
        con.execute(f"SET threads = {int(threads)}")
    try:
        yield before
    finally:
        if threads != before:
            with contextlib.suppress(duckdb.Error):
                con.execute(f"SET threads = {before}")


def machine_threads(current: int = 1) -> int:
    """The DuckDB threads a statement may use when the machine has nothing else to do:
    ``GITOPS_DORA_DUCKDB_THREADS`` when set, else the larger of ``current`` (a connection's
    setting) and one per core (DuckDB's own default)."""
    return _thread_setting().get("threads") or max(current, os.cpu_count() or 1)


def _spill_directory() -> str:
    """Where this process's store connections spill to disk when a query outgrows memory. DuckDB's
    default for an in-memory database is ``.tmp`` in the working directory (read-only in a
    CronJob, or the user's repository) with file names that collide between processes; DuckDB
    creates this folder only when it spills, and removes it when the connection closes."""
    import tempfile

    return os.path.join(tempfile.gettempdir(), f"gitops-dora-spill-{os.getpid()}-{uuid.uuid4().hex[:8]}")


def scratch_connection(temp_directory: str, *, memory_limit: str = "256MB") -> duckdb.DuckDBPyConnection:
    """An in-memory database for checking a file before any of it reaches the store: an error
    there cannot abort the store's transaction, and its memory and spill directory are bounded.
    One thread unless GITOPS_DORA_DUCKDB_THREADS says otherwise: a second thread's buffers went past
    the memory limit (a 1M-line JSON-lines import peaked at 451-515 MB with two, 372-379 MB with
    one, in about the same time)."""
    con = duckdb.connect(config={"threads": 1, **_thread_setting(), "memory_limit": memory_limit,
                                 "temp_directory": temp_directory})
    con.execute(_NO_PROGRESS_BAR)
    return con


def _set_file_options(con: duckdb.DuckDBPyConnection) -> None:
    """Parquet compression of a new store, kept in its catalog. Uncompressed by default: the
    metric scans read every row of the big tables, and decoding zstd/snappy Parquet made them
    about twice as slow as uncompressed for 40% less disk (docs/performance.md). Set
    GITOPS_DORA_PARQUET_COMPRESSION (zstd, snappy, lz4_raw, uncompressed) for object storage,
    where bytes cost more than CPU."""
    choice = os.environ.get(COMPRESSION_ENV, "uncompressed").strip().lower()
    if choice not in ("uncompressed", "zstd", "snappy", "lz4_raw", "lz4", "gzip"):
        raise UserError(f"${COMPRESSION_ENV}={choice!r}: use uncompressed, zstd, snappy or lz4_raw")
    con.execute(f"CALL {CATALOG}.set_option('parquet_compression', '{choice}')")


def _schema_is_current(loc: StoreLocation) -> bool:
    """Whether every table the migrations create, and every column they add to a table, is in a
    SQLite catalog, read with Python's sqlite3 (well under a millisecond, against two DuckLake
    statements of 10-25 ms each). False whenever it cannot tell: then the migrations run their
    own check."""
    if loc.kind != "sqlite" or not Path(loc.catalog).is_file():
        return False
    from analytics.store.migrations import added_columns, created_tables

    expected = created_tables()
    if expected is None:
        return False
    rows = loc.read_catalog("SELECT table_name FROM ducklake_table WHERE end_snapshot IS NULL")
    if rows is None or not expected <= {str(row[0]).lower() for row in rows}:
        return False
    columns = added_columns()
    if not columns:
        return True
    found = loc.read_catalog(
        "SELECT t.table_name, c.column_name FROM ducklake_column c"
        " JOIN ducklake_table t ON t.table_id = c.table_id"
        " WHERE c.end_snapshot IS NULL AND t.end_snapshot IS NULL")
    return found is not None and columns <= {(str(t).lower(), str(c).lower()) for t, c in found}


def _open_migrated(loc: StoreLocation, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """A read-write connection with the schema brought up to date (racing first opens retried);
    ``threads`` as for :func:`connect`."""
    current = _schema_is_current(loc)
    con = connect(loc, threads=threads)
    if current:
        return con
    for attempt in range(_DEFAULT_RETRIES):
        try:
            migrate(con, on_new_store=_set_file_options)  # a new store: how its files are written
            return con
        except duckdb.Error as exc:
            with contextlib.suppress(duckdb.Error):
                con.execute("ROLLBACK")
            if not is_conflict(exc) and "already exists" not in str(exc) or attempt == _DEFAULT_RETRIES - 1:
                con.close()
                raise _translate(exc, loc, "updating the schema") from None
            time.sleep(0.05 * (attempt + 1))
    raise AssertionError("unreachable")  # pragma: no cover


@dataclass
class WriteSession:
    """One unit of work: everything is committed together or not at all."""

    con: duckdb.DuckDBPyConnection
    location: StoreLocation
    source: str
    target: str
    rows_written: int = 0
    messages: list[str] = field(default_factory=list)
    # Set by a unit that found the store without rows (store_was_empty) and registers each
    # service, environment and repository key at most once (a one-row MERGE each): then, when no
    # other writer committed between the unit's start and its commit, the store's dimension
    # tables hold only its own rows and the doubled-key check after the commit is skipped.
    began_empty: bool = False
    _repositories: list[tuple[Any, ...]] | None = None

    def repositories(self) -> list[tuple[Any, ...]]:
        """(id, url, local_path) of every repository, read once per unit: linking looks them up
        per deployment, and each statement is a catalog round trip on DuckLake."""
        if self._repositories is None:
            self._repositories = [tuple(r) for r in self.con.execute(
                "SELECT id, url, local_path FROM repositories ORDER BY id").fetchall()]
        return self._repositories

    def forget_repositories(self) -> None:
        self._repositories = None

    @property
    def db_path(self) -> StoreLocation:
        return self.location

    def upsert(
        self,
        table: str,
        rows: Iterable[Mapping[str, Any]] | Any,
        columns: Sequence[str] | None = None,
        *,
        on_match: OnMatch = "replace",
    ) -> int:
        """Insert-or-replace rows (dicts or a DataFrame) by the table's natural key."""
        frame: Any
        if relations.is_frame(rows):
            frame = rows
        else:
            records = list(rows)
            if not records:
                return 0
            # a few rows as a VALUES list of literals (relations says why); asked before the rows
            # are built, so a large load makes no second copy of them
            width = len(columns) if columns else max(len(r) for r in records)
            if relations.values_pay(len(records), width):
                cols = list(columns) if columns else list(dict.fromkeys(k for r in records for k in r))
                source = relations.values_source(cols, [[r.get(c) for c in cols] for r in records])
                if source is not None:
                    merge(self.con, table, source, cols, on_match=on_match,
                          few_rows=len(records) <= LEAN_MAX_ROWS)
                    self.rows_written += len(records)
                    return len(records)
            frame = relations.records_frame(records, columns)
        if frame.empty:
            return 0
        cols = list(columns) if columns else [str(c) for c in frame.columns]
        name = f"_upsert_{uuid.uuid4().hex[:8]}"
        self.con.register(name, frame)
        try:
            col_sql = ", ".join(f'"{c}"' for c in cols)
            merge(self.con, table, f"SELECT {col_sql} FROM {name}", cols, on_match=on_match)
        finally:
            self.con.unregister(name)
        self.rows_written += len(frame)
        return len(frame)

    def set_state(self, source: str, key: str, value: str) -> None:
        merge(self.con, "collector_state", "SELECT ? AS source, ? AS key, ? AS value, now() AS updated_at",
              ["source", "key", "value", "updated_at"], [source, key, value], few_rows=True)

    def get_state(self, source: str, key: str) -> str | None:
        rows = execute(self.con, "SELECT value FROM collector_state WHERE source = ? AND key = ?",
                       [source, key]).fetchall()
        return rows[0][0] if rows else None

    def warn_many(self, kind: str, details: Sequence[str]) -> None:
        """Several warnings of one kind in one statement (each statement is a catalog round trip)."""
        counts: dict[str, int] = {}
        for detail in details:
            counts[detail] = counts.get(detail, 0) + 1
        if counts:
            merge_rows(self.con, "data_warnings",
                       ["source", "target", "kind", "detail", "count", "updated_at"],
                       [[self.source, self.target, kind, redact(d), n, datetime.now(UTC)]
                        for d, n in counts.items()])

    def warn(self, kind: str, detail: str, count: int = 1) -> None:
        """Record a data-quality warning (shown on the Data health page)."""
        merge(self.con, "data_warnings",
              "SELECT ? AS source, ? AS target, ? AS kind, ? AS detail, ? AS count, now() AS updated_at",
              ["source", "target", "kind", "detail", "count", "updated_at"],
              [self.source, self.target, kind, redact(detail), count], few_rows=True)


@contextmanager
def hold_store(db: StoreRef) -> Iterator[duckdb.DuckDBPyConnection]:
    """A migrated read-write connection whose transactions are the caller's business, for a
    long-lived writer (the webhook receiver) that commits many small batches."""
    con = _open_migrated(resolve(db))
    try:
        yield con
    finally:
        con.close()


@contextmanager
def open_writer(
    db: StoreRef, *, source: str, target: str = "", started: datetime | None = None
) -> Iterator[WriteSession]:
    """One unit of work in one transaction. A conflict at commit raises StoreConflictError (use
    :func:`write_unit` to have the unit run again). ``started``: when the run began, if it did
    work (API fetches) before opening the store."""
    loc = resolve(db)
    con = _open_migrated(loc)
    try:
        tracked = _track_written_files(con, loc)
        with _unit(con, loc, source, target, started or datetime.now(UTC), record_conflict=True,
                   tracked=tracked) as session:
            yield session
    finally:
        con.close()


@contextmanager
def _unit(
    con: duckdb.DuckDBPyConnection, loc: StoreLocation, source: str, target: str, started: datetime,
    *, record_conflict: bool, tracked: bool = False,
) -> Iterator[WriteSession]:
    run_id = uuid.uuid4().hex
    session = WriteSession(con=con, location=loc, source=source, target=target)
    began = datetime.now(UTC)
    before = _newest_snapshot(loc)
    con.execute("BEGIN TRANSACTION")
    try:
        yield session
        # A plain INSERT: run_id is new to this attempt, so a MERGE could only insert, and its
        # read of collection_runs cost 7 ms of catalog look-ups at the end of every unit.
        execute(con, _INSERT_RUN,
                [run_id, source, target, started, session.rows_written,
                 redact("; ".join(session.messages))])
        pause = os.environ.get(PAUSE_ENV)
        if pause:
            _pause_before_commit(pause)
        try:
            con.execute("COMMIT")
        except duckdb.Error as exc:
            raise _translate(exc, loc, f"committing {source}") from None
        if not (session.began_empty and _only_commit_since(con, before)):
            _drop_concurrent_duplicates(con, _dimensions_added_since(loc, before))
    except BaseException as exc:
        with contextlib.suppress(duckdb.Error):
            con.execute("ROLLBACK")
        with contextlib.suppress(duckdb.Error):  # a MERGE that failed may have left it set
            con.execute(RESET_PLANNING)
        if tracked:
            _remove_unreferenced_writes(con, loc, since=began)
        # On a full disk the failure row would only leave one more empty data file behind.
        no_space = isinstance(exc, StoreSpaceError) or is_space_error(exc)
        if (record_conflict or not isinstance(exc, StoreConflictError)) and not no_space:
            _record_failed_run(con, run_id, source, target, started, exc)
        if isinstance(exc, duckdb.Error):
            raise _translate(exc, loc, f"writing {source}") from exc
        raise


def _track_written_files(con: duckdb.DuckDBPyConnection, loc: StoreLocation) -> bool:
    """Have DuckDB log a command's file operations (one statement per writer connection; not on the
    long-lived receiver's, whose log would only grow). A ROLLBACK removes the data files DuckLake
    had registered in the transaction, but not one whose write failed half-way (a full disk): that
    partial file, referenced by no snapshot, would keep the disk full until ``maintain`` deleted
    it an hour later. The log names exactly the files this connection wrote, so the cleanup can
    never touch another writer's files that are not committed yet. Local data paths only."""
    if loc.data_path.startswith("s3://"):
        return False
    try:
        con.execute("CALL system.main.enable_logging('FileSystem')")  # unqualified: a catalog transaction
    except duckdb.Error:  # pragma: no cover - logging is part of every DuckDB this project pins
        return False
    return True


def _remove_unreferenced_writes(con: duckdb.DuckDBPyConnection, loc: StoreLocation, *,
                                since: datetime) -> None:
    """After a rolled-back unit: delete the files under the data path this connection wrote since
    the unit began that no snapshot references. Best effort: when the catalog cannot be read,
    nothing is deleted."""
    import json

    data_root = os.path.realpath(loc.data_path)
    try:
        rows = con.execute(
            "SELECT DISTINCT message FROM duckdb_logs WHERE type = 'FileSystem' "
            f"AND timestamp >= {sql_string(since.isoformat())}::TIMESTAMPTZ "
            "AND message LIKE '%\"op\":\"WRITE\"%'").fetchall()
    except duckdb.Error:
        return
    written: set[str] = set()
    for (message,) in rows:
        with contextlib.suppress(ValueError, TypeError, AttributeError):
            path = os.path.realpath(str(json.loads(message)["path"]))
            if path.startswith(data_root + os.sep) and path.endswith(".parquet"):
                written.add(path)
    unlink_unreferenced(con, written)


def unlink_unreferenced(con: duckdb.DuckDBPyConnection, paths: Iterable[str]) -> None:
    """Delete those of ``paths`` (files this process wrote for a transaction that did not commit)
    that no data or delete file of the catalog names. Matched by file name: the catalog records a
    path relative to its table's folder, or whole for a file added with ``ducklake_add_data_files``.
    Best effort: when the catalog cannot be read nothing is deleted (``maintain`` deletes
    orphaned files an hour later)."""
    paths = list(paths)
    if not paths:
        return
    names = sorted({os.path.basename(p) for p in paths})
    try:
        referenced = {str(r[0]) for r in execute(con,
            f"SELECT parse_filename(path) FROM __ducklake_metadata_{CATALOG}.ducklake_data_file"
            " WHERE parse_filename(path) IN (SELECT unnest($1))"
            f" UNION ALL SELECT parse_filename(path) FROM __ducklake_metadata_{CATALOG}.ducklake_delete_file"
            " WHERE parse_filename(path) IN (SELECT unnest($1))", [names]).fetchall()}
    except duckdb.Error:
        return
    for path in paths:
        if os.path.basename(path) not in referenced:
            with contextlib.suppress(OSError):
                os.unlink(path)


def _newest_snapshot(loc: StoreLocation) -> int | None:
    """The newest snapshot id of a SQLite catalog, read with sqlite3 (well under a millisecond);
    None for PostgreSQL or when SQLite cannot answer."""
    rows = loc.read_catalog("SELECT max(snapshot_id) FROM ducklake_snapshot")
    value = rows[0][0] if rows else None
    return value if isinstance(value, int) else None


def _only_commit_since(con: duckdb.DuckDBPyConnection, snapshot: int | None) -> bool:
    """Whether the connection's last commit is the snapshot right after ``snapshot``: no other
    writer committed in between. A writer committing after it sees this commit in its own
    check, so a doubled key is still cleaned by whichever unit commits second. About 2 ms,
    against the 15-20 ms of catalog look-ups of the check it lets a unit that began on an empty
    store skip (and no read-only sqlite3 read of the catalog comes last, which left empty -wal
    and -shm files beside it)."""
    if snapshot is None:
        return False
    try:
        row = con.execute(f"SELECT * FROM ducklake_last_committed_snapshot('{CATALOG}')").fetchone()
    except duckdb.Error:
        return False
    return row is not None and row[0] == snapshot + 1


def _dimensions_added_since(loc: StoreLocation, snapshot: int | None) -> list[str]:
    """Which shared dimension tables got rows in a snapshot committed after ``snapshot`` (this
    unit's own commit among them), read from a SQLite catalog's change log with sqlite3. A
    doubled key needs two inserts, and the unit that commits the second one sees its own insert
    here, so the others skip the check (on the SQLite catalog three table look-ups and a
    transaction, about 40 ms of CPU). Every table when the change log cannot be read
    (PostgreSQL)."""
    everything = list(SHARED_DIMENSIONS)
    if snapshot is None:
        return everything
    names = ", ".join(f"'{table}'" for table in SHARED_DIMENSIONS)
    rows = loc.read_catalog(
        "SELECT t.table_name FROM ducklake_table t WHERE t.end_snapshot IS NULL "
        f"AND t.table_name IN ({names}) AND EXISTS (SELECT 1 FROM ducklake_snapshot_changes c "
        f"WHERE c.snapshot_id > {int(snapshot)} "
        "AND (',' || c.changes_made || ',' LIKE '%,inserted_into_table:' || t.table_id || ',%' "
        "OR ',' || c.changes_made || ',' LIKE '%,inlined_insert:' || t.table_id || ',%'))")
    if rows is None:
        return everything
    found = {str(row[0]) for row in rows}
    return [table for table in everything if table in found]


def _drop_concurrent_duplicates(con: duckdb.DuckDBPyConnection,
                                tables: Sequence[str] = SHARED_DIMENSIONS) -> None:
    """DuckLake has no key constraints, and two transactions that both add a row to a table never
    conflict: when two writers register the same new service at the same moment (a PostgreSQL
    catalog lets them overlap), each MERGE finds it missing and both rows are committed. After a
    unit commits, a duplicated key of a shared dimension table is cut back to one row, keeping the
    one readers show meanwhile (``dimensions.KEEP_FIRST``: the one that carries a value, then by
    the other columns; rowid only parts identical rows). One read of ``tables`` (those the unit or a writer
    meanwhile added rows to, see :func:`_dimensions_added_since`) when there is nothing to do; two
    writers cleaning the same key at once conflict, and the second finds nothing left to do."""
    from analytics.store.keys import key_of

    if not tables:
        return
    checks = " UNION ALL ".join(
        f"SELECT '{table}' WHERE (SELECT count(*) > count(DISTINCT ({', '.join(key_of(table))})) "
        f"FROM {table})" for table in tables)
    try:
        duplicated = [str(r[0]) for r in con.execute(checks).fetchall()]
    except duckdb.Error:
        return
    for table in duplicated:
        keys = ", ".join(key_of(table))
        keep_first = KEEP_FIRST[table]
        for _ in range(5):
            try:
                con.execute("BEGIN TRANSACTION")
                con.execute(
                    f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM (SELECT rowid, row_number() "
                    f"OVER (PARTITION BY {keys} ORDER BY {keep_first}, rowid DESC) AS n FROM {table}) "
                    "WHERE n > 1)")
                con.execute("COMMIT")
                break
            except duckdb.Error:
                with contextlib.suppress(duckdb.Error):
                    con.execute("ROLLBACK")
                time.sleep(0.05 * (0.5 + random.random()))


def _pause_before_commit(pause: str) -> None:
    """Fault injection for the kill and concurrency tests: sleep ``N`` seconds, or with
    ``until:PATH`` hold the open transaction until PATH exists (at most 10 minutes), so a test that
    reads meanwhile does not depend on how fast a loaded machine runs it."""
    print(f"pausing {pause}s before commit", file=sys.stderr, flush=True)
    if pause.startswith("until:"):
        release = Path(pause.removeprefix("until:"))
        deadline = time.monotonic() + 600
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        return
    time.sleep(float(pause))


def write_unit(
    db: StoreRef,
    work: Callable[[WriteSession], T],
    *,
    source: str,
    target: str = "",
    started: datetime | None = None,
    retries: int | None = None,
    threads: int | None = None,
) -> T:
    """Run ``work`` in one transaction, again from the start when its commit conflicts with
    another writer's, saying so in one stderr line each time. ``work`` must only read and write
    through the session, so a repeat sees the store as it is now.

    Bounded by both a count (``$GITOPS_DORA_WRITE_RETRIES``, default 20) and a time
    (``$GITOPS_DORA_WRITE_RETRY_SECONDS``, default 600): a long unit on a SQLite catalog keeps
    trying while a busy webhook receiver commits small batches, until the time is up.
    ``threads``: the connection's DuckDB threads, as for :func:`connect`."""
    loc = resolve(db)
    tries = retries if retries is not None else int(os.environ.get(RETRIES_ENV) or _DEFAULT_RETRIES)
    budget = float(os.environ.get(RETRY_SECONDS_ENV) or _DEFAULT_RETRY_SECONDS)
    began = time.monotonic()
    started = started or datetime.now(UTC)
    con = _open_migrated(loc, threads)
    try:
        tracked = _track_written_files(con, loc)
        attempt = 0
        while True:
            attempt += 1
            last = attempt >= tries and time.monotonic() - began >= budget
            try:
                with _unit(con, loc, source, target, started, record_conflict=last,
                           tracked=tracked) as session:
                    result = work(session)
                return result
            except StoreConflictError:
                if last:
                    raise
                wait = min(2.0, 0.05 * (1.6 ** attempt)) * (0.5 + random.random())
                print(f"{source}: the store changed under this run (another writer); "
                      f"running it again (attempt {attempt + 1})", file=sys.stderr, flush=True)
                time.sleep(wait)
    finally:
        con.close()


def _record_failed_run(
    con: duckdb.DuckDBPyConnection, run_id: str, source: str, target: str, started: datetime,
    exc: BaseException,
) -> None:
    """Best effort, in its own small transaction: the data itself was already rolled back."""

    message = redact_url(_first_line(exc))
    with contextlib.suppress(duckdb.Error, UserError):
        con.execute("BEGIN TRANSACTION")
        try:
            merge(con, "collection_runs",
                  "SELECT ? AS id, ? AS source, ? AS target, ?::TIMESTAMPTZ AS started_at,"
                  " now() AS finished_at, 'failed' AS status, 0 AS rows_written, ? AS message",
                  _RUN_COLUMNS, [run_id, source, target, started, message[:500]])
            con.execute("COMMIT")
        except duckdb.Error:
            con.execute("ROLLBACK")


@contextmanager
def failures_recorded(db: StoreRef, *, source: str, target: str = "") -> Iterator[datetime]:
    """Around the work a run does before it opens the store (API fetches): a failure there still
    gets its ``collection_runs`` row, as a failure inside :func:`open_writer` does."""
    started = datetime.now(UTC)
    try:
        yield started
    except BaseException as exc:
        with contextlib.suppress(UserError, duckdb.Error, OSError), hold_store(db) as con:
            _record_failed_run(con, uuid.uuid4().hex, source, target, started, exc)
        raise


@dataclass(frozen=True)
class Snapshot:
    """The catalog state a reader sees: DuckLake's snapshot id and when it was committed."""

    id: int
    time: datetime


def latest_snapshot(db: StoreRef) -> Snapshot | None:
    """The newest committed snapshot, or None when there is no store yet."""
    loc = resolve(db)
    if not loc.exists():
        return None
    con = connect(loc, read_only=True)
    try:
        return reader_snapshot(con)
    finally:
        con.close()


def reader_snapshot(con: duckdb.DuckDBPyConnection) -> Snapshot:
    """The snapshot ``con`` reads (its pinned one, for a reader)."""
    row = con.execute(
        f"SELECT s.snapshot_id, s.snapshot_time FROM ducklake_snapshots('{CATALOG}') s "
        f"WHERE s.snapshot_id = (SELECT id FROM {CATALOG}.current_snapshot())"
    ).fetchall()
    if not row:  # pragma: no cover - a catalog always has snapshot 0
        raise UserError("the store has no snapshot")
    return Snapshot(int(row[0][0]), row[0][1].astimezone(UTC))


_AS_OF_ID = re.compile(r"^\d+$")


def parse_as_of(text: str | None) -> int | datetime | None:
    """``--as-of``: a snapshot id (digits) or a time (ISO 8601; a date means its midnight UTC)."""
    if text is None or not text.strip():
        return None
    text = text.strip()
    if _AS_OF_ID.match(text):
        return int(text)
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise UserError(
            f"--as-of {text!r}: give a snapshot id (digits) or a time like 2026-11-01T12:00:00Z"
        ) from None
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def open_reader(
    db: StoreRef, *, install_views: bool = True, as_of: int | datetime | None = None,
    threads: int | None = None, dimension_views: bool = True,
) -> duckdb.DuckDBPyConnection:
    """A read-only connection pinned to one snapshot: the newest, or the one ``as_of`` names;
    ``threads`` as for :func:`connect`.

    ``dimension_views=False`` leaves the shared dimension tables' names on the stored rows, as
    written, a key registered twice included: for checks of what the store holds (the tests),
    never for what users are shown. The metric views need the one-row views, so asking for them
    installs those whatever this says."""
    loc = resolve(db)
    if as_of is None:
        latest = latest_snapshot_id(loc)
        if latest is None:
            raise UserError(
                f"no database at {loc}: run `gitops-dora demo` or a `gitops-dora collect` command first"
            )
        con = connect(loc, read_only=True, snapshot=latest, threads=threads)
    elif isinstance(as_of, int):
        con = connect(loc, read_only=True, snapshot=as_of, threads=threads)
    else:
        con = connect(loc, read_only=True, snapshot_time=as_of, threads=threads)
    try:
        con.execute("BEGIN TRANSACTION")  # one catalog read for all the views
        if dimension_views or install_views:
            install_dimension_views(con, CATALOG)  # the metric views join them
        if install_views:
            from analytics.metrics.views import install_views as _install

            _install(con)  # in this transaction
        con.execute("COMMIT")
    except duckdb.CatalogException:
        if not install_views:  # a catalog without tables yet (a first migration cut short): the
            with contextlib.suppress(duckdb.Error):  # caller reads without the views, as before them
                con.execute("ROLLBACK")
            return con
        con.close()
        raise UserError(
            f"store {loc} has no data yet: run `gitops-dora demo` or a `gitops-dora collect` "
            "command first"
        ) from None
    except BaseException:
        con.close()
        raise
    return con


# Snapshots of a store that holds no row: its schema (0), its tables and the migrations
# ledger's rows inlined in the catalog (1). Anything else, or a snapshot id the catalog numbered
# otherwise, reads as "not empty": the reads then run as always.
_EMPTY_STORE = """
SELECT count(*) = 0 FROM ducklake_snapshots('{catalog}')
WHERE snapshot_id > 1
   OR NOT list_has_all(['schemas_created', 'tables_created', 'tables_altered', 'inlined_insert'],
                       map_keys(changes))
   OR len(coalesce(changes['inlined_insert'], [])) > 1
   OR snapshot_id = 1 AND changes['tables_created'] IS NULL
"""


def store_was_empty(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the unit's snapshot is the store's creation: no commit, tag, deployment,
    attribution row or warning yet, so the unit's reads of them would find nothing.

    Why: a first ``collect git`` into a new store makes three reads of empty tables (the watermark
    and commit count, the tags, the git deployments), 10-40 ms of catalog look-ups each on
    DuckLake whatever they find, all on the main thread while git walks; the snapshot list is
    one read of a few ms. The transaction sees the snapshot it began on, and so do the reads it
    replaces: a writer committing meanwhile changes neither.
    """
    # not a DuckLake store (bench/store_engines.py runs the unit on a plain DuckDB file): read
    attached = execute(con, "SELECT type FROM duckdb_databases() WHERE database_name = $1",
                       [CATALOG]).fetchone()
    if not attached or attached[0] != "ducklake":
        return False
    row = execute(con, _EMPTY_STORE.replace("{catalog}", CATALOG)).fetchone()
    return bool(row and row[0])


def tables_present(con: duckdb.DuckDBPyConnection) -> set[str]:
    rows = con.execute(
        f"SELECT table_name FROM information_schema.tables WHERE table_catalog = '{CATALOG}'"
    ).fetchall()
    return {str(r[0]) for r in rows}



def snapshot_bounds(db: StoreRef) -> tuple[Snapshot, Snapshot] | None:
    """The oldest and the newest snapshot of the store, or None when there is none: together they
    tell a store replaced at the same path from the one a long-running reader saw before (the
    dashboard caches per snapshot id, and a store built again reuses the ids). Read as cheaply as
    :func:`latest_snapshot_id`; on PostgreSQL both are the newest (one attach, no catalog scan)."""
    loc = resolve(db)
    if not loc.exists():
        return None
    rows = loc.read_catalog(
        "SELECT snapshot_id, snapshot_time FROM ducklake_snapshot WHERE snapshot_id IN "
        "((SELECT min(snapshot_id) FROM ducklake_snapshot), (SELECT max(snapshot_id) FROM ducklake_snapshot))"
        " ORDER BY snapshot_id")
    if rows is not None:
        if not rows:
            return None
        found = [Snapshot(int(str(r[0])), _catalog_time(r[1])) for r in rows]
        return found[0], found[-1]
    snap = latest_snapshot(loc)
    return (snap, snap) if snap else None


def _catalog_time(value: object) -> datetime:
    """A snapshot_time as SQLite's catalog holds it (text, UTC offset included)."""
    if isinstance(value, datetime):
        return value
    when = datetime.fromisoformat(str(value))
    return when if when.tzinfo else when.replace(tzinfo=UTC)


def latest_snapshot_id(db: StoreRef) -> int | None:
    """The newest snapshot id, cheaply: a SQLite catalog is read with Python's sqlite3 (well under a
    millisecond; the dashboard asks on every render); PostgreSQL through a read-only attach."""
    loc = resolve(db)
    if not loc.exists():
        return None
    rows = loc.read_catalog("SELECT max(snapshot_id) FROM ducklake_snapshot")
    if rows is not None:
        value = rows[0][0] if rows else None
        return int(value) if isinstance(value, int) else None
    # PostgreSQL, or SQLite could not answer: DuckLake's own error says why
    snap = latest_snapshot(loc)
    return snap.id if snap else None

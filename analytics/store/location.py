"""Where a store lives: what ``--db`` / ``GITOPS_DORA_DB`` names, turned into a DuckLake ATTACH.

Two forms, because an organisation outgrows one machine:

* a **path** (the embedded default): a SQLite catalog file at that path and the Parquet data files
  in ``<path>.files/`` beside it (or ``GITOPS_DORA_DATA_PATH``). Any number of local processes
  read and write at once;
* a **PostgreSQL URL** ``postgresql://user@host:5432/dbname`` with ``--data-path`` /
  ``GITOPS_DORA_DATA_PATH`` naming a shared folder or ``s3://bucket/prefix``, for collectors and
  dashboards on many machines.

A password never comes from the command line or the URL (it would sit in shell history, process
lists and CronJob specs): libpq takes it from ``PGPASSWORD`` or ``.pgpass``, and
``GITOPS_DORA_DB_PASSWORD`` is passed on as ``PGPASSWORD``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from analytics.errors import UserError
from analytics.paths import DEFAULT_DB

DATA_PATH_ENV = "GITOPS_DORA_DATA_PATH"
PASSWORD_ENV = "GITOPS_DORA_DB_PASSWORD"
_URL = re.compile(r"^postgres(?:ql)?:/{1,2}", re.IGNORECASE)
_SQLITE_MAGIC = b"SQLite format 3\x00"


@dataclass(frozen=True)
class StoreLocation:
    """A resolved store: the catalog (SQLite file or PostgreSQL database) and the data path."""

    kind: str  # "sqlite" | "postgres"
    catalog: str  # file path, or a libpq "key=value" string without a password
    data_path: str
    display: str  # what messages show: the path, or the URL with no password

    @property
    def path(self) -> Path | None:
        return Path(self.catalog) if self.kind == "sqlite" else None

    def exists(self) -> bool:
        """Whether a catalog is there to read (PostgreSQL: assumed; the attach says otherwise). A
        SQLite file that DuckLake never finished initialising (the first writer was killed between
        creating the file and creating the catalog's tables) holds no store yet: readers say "no
        database" instead of DuckLake's "Existing DuckLake ... does not exist", and the next writer
        initialises it."""
        if self.kind == "postgres":
            return True
        path = Path(self.catalog)
        if not path.exists():
            return False
        try:
            with open(path, "rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
        except OSError:
            return True  # unreadable here: DuckLake's own error says why
        if not head:
            return False  # created, never written
        if head != _SQLITE_MAGIC:
            return True  # not SQLite (an old DuckDB store): let the reader say what it is
        found = self.read_catalog("SELECT 1 FROM sqlite_master WHERE type = 'table' "
                                  "AND name = 'ducklake_snapshot'")
        return found is None or bool(found)  # unreadable: DuckLake's own error says why

    def read_catalog(self, sql: str) -> list[tuple[object, ...]] | None:
        """Rows of ``sql`` on a SQLite catalog read with Python's sqlite3, read-only (well under a
        millisecond, where a DuckLake statement costs 10-25 ms); None for a PostgreSQL catalog or
        when SQLite cannot answer (not initialised, another layout, a full disk)."""
        if self.kind != "sqlite":
            return None
        import contextlib
        import sqlite3

        try:
            from urllib.parse import quote

            # a path is not a URI: "?" or "#" in a folder's name would end SQLite's file name
            uri = f"file:{quote(self.catalog)}?mode=ro"
            with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=10)) as lite:
                return list(lite.execute(sql).fetchall())
        except sqlite3.Error:
            return None

    def attach_target(self) -> str:
        return f"ducklake:{self.kind}:{self.catalog}"

    def __str__(self) -> str:
        return self.display


StoreRef = str | os.PathLike[str] | StoreLocation


def is_url(text: str) -> bool:
    return bool(_URL.match(text))


def resolve(ref: StoreRef, data_path: str | None = None) -> StoreLocation:
    """The store a ``--db`` value (or an already resolved location) names."""
    if isinstance(ref, StoreLocation):
        return ref
    text = os.fspath(ref)
    explicit_data = data_path or os.environ.get(DATA_PATH_ENV) or None
    if explicit_data and explicit_data.startswith("~"):
        # an environment file is not expanded by a shell; DuckDB would read "~/x" as the home
        # folder's x while Python created a folder named "~" beside the working directory
        explicit_data = os.path.expanduser(explicit_data)
    if is_url(text):
        return _postgres(text, explicit_data)
    path = Path(text).expanduser().absolute()
    _refuse_old_format(path)
    data = explicit_data or files_beside(str(path))
    return StoreLocation("sqlite", str(path), _with_slash(data), str(path))


def files_beside(catalog: str) -> str:
    """The data folder of an embedded store whose data path is not given: ``<catalog>.files/``."""
    return catalog + ".files" + os.sep


def _with_slash(data: str) -> str:
    return data if data.endswith(("/", os.sep)) else data + "/"


def _refuse_old_format(path: Path) -> None:
    """A 0.1 single-file DuckDB store at this path would be overwritten by nothing and read as
    garbage by SQLite: say how to migrate it instead."""
    if path.is_dir():
        _refuse_folder(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError:
        return  # missing (a new store) or unreadable (the attach reports it)
    if not head or head.startswith(_SQLITE_MAGIC):
        return
    if head[8:12] == b"DUCK":
        raise UserError(
            f"{path} is a single-file store of gitops-dora 0.1; copy it into the new store with "
            f"`gitops-dora migrate-store {path} NEW` and use NEW (see docs/operations.md)"
        )
    raise UserError(f"{path} is not a gitops-dora store (neither a SQLite catalog nor a 0.1 DuckDB file)")


def _refuse_folder(path: Path) -> None:
    """``--db`` naming a folder (the demo's folder, or a store's ``.files`` data folder) is a
    common slip; SQLite's own refusal ("disk I/O error") does not say what is wrong. Names the
    catalog the user most likely meant when there is one."""
    candidates = []
    if path.name.endswith(".files"):
        candidates.append(path.with_name(path.name[: -len(".files")]))
    candidates.append(path / DEFAULT_DB)
    meant = next((c for c in candidates if c.is_file()), None)
    hint = f"; did you mean --db {meant}?" if meant is not None else ""
    raise UserError(f"{path} is a folder, not a store: --db names the catalog file (an embedded "
                    f"store keeps its data in the folder <catalog>.files/ beside it){hint}")


def _postgres(url: str, data_path: str | None) -> StoreLocation:
    normal = _URL.sub("postgresql://", url, count=1)
    parts = urlsplit(normal)
    shown = redact_url(normal)
    if parts.password is not None:
        raise UserError(
            f"--db {shown}: put the catalog password in ${PASSWORD_ENV}, $PGPASSWORD or ~/.pgpass, "
            "never in the URL"
        )
    if not data_path:
        raise UserError(
            f"--db {shown}: a PostgreSQL catalog needs --data-path or ${DATA_PATH_ENV} "
            "(a folder every machine shares, or s3://bucket/prefix)"
        )
    dbname = unquote(parts.path.lstrip("/"))
    if not dbname or not parts.hostname:
        raise UserError(f"--db {shown}: give postgresql://USER@HOST[:PORT]/DBNAME")
    fields = {"dbname": dbname, "host": parts.hostname}
    if parts.port:
        fields["port"] = str(parts.port)
    if parts.username:
        fields["user"] = unquote(parts.username)
    for key in ("sslmode", "application_name", "connect_timeout"):
        m = re.search(rf"(?:^|&){key}=([^&]+)", parts.query)
        if m:
            fields[key] = unquote(m.group(1))
    conninfo = " ".join(f"{k}={_quote_libpq(v)}" for k, v in fields.items())
    password = os.environ.get(PASSWORD_ENV)
    if password and not os.environ.get("PGPASSWORD"):
        os.environ["PGPASSWORD"] = password  # libpq reads it; never part of any string we print
    return StoreLocation("postgres", conninfo, _with_slash(data_path), shown)


def _quote_libpq(value: str) -> str:
    if value and re.fullmatch(r"[A-Za-z0-9_.\-/:]+", value):
        return value
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def redact_url(url: str) -> str:
    """``scheme://user:secret@host`` -> ``scheme://user:***@host``; the LAST ``@`` before the host
    ends the credentials, so a password containing ``@`` is hidden whole. The rules (query-string
    tokens, headers, token shapes too) live in :mod:`analytics.redaction`."""
    from analytics.redaction import redact

    return redact(url)

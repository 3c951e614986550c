"""A real, throw-away PostgreSQL server for tests (issue #11).

The server is Debian's ``postgresql`` package run by hand: ``initdb`` into a temporary folder, then
``pg_ctl -w start`` listening on ``127.0.0.1`` only, on a free port, with its unix socket in the same
temporary folder. ``initdb`` refuses to run as root, so when the tests run as root (as CI does) every
server command runs as the ``postgres`` system user that the Debian package creates
(``runuser -u postgres -- ...``) and the folder is chowned to that user; otherwise the current user
runs it. At the end ``pg_ctl -m immediate stop`` and the folder is removed, also when start failed.

Authentication: the unix socket (in the 0700 temporary folder) trusts the bootstrap superuser
``postgres``, which only this module uses for administration (``CREATE DATABASE``). Over TCP every
login needs a password (``scram-sha-256`` for 127.0.0.1 in pg_hba.conf). Tests log in as the
role ``dora`` with a random password that is never put in a URL.

Example::

    con = duckdb.connect(...); con.execute("LOAD '.../ducklake.duckdb_extension'")  # + postgres_scanner
    with PgServer() as pg:                      # raises PgServerError(reason) if it cannot start
        url = pg.new_database("lake_a")         # postgresql://dora@127.0.0.1:PORT/lake_a
        os.environ["PGPASSWORD"] = pg.password   # libpq reads it at connect time
        con.execute(f"ATTACH 'ducklake:postgres:{pg.libpq_dsn('lake_a')}' AS lake (DATA_PATH '/tmp/d/')")

What DuckLake's PostgreSQL catalog accepts (checked by tests/test_pg_server.py with duckdb 1.5.5 and
the ``duckdb-extension-ducklake`` / ``duckdb-extension-postgres-scanner`` wheels):

* Both extensions must be loaded first: ``LOAD '<site-packages>/duckdb_extension_ducklake/extensions/
  v1.5.5/ducklake.duckdb_extension'`` and the same for ``postgres_scanner``; with autoloading off,
  DuckLake otherwise looks for postgres_scanner under ``~/.duckdb/extensions`` and ATTACH fails.
* ``ATTACH 'ducklake:postgres:dbname=DB host=127.0.0.1 port=PORT user=USER' AS lake
  (DATA_PATH '<dir>/')`` -- after ``ducklake:postgres:`` comes a libpq *keyword/value* connection
  string (space separated ``key=value``; quote a value containing spaces as ``key='a b'``).
  The libpq URI form ``ducklake:postgres:postgresql://USER@127.0.0.1:PORT/DB`` is accepted too.
* The password: the postgres extension links libpq, and libpq reads the ``PGPASSWORD`` environment
  variable of the process when the string has no ``password=``, so ``os.environ["PGPASSWORD"] = pw``
  before ``ATTACH`` works (after ``duckdb.connect()`` is fine: libpq reads it when ATTACH connects).
  A password file works too: ``PGPASSFILE=<file>``, or ``$HOME/.pgpass`` when PGPASSFILE is unset,
  with a line ``127.0.0.1:PORT:DB:USER:PASSWORD`` (``*`` wildcards allowed) and mode 0600: libpq
  ignores a file readable by group or others (it warns on stderr and ATTACH then fails with
  "fe_sendauth: no password supplied", as it does with no password at all).
* Also seen working, not used by the tests: ``password=...`` inside the string (but then the secret
  is in the ATTACH text, and DuckDB echoes that text in connection errors), and a DuckDB secret:
  ``CREATE SECRET pg (TYPE postgres, HOST '127.0.0.1', PORT p, USER 'dora', PASSWORD '...',
  DATABASE 'db')`` then ``ATTACH 'ducklake:postgres:' AS lake (DATA_PATH '...', META_SECRET pg)``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

SERVER_USER = "postgres"  # the OS user that runs the server when we are root (Debian's package creates it)
SUPERUSER = "postgres"  # bootstrap superuser inside the cluster; local socket only
ROLE = "dora"  # the login role the tests use over TCP, with a password
DATABASE = "dora"
HOST = "127.0.0.1"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


class PgServerError(RuntimeError):
    """The PostgreSQL server could not be found, initialised or started; ``str()`` says why."""


def find_bindir() -> Path:
    """The folder with initdb, pg_ctl, postgres and psql.

    ``$PG_BINDIR`` if set; else the newest ``/usr/lib/postgresql/<major>/bin`` (Debian's layout);
    else wherever ``pg_ctl`` on PATH really lives (symlinks resolved); else ``pg_config --bindir``.
    """
    needed = ("initdb", "pg_ctl", "postgres", "psql")

    def complete(d: Path) -> bool:
        return all(os.access(d / n, os.X_OK) for n in needed)

    candidates: list[Path] = []
    if os.environ.get("PG_BINDIR"):
        candidates.append(Path(os.environ["PG_BINDIR"]))
    debian = Path("/usr/lib/postgresql")
    if debian.is_dir():
        majors = sorted(
            (p for p in debian.iterdir() if p.name.replace(".", "").isdigit()),
            key=lambda p: tuple(int(x) for x in p.name.split(".")),
            reverse=True,
        )
        candidates += [p / "bin" for p in majors]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    pg_config = shutil.which("pg_config")
    if pg_config:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                candidates.append(Path(out.stdout.strip()))
    for d in candidates:
        if complete(d):
            return d
    looked = ", ".join(str(d) for d in candidates) or "nothing found"
    raise PgServerError(
        f"PostgreSQL server binaries ({', '.join(needed)}) not found (looked in: {looked}); "
        "install Debian's 'postgresql' package"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return int(s.getsockname()[1])


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return "(no server log)"
    return "\n".join(text.splitlines()[-lines:]) or "(server log empty)"


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


class PgServer:
    """One PostgreSQL cluster in a temporary folder. ``start()``/``stop()`` or use as a context manager.

    Attributes once started: ``host`` (127.0.0.1), ``port``, ``user`` (``dora``), ``password``,
    ``dbname`` (``dora``), ``url`` (``postgresql://dora@127.0.0.1:PORT/dora``, no password),
    ``bindir``, ``root`` (the temporary folder), ``start_seconds`` (initdb + start + setup).
    """

    def __init__(self, *, bindir: Path | None = None, max_connections: int = 200) -> None:
        self._bindir = bindir
        self.max_connections = max_connections
        self.host = HOST
        self.port = 0
        self.user = ROLE
        self.dbname = DATABASE
        self.password = secrets.token_urlsafe(18)
        self.root: Path | None = None
        self.start_seconds = 0.0
        self._running = False
        self._as_postgres = os.geteuid() == 0

    # -- paths --------------------------------------------------------------------------------------
    @property
    def bindir(self) -> Path:
        if self._bindir is None:
            self._bindir = find_bindir()
        return self._bindir

    @property
    def datadir(self) -> Path:
        assert self.root is not None
        return self.root / "data"

    @property
    def sockdir(self) -> Path:
        assert self.root is not None
        return self.root / "sock"

    @property
    def logfile(self) -> Path:
        assert self.root is not None
        return self.root / "server.log"

    # -- connection strings -------------------------------------------------------------------------
    @property
    def url(self) -> str:
        return self.url_for(self.dbname)

    def url_for(self, dbname: str) -> str:
        """``postgresql://dora@127.0.0.1:PORT/<dbname>``: no password (give it via PGPASSWORD)."""
        return f"postgresql://{self.user}@{self.host}:{self.port}/{dbname}"

    def libpq_dsn(self, dbname: str | None = None) -> str:
        """Keyword/value libpq string without the password, the form ``ducklake:postgres:`` takes."""
        return f"dbname={dbname or self.dbname} host={self.host} port={self.port} user={self.user}"

    def dsn_with_password(self, dbname: str | None = None) -> str:
        """Keyword/value libpq string *with* the password, for ``psql`` checks only (never log it)."""
        return f"{self.libpq_dsn(dbname)} password={self.password}"

    def env(self) -> dict[str, str]:
        """A copy of os.environ with PGPASSWORD set, for subprocesses that connect as ``dora``."""
        return {**os.environ, "PGPASSWORD": self.password}

    # -- running commands ---------------------------------------------------------------------------
    def _as_server_user(self, argv: Sequence[str]) -> list[str]:
        if not self._as_postgres:
            return list(argv)
        runuser = shutil.which("runuser") or "/usr/sbin/runuser"
        return [runuser, "-u", SERVER_USER, "--", *argv]

    def _run(self, argv: Sequence[str], what: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env.update(LC_ALL="C", LANG="C")
        try:
            proc = subprocess.run(
                self._as_server_user(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                cwd=self.root,
                env=env,
                stdin=subprocess.DEVNULL,
            )
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PgServerError(f"{what} failed: {exc}{self._log_tail()}") from exc
        if proc.returncode != 0:
            output = (proc.stderr or proc.stdout).strip() or "(no output)"
            raise PgServerError(f"{what} failed (exit {proc.returncode}): {output}{self._log_tail()}")
        return proc

    def _log_tail(self) -> str:
        if self.root is None or not self.logfile.exists():
            return ""
        return f"\nserver log (last lines):\n{_tail(self.logfile)}"

    def admin_sql(self, sql: str, dbname: str = "postgres") -> str:
        """Run SQL as the superuser over the unix socket (trust auth); returns psql's unaligned output."""
        argv = [
            str(self.bindir / "psql"),
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-h", str(self.sockdir), "-p", str(self.port), "-U", SUPERUSER, "-d", dbname,
            "-c", sql,
        ]  # fmt: skip
        return self._run(argv, f"psql as {SUPERUSER}").stdout

    def psql(self, sql: str, dbname: str | None = None) -> str:
        """Run SQL as ``dora`` over TCP with the password (PGPASSWORD); unaligned, tuples only."""
        argv = [
            str(self.bindir / "psql"),
            "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
            "-d", self.libpq_dsn(dbname), "-c", sql,
        ]  # fmt: skip
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=60, env=self.env(), stdin=subprocess.DEVNULL
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout

    # -- lifecycle ----------------------------------------------------------------------------------
    def start(self) -> PgServer:
        began = time.perf_counter()
        try:
            self._make_root()
            self._initdb()
            self._start_server()
            role, secret = _quote_ident(self.user), _quote_literal(self.password)
            self.admin_sql(f"CREATE ROLE {role} LOGIN CREATEDB PASSWORD {secret}")
            self.new_database(self.dbname)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.perf_counter() - began
        return self

    def _make_root(self) -> None:
        base = Path(tempfile.gettempdir())
        if self._as_postgres and (base.stat().st_mode & 0o001) == 0:
            base = Path("/tmp")  # the postgres user must be able to traverse to the folder
        self.root = Path(tempfile.mkdtemp(prefix="gitops-dora-pg-", dir=base))
        self.sockdir.mkdir()
        if self._as_postgres:
            try:
                shutil.chown(self.root, SERVER_USER, SERVER_USER)
                shutil.chown(self.sockdir, SERVER_USER, SERVER_USER)
            except (LookupError, OSError) as exc:
                raise PgServerError(
                    f"running as root, but cannot hand {self.root} to the '{SERVER_USER}' system user "
                    f"({exc}); Debian's 'postgresql' package creates that user"
                ) from exc
        os.chmod(self.root, 0o700)

    def _initdb(self) -> None:
        self._run(
            [
                str(self.bindir / "initdb"),
                "-D", str(self.datadir),
                "-U", SUPERUSER,
                "-E", "UTF8", "--no-locale",
                "--auth-local=trust", "--auth-host=scram-sha-256",
                "--no-sync",
            ],
            "initdb",
        )  # fmt: skip
        # Explicit pg_hba: superuser via the private socket only, passwords over TCP on 127.0.0.1.
        hba = [
            "# written by tests/pg_server.py",
            "local all all trust",
            "host all all 127.0.0.1/32 scram-sha-256",
        ]
        # root may write into the postgres-owned folder; the file keeps its owner
        (self.datadir / "pg_hba.conf").write_text("\n".join(hba) + "\n")

    def _start_server(self) -> None:
        last: PgServerError | None = None
        for _ in range(3):  # the free port may be taken between probe and bind: retry with a new one
            self.port = free_port()
            opts = " ".join(
                [
                    f"-p {self.port}",
                    f"-k {self.sockdir}",
                    f"-h {self.host}",
                    "-c fsync=off",
                    "-c synchronous_commit=off",
                    "-c full_page_writes=off",
                    f"-c max_connections={self.max_connections}",
                    "-c shared_buffers=32MB",
                    "-c max_wal_size=256MB",
                ]
            )
            try:
                self._run(
                    [
                        str(self.bindir / "pg_ctl"),
                        "-D", str(self.datadir), "-l", str(self.logfile),
                        "-w", "-t", "60", "-o", opts, "start",
                    ],
                    "pg_ctl start",
                )  # fmt: skip
                self._running = True
                return
            except PgServerError as exc:
                last = exc
                if "could not bind" not in _tail(self.logfile, 50) and "in use" not in str(exc):
                    raise
        assert last is not None
        raise last

    def stop(self) -> None:
        """Stop the server (``pg_ctl -m immediate``) and remove the folder; safe to call twice."""
        if self.root is None:
            return
        if self.datadir.joinpath("postmaster.pid").exists() or self._running:
            with contextlib.suppress(PgServerError):
                self._run(
                    [str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "-w", "stop"],
                    "pg_ctl stop",
                    timeout=60,
                )
        self._running = False
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None

    def __enter__(self) -> PgServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- databases ----------------------------------------------------------------------------------
    def new_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` owned by ``dora`` (from template0, empty); returns its URL."""
        if not _NAME.match(name):
            raise ValueError(f"database name {name!r}: use lower-case letters, digits and _")
        owner = _quote_ident(self.user)
        self.admin_sql(f"CREATE DATABASE {_quote_ident(name)} OWNER {owner} TEMPLATE template0")
        return self.url_for(name)

    def drop_database(self, name: str) -> None:
        self.admin_sql(f"DROP DATABASE IF EXISTS {_quote_ident(name)} WITH (FORCE)")


@dataclass(frozen=True)
class PgDatabase:
    """One fresh, empty database on a PgServer, owned by ``user``; what the ``pg_database`` fixture gives.

    ``url`` has no password; give ``password`` through PGPASSWORD (the fixture sets it) or a PGPASSFILE.
    """

    server: PgServer
    name: str

    @property
    def url(self) -> str:
        return self.server.url_for(self.name)

    @property
    def password(self) -> str:
        return self.server.password

    @property
    def user(self) -> str:
        return self.server.user

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def dsn(self) -> str:
        """``dbname=NAME host=127.0.0.1 port=PORT user=dora`` (libpq keyword/value, no password)."""
        return self.server.libpq_dsn(self.name)

    @property
    def ducklake_uri(self) -> str:
        """``ducklake:postgres:dbname=NAME host=127.0.0.1 port=PORT user=dora``: the ATTACH path."""
        return f"ducklake:postgres:{self.dsn}"

    def attach_sql(self, alias: str, data_path: str | Path) -> str:
        """``ATTACH 'ducklake:postgres:...' AS alias (DATA_PATH 'data_path/')`` (password from the env)."""
        data = str(data_path).rstrip("/") + "/"
        return f"ATTACH {_quote_literal(self.ducklake_uri)} AS {alias} (DATA_PATH {_quote_literal(data)})"

    def psql(self, sql: str) -> str:
        return self.server.psql(sql, self.name)


@contextlib.contextmanager
def pg_server(*, bindir: Path | None = None, max_connections: int = 200) -> Iterator[PgServer]:
    """``with pg_server() as pg:`` -- a started PgServer, stopped and removed on exit."""
    with PgServer(bindir=bindir, max_connections=max_connections) as server:
        yield server

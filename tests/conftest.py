"""Shared fixtures. Keep this small: helpers live in their own modules (e.g. tests/gitrepo.py)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitrepo import GitRepo


@pytest.fixture
def make_repo(tmp_path: Path) -> Callable[..., GitRepo]:
    """``make_repo("app")`` -> an empty GitRepo on branch main under tmp_path (``bare=True`` too)."""

    def _make(name: str = "app", *, branch: str = "main", bare: bool = False) -> GitRepo:
        return GitRepo.init(tmp_path / name, branch=branch, bare=bare)

    return _make


# --- PostgreSQL server (issue #11) ----------------------------------------------------------------
# One real PostgreSQL server per session (tests/pg_server.py: initdb + pg_ctl in a temporary folder,
# 127.0.0.1 on a free port, password auth over TCP). Tests that use it skip, with the reason, only
# where the server cannot start; GITOPS_DORA_REQUIRE_POSTGRES=1 turns that skip into a failure.
import contextlib  # noqa: E402
import os  # noqa: E402
from collections.abc import Iterator  # noqa: E402

from tests import pg_server as _pgs  # noqa: E402


@pytest.fixture(scope="session")
def pg_server() -> Iterator[_pgs.PgServer]:
    """The session's started PgServer: ``.url`` (no password), ``.password``, ``.new_database(name)``."""
    try:
        server = _pgs.PgServer().start()
    except _pgs.PgServerError as exc:
        reason = f"PostgreSQL server cannot start: {exc}"
        if os.environ.get("GITOPS_DORA_REQUIRE_POSTGRES") == "1":
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    try:
        yield server
    finally:
        server.stop()


_pg_database_count = iter(range(1, 1_000_000))


@pytest.fixture
def pg_database(pg_server: _pgs.PgServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[_pgs.PgDatabase]:
    """A fresh, empty database on the session server, with PGPASSWORD set in os.environ for the test.

    ``.url`` (postgresql://dora@127.0.0.1:PORT/NAME), ``.password``, ``.dsn`` (libpq key=value, no
    password), ``.ducklake_uri``, ``.attach_sql(alias, data_path)``, ``.psql(sql)``. Dropped afterwards.
    """
    name = f"test_{next(_pg_database_count)}"
    pg_server.new_database(name)
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    try:
        yield _pgs.PgDatabase(pg_server, name)
    finally:
        with contextlib.suppress(_pgs.PgServerError):
            pg_server.drop_database(name)


# --- the demo store (issue #16) -------------------------------------------------------------------
from tests.store_fixture import DemoStore, build_demo_once  # noqa: E402


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory: pytest.TempPathFactory) -> DemoStore:
    """The run's one `gitops-dora demo` store (``.db``, ``.workdir``), shared by every xdist worker.
    READ ONLY: a test that writes builds its own store."""
    base = tmp_path_factory.getbasetemp()
    shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base   # all workers see it
    return build_demo_once(shared / "shared-demo")


# --- one dashboard on the demo store for the browser modules (issue #16) ----------------------------
from tests import dashboard_server as _dashboard_server  # noqa: E402


@pytest.fixture(scope="session")
def demo_dashboard(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> Iterator[
        _dashboard_server.Dashboard]:
    """A `gitops-dora dashboard` on the shared demo store, started once per worker for the browser
    modules that only read it (tests/dashboard_server.py): ``.url``, ``.log``."""
    with _dashboard_server.dashboard(demo_store.db, tmp_path_factory.mktemp("demo-dashboard")) as server:
        yield server


# --- one DuckDB thread for in-process store connections (issue #16) --------------------------------
@pytest.fixture(scope="module")
def one_duckdb_thread() -> Iterator[None]:
    """Store connections opened in this process run DuckDB with one thread, for a module that opens
    hundreds of them on tiny stores (hypothesis examples): there a second thread only doubles the
    CPU of DuckLake's catalog queries (1.5 against 3 CPU-s per property example, measured). Results
    do not depend on the thread count; console commands run in a subprocess keep DuckDB's default."""
    from analytics.store import connection

    before = connection._CONFIG.get("threads")
    connection._CONFIG["threads"] = 1
    try:
        yield
    finally:
        if before is None:
            connection._CONFIG.pop("threads", None)
        else:
            connection._CONFIG["threads"] = before


# --- which worker runs which module (issue #16) ---------------------------------------------------
@pytest.hookimpl(optionalhook=True)   # an xdist hook: without xdist (-p no:xdist) it is not called
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    """``--dist loadfile`` with the modules handed out costliest first (tests/xdist_order.py), so
    both workers end together; any other ``--dist`` keeps xdist's own scheduler."""
    if config.getvalue("dist") != "loadfile":
        return None
    from tests.xdist_order import CostOrderedLoadFile

    return CostOrderedLoadFile(config, log)


# --- the browser modules' shared Chromium (issue #16) ---------------------------------------------
@pytest.hookimpl(trylast=True)  # after pytest's own teardown of the test's fixtures (module ones too)
def pytest_runtest_teardown(item: pytest.Item, nextitem: pytest.Item | None) -> None:
    """Stop the process's Chromium once the browser modules are done (tests/browser_session.py):
    its driver's event loop would otherwise stay running in this thread for every later module.
    At the end of a module, close the store readers tests/store_query.py kept for it."""
    from tests import browser_session, store_query

    browser_session.close_unless_next_uses_it(nextitem)
    if nextitem is None or nextitem.path != item.path:
        store_query.close_kept_readers()  # a module's readers are not kept for the next module

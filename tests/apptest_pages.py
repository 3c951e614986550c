"""Opening one dashboard page in Streamlit's AppTest, shared by the dashboard test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.runtime.scriptrunner.script_cache import ScriptCache
from streamlit.testing.v1 import AppTest
from streamlit.testing.v1 import app_test as _app_test
from streamlit.testing.v1 import local_script_runner as _local_script_runner

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
# page name -> its st.Page url_path (the Overview is served at "home")
PAGE_FILES = {"overview": "home", "teams": "teams", "throughput": "throughput", "stability": "stability",
              "deployments": "deployments", "maturity": "maturity", "data_health": "data-health",
              "definitions": "definitions"}


_COMPONENTS: list[Any] = []

# --- AppTest's run, as a server runs a script (issue #16) -------------------------------------------
# Streamlit 1.67's AppTest differs from `streamlit run` in two costs that have nothing to do with
# the pages, replaced here for every AppTest of the process (this module is imported by every
# dashboard test module). Both replacements are checked against the names they replace, so a
# Streamlit that renames them fails here instead of silently running unpatched.
_SCRIPTS = ScriptCache()


def _one_script_cache() -> ScriptCache:
    """The process's one cache of compiled page scripts. A server keeps one ``ScriptCache`` per
    runtime (a page is read, rewritten for "magic" and compiled once); AppTest made a new one for
    every run, i.e. compiled app.py and the page again on each (0.01-0.04 CPU-s a run, mostly
    magic's AST rewriting). The dashboard's files do not change during a test run; a test that
    wants a fresh compile can call ``_SCRIPTS.clear()``."""
    return _SCRIPTS


def _wait_for_the_script_thread(runner: Any, timeout: float = 3) -> None:
    """Wait for the run as ``require_widgets_deltas`` does, by joining the script thread instead of
    polling its events every millisecond. The poll woke the test's main thread 1,000 times a second
    for the whole run, each time taking the GIL from the script thread and scanning every event the
    run had sent (36,000 context switches and ~1 CPU-s in test_dashboard_apptest; on a loaded
    machine each forced GIL hand-over also waits for the main thread to get a core). The script
    thread sends SHUTDOWN as it returns, so "joined" means what "SHUTDOWN seen" meant; a run that
    does not finish within ``timeout`` is stopped and fails with the same message."""
    thread = runner._script_thread
    if thread is not None:
        thread.join(timeout)
    if runner.script_stopped():
        return
    runner.request_stop()
    runner.join()
    raise RuntimeError(f"AppTest script run timed out after {timeout}(s)")


if not getattr(_local_script_runner, "_replaced_for_gitops_dora", False):   # once per process
    assert _app_test.ScriptCache is ScriptCache and _local_script_runner.ScriptCache is ScriptCache
    assert _local_script_runner.require_widgets_deltas.__name__ == "require_widgets_deltas"
    _app_test.ScriptCache = _one_script_cache                                    # type: ignore[misc,assignment]
    _local_script_runner.ScriptCache = _one_script_cache                         # type: ignore[misc,assignment]
    _local_script_runner.require_widgets_deltas = _wait_for_the_script_thread
    _local_script_runner._replaced_for_gitops_dora = True                        # type: ignore[attr-defined]


def component_manager() -> Any:
    """The registry of the installed packages' Streamlit components, discovered once per process as
    ``streamlit run`` does at server start-up. Every new AppTest discovers its own on its first run
    (reading the metadata of every installed distribution: 0.1 CPU-s, some 200 AppTests in the
    suite); the packages do not change during a test run, and the dashboard declares no component."""
    from streamlit.components.v2.component_manager import BidiComponentManager

    if not _COMPONENTS:
        manager = BidiComponentManager()
        manager.discover_and_register_components(start_file_watching=False)
        _COMPONENTS.append(manager)
    return _COMPONENTS[0]


def new_app(timeout: float = 180) -> AppTest:
    """``AppTest.from_file`` on the dashboard with the process's one component registry (every
    AppTest of the dashboard must be made here: one made directly discovers the components again on
    its first run, 0.3-0.6 CPU-s)."""
    at = AppTest.from_file(APP, default_timeout=timeout)
    at._bidi_component_manager = component_manager()
    return at


def start_page(page: str, *, timeout: float = 180, **params: str) -> AppTest:
    """Run the app once with ``params`` as the URL's query, asking for ``page`` on the first run, as
    a browser opening ``/<url_path>?<params>`` does. (Running the Overview first and then switching
    renders the Overview for nothing: the page's own run is the same, element for element, and it
    was 40-60% of a page's CPU.) Fails when the app fell back to another page."""
    from streamlit.util import calc_hash

    at = new_app(timeout)
    for key, value in params.items():
        at.query_params[key] = value
    wanted = calc_hash(PAGE_FILES.get(page, page))   # st.Page hashes the url_path
    if page != "overview":
        at._page_hash = wanted
    at.run()
    assert at._finished_page_script_hash == wanted, f"the app did not open {page}"
    return at


def open_page(page: str, **params: str) -> AppTest:
    """``start_page``, failing on any exception or error element."""
    at = start_page(page, timeout=180, **params)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at

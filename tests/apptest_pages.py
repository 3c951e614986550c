"""Opening one dashboard page in Streamlit's AppTest, shared by the dashboard test modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
# page name -> its st.Page url_path (the Overview is served at "home")
PAGE_FILES = {"overview": "home", "teams": "teams", "throughput": "throughput", "stability": "stability",
              "deployments": "deployments", "maturity": "maturity", "data_health": "data-health",
              "definitions": "definitions"}


_COMPONENTS: list[Any] = []


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


def start_page(page: str, *, timeout: float = 180, **params: str) -> AppTest:
    """Run the app once with ``params`` as the URL's query, asking for ``page`` on the first run, as
    a browser opening ``/<url_path>?<params>`` does. (Running the Overview first and then switching
    renders the Overview for nothing: the page's own run is the same, element for element, and it
    was 40-60% of a page's CPU.) Fails when the app fell back to another page."""
    from streamlit.util import calc_hash

    at = AppTest.from_file(APP, default_timeout=timeout)
    at._bidi_component_manager = component_manager()
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

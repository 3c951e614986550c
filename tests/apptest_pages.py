"""Opening one dashboard page in Streamlit's AppTest, shared by the dashboard test modules."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
# page name -> its st.Page url_path (the Overview is served at "home")
PAGE_FILES = {"overview": "home", "teams": "teams", "throughput": "throughput", "stability": "stability",
              "deployments": "deployments", "maturity": "maturity", "data_health": "data-health",
              "definitions": "definitions"}


def start_page(page: str, *, timeout: float = 180, **params: str) -> AppTest:
    """Run the app once with ``params`` as the URL's query, asking for ``page`` on the first run, as
    a browser opening ``/<url_path>?<params>`` does. (Running the Overview first and then switching
    renders the Overview for nothing: the page's own run is the same, element for element, and it
    was 40-60% of a page's CPU.) Fails when the app fell back to another page."""
    from streamlit.util import calc_hash

    at = AppTest.from_file(APP, default_timeout=timeout)
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
    at = start_page(page, **params)
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at

"""Opening one dashboard page in Streamlit's AppTest, shared by the dashboard test modules."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
# page name -> its st.Page url_path (the Overview is served at "home")
PAGE_FILES = {"overview": "home", "teams": "teams", "throughput": "throughput", "stability": "stability",
              "deployments": "deployments", "maturity": "maturity", "data_health": "data-health",
              "definitions": "definitions"}


def open_page(page: str, **params: str) -> AppTest:
    """Run the app with ``params`` as the URL's query, switch to ``page`` and fail on any exception
    or error element."""
    from streamlit.util import calc_hash

    at = AppTest.from_file(APP, default_timeout=180)
    for key, value in params.items():
        at.query_params[key] = value
    at.run()
    if page != "overview":
        at.switch_page(f"screens/{page}.py")
        at._page_hash = calc_hash(PAGE_FILES.get(page, page))   # st.Page hashes the url_path
        at.run()
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    return at

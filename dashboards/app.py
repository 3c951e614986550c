"""gitops-dora dashboard entry point: filters in the sidebar, one page per view (``st.navigation``).

Run with ``gitops-dora dashboard``; the database comes from ``GITOPS_DORA_DB``.
"""

from __future__ import annotations

import logging
import os

import streamlit as st

from dashboards.source import db_path, pinned_render, show_snapshot
from dashboards.state import sidebar_filters
from dashboards.warmup import WARMUP_ENV, warm_default_view

st.set_page_config(page_title="gitops-dora", page_icon=":material/rocket_launch:", layout="wide")

PAGES = [
    st.Page("screens/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
            default=True),
    st.Page("screens/throughput.py", title="Throughput", icon=":material/speed:", url_path="throughput"),
    st.Page("screens/stability.py", title="Stability", icon=":material/health_and_safety:",
            url_path="stability"),
    st.Page("screens/deployments.py", title="Deployments", icon=":material/deployed_code:",
            url_path="deployments"),
    st.Page("screens/maturity.py", title="Maturity", icon=":material/stairs:", url_path="maturity"),
    st.Page("screens/data_health.py", title="Data health", icon=":material/monitor_heart:",
            url_path="data-health"),
]

navigation = st.navigation(PAGES)
if os.environ.get(WARMUP_ENV) == "1":
    warm_default_view(db_path())
try:
    with pinned_render(db_path()) as stamp:
        if stamp:
            show_snapshot(db_path())
        sidebar_filters()
        navigation.run()
except Exception as exc:  # noqa: BLE001 - a page shows one line, never a traceback
    logging.getLogger("gitops_dora.dashboard").exception("page failed")
    first = str(exc).splitlines()[0] if str(exc) else ""
    st.error(f"Cannot show this page: {type(exc).__name__}: {first}", icon=":material/error:")
    st.caption("The full traceback is in the dashboard's log (stderr of `gitops-dora dashboard`).")

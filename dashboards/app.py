"""gitops-dora dashboard entry point: filters in the sidebar, one page per view (``st.navigation``).

Run with ``gitops-dora dashboard``; the database comes from ``GITOPS_DORA_DB``.
"""

from __future__ import annotations

import streamlit as st

from dashboards.state import sidebar_filters

st.set_page_config(page_title="gitops-dora", page_icon=":material/rocket_launch:", layout="wide")

PAGES = [
    st.Page("pages/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
            default=True),
    st.Page("pages/throughput.py", title="Throughput", icon=":material/speed:", url_path="throughput"),
    st.Page("pages/stability.py", title="Stability", icon=":material/health_and_safety:",
            url_path="stability"),
    st.Page("pages/deployments.py", title="Deployments", icon=":material/deployed_code:",
            url_path="deployments"),
    st.Page("pages/maturity.py", title="Maturity", icon=":material/stairs:", url_path="maturity"),
    st.Page("pages/data_health.py", title="Data health", icon=":material/monitor_heart:",
            url_path="data-health"),
]

navigation = st.navigation(PAGES)
sidebar_filters()
navigation.run()

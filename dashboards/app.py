"""gitops-dora dashboard entry point: filters in the sidebar, one page per view (``st.navigation``).

Run with ``gitops-dora dashboard``; the database comes from ``GITOPS_DORA_DB``. With login switched
on (``dashboard.login`` or ``GITOPS_DORA_REQUIRE_LOGIN=1``) nothing but the sign-in shows until
``st.user`` is signed in (dashboards/auth.py).
"""

from __future__ import annotations

import logging
import os

import streamlit as st

from analytics.config import load_config
from analytics.errors import ConfigError
from dashboards.auth import gate, login_from_env, login_required
from dashboards.safe_text import md
from dashboards.source import config_path, db_path, pinned_render, show_snapshot
from dashboards.state import sidebar_filters
from dashboards.warmup import WARMUP_ENV, warm_default_view

st.set_page_config(page_title="gitops-dora", page_icon=":material/rocket_launch:", layout="wide")

PAGES = [
    # served at "/"; its url_path only names it (the hidden page below serves /overview)
    st.Page("screens/overview.py", title="Overview", icon=":material/dashboard:", url_path="home",
            default=True),
    st.Page("screens/teams.py", title="Teams", icon=":material/groups:", url_path="teams"),
    st.Page("screens/throughput.py", title="Throughput", icon=":material/speed:", url_path="throughput"),
    st.Page("screens/stability.py", title="Stability", icon=":material/health_and_safety:",
            url_path="stability"),
    st.Page("screens/deployments.py", title="Deployments", icon=":material/deployed_code:",
            url_path="deployments"),
    st.Page("screens/maturity.py", title="Maturity", icon=":material/stairs:", url_path="maturity"),
    st.Page("screens/data_health.py", title="Data health", icon=":material/monitor_heart:",
            url_path="data-health"),
    st.Page("screens/definitions.py", title="Definitions", icon=":material/menu_book:",
            url_path="definitions"),
    st.Page("screens/overview.py", title="Overview", icon=":material/dashboard:", url_path="overview",
            visibility="hidden"),
]

allowed = False
try:
    allowed = gate(login_from_env() or login_required(load_config(config_path()).dashboard.login))
except ConfigError as exc:  # whether login is required is unknown: show nothing
    st.error(f"Cannot read the config: {md(exc)}", icon=":material/error:")
navigation = st.navigation(PAGES, position="sidebar" if allowed else "hidden")
if not allowed:
    st.stop()
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
    st.error(f"Cannot show this page: {type(exc).__name__}: {md(first)}", icon=":material/error:")
    st.caption("The full traceback is in the dashboard's log (stderr of `gitops-dora dashboard`).")

"""The sidebar filters, kept in widget state and mirrored into the URL on every run."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import streamlit as st

from analytics.paths import data_dir
from dashboards.filters import Filters, parse_params
from dashboards.queries import dimensions
from dashboards.safe_text import md, md_code
from dashboards.source import db_path

ALL = "(all)"
LATEST = "latest"
_KEYS = {"window": "f_window", "team": "f_team", "service": "f_service", "environment": "f_env",
         "benchmark": "f_benchmark"}
_SEEN_URL = "_f_seen_url"
# a page's own parameters, kept in the link: Deployments' drilled-down deployment, the Definitions
# section a "How this is computed" link opened, the Teams page's grouping
PAGE_PARAMS = ("deployment", "doc", "section", "by")


def benchmark_years() -> list[int]:
    """DORA report years with a shipped benchmark table (data/benchmarks/YYYY.yaml)."""
    folder = data_dir() / "benchmarks"
    years = [int(p.stem) for p in folder.glob("*.yaml") if p.stem.isdigit()] if folder.is_dir() else []
    return sorted(years, reverse=True)


def _load_from_url(dims: dict[str, object], years: list[int]) -> list[str]:
    raw = {k: st.query_params.get_all(k) for k in st.query_params}
    parsed = parse_params(
        raw,
        teams=dims["teams"],  # type: ignore[arg-type]
        services=dims["services"],  # type: ignore[arg-type]
        environments=dims["environments"],  # type: ignore[arg-type]
        benchmark_years=years,
        latest=dims["latest"],  # type: ignore[arg-type]
        today=datetime.now(UTC).date(),
    )
    f = parsed.filters
    st.session_state[_KEYS["window"]] = (f.since, f.until - timedelta(days=1))
    st.session_state[_KEYS["team"]] = f.team or ALL
    st.session_state[_KEYS["service"]] = f.service or ALL
    st.session_state[_KEYS["environment"]] = f.environment or ALL
    st.session_state[_KEYS["benchmark"]] = str(f.benchmark) if f.benchmark else LATEST
    return parsed.problems


def sidebar_filters() -> Filters:
    """Render the filters; the first run of a session (or a pasted link) loads them from the URL."""
    db = db_path()
    dims = dimensions(db)
    years = benchmark_years()
    url_now = {k: v for k, v in st.query_params.to_dict().items() if k not in PAGE_PARAMS}
    problems: list[str] = []
    # A new session, or a link pasted into this one, loads the filters from the URL. Moving to
    # another page drops the query string; the session's filters then stay and are written back.
    first_run = _KEYS["window"] not in st.session_state
    if first_run or (url_now and st.session_state.get(_SEEN_URL) != url_now):
        problems = _load_from_url(dims, years)
    side = st.sidebar
    side.caption(f"Database: {md_code(db)}")
    window = side.date_input("Deployment window (UTC)", key=_KEYS["window"], format="YYYY-MM-DD")
    teams = [ALL, *dims["teams"]]
    if st.session_state[_KEYS["team"]] not in teams:
        st.session_state[_KEYS["team"]] = ALL
    team = side.selectbox("Team", teams, key=_KEYS["team"])
    team_of: dict[str, str] = dims["service_team"]
    services = [ALL, *(s for s in dims["services"] if team == ALL or team_of.get(s) == team)]
    if st.session_state[_KEYS["service"]] not in services:
        st.session_state[_KEYS["service"]] = ALL
    service = side.selectbox("Service", services, key=_KEYS["service"])
    envs = [ALL, *dims["environments"]]
    if st.session_state[_KEYS["environment"]] not in envs:
        st.session_state[_KEYS["environment"]] = ALL
    environment = side.selectbox("Environment", envs, key=_KEYS["environment"])
    year_options = [LATEST, *(str(y) for y in years)]
    if st.session_state[_KEYS["benchmark"]] not in year_options:
        st.session_state[_KEYS["benchmark"]] = LATEST
    benchmark = side.selectbox("DORA benchmark year", year_options, key=_KEYS["benchmark"])
    previous = st.session_state.get("filters")
    if isinstance(window, tuple | list) and len(window) == 2:
        since, until = window[0], window[1] + timedelta(days=1)
    elif isinstance(previous, Filters):  # half-picked range: keep the last complete one
        since, until = previous.since, previous.until
    else:
        since, until = st.session_state[_KEYS["window"]][0], st.session_state[_KEYS["window"]][1]
    f = Filters(
        since=since,
        until=until,
        team=None if team == ALL else team,
        service=None if service == ALL else service,
        environment=None if environment == ALL else environment,
        benchmark=None if benchmark == LATEST else int(benchmark),
    )
    params = f.to_params()
    for name in PAGE_PARAMS:  # a page's own selection (validated by that page) stays in the link
        value = st.query_params.get(name)
        if value:
            params[name] = value
    if st.query_params.to_dict() != params:
        st.query_params.from_dict(params)
    st.session_state[_SEEN_URL] = {k: v for k, v in params.items() if k not in PAGE_PARAMS}
    st.session_state["filters"] = f
    st.session_state["filter_problems"] = problems
    for problem in problems:
        side.warning(f"Ignored URL parameter: {md(problem)}")
    return f


def current() -> Filters:
    f = st.session_state.get("filters")
    if not isinstance(f, Filters):  # a page run on its own (tests): build the filters first
        f = sidebar_filters()
    return f


def database() -> Path:
    return db_path()

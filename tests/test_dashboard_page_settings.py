"""The dashboard's page listings read the metric views with the config's settings from the start.

The pages' own queries (lead-time distribution, failed deployments, incident timeline...) run on
one shared read connection per snapshot (dashboards/source.reader). Its views read the config's
settings as session variables (lead-time start, hotfix pattern, attribution gap, redeploys), and
only the drill-down put them there: until a user first opened a deployment's changes, the
listings used the views' defaults while the Overview's figures (the engine) used the config, and
after it they used the config, so the same page showed other rows depending on what had been
clicked before. Found by reading the code (session 11, helper H2); these tests failed on it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import pytest

from tests.store_fixture import DemoStore

WINDOW = {"since": date(2000, 1, 1), "until": date(2100, 1, 1)}
# committer times for lead time, and incidents attributed only to a deployment of the hour before:
# both change what the listings below hold on the demo store (the precondition in each test)
CONFIG = """\
deployments:
  lead_time_start: committer
incidents:
  max_attribution_gap: 1h
"""


def _forget_dashboard_state() -> None:
    import streamlit as st

    from dashboards import source

    st.cache_data.clear()
    with source._SHARED_LOCK:
        for _, con in source._SHARED.values():
            con.close()
        source._SHARED.clear()


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "gitops-dora.yaml"
    path.write_text(CONFIG)
    monkeypatch.setenv("GITOPS_DORA_CONFIG", str(path))
    _forget_dashboard_state()
    yield path
    _forget_dashboard_state()


def _listing(db: Path, name: str, config: Path | None) -> list[tuple[object, ...]]:
    """A page's SQL file run on a reader of its own, with the config's settings or the defaults."""
    from analytics.config import load_config
    from analytics.metrics.engine import apply_settings
    from analytics.store.connection import open_reader
    from dashboards import queries
    from dashboards.filters import Filters

    sql = queries.sql_file(name).replace("{filter}", queries.DEPLOYMENT_FILTER)
    con = open_reader(str(db))
    try:
        apply_settings(con, load_config(config) if config else None)
        rows = con.execute(sql, queries.window_params(Filters(**WINDOW))).fetchall()
        return [tuple(_null(v) for v in r) for r in rows]
    finally:
        con.close()


def _null(value: object) -> object:
    """pandas shows a NULL as NaN or NaT in a frame, DuckDB's rows as None."""
    import pandas as pd

    if value is None or value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
        return None
    return value


def _page_rows(frame: object) -> list[tuple[object, ...]]:
    assert frame is not None
    return [tuple(_null(v) for v in r) for r in frame.itertuples(index=False)]  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["lead_time_distribution", "failed_deployments", "deployment_list",
                                  "incident_timeline"])
def test_a_listing_uses_the_config_before_any_drilldown(demo_store: DemoStore, configured: Path,
                                                        name: str) -> None:
    from dashboards import queries
    from dashboards.filters import Filters

    expected = _listing(demo_store.db, name, configured)
    assert expected != _listing(demo_store.db, name, None), "the config must change this listing"
    shown = _page_rows(getattr(queries, name)(demo_store.db, Filters(**WINDOW)))
    assert shown == expected


def test_a_drilldown_does_not_change_what_a_listing_shows(demo_store: DemoStore, configured: Path) -> None:
    from dashboards import drilldown, queries
    from dashboards.filters import Filters
    from dashboards.source import data_stamp

    before = _page_rows(queries.lead_time_distribution(demo_store.db, Filters(**WINDOW)))
    deployment = before[-1][2]
    assert drilldown._audit(str(demo_store.db), data_stamp(demo_store.db), deployment)
    import streamlit as st

    st.cache_data.clear()  # the listing is read again from the shared connection, not the cache
    after = _page_rows(queries.lead_time_distribution(demo_store.db, Filters(**WINDOW)))
    assert after == before

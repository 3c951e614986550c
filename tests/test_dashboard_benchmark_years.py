"""A benchmark year on the dashboard re-rates the result without a year instead of running the engine
again (dashboards/metrics_source._ResultCache._rerated): what a page gets for a year must be
exactly what the engine gives for that year, for the Overview's four requests, a team filter, a
monthly trend by team, every published year and an unknown one.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

import pytest

from tests.store_fixture import DemoStore

if TYPE_CHECKING:
    from dashboards.metrics_source import MetricsRequest, _ResultCache


def _requests() -> list[MetricsRequest]:
    from dashboards.filters import Filters
    from dashboards.metrics_source import request_for

    whole = Filters(since=date(2025, 1, 1), until=date(2027, 1, 1))
    team = Filters(since=date(2026, 1, 5), until=date(2026, 11, 2), team="payments")
    return [
        request_for(whole, compare_previous=True, pooled=True),
        request_for(whole, compare_previous=True),
        request_for(whole, trend="week", pooled=True),
        request_for(whole, group_by=("environment",), trend="week"),
        request_for(team, compare_previous=True, pooled=True),
        request_for(whole, group_by=("team",), trend="month"),
    ]


@pytest.fixture(scope="module")
def cache() -> _ResultCache:
    """One result cache for the module, as a server has one: the results without a year that the
    first test computes (an engine run each) are the ones the other two re-rate (the unknown year's
    and the copy check's request is the first test's second)."""
    from dashboards.metrics_source import _ResultCache

    return _ResultCache()


def test_every_year_rerated_equals_the_engine_run_for_that_year(
    demo_store: DemoStore, cache: _ResultCache
) -> None:
    from dataclasses import replace

    from analytics.metrics.ratings import available_years
    from dashboards.metrics_source import compute

    years = available_years()
    assert len(years) >= 3
    rated_groups = differing = 0
    for number, req in enumerate(_requests()):
        # every year for a per-environment and a team request, the oldest (which differs most from
        # the newest, the default) for the others: each comparison is an engine run
        for year in years if number in (1, 4) else years[:1]:
            asked = replace(req, benchmark=year)
            shown = cache.get(demo_store.db, asked)
            assert shown == compute(demo_store.db, asked), (req, year)
            rated_groups += sum(1 for g in shown["groups"] if g.get("ratings"))
        base = cache.get(demo_store.db, req)
        oldest = cache.get(demo_store.db, replace(req, benchmark=years[0]))
        ratings = [g.get("ratings") for g in oldest["groups"]]
        differing += ratings != [g.get("ratings") for g in base["groups"]]
    assert rated_groups > 0
    # the oldest year rates differently from the newest somewhere: a re-rating that kept the base's
    # ratings would differ from the engine's run above
    assert differing > 0


def test_an_unknown_year_gives_the_engines_message(demo_store: DemoStore, cache: _ResultCache) -> None:
    from dataclasses import replace

    from dashboards.metrics_source import MetricsUnavailable, compute

    req = replace(_requests()[1], benchmark=1999)
    with pytest.raises(MetricsUnavailable) as engine:
        compute(demo_store.db, req)
    with pytest.raises(MetricsUnavailable) as shown:
        cache.get(demo_store.db, req)
    assert str(shown.value) == str(engine.value)
    assert "1999" in str(shown.value)


def test_a_rerated_result_leaves_the_cached_one_as_it_was(demo_store: DemoStore, cache: _ResultCache) -> None:
    import json
    from dataclasses import replace

    from analytics.metrics.ratings import available_years

    req = _requests()[1]
    base = cache.get(demo_store.db, req)
    before = json.dumps(base, sort_keys=True)
    for year in available_years():
        shown = cache.get(demo_store.db, replace(req, benchmark=year))
        for group in shown["groups"]:  # a page changing what it got must not reach the cache
            group.get("ratings", {}).clear()
    assert json.dumps(cache.get(demo_store.db, req), sort_keys=True) == before

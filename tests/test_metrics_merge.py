"""How the engine merges metric families into groups: NULL dimensions, empty periods, order.

A real DuckDB store, loaded through the store's loader. All times UTC.
    pay    (team payments)  production  P0 2026-03-02 10:00 success c1 (baseline)
                                        P1 2026-03-03 10:00 success c2 (author 03-03 04:00 -> 6 h)
                                        PF 2026-03-04 10:00 FAILED
    ghost  (no services row, so team NULL)  production  G0 2026-03-10 09:00 success g1 (baseline)
                                                          G1 2026-03-11 09:00 success g2 (-> 12 h)
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.errors import UserError
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.store.connection import open_reader
from tests.store_fixture import Deploy, write_history


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(
        tmp_path_factory.mktemp("merge") / "store.duckdb",
        services={"pay": "payments"},  # ghost has no services row
        commits={"c1": ("pay-repo", "2026-03-01T10:00"), "c2": ("pay-repo", "2026-03-03T04:00"),
                 "g1": ("ghost-repo", "2026-03-09T09:00"), "g2": ("ghost-repo", "2026-03-10T21:00")},
        deployments={
            "P0": Deploy("pay", "pay-repo", "2026-03-02T10:00", ["c1"]),
            "P1": Deploy("pay", "pay-repo", "2026-03-03T10:00", ["c2"]),
            "PF": Deploy("pay", "pay-repo", "2026-03-04T10:00", [], status="failed"),
            "G0": Deploy("ghost", "ghost-repo", "2026-03-10T09:00", ["g1"]),
            "G1": Deploy("ghost", "ghost-repo", "2026-03-11T09:00", ["g2"]),
        },
    )


def groups(db: Path, **kwargs: Any) -> list[dict[str, Any]]:
    con = open_reader(db)
    try:
        return compute_metrics(con, MetricsQuery(**kwargs)).groups
    finally:
        con.close()


MARCH: dict[str, Any] = {"since": t("2026-03-02T00:00"), "until": t("2026-03-16T00:00")}


def test_null_team_merges_throughput_and_stability(db: Path) -> None:
    by_team = groups(db, group_by=("team",), **MARCH)
    assert [g["team"] for g in by_team] == ["payments", None]
    ghost = by_team[1]
    # throughput (G0 baseline + G1) and stability (2 attempts, none failed) land on the same row
    assert (ghost["deployments"], ghost["baseline_deployments"]) == (2, 1)
    assert ghost["lead_time_median_hours"] == pytest.approx(12.0)
    assert (ghost["deployment_attempts"], ghost["failed_deployments"]) == (2, 0)
    assert ghost["change_failure_rate"] == 0
    pay = by_team[0]
    assert (pay["deployments"], pay["deployment_attempts"], pay["failed_deployments"]) == (2, 3, 1)
    assert pay["change_failure_rate"] == pytest.approx(1 / 3)
    assert pay["lead_time_median_hours"] == pytest.approx(6.0)


def test_trend_gives_every_period_with_zeros_and_nulls(db: Path) -> None:
    weekly = groups(db, group_by=("team",), trend="week", **MARCH)
    assert [(g["team"], g["period_start"].date().isoformat()) for g in weekly] == [
        ("payments", "2026-03-02"), ("payments", "2026-03-09"), (None, "2026-03-02"), (None, "2026-03-09")]
    empty = weekly[1]   # payments, week of 03-09: no deployments
    assert (empty["deployments"], empty["deployment_attempts"], empty["failed_deployments"]) == (0, 0, 0)
    assert empty["lead_time_median_hours"] is None and empty["change_failure_rate"] is None
    assert (weekly[2]["deployments"], weekly[3]["deployments"]) == (0, 2)


def test_compare_previous_keeps_a_group_seen_only_before(db: Path) -> None:
    # current [03-09, 03-16) has only ghost; previous [03-02, 03-09) has only pay
    compared = groups(db, compare_previous=True, since=t("2026-03-09T00:00"), until=t("2026-03-16T00:00"))
    assert [(g["service"], g["deployments"], g["previous"]["deployments"]) for g in compared] == [
        ("ghost", 2, 0), ("pay", 0, 2)]
    pay = compared[1]
    assert pay["previous"]["deployment_attempts"] == 3
    assert pay["delta"]["deployment_attempts"] == -3
    assert pay["lead_time_median_hours"] is None and pay["delta"]["lead_time_median_hours"] is None


def test_filters_are_literals_that_survive_quotes(db: Path) -> None:
    # the scoped view inlines filter values; a quote must stay part of the value, not end it
    assert [g["service"] for g in groups(db, services=("pay", "it's"), **MARCH)] == ["pay"]
    assert groups(db, services=("x') OR TRUE OR ('",), **MARCH) == []
    assert [g["team"] for g in groups(db, group_by=("team",), teams=("payments",), **MARCH)] == ["payments"]


def test_shared_views_are_put_back_after_a_report(db: Path) -> None:
    # the engine computes shared views once per report; afterwards the connection's views are the
    # live definitions again and no helper table is left behind (also after a failing report)
    con = open_reader(db)
    try:
        compute_metrics(con, MetricsQuery(**MARCH))
        with pytest.raises(UserError):
            compute_metrics(con, MetricsQuery(benchmark=1999, **MARCH))
        views = dict(con.execute(
            "SELECT view_name, sql FROM duckdb_views()"
            " WHERE view_name IN ('incident_attribution', 'revert_chain')"
        ).fetchall())
        leftovers = con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE table_name LIKE '%__once'"
        ).fetchall()
    finally:
        con.close()
    assert set(views) == {"incident_attribution", "revert_chain"}
    assert all("__once" not in sql and "WITH" in sql.upper() for sql in views.values()), views
    assert leftovers == []

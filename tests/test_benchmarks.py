"""Benchmark tables (data/benchmarks/*.yaml) and the two-step rating."""

from __future__ import annotations

import pytest
import yaml

from analytics.errors import UserError
from analytics.metrics.ratings import (
    available_years,
    benchmarks_dir,
    cfr_band,
    duration_bucket,
    frequency_bucket,
    rate_group,
)

DURATION_BUCKETS = {"lt_1h", "1h_1d", "1d_1w", "1w_1mo", "1mo_6mo", "gt_6mo"}
FREQUENCY_BUCKETS = {"on_demand", "daily_weekly", "weekly_monthly", "monthly_6monthly", "fewer"}


def _cfr_cluster(rate: float, year: int) -> str:
    return str(rate_group({"change_failure_rate": rate}, year)["change_failure_rate"]["cluster"])


def test_every_report_year_ships_a_table() -> None:
    assert available_years() == [2019, 2021, 2022, 2023, 2024]


@pytest.mark.parametrize("year", [2019, 2021, 2022, 2023, 2024])
def test_table_is_complete_and_cited(year: int) -> None:
    table = yaml.safe_load((benchmarks_dir() / f"{year}.yaml").read_text())
    assert table["year"] == year
    assert "State of DevOps" in table["report"]
    assert table["source"].startswith("https://")
    clusters = table["clusters"]
    recovery = "failed_deployment_recovery_time" if year >= 2023 else "time_to_restore"
    assert set(table["metrics"]) == {"deployment_frequency", "lead_time", recovery, "change_failure_rate"}
    for metric, spec in table["metrics"].items():
        for cluster in clusters:
            entry = spec[cluster]
            assert entry["published"], (year, metric, cluster)
            if metric == "deployment_frequency":
                assert set(entry["buckets"]) <= FREQUENCY_BUCKETS
            elif metric != "change_failure_rate":
                assert set(entry["buckets"]) <= DURATION_BUCKETS
    cfr = table["metrics"]["change_failure_rate"]
    if year >= 2023:
        assert cfr["kind"] == "points" and "threshold_rule" in cfr
        assert all(isinstance(cfr[c]["point"], int | float) for c in clusters)
    else:
        assert cfr["kind"] == "ranges"


def test_2022_has_no_elite_cluster() -> None:
    table = yaml.safe_load((benchmarks_dir() / "2022.yaml").read_text())
    assert table["clusters"] == ["high", "medium", "low"]
    assert all("elite" not in spec for spec in table["metrics"].values())
    # the best measured performance can only reach High in 2022
    best = {"deployment_days_per_week_median": 5, "lead_time_median_hours": 0.5,
            "time_to_restore_median_hours": 0.2, "change_failure_rate": 0.0}
    assert {m: r["cluster"] for m, r in rate_group(best, 2022).items()} == {
        "deployment_frequency": "high", "lead_time": "high", "time_to_restore": "high",
        "change_failure_rate": "high"}


def test_2024_high_and_medium_change_failure_rates_are_inverted() -> None:
    table = yaml.safe_load((benchmarks_dir() / "2024.yaml").read_text())
    cfr = table["metrics"]["change_failure_rate"]
    assert (cfr["elite"]["point"], cfr["high"]["point"], cfr["medium"]["point"], cfr["low"]["point"]) == (
        5, 20, 10, 40)
    # nearest point, boundaries at midpoints, a tie goes to the better cluster:
    # elite <= 7.5 < medium < 15 <= high <= 30 < low
    expected = {0.05: "elite", 0.075: "elite", 0.12: "medium", 0.149: "medium", 0.15: "high", 0.16: "high",
                0.30: "high", 0.31: "low", 1.0: "low"}
    for rate, cluster in expected.items():
        assert _cfr_cluster(rate, 2024) == cluster, rate
    # 2023 has no inversion: elite <= 7.5 < high <= 12.5 < medium <= 39.5 < low
    expected_2023 = {0.07: "elite", 0.12: "high", 0.13: "medium", 0.39: "medium", 0.40: "low"}
    for rate, cluster in expected_2023.items():
        assert _cfr_cluster(rate, 2023) == cluster, rate


def test_duration_bucket_boundaries() -> None:
    # each bucket is half-open: exactly 1 hour is no longer "less than one hour"
    assert duration_bucket(0.99) == "lt_1h"
    assert duration_bucket(1.0) == "1h_1d"
    assert duration_bucket(23.99) == "1h_1d"
    assert duration_bucket(24.0) == "1d_1w"
    assert duration_bucket(167.9) == "1d_1w"
    assert duration_bucket(168.0) == "1w_1mo"
    assert duration_bucket(719.9) == "1w_1mo"      # a month is 30 days = 720 h
    assert duration_bucket(720.0) == "1mo_6mo"
    assert duration_bucket(4319.0) == "1mo_6mo"    # six months are 180 days = 4320 h
    assert duration_bucket(4320.0) == "gt_6mo"
    assert duration_bucket(None) is None


def test_frequency_bucket_boundaries() -> None:
    # median deployment days per week first, then median deployments per month, then per 6 months
    assert frequency_bucket(3.0, 20, 120) == "on_demand"
    assert frequency_bucket(2.5, 10, 60) == "daily_weekly"
    assert frequency_bucket(1.0, 4, 24) == "daily_weekly"
    assert frequency_bucket(0.0, 1.0, 6) == "weekly_monthly"
    assert frequency_bucket(0.0, 0.5, 1.0) == "monthly_6monthly"
    assert frequency_bucket(0.0, 0.0, 0.9) == "fewer"
    assert frequency_bucket(None, None, None) is None


def test_cfr_bands_before_2023() -> None:
    assert cfr_band(0.15) == "0-15%"
    assert cfr_band(0.1501) == "16-30%"
    assert cfr_band(0.30) == "16-30%"
    assert cfr_band(0.5) == "46-60%"
    # 2019: 0-15% is Elite, High and Medium at once -> the best, Elite; 35% is in no published
    # range, and the best cluster whose range lies wholly above it is Low (46-60%)
    assert rate_group({"change_failure_rate": 0.10}, 2019)["change_failure_rate"]["cluster"] == "elite"
    assert rate_group({"change_failure_rate": 0.35}, 2019)["change_failure_rate"]["cluster"] == "low"
    # 2021: 16-30% is High, Medium and Low -> High
    assert rate_group({"change_failure_rate": 0.20}, 2021)["change_failure_rate"]["cluster"] == "high"


def test_two_step_rating_of_a_group() -> None:
    # lead time 30 h -> bucket 1d_1w -> High (2024); recovery 5 h -> 1h_1d, which 2024 publishes
    # for both High and Medium -> High; frequency 1.5 days/week -> daily_weekly -> High.
    group = {"deployment_days_per_week_median": 1.5, "deployments_per_month_median": 6,
             "deployments_per_six_months": 40, "lead_time_median_hours": 30.0,
             "failed_deployment_recovery_median_hours": 5.0, "change_failure_rate": 0.04}
    ratings = rate_group(group)  # default: the latest year, 2024
    assert {m: (r["bucket"], r["cluster"], r["year"]) for m, r in ratings.items()} == {
        "deployment_frequency": ("daily_weekly", "high", 2024),
        "lead_time": ("1d_1w", "high", 2024),
        "failed_deployment_recovery_time": ("1h_1d", "high", 2024),
        "change_failure_rate": ("4.0%", "elite", 2024),
    }
    # 2021: daily-weekly is not published (High is weekly-monthly): the best cluster below it, High;
    # lead time 1h-1d is between Elite (<1h) and High (1d-1w): High. 2021 rates time to restore.
    old = rate_group({**group, "time_to_restore_median_hours": 200.0}, 2021)
    assert old["deployment_frequency"]["cluster"] == "high"
    assert old["lead_time"]["cluster"] == "high"
    assert (old["time_to_restore"]["bucket"], old["time_to_restore"]["cluster"]) == ("1w_1mo", "low")


def test_unknown_year_is_a_user_error() -> None:
    with pytest.raises(UserError, match="--benchmark 2020: no benchmark table"):
        rate_group({}, 2020)


def test_published_wording_is_available_for_explanations() -> None:
    from analytics.metrics.ratings import published

    assert published(2024, "change_failure_rate", "high") == "20%"
    assert published(2021, "deployment_frequency", "low") == "Fewer than once per six months"
    # each rating entry carries only bucket, cluster and year (it is repeated for every group)
    entry = rate_group({"lead_time_median_hours": 3.0}, 2023)["lead_time"]
    assert entry == {"bucket": "1h_1d", "cluster": "elite", "year": 2023}

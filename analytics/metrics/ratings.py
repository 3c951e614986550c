"""Rating measured metrics against the DORA benchmark clusters of a chosen report year.

Two steps, because the clusters were found from survey answers and not from raw numbers:

1. the measured value is mapped to the survey's answer bucket (durations: <1 hour, <1 day,
   <1 week, <1 month, <6 months, more; frequency: on demand, daily-weekly, weekly-monthly,
   monthly-6-monthly, fewer; change failure rate: the survey's percent band, or from 2023 the
   percentage itself);
2. the bucket is mapped to a cluster with the year's table in ``data/benchmarks/<year>.yaml``.

A bucket covered by several clusters (e.g. 2019 "less than one day" restore for High and Medium)
goes to the best of them; a bucket no cluster covers goes to the best cluster whose published
range lies entirely below it (a value better than every cluster gets the best cluster).
"""

from __future__ import annotations

import math
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import yaml

from analytics.errors import UserError
from analytics.paths import data_dir

DURATION_BUCKETS: tuple[tuple[str, float], ...] = (
    ("lt_1h", 1.0),
    ("1h_1d", 24.0),
    ("1d_1w", 24.0 * 7),
    ("1w_1mo", 24.0 * 30),      # a month is 30 days
    ("1mo_6mo", 24.0 * 180),    # six months are 180 days
    ("gt_6mo", math.inf),
)
FREQUENCY_BUCKETS: tuple[str, ...] = (
    "on_demand", "daily_weekly", "weekly_monthly", "monthly_6monthly", "fewer",
)
CFR_BANDS: tuple[tuple[int, int], ...] = ((0, 15), (16, 30), (31, 45), (46, 60), (61, 75), (76, 100))

# Frequency thresholds (see docs/metrics.md, "Ratings"): median deployment days per week, with
# weeks without deployments counted, decides the two upper buckets; the median of deployments
# per month and the mean per six months decide the lower ones.
ON_DEMAND_DAYS_PER_WEEK = 3.0
DAILY_WEEKLY_DAYS_PER_WEEK = 1.0
WEEKLY_MONTHLY_PER_MONTH = 1.0
MONTHLY_6MONTHLY_PER_SIX_MONTHS = 1.0


@cache
def benchmarks_dir() -> Path:
    return data_dir() / "benchmarks"


@cache
def _years() -> tuple[int, ...]:
    # cached: the engine rates every group (tens of thousands with --trend week)
    return tuple(sorted(int(p.stem) for p in benchmarks_dir().glob("*.yaml") if p.stem.isdigit()))


def available_years() -> list[int]:
    return list(_years())


@cache
def load_benchmark(year: int) -> dict[str, Any]:
    path = benchmarks_dir() / f"{year}.yaml"
    if not path.exists():
        years = ", ".join(str(y) for y in available_years())
        raise UserError(f"--benchmark {year}: no benchmark table for that year (available: {years})")
    table = yaml.safe_load(path.read_text())
    if not isinstance(table, dict) or table.get("year") != year:
        raise UserError(f"{path}: not a benchmark table for {year}")
    return table


def duration_bucket(hours: float | None) -> str | None:
    if hours is None or (isinstance(hours, float) and math.isnan(hours)):
        return None
    for name, upper in DURATION_BUCKETS:
        if hours < upper:
            return name
    return DURATION_BUCKETS[-1][0]


def frequency_bucket(
    days_per_week_median: float | None,
    deployments_per_month_median: float | None,
    deployments_per_six_months: float | None,
) -> str | None:
    if days_per_week_median is None:
        return None
    if days_per_week_median >= ON_DEMAND_DAYS_PER_WEEK:
        return "on_demand"
    if days_per_week_median >= DAILY_WEEKLY_DAYS_PER_WEEK:
        return "daily_weekly"
    if (deployments_per_month_median or 0.0) >= WEEKLY_MONTHLY_PER_MONTH:
        return "weekly_monthly"
    if (deployments_per_six_months or 0.0) >= MONTHLY_6MONTHLY_PER_SIX_MONTHS:
        return "monthly_6monthly"
    return "fewer"


def cfr_band(rate: float) -> str:
    """The pre-2023 survey band of a rate in [0, 1]: '16-30%' covers (15%, 30%]."""
    pct = round(rate * 100.0, 6)
    for low, high in CFR_BANDS:
        if pct <= high:
            return f"{low}-{high}%"
    return f"{CFR_BANDS[-1][0]}-{CFR_BANDS[-1][1]}%"


@cache
def _cluster_of(year: int, metric: str, bucket: str) -> str:
    """The cluster a survey bucket maps to in a year's table (cached: a handful of combinations)."""
    table = load_benchmark(year)
    order = list(FREQUENCY_BUCKETS) if metric == "deployment_frequency" else [n for n, _ in DURATION_BUCKETS]
    return _bucket_cluster(table["metrics"][metric], list(table["clusters"]), bucket, order)


def _bucket_cluster(spec: dict[str, Any], clusters: list[str], bucket: str, order: list[str]) -> str:
    covering = [c for c in clusters if bucket in spec[c]["buckets"]]
    if covering:
        return covering[0]
    index = order.index(bucket)
    below = [c for c in clusters if min(order.index(b) for b in spec[c]["buckets"]) > index]
    return below[0] if below else clusters[-1]


def _cfr_cluster(spec: dict[str, Any], clusters: list[str], rate: float) -> tuple[str, str]:
    pct = round(rate * 100.0, 6)  # 0.3 * 100 is 30.000000000000004; compare published percents exactly
    if spec.get("kind") == "points":
        ranked = sorted(clusters, key=lambda c: (abs(pct - float(spec[c]["point"])), clusters.index(c)))
        return f"{round(pct, 1)}%", ranked[0]
    band = cfr_band(rate)
    covering = [c for c in clusters if spec[c]["range"][0] - 1 < pct <= spec[c]["range"][1]]
    if covering:
        return band, covering[0]
    below = [c for c in clusters if spec[c]["range"][0] - 1 >= pct]
    return band, below[0] if below else clusters[-1]


def _entry(table: dict[str, Any], bucket: str | None, cluster: str | None) -> dict[str, Any]:
    # kept small on purpose: `metrics --trend week` rates tens of thousands of groups and every
    # key here is serialised for each; the published wording is available from published()
    return {"bucket": bucket, "cluster": cluster, "year": table["year"]}


def published(year: int, metric: str, cluster: str) -> str:
    """The report's own wording of a cluster's value, e.g. 'Between one day and one week'."""
    return str(load_benchmark(year)["metrics"][metric][cluster]["published"])


def rate_group(group: dict[str, Any], year: int | None = None) -> dict[str, Any]:
    """Ratings for one metrics group: per metric its survey bucket and benchmark cluster.

    The per-metric entries are shared between calls (they come from a cache): read, do not change."""
    chosen = year if year is not None else available_years()[-1]
    recovery_field = _recovery(chosen)[1]
    rate = group.get("change_failure_rate")
    if rate is not None and math.isnan(float(rate)):
        rate = None
    # a weekly trend rates tens of thousands of groups but they fall into few bucket combinations
    return dict(_ratings(
        chosen,
        frequency_bucket(
            group.get("deployment_days_per_week_median"),
            group.get("deployments_per_month_median"),
            group.get("deployments_per_six_months"),
        ),
        duration_bucket(group.get("lead_time_median_hours")),
        duration_bucket(group.get(recovery_field)),
        None if rate is None else float(rate),
    ))


@cache
def _recovery(year: int) -> tuple[str, str]:
    """The recovery metric a year publishes, and the field it rates."""
    if "failed_deployment_recovery_time" in load_benchmark(year)["metrics"]:
        return "failed_deployment_recovery_time", "failed_deployment_recovery_median_hours"
    return "time_to_restore", "time_to_restore_median_hours"


@lru_cache(maxsize=4096)  # bounded: the rate is a float, and a dashboard process lives long
def _ratings(year: int, freq: str | None, lead: str | None, recovery: str | None,
             rate: float | None) -> dict[str, Any]:
    table = load_benchmark(year)
    out: dict[str, Any] = {}
    freq_cluster = _cluster_of(year, "deployment_frequency", freq) if freq else None
    out["deployment_frequency"] = _entry(table, freq, freq_cluster)
    for metric, bucket in (("lead_time", lead), (_recovery(year)[0], recovery)):
        out[metric] = _entry(table, bucket, _cluster_of(year, metric, bucket) if bucket else None)
    if rate is None:
        out["change_failure_rate"] = _entry(table, None, None)
    else:
        band, cluster = _cfr_cluster(table["metrics"]["change_failure_rate"], list(table["clusters"]), rate)
        out["change_failure_rate"] = _entry(table, band, cluster)
    return out

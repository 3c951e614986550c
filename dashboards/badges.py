"""Rating badges that rate exactly the figure they sit under, and say how.

The cluster is the engine's (``ratings[metric].cluster`` in ``metrics --format json``); this module
only decides which figure a year rates and explains it: the benchmark year, that year's thresholds
for the metric, and where the value falls. A year that rates another measure than a tile shows
(2019-2022 rate incident time to restore, 2023 on failed deployment recovery; no year rates
rework) gets "not rated by <year>" on that tile, and the tile of the measure it does rate carries
the rating. Deployment frequency is rated from deployment days per week (as the survey asked), not
from deployments per week, so its badge names the figure it rated.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from analytics.metrics import ratings as R
from dashboards.components import RATING_COLORS
from dashboards.definitions import BY_KEY, MetricDef

# survey answer buckets (analytics/metrics/ratings.py) in words, half-open [from, to)
DURATION_RANGES: dict[str, tuple[float, float]] = {
    "lt_1h": (0.0, 1.0), "1h_1d": (1.0, 24.0), "1d_1w": (24.0, 168.0), "1w_1mo": (168.0, 720.0),
    "1mo_6mo": (720.0, 4320.0), "gt_6mo": (4320.0, math.inf),
}
FREQUENCY_TEXT = {
    "on_demand": "3 or more deployment days a week (median week)",
    "daily_weekly": "1 to 3 deployment days a week (median week)",
    "weekly_monthly": "under 1 deployment day a week, 1 or more deployments per 30 days (median)",
    "monthly_6monthly": "1 or more deployments per 180 days",
    "fewer": "fewer than 1 deployment per 180 days",
}


@dataclass(frozen=True)
class Badge:
    label: str            # "High (2024)", "not rated by 2019", "no value to rate (2024)"
    color: str
    help: str             # Markdown tooltip: year, thresholds, where the value falls
    cluster: str | None   # the engine's cluster, when rated
    rated_field: str | None  # the JSON field the rating is about (None when not rated)
    figure: str | None = None  # the rated figure, when it is not the tile's value (frequency)


def latest_year() -> int:
    return R.available_years()[-1]


def rates(year: int, metric: MetricDef) -> bool:
    """Whether the year's benchmark table rates exactly this metric's figure."""
    return metric.benchmark is not None and metric.benchmark in R.load_benchmark(year)["metrics"]


def rated_instead(year: int, metric: MetricDef) -> MetricDef | None:
    """The tile whose figure the year rates in place of this one (recovery vs time to restore)."""
    pairs = {"failed_deployment_recovery": "time_to_restore", "time_to_restore": "failed_deployment_recovery"}
    other = BY_KEY.get(pairs.get(metric.key, ""))
    return other if other is not None and rates(year, other) else None


def hours_text(hours: float) -> str:
    if hours == math.inf:
        return "∞"
    if hours < 24:
        return f"{hours:g} h"
    days = hours / 24
    return "1 week" if days == 7 else f"{days:g} d"


def duration_range(buckets: list[str]) -> str:
    low = min(DURATION_RANGES[b][0] for b in buckets)
    high = max(DURATION_RANGES[b][1] for b in buckets)
    if low == 0:
        return f"under {hours_text(high)}"
    if high == math.inf:
        return f"{hours_text(low)} or more"
    return f"{hours_text(low)} to {hours_text(high)}"


def _clusters(year: int) -> list[str]:
    return list(R.load_benchmark(year)["clusters"])


def _spec(year: int, metric: MetricDef) -> dict[str, Any]:
    return dict(R.load_benchmark(year)["metrics"][metric.benchmark])


def thresholds(year: int, metric: MetricDef) -> str:
    """The year's published clusters for the metric, each with the range it covers."""
    spec, clusters = _spec(year, metric), _clusters(year)
    parts = []
    for c in clusters:
        entry = spec[c]
        if metric.benchmark == "change_failure_rate":
            published = entry["published"]
            rng = f"{entry['point']}%" if spec.get("kind") == "points" else None
            parts.append(f"{c.capitalize()} {published}" if rng is None or rng == published
                         else f"{c.capitalize()} {published} ({rng})")
        elif metric.benchmark == "deployment_frequency":
            covered = "; ".join(FREQUENCY_TEXT[b] for b in entry["buckets"])
            parts.append(f"{c.capitalize()}: {entry['published'].lower()}, counted as {covered}")
        else:
            parts.append(f"{c.capitalize()}: {entry['published'].lower()} "
                         f"({duration_range(entry['buckets'])})")
    rule = ""
    if metric.benchmark == "change_failure_rate":
        rule = (" A rate goes to the nearest published point (midpoints are the boundaries, a tie to "
                "the better cluster)." if spec.get("kind") == "points" else
                " The rate is put in the survey's band (0-15%, 16-30% covering over 15% up to 30%, "
                "31-45%, ...) and goes to the cluster that published that band.")
    return f"DORA {year} thresholds: " + " · ".join(parts) + "." + rule


def _ordered(metric: MetricDef) -> list[str]:
    if metric.benchmark == "deployment_frequency":
        return list(R.FREQUENCY_BUCKETS)
    return [name for name, _ in R.DURATION_BUCKETS]


def _bucket_of(metric: MetricDef, group: dict[str, Any]) -> str | None:
    if metric.benchmark == "deployment_frequency":
        return R.frequency_bucket(group.get("deployment_days_per_week_median"),
                                  group.get("deployments_per_month_median"),
                                  group.get("deployments_per_six_months"))
    return R.duration_bucket(_number(group.get(metric.field)))


def _number(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return None if math.isnan(number) else number


def _bucket_text(metric: MetricDef, bucket: str) -> str:
    if metric.benchmark == "deployment_frequency":
        return FREQUENCY_TEXT[bucket]
    return duration_range([bucket])


def rated_figure(metric: MetricDef, group: dict[str, Any]) -> tuple[str, str] | None:
    """The number the rating was computed from, when it is not the tile's own value: deployment
    frequency is rated on deployment days per week (or, below one a week, deployments per 30 or
    180 days), as the survey asked."""
    if metric.benchmark != "deployment_frequency":
        return None
    bucket = _bucket_of(metric, group)
    if bucket in ("on_demand", "daily_weekly"):
        field = "deployment_days_per_week_median"
        return field, f"{float(group[field]):.1f} deploy days/wk (median)"
    if bucket == "weekly_monthly":
        field = "deployments_per_month_median"
        return field, f"{float(group.get(field) or 0):.1f} deployments/30 d (median)"
    if bucket in ("monthly_6monthly", "fewer"):
        field = "deployments_per_six_months"
        return field, f"{float(group.get(field) or 0):.1f} deployments/180 d"
    return None


def where_it_falls(year: int, metric: MetricDef, group: dict[str, Any], shown: str) -> str:
    """Which bucket or band the value is in and which cluster that gives, in words."""
    spec, clusters = _spec(year, metric), _clusters(year)
    if metric.benchmark == "change_failure_rate":
        rate = _number(group.get(metric.field))
        assert rate is not None
        pct = round(rate * 100.0, 6)
        if spec.get("kind") == "points":
            nearest = min(clusters, key=lambda c: (abs(pct - float(spec[c]["point"])), clusters.index(c)))
            return (f"{shown} is nearest to {nearest.capitalize()}'s {spec[nearest]['point']}%: "
                    f"{nearest.capitalize()}.")
        band = R.cfr_band(rate)
        covering = [c for c in clusters if spec[c]["range"][0] - 1 < pct <= spec[c]["range"][1]]
        if covering:
            return (f"{shown} is in the {band} band, which {year} published for "
                    f"{', '.join(c.capitalize() for c in covering)}: {covering[0].capitalize()}.")
        worse = [c for c in clusters if spec[c]["range"][0] - 1 >= pct]
        if worse:
            return (f"{shown} is in the {band} band, which no {year} cluster published; the best "
                    f"cluster whose band is wholly worse: {worse[0].capitalize()}.")
        return (f"{shown} is in the {band} band, which no {year} cluster published and none is wholly "
                f"worse: the last, {clusters[-1].capitalize()}.")
    bucket = _bucket_of(metric, group)
    assert bucket is not None
    covering = [c for c in clusters if bucket in spec[c]["buckets"]]
    what = f"{shown} is in the survey answer “{_bucket_text(metric, bucket)}”"
    if covering:
        return (f"{what}, which {year} published for {', '.join(c.capitalize() for c in covering)}: "
                f"{covering[0].capitalize()}.")
    order = _ordered(metric)
    index = order.index(bucket)
    worse = [c for c in clusters if min(order.index(b) for b in spec[c]["buckets"]) > index]
    if worse:
        return (f"{what}, which no {year} cluster published; the best cluster whose range is wholly "
                f"worse: {worse[0].capitalize()}.")
    return (f"{what}, which no {year} cluster published and none is wholly worse: the last, "
            f"{clusters[-1].capitalize()}.")


def cluster_of(group: dict[str, Any], metric: MetricDef) -> str | None:
    entry = (group.get("ratings") or {}).get(metric.benchmark or "")
    value = entry.get("cluster") if isinstance(entry, dict) else entry
    return str(value) if value else None


def badge(metric: MetricDef, group: dict[str, Any], year: int, shown: str) -> Badge:
    """The badge for ``metric``'s tile in ``group`` (one engine group) rated against ``year``;
    ``shown``: the tile's value as displayed."""
    if not rates(year, metric):
        other = rated_instead(year, metric)
        if other is not None:
            why = (f"The DORA {year} report does not rate this figure: it rates "
                   f"{other.title.split(' (')[0].lower()} (`{other.field}`), shown on that tile with "
                   "its rating.")
        else:
            why = (f"No DORA report, {year} included, has published clusters for "
                   f"{metric.title.lower()}: it is reported, not rated.")
        return Badge(f"not rated by {year}", "gray", why, None, None)
    cluster = cluster_of(group, metric)
    limits = thresholds(year, metric)
    if cluster is None or _bucket_or_rate_missing(metric, group):
        return Badge(f"no value to rate ({year})", "gray",
                     f"No value in this window to rate. {limits}", None, metric.field)
    figure = rated_figure(metric, group)
    falls = where_it_falls(year, metric, group, figure[1] if figure else shown)
    rated = (f"Rated on {figure[1]}, not on deployments per week: the DORA survey asked how often a "
             "typical week has deployments (weeks without any count as 0). " if figure else "")
    label = f"{cluster.capitalize()} ({year})"
    return Badge(label, RATING_COLORS.get(cluster, "gray"), f"{rated}{limits} {falls}", cluster,
                 figure[0] if figure else metric.field, figure[1] if figure else None)


def _bucket_or_rate_missing(metric: MetricDef, group: dict[str, Any]) -> bool:
    if metric.benchmark == "change_failure_rate":
        return _number(group.get(metric.field)) is None
    return _bucket_of(metric, group) is None

"""Overview: the organisation (every service pooled), then each environment: six DORA tiles with
their value, change since the previous window, weekly trend and rating; and the maturity level."""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboards import charts, maturity_data, state
from dashboards.badges import badge, latest_year, rates, thresholds
from dashboards.components import COLLECT_DEPLOYMENTS, how_computed, no_data
from dashboards.definitions import MetricDef, help_text
from dashboards.metrics_source import MetricsUnavailable, groups_of, metrics
from dashboards.queries import deployment_count, weekly_deployments
from dashboards.safe_text import md
from dashboards.targets import current_config, target_caption
from dashboards.tiles import TILES, delta_text, fmt, sparkline, what_changed
from dashboards.warmup import overview_requests

TILES_PER_ROW = 3
# Streamlit cuts a metric label off with an ellipsis on one line; in the tiles it wraps instead
# (the page's own constant CSS, scoped to the tile containers; tests/test_browser_pages.py checks
# that no title is cut off at 1440 and 390 px)
TILE_CSS = """<style>
[class*="st-key-tile-"] [data-testid="stMetricLabel"],
[class*="st-key-tile-"] [data-testid="stMetricLabel"] div,
[class*="st-key-tile-"] [data-testid="stMetricLabel"] p {
  white-space: normal !important; overflow: visible !important; text-overflow: clip !important;
  height: auto !important; max-height: none !important;
}
[class*="st-key-tile-"] [data-testid="stMetricLabel"] p { font-weight: 600; }
</style>"""

st.title("Overview")
st.html(TILE_CSS)
f = state.current()
db = state.database()
scope = " · ".join(md(x) for x in (f.team, f.service, f.environment) if x) or "all services"
st.caption(f"Window {f.since.isoformat()} to {f.until.isoformat()} (exclusive, UTC) · {scope} · "
           f"compared with the previous {f.days} days")
how_computed("overview")
config, config_problem = current_config()
if config_problem:
    st.warning(f"Targets not shown: {md(config_problem)}")
# the filters' scope picks the targets: a service's over its team's over the organisation's
targets = config.targets_for(service=f.service, team=f.team)


def _production_first(group: dict[str, Any]) -> tuple[int, str]:
    env = str(group.get("environment") or "")
    return (0 if env.lower() in ("production", "prod") else 1, env)


def metric_help(metric: MetricDef, year: int) -> str:
    rated = thresholds(year, metric) if rates(year, metric) else f"Not rated by the DORA {year} report."
    return f"{help_text(metric)}\n\n{rated}"


def tiles(name: str, group: dict[str, Any], periods: list[dict[str, Any]], year: int,
          goals: dict[str, float]) -> None:
    """One row of tiles; ``name`` keys their containers (``st-key-tile-<name>-<metric>`` in the page)."""
    delta = group.get("delta") or {}
    for start in range(0, len(TILES), TILES_PER_ROW):
        row = TILES[start:start + TILES_PER_ROW]
        for col, metric in zip(st.columns(TILES_PER_ROW), row, strict=False):
            value = group.get(metric.field)
            shown = fmt(metric, value)
            trend = sparkline(metric, periods)
            with col, st.container(border=True, height="stretch", key=f"tile-{name}-{metric.key}"):
                st.metric(
                    metric.title, shown, help=metric_help(metric, year),
                    delta=delta_text(metric, value, delta.get(metric.field)),
                    delta_color="inverse" if metric.lower_is_better else "normal",
                    chart_data=trend if len(trend) >= 2 else None,
                    chart_type="bar" if metric.kind == "per_week" else "line",
                )
                b = badge(metric, group, year, shown)
                st.badge(b.label, color=b.color, help=b.help)  # type: ignore[arg-type]
                if b.figure:
                    st.caption(f"rated on {b.figure}")
                if metric.field in goals:
                    st.caption(target_caption(metric, value, goals[metric.field]))
    st.markdown(f"**What changed:** {what_changed(group, group.get('previous'), f.days)}")
    counts = (f"{group.get('deployments', 0)} deployments on {group.get('deployment_days', 0)} days, "
              f"{group.get('changes', 0)} changes, {group.get('incidents', 0)} incidents")
    if group.get("excluded_negative_lead_times"):
        counts += f", {group['excluded_negative_lead_times']} negative lead times excluded"
    if group.get("baseline_deployments"):
        counts += f", {group['baseline_deployments']} baseline deployment(s) without lead times"
    st.caption(counts + ". Trend lines: one point per week; change failure and rework rates pooled "
               "over rolling 4 weeks.")


def _periods(payload: dict[str, Any] | None, key: str | None, value: Any) -> list[dict[str, Any]]:
    if payload is None:
        return []
    rows = [g for g in groups_of(payload) if key is None or g.get(key) == value]
    return sorted(rows, key=lambda g: str(g.get("period_start")))


def _get(req: Any, what: str) -> dict[str, Any] | None:
    try:
        return metrics(db, req)
    except MetricsUnavailable as exc:
        st.warning(f"{what} not available: {md(exc)}")
        return None


if deployment_count(db) == 0:
    no_data("deployments", COLLECT_DEPLOYMENTS)
else:
    year = f.benchmark or latest_year()
    pooled_req, env_req, pooled_trend_req, env_trend_req = overview_requests(f)  # what warm-up computes
    pooled = _get(pooled_req, "DORA metrics")
    if pooled is not None:
        per_env = _get(env_req, "DORA metrics per environment")
        pooled_trend = _get(pooled_trend_req, "Weekly trends")
        env_trend = _get(env_trend_req, "Weekly trends")
        organisation = [g for g in groups_of(pooled) if g.get("deployments") or g.get("deployment_attempts")]
        if not organisation:
            no_data("deployments in this window (pick an earlier window?)", COLLECT_DEPLOYMENTS)
        else:
            st.subheader("Organisation")
            st.caption(f"{scope}, every environment: each deployment, change and incident counted "
                       "once, by the same definitions (not an average of the rows below).")
            tiles("all", organisation[0], _periods(pooled_trend, None, None), year, targets)
            groups = sorted((g for g in groups_of(per_env or {}) if g.get("deployments")),
                            key=_production_first)
            for index, group in enumerate(groups):
                st.subheader(f"Environment: {md(group.get('environment'))}")
                weeks = _periods(env_trend, "environment", group.get("environment"))
                tiles(f"env{index}", group, weeks, year, targets)
            weekly = weekly_deployments(db, f)
            if weekly is not None and len(weekly):
                st.markdown(f"**{charts.WEEKLY_TITLE}**")
                st.plotly_chart(charts.weekly_bars(weekly), key="overview-weekly")

st.subheader("GitOps maturity")
maturity_data.level_badge(db, f)

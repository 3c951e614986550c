"""Issue #13, the dashboard: a leader can trust it at a glance.

AppTest on a store built by `gitops-dora demo` (a separate process). Numbers are compared with what
`gitops-dora metrics --format json` prints (run in this process by tests/cli_inprocess.py) or, for
the organisation row (which `metrics` cannot print: it always groups by a dimension), with sums
over the CLI's groups and with medians computed here from the store. Ratings are checked against
`analytics.metrics.ratings.rate_group` given only the figure a tile shows, for all five benchmark
years, so a badge that rates another figure than the one it sits under fails.
"""

from __future__ import annotations

import json
import re
import statistics
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analytics.metrics import ratings as R
from dashboards import charts
from dashboards.components import MISSING, RATING_COLORS, short_id
from dashboards.definitions import METRICS, PAGE_DOCS, doc_sections, help_text, plain, slug
from dashboards.metrics_source import MetricsRequest, compute
from dashboards.tiles import TILES, delta_text, fmt, what_changed
from tests import cli_inprocess
from tests.apptest_pages import open_page
from tests.child_env import child_env
from tests.store_fixture import DemoStore

DOCS = Path(__file__).resolve().parents[1] / "docs"
YEARS = (2019, 2021, 2022, 2023, 2024)
WINDOW = {"since": "2026-08-01", "until": "2026-11-01"}
# what each DORA report year rates (docs/metrics.md, "Ratings against the DORA benchmarks"): the
# three throughput/CFR measures, and incident time to restore before 2023, failed deployment
# recovery from 2023; rework rate never
RATED = {year: {"deployment_frequency", "lead_time", "change_failure_rate",
                "time_to_restore" if year < 2023 else "failed_deployment_recovery"} for year in YEARS}
# the figure each rated tile is rated on: the fields rate_group reads for it, and the result key
RATING_INPUT = {
    "deployment_frequency": (("deployment_days_per_week_median", "deployments_per_month_median",
                              "deployments_per_six_months"), "deployment_frequency"),
    "lead_time": (("lead_time_median_hours",), "lead_time"),
    "change_failure_rate": (("change_failure_rate",), "change_failure_rate"),
    "failed_deployment_recovery": (("failed_deployment_recovery_median_hours",),
                                   "failed_deployment_recovery_time"),
    "time_to_restore": (("time_to_restore_median_hours",), "time_to_restore"),
}

pytestmark = pytest.mark.usefixtures("one_duckdb_thread")  # tests/conftest.py

# --- the store and the pages ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def demo_db(demo_store: DemoStore) -> Path:
    """The run's shared `gitops-dora demo` store (tests/conftest.py); these tests only read it."""
    return demo_store.db


@pytest.fixture(autouse=True)
def use_demo(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("GITOPS_DORA_DB", str(demo_db))
    for name in ("GITOPS_DORA_CONFIG", "GITOPS_DORA_REQUIRE_LOGIN", "GITOPS_DORA_WARMUP"):
        monkeypatch.delenv(name, raising=False)
    yield


def read_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``gitops-dora --db DB ARGS`` for the reads the pages are compared with, run in this process
    (tests/cli_inprocess.py: same entry point, environment, folder, streams and exit status, without
    a process's 0.5-0.7 CPU-s of start-up); the process is not what these tests are about."""
    return cli_inprocess.run(["--db", str(db), *args], env=child_env(), cwd=db.parent)


# `metrics --format json` documents printed for the read-only demo store: (store, catalog mtime,
# arguments) -> stdout
_PRINTED: dict[tuple[object, ...], str] = {}


def metrics_json(db: Path, *args: str) -> dict[str, Any]:
    """What ``metrics ARGS --format json`` prints, parsed afresh for each caller. The same command on
    the unchanged store prints the same document, so it is run once per argument list (three tests
    compare with ``--group-by environment`` over the window: 0.3-0.4 CPU-s a run); the catalog's
    modification time is part of the key, so a store written to since is read again."""
    key = (str(db), db.stat().st_mtime_ns, *args)
    if key not in _PRINTED:
        proc = read_cli(db, "metrics", *args, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        _PRINTED[key] = proc.stdout
    payload: dict[str, Any] = json.loads(_PRINTED[key])
    return payload


def env_groups(payload: dict[str, Any]) -> list[dict[str, Any]]:
    groups = [g for g in payload["groups"] if g["deployments"]]
    return sorted(groups, key=lambda g: (0 if g["environment"] == "production" else 1, g["environment"]))


def pooled(**filters: Any) -> dict[str, Any]:
    """The organisation group as the page computes it (dashboards.metrics_source, in-process): the
    result the page itself was given for that request (the process's result cache, computed when
    the page asked; computed here if it did not), compared by the callers with the CLI's groups.
    With a benchmark year, the engine's own run for that year instead (the cache re-rates the result
    without a year): the badge test checks that the engine's rating agrees with the rating of the
    figure alone, and tests/test_dashboard_benchmark_years.py that the re-rating equals it."""
    from dashboards.metrics_source import RESULTS
    from dashboards.source import db_path

    req = MetricsRequest(since=WINDOW["since"], until=WINDOW["until"], pooled=True, group_by=("team",),
                         compare_previous=True, **filters)
    payload = compute(db_path(), req) if req.benchmark is not None else RESULTS.get(db_path(), req)
    (group,) = payload["groups"]
    return group


def badge_elements(at: AppTest) -> list[Any]:
    return [m for m in at.markdown if re.fullmatch(r":[a-z]+-badge\[.*\]", m.value)][:-1]  # last: maturity


def rows_of(at: AppTest) -> list[list[tuple[Any, Any]]]:
    """(metric element, badge element) per tile, one list per row of tiles."""
    metrics_, badges_ = list(at.metric), badge_elements(at)
    assert len(metrics_) == len(badges_) and len(metrics_) % len(TILES) == 0
    assert [m.label for m in metrics_] == [m.title for m in TILES] * (len(metrics_) // len(TILES))
    tiles = list(zip(metrics_, badges_, strict=True))
    return [tiles[i:i + len(TILES)] for i in range(0, len(tiles), len(TILES))]


def independent_cluster(metric_key: str, group: dict[str, Any], year: int) -> str | None:
    """The cluster of the figure alone, by the ratings module (not the dashboard's code)."""
    fields, result = RATING_INPUT[metric_key]
    only = {f: group.get(f) for f in fields}
    cluster = R.rate_group(only, year)[result]["cluster"]
    return str(cluster) if cluster else None


# --- definitions ------------------------------------------------------------------------------------


def test_each_definition_is_quoted_word_for_word_from_docs_metrics() -> None:
    docs = plain((DOCS / "metrics.md").read_text())
    headings = {h for h, _ in doc_sections("metrics.md") or []}
    for metric in METRICS:
        assert plain(metric.definition) in docs, metric.key
        assert metric.section in headings, metric.section
    for page, links in PAGE_DOCS.items():
        for link in links:
            assert link.section in {h for h, _ in doc_sections(link.doc) or []}, (page, link)
    assert plain("A made-up sentence the docs do not have.") not in docs   # the check can fail


def test_every_page_has_how_this_is_computed_linking_existing_sections() -> None:
    from streamlit.util import calc_hash

    for page in ("overview", "teams", "throughput", "stability", "deployments", "maturity", "data_health"):
        at = open_page(page, **WINDOW)
        (expander,) = [e for e in at.expander if e.label == "How this is computed"]
        links = [e.proto for e in expander.get("page_link")]
        assert len(links) == len(PAGE_DOCS[page]), page
        for link, expected in zip(links, PAGE_DOCS[page], strict=True):
            query = dict(p.split("=", 1) for p in link.query_string.split("&"))
            assert query == {"doc": expected.doc.removesuffix(".md"), "section": slug(expected.section)}
            assert link.page_script_hash == calc_hash("definitions"), link
        shown = " ".join(m.value for m in expander.markdown)
        for metric in METRICS:
            if metric.section in {link.section for link in PAGE_DOCS[page]}:
                assert help_text(metric) in shown, (page, metric.key)


def test_definitions_page_opens_the_linked_section() -> None:
    at = open_page("definitions", doc="metrics", section="change-failure-rate")
    assert [h.value for h in at.subheader][:1] == ["docs/metrics.md: Change failure rate"]
    body = dict(doc_sections("metrics.md") or [])["Change failure rate"]
    assert body in [m.value for m in at.markdown] and "deployment_attempts" in body
    bad = open_page("definitions", doc="metrics", section="no-such-section")
    assert any("no section" in w.value for w in bad.warning)
    assert not [h for h in bad.subheader if h.value.startswith("docs/")]


# --- ratings ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("year", YEARS)
def test_every_badge_rates_exactly_the_figure_shown(demo_db: Path, year: int) -> None:
    """All tiles of the organisation and each environment, under one benchmark year: a rated tile's
    badge is the cluster of its own figure (rate_group on that figure alone), a tile the year does
    not rate says "not rated by <year>", and the tooltips name the year, its thresholds and where
    the value falls."""
    at = open_page("overview", benchmark=str(year), **WINDOW)
    table = R.load_benchmark(year)
    cli_groups = env_groups(metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                                         "--group-by", "environment", "--compare-previous",
                                         "--benchmark", str(year)))
    groups = [pooled(benchmark=year), *cli_groups]
    rows = rows_of(at)
    assert len(rows) == len(groups) >= 2
    rated_seen = 0
    for group, row in zip(groups, rows, strict=True):
        assert {m.key for m, (_, b) in zip(TILES, row, strict=True)
                if not b.value.startswith(":gray-badge[not rated by")} == RATED[year]
        for metric, (tile, badge_md) in zip(TILES, row, strict=True):
            shown = fmt(metric, group[metric.field])
            assert tile.value == shown
            title_help = tile.help
            assert help_text(metric) in title_help                       # the definition, in place
            if metric.key not in RATED[year]:
                assert badge_md.value == f":gray-badge[not rated by {year}]", metric.key
                assert f"Not rated by the DORA {year} report." in title_help
                continue
            spec = table["metrics"][RATING_INPUT[metric.key][1]]
            cluster = independent_cluster(metric.key, group, year)
            assert cluster == group["ratings"][RATING_INPUT[metric.key][1]]["cluster"]  # engine agrees
            help_ = badge_md.proto.help
            assert f"DORA {year} thresholds" in help_ and f"DORA {year} thresholds" in title_help
            for name in table["clusters"]:                               # every cluster's threshold
                assert name.capitalize() in help_
                assert str(spec[name]["published"]).lower() in help_.lower() or \
                    str(spec[name]["published"]) in help_
            if cluster is None:
                assert badge_md.value == f":gray-badge[no value to rate ({year})]"
                continue
            assert badge_md.value == f":{RATING_COLORS[cluster]}-badge[{cluster.capitalize()} ({year})]"
            assert help_.endswith(f"{cluster.capitalize()}.")            # where the value falls
            if metric.key == "deployment_frequency":                     # rated on deployment days
                figure = f"{group['deployment_days_per_week_median']:.1f} deploy days/wk (median)"
                if group["deployment_days_per_week_median"] >= 1:
                    assert f"{figure} is in" in help_
                    assert any(c.value == f"rated on {figure}" for c in at.caption)
            else:
                assert f"{shown} is " in help_
            rated_seen += 1
    assert rated_seen >= 3 * len(groups)


def test_the_issue_example_recovery_is_not_rated_by_2019_and_restore_is(demo_db: Path) -> None:
    """/?service=inventory&environment=production&benchmark=2019 showed a recovery time in days with
    a 'High (2019)' badge that came from the hours-long time to restore."""
    at = open_page("overview", service="inventory", environment="production", benchmark="2019", **WINDOW)
    (group,) = env_groups(metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                                       "--group-by", "environment", "--service", "inventory",
                                       "--environment", "production", "--benchmark", "2019"))
    row = rows_of(at)[1]
    keys = [m.key for m in TILES]
    recovery = row[keys.index("failed_deployment_recovery")]
    restore = row[keys.index("time_to_restore")]
    assert recovery[0].value == fmt(TILES[keys.index("failed_deployment_recovery")],
                                    group["failed_deployment_recovery_median_hours"])
    assert recovery[1].value == ":gray-badge[not rated by 2019]"
    assert "rates time to restore" in recovery[1].proto.help
    cluster = group["ratings"]["time_to_restore"]["cluster"]
    restore_metric = TILES[keys.index("time_to_restore")]
    assert restore[0].value == fmt(restore_metric, group["time_to_restore_median_hours"])
    assert restore[1].value.endswith(f"[{cluster.capitalize()} (2019)]")


# --- the organisation row and the environments -------------------------------------------------------


def test_organisation_row_of_one_service_and_environment_equals_metrics_json(demo_db: Path) -> None:
    """Filtered to one service and environment the pooled group is that one group: every field."""
    at = open_page("overview", service="storefront", environment="production", **WINDOW)
    (expected,) = metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                               "--group-by", "service", "--service", "storefront", "--environment",
                               "production", "--compare-previous")["groups"]
    group = pooled(service="storefront", environment="production")
    for key, value in expected.items():
        if key != "service":
            assert group[key] == value, key
    row = rows_of(at)[0]
    for metric, (tile, _) in zip(TILES, row, strict=True):
        assert tile.value == fmt(metric, expected[metric.field])
        value = expected[metric.field]
        assert (tile.delta or None) == delta_text(metric, value, expected["delta"][metric.field])


def test_organisation_row_pools_every_service_by_the_definitions(demo_db: Path) -> None:
    """Unfiltered: counts are the sums over the environments, rates the pooled ratio (not a mean),
    and the lead-time median is the median of every counted change of every service."""
    from analytics.metrics.engine import apply_settings
    from analytics.store.connection import open_reader

    at = open_page("overview", **WINDOW)
    envs = env_groups(metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                                   "--group-by", "environment"))
    assert len(envs) >= 2
    org = pooled()
    for count in ("deployments", "changes", "deployment_attempts", "failed_deployments",
                  "rework_deployments", "incidents", "open_incidents"):
        assert org[count] == sum(g[count] for g in envs), count
    attempts = sum(g["deployment_attempts"] for g in envs)
    assert org["change_failure_rate"] == pytest.approx(sum(g["failed_deployments"] for g in envs) / attempts)
    assert org["rework_rate"] == pytest.approx(sum(g["rework_deployments"] for g in envs) / attempts)
    assert org["deployments_per_week"] == pytest.approx(sum(g["deployments_per_week"] for g in envs))
    con = open_reader(demo_db)
    apply_settings(con)
    lead = [r[0] for r in con.execute(
        "SELECT l.lead_hours FROM change_lead_times l JOIN deployments d ON d.id = l.deployment_id "
        "WHERE d.status = 'success' AND l.counts_for_lead_time AND d.deployed_at >= ? AND d.deployed_at < ?",
        [datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)]).fetchall()]
    (days,) = con.execute(
        "SELECT count(DISTINCT CAST(deployed_at AT TIME ZONE 'UTC' AS DATE)) FROM deployments "
        "WHERE status = 'success' AND deployed_at >= ? AND deployed_at < ?",
        [datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)]).fetchone() or (0,)
    con.close()
    assert org["lead_time_median_hours"] == pytest.approx(statistics.median(lead))
    assert org["lead_time_median_hours"] not in [g["lead_time_median_hours"] for g in envs]
    assert org["deployment_days"] == days < sum(g["deployment_days"] for g in envs)
    # the page shows exactly that group, above the environments
    assert [h.value for h in at.subheader][:1 + len(envs)] == [
        "Organisation", *(f"Environment: {g['environment']}" for g in envs)]
    for metric, (tile, _) in zip(TILES, rows_of(at)[0], strict=True):
        assert tile.value == fmt(metric, org[metric.field])
    assert any(c.value.startswith(f"{org['deployments']} deployments on {days} days") for c in at.caption)


def test_time_to_restore_has_its_own_tile(demo_db: Path) -> None:
    at = open_page("overview", **WINDOW)
    envs = env_groups(metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                                   "--group-by", "environment"))
    restore = [m for m in at.metric if m.label == "Time to restore (incidents, median)"]
    assert [m.value for m in restore[1:]] == [fmt(TILES[4], g["time_to_restore_median_hours"]) for g in envs]
    assert any(g["time_to_restore_median_hours"] is not None for g in envs)


def rolling(num: list[float], den: list[float]) -> list[float]:
    out = []
    for i in range(len(num)):
        d = sum(den[max(0, i - 3): i + 1])
        if d:
            out.append(100.0 * sum(num[max(0, i - 3): i + 1]) / d)
    return out


def test_each_tile_has_its_weekly_trend_and_rates_are_smoothed_over_4_weeks(demo_db: Path) -> None:
    at = open_page("overview", **WINDOW)
    weekly = metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"], "--group-by",
                          "environment", "--trend", "week")
    envs = env_groups(metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                                   "--group-by", "environment"))
    for group, row in zip(envs, rows_of(at)[1:], strict=True):
        weeks = sorted((g for g in weekly["groups"] if g["environment"] == group["environment"]),
                       key=lambda g: g["period_start"])
        assert len(weeks) == 14                                   # ISO weeks touching Aug-Oct 2026
        spark = {m.key: list(t.proto.chart_data) for m, (t, _) in zip(TILES, row, strict=True)}
        assert spark["deployment_frequency"] == pytest.approx([w["deployments_per_week"] for w in weeks])
        assert spark["lead_time"] == pytest.approx(
            [w["lead_time_median_hours"] for w in weeks if w["lead_time_median_hours"] is not None])
        failed = [float(w["failed_deployments"]) for w in weeks]
        rework = [float(w["rework_deployments"]) for w in weeks]
        attempts = [float(w["deployment_attempts"]) for w in weeks]
        assert spark["change_failure_rate"] == pytest.approx(rolling(failed, attempts))
        assert spark["rework_rate"] == pytest.approx(rolling(rework, attempts))
        raw = [100.0 * f / a for f, a in zip(failed, attempts, strict=True) if a]
        if any(failed):   # smoothing changed something: a weekly rate swings more
            smoothed = spark["change_failure_rate"]
            assert max(raw) - min(raw) >= max(smoothed) - min(smoothed)
    assert all(len(t[0].proto.chart_data) >= 2 for t in rows_of(at)[0][:3])   # organisation row too


def test_one_unit_per_tile_for_the_value_its_delta_and_what_changed() -> None:
    recovery = next(m for m in METRICS if m.key == "failed_deployment_recovery")
    assert fmt(recovery, 302.4) == "12.6 d"
    assert delta_text(recovery, 302.4, 14.9) == "+0.6 d"              # not "+14.9 h"
    assert delta_text(recovery, 30.0, 14.9) == "+14.9 h"
    assert delta_text(recovery, 0.5, -0.25) == "-15 min"
    assert delta_text(recovery, 302.4, 0.01) is None                  # "+0.0 d" would show an arrow
    line = what_changed({"deployments": 3, recovery.field: 302.4},
                        {"deployments": 2, recovery.field: 6.0}, 90)
    assert "(0.2 d → 12.6 d)" in line
    at = open_page("overview", **WINDOW)
    for metric, tile in zip(TILES * (len(at.metric) // len(TILES)), at.metric, strict=True):
        if metric.kind == "hours" and tile.delta:
            unit = tile.value.rsplit(" ", 1)[1]
            assert tile.delta.endswith(f" {unit}"), (tile.value, tile.delta)
    for m in at.markdown:
        for before, after in re.findall(r"\(([\d.]+ \w+) → ([\d.]+ \w+)\)", m.value):
            assert before.split()[1] == after.split()[1], m.value


# --- teams ------------------------------------------------------------------------------------------


def test_teams_side_by_side_with_ratings_and_trends_sortable(demo_db: Path) -> None:
    at = open_page("teams", **WINDOW)
    expected = metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                            "--group-by", "team")
    teams = {g["team"]: g for g in expected["groups"] if g["deployments"]}
    frame = at.dataframe[0].value
    assert sorted(frame["team"]) == sorted(teams) and len(frame) == len(teams) >= 2   # one row each
    assert list(frame["team"]) == sorted(teams, key=str.lower)                        # default order
    for row in frame.itertuples():
        group = teams[row.team]
        assert row.lead_time == pytest.approx(group["lead_time_median_hours"])
        assert row.change_failure_rate == pytest.approx(100 * group["change_failure_rate"])
        assert row.deployment_frequency == pytest.approx(group["deployments_per_week"])
        cluster = group["ratings"]["lead_time"]["cluster"]
        assert row.lead_time_rating == f"{cluster.capitalize()} (2024)"
        assert row.rework_rate_rating == "not rated by 2024"
        assert row.time_to_restore_rating == "not rated by 2024"
        assert len(row.deployment_frequency_trend) >= 10              # a point per week
        assert len(row.lead_time_trend) >= 2
    at.selectbox(key="teams_sort").set_value("lead_time").run()
    ordered = list(at.dataframe[0].value["lead_time"])
    assert ordered == sorted(ordered)                                 # best (shortest) first
    at.toggle(key="teams_best_first").set_value(False).run()
    assert list(at.dataframe[0].value["lead_time"]) == sorted(ordered, reverse=True)
    at.selectbox(key="teams_sort").set_value("deployment_frequency").run()
    freq = list(at.dataframe[0].value["deployment_frequency"])
    assert freq == sorted(freq)                                       # worst first now: lowest
    assert at.query_params["by"] == "team"
    services = open_page("teams", by="service", **WINDOW)
    by_service = metrics_json(demo_db, "--since", WINDOW["since"], "--until", WINDOW["until"],
                              "--group-by", "service")
    assert sorted(services.dataframe[0].value["service"]) == sorted(
        g["service"] for g in by_service["groups"] if g["deployments"])


# --- cleanups ---------------------------------------------------------------------------------------


def test_pr_breakdown_keeps_a_minimum_height_and_every_phase_in_its_legend(demo_db: Path) -> None:
    one = pd.DataFrame([{"group": "production", "coding": float("nan"), "pickup": 2.0, "review": 3.0,
                         "deploy": 4.0}])
    fig = charts.pr_phase_bars(one)
    assert fig.layout.height >= charts.PR_MIN_HEIGHT
    assert [t.name for t in fig.data] == list(charts.PR_PHASES)
    assert all(t.showlegend for t in fig.data) and fig.layout.showlegend
    at = open_page("throughput", service="storefront", environment="production", **WINDOW)
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "median hours" in json.dumps(json.loads(c.proto.spec)["layout"].get("xaxis", {})))
    assert spec["layout"]["height"] >= charts.PR_MIN_HEIGHT
    assert [t["name"] for t in spec["data"]] == list(charts.PR_PHASES)
    assert all(t["showlegend"] for t in spec["data"])


def test_maturity_over_time_puts_each_measure_on_its_own_axis() -> None:
    at = open_page("maturity", **WINDOW)
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if "GitOps maturity level" in c.proto.spec)
    axes = {t.get("yaxis", "y") for t in spec["data"]}
    names = {t["name"]: t.get("yaxis", "y") for t in spec["data"]}
    assert len(axes) == 3 == len(spec["data"])
    assert names["lead time median (h)"] != names["deployments/week"] != names["maturity level"]
    timeline = next(df.value for df in at.dataframe if list(df.value.columns) == ["period", "as_of", "level"])
    assert all(re.fullmatch(r"Level [0-3]|below Level 0", v) for v in timeline["level"])


def test_maturity_statuses_are_coloured() -> None:
    at = open_page("maturity", **WINDOW)
    ladders = [df for df in at.dataframe if "status" in df.value.columns]
    assert ladders
    for df in ladders:
        styles = df.proto.arrow_data.styler.styles
        statuses = set(df.value["status"])
        if "met" in statuses or "satisfied" in statuses:
            assert "rgba(44, 160, 44" in styles                     # green for met / satisfied
        if "missing" in statuses:
            assert "rgba(214, 39, 40" in styles                     # red for missing
    assert any(df.proto.arrow_data.styler.styles for df in ladders)


@pytest.mark.parametrize("page", ["overview", "teams", "throughput", "stability", "deployments", "maturity",
                                  "data_health", "definitions"])
def test_no_none_is_shown_anywhere(page: str) -> None:
    at = open_page(page, **WINDOW)
    prose = {body for doc in ("metrics.md", "maturity.md") for _, body in doc_sections(doc) or []}
    texts = [e.value for kind in ("markdown", "caption", "subheader", "title", "info", "success", "warning")
             for e in getattr(at, kind) if e.value not in prose]   # the docs' English ("None of ...")
    texts += [m.value for m in at.metric] + [m.label for m in at.metric] + [str(m.delta) for m in at.metric
                                                                          if m.delta]
    assert not [t for t in texts if re.search(r"\bNone\b|\bnan\b|\bNaT\b", str(t))]
    for df in at.dataframe:
        assert df.proto.placeholder == MISSING                          # nulls drawn as "—"
        frame = df.value
        for col in frame.columns:
            if frame[col].dtype == object or str(frame[col].dtype).startswith("str"):
                assert not frame[col].map(lambda v: isinstance(v, str) and v in ("None", "nan")).any(), col


def test_short_ids_in_tables_and_the_full_id_in_the_drill_down(demo_db: Path) -> None:
    assert short_id("argocd:Application/argocd/storefront-production:854593743dc6@20260501T140200Z") == \
        "storefront-production@8545937"
    assert short_id("git-branch:payments-api:main:" + "a" * 40) == "payments-api:main@aaaaaaa"
    assert short_id("INC-1") == "INC-1" and short_id(None) == MISSING
    long = "x" * 20 + "/" + "y" * 40
    assert len(short_id(long)) == 32 and short_id(long) == "x" * 20 + "…" + "y" * 11
    assert len(short_id("flux:Kustomization/flux-system/" + "n" * 40 + ":abcdef1234@20260101T000000Z")) == 32
    at = open_page("deployments", **WINDOW)
    table = at.dataframe[0].value
    assert list(table.columns)[0] == "deployment" and list(table.columns)[-1] == "id"
    assert all(len(s) <= 32 for s in table["deployment"])
    assert any(len(i) > 60 for i in table["id"])                      # the demo's ids are long
    assert list(table["deployment"]) == [short_id(i) for i in table["id"]]
    newest = table.iloc[0]["id"]
    assert f"Deployment id: `{newest}`" in [c.value for c in at.caption]


def test_drill_down_wording_cannot_contradict_itself(demo_db: Path) -> None:
    from analytics.metrics.engine import apply_settings
    from analytics.store.connection import open_reader

    con = open_reader(demo_db)
    apply_settings(con)
    signalled = con.execute(
        "SELECT DISTINCT d.id FROM deployments d JOIN failure_signals f ON f.deployment_id = d.id "
        "WHERE d.status = 'success' AND f.signal = 'incident' AND d.deployed_at >= ? AND d.deployed_at < ? "
        "ORDER BY 1 LIMIT 1",
        [datetime(2026, 8, 1, tzinfo=UTC), datetime(2026, 11, 1, tzinfo=UTC)]).fetchall()
    con.close()
    assert signalled, "the demo has an incident attributed to a rollout that reported success"
    at = open_page("deployments", deployment=signalled[0][0], **WINDOW)
    shown = [m.value for m in at.markdown]
    verdict = next(t for t in shown if t.startswith(("**Counted", "**Not")))
    assert verdict.startswith("**Counted as a failed deployment** because of: incident")
    assert "the rollout itself reported success" in verdict
    assert not [t for t in shown if "status **success**" in t or "Why it is failed" in t]
    ok = open_page("deployments", **WINDOW)
    listing = ok.dataframe[0].value
    clean = listing[listing["outcome"] == "ok"].iloc[0]["id"]
    ok = open_page("deployments", deployment=clean, **WINDOW)
    assert any(m.value.startswith("**Not a failed deployment**") for m in ok.markdown)
    assert not any("Counted as a failed" in m.value for m in ok.markdown)


def test_incident_timeline_is_clipped_to_the_window(demo_db: Path) -> None:
    from tests.store_query import query

    opened = query(demo_db, "SELECT id, created_at FROM incidents WHERE resolved_at IS NULL "
                            "ORDER BY 1 LIMIT 1")
    assert opened, "the demo has an open incident"
    created = pd.Timestamp(opened[0][1])
    since = created.date().isoformat()
    until = (created + pd.Timedelta(days=1)).date().isoformat()
    at = open_page("stability", since=since, until=until)
    spec = next(json.loads(c.proto.spec) for c in at.get("plotly_chart")
                if json.loads(c.proto.spec)["layout"].get("meta") == "incident-timeline")
    lo, hi = pd.Timestamp(since, tz="UTC"), pd.Timestamp(until, tz="UTC")
    assert [pd.Timestamp(x) for x in spec["layout"]["xaxis"]["range"]] == [lo, hi]
    bars = [t for t in spec["data"] if t.get("mode") == "lines"]
    assert bars
    for bar in bars:
        assert all(lo <= pd.Timestamp(x) <= hi for x in bar["x"]), bar["x"]
    assert any(pd.Timestamp(bar["x"][1]) == hi for bar in bars)      # the open one ends at the window
    incidents = pd.DataFrame({"id": ["I"], "title": ["t"], "service": ["s"],
                              "created_at": pd.to_datetime(["2026-03-02"], utc=True), "resolved_at": [pd.NaT],
                              "deployment_id": [None]})
    fig = charts.incident_timeline(incidents, incidents.iloc[0:0].assign(deployed_at=[], outcome=[]),
                                   window=(datetime(2026, 3, 1).date(), datetime(2026, 3, 5).date()))
    assert pd.Timestamp(fig.data[0].x[1]) == pd.Timestamp("2026-03-05", tz="UTC")   # not now
    unclipped = charts.incident_timeline(incidents, incidents.iloc[0:0].assign(deployed_at=[], outcome=[]))
    assert pd.Timestamp(unclipped.data[0].x[1]) > pd.Timestamp("2026-03-05", tz="UTC")


def test_the_overview_answers_at_overview_too() -> None:
    at = open_page("overview", **WINDOW)
    from streamlit.util import calc_hash

    at._page_hash = calc_hash("overview")
    at.run()
    assert not at.exception
    assert [t.value for t in at.title] == ["Overview"]
    assert len(at.metric) >= 2 * len(TILES)


def test_warm_up_computes_every_overview_request(demo_db: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from dashboards import metrics_source, warmup
    from dashboards.filters import Filters, default_window
    from dashboards.source import data_stamp
    from tests.store_query import query

    ((newest,),) = query(demo_db, "SELECT CAST(max(deployed_at) AT TIME ZONE 'UTC' AS DATE) FROM deployments")
    since, until = default_window(newest, newest)
    monkeypatch.setattr(metrics_source, "RESULTS", metrics_source._ResultCache())
    monkeypatch.setattr(warmup, "metrics", lambda db, r: metrics_source.RESULTS.get(db, r))
    monkeypatch.setattr(warmup, "_seen", set())
    assert warmup.warm_default_view(demo_db) is True
    for thread in threading.enumerate():
        if thread.name == "gitops-dora-warmup":
            thread.join(timeout=300)
    requests = warmup.overview_requests(Filters(since, until))
    assert len(requests) == 4 and any(r.pooled for r in requests) and any(r.trend for r in requests)
    for req in requests:
        assert (str(demo_db), data_stamp(demo_db), req) in metrics_source.RESULTS._results


def test_badge_explanations_follow_the_rating_rules() -> None:
    """Synthetic values at the edges of each rule, every year: the words name the same cluster the
    ratings module gives."""
    from dashboards.badges import badge

    cases: list[tuple[str, dict[str, Any]]] = [
        ("lead_time", {"lead_time_median_hours": v}) for v in (0.5, 23.9, 24.0, 200.0, 1000.0, 5000.0)
    ] + [
        ("change_failure_rate", {"change_failure_rate": v}) for v in (0.0, 0.075, 0.15, 0.151, 0.3, 0.5, 0.9)
    ] + [
        ("failed_deployment_recovery", {"failed_deployment_recovery_median_hours": v}) for v in (0.5, 30, 400)
    ] + [
        ("time_to_restore", {"time_to_restore_median_hours": v}) for v in (0.5, 30, 400, 5000)
    ] + [
        ("deployment_frequency", {"deployment_days_per_week_median": d, "deployments_per_month_median": m,
                                  "deployments_per_six_months": s})
        for d, m, s in ((4.0, 20, 100), (1.0, 5, 30), (0.0, 2, 12), (0.0, 0, 2), (0.0, 0, 0.5))
    ]
    by_key = {m.key: m for m in METRICS}
    checked = 0
    for year in YEARS:
        for key, values in cases:
            metric = by_key[key]
            if key not in RATED[year]:
                continue
            fields, result = RATING_INPUT[key]
            group = {**values, "ratings": R.rate_group(values, year)}
            cluster = independent_cluster(key, values, year)
            b = badge(metric, group, year, fmt(metric, values.get(metric.field)))
            assert b.cluster == cluster and b.label == f"{str(cluster).capitalize()} ({year})"
            assert b.help.endswith(f"{str(cluster).capitalize()}.")
            checked += 1
    assert checked > 60


def test_drill_down_changes_are_the_rows_of_the_changes_command(demo_db: Path) -> None:
    """Issue #15: the drill-down runs the audit query of `gitops-dora changes`, so a change's start,
    lead time and outcome read the same in both."""
    listing = open_page("deployments", **WINDOW).dataframe[0].value
    chosen = next(i for i, n in zip(listing["id"], listing["changes"], strict=True) if n and n > 1)
    proc = read_cli(demo_db, "changes", "--deployment", chosen, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    expected = {(r["sha"], round(r["lead_hours"], 6) if r["lead_hours"] is not None else None, r["outcome"])
                for r in json.loads(proc.stdout)}
    assert len(expected) > 1
    at = open_page("deployments", deployment=chosen, **WINDOW)
    shown = next(df.value for df in at.dataframe if "start_source" in df.value.columns)
    assert {"author_name", "commit_url", "outcome", "lead_hours"} <= set(shown.columns)
    got = {(sha, round(float(h), 6) if pd.notna(h) else None, o)
           for sha, h, o in zip(shown["sha"], shown["lead_hours"], shown["outcome"], strict=True)}
    assert got == expected

"""Cross-check with Middleware (docs/metrics.md, "Differences from peers").

Middleware's analytics (``backend/analytics_server/mhq/service``) take deployments and incidents of a
team over an interval. The fixture is shaped like their service inputs (deployments with
``conducted_at``, incidents with ``creation_date``/``resolved_date``), rebuilt here and imported
through gitops-dora's deployments and incidents kinds. Service web, production, all times UTC, 2024:

    deployments at 10:00 on  D0 01-03 (Wed, baseline)  D1 01-04  D2 01-08  D3 01-09  D4 01-10  D5 01-15
    incidents  I1 01-04 11:00 -> 12:00 (1 h)   I2 01-09 12:00 -> 14:00 (2 h)
               I3 01-12 10:00 -> 19:00 (9 h)   I4 01-26 10:00 -> 12:00 (2 h), 11 days after D5

Deployment frequency over [01-03, 01-17) (Middleware: 01-03 .. 01-16 inclusive):
    gitops-dora 6 deployments x 7 / 14 days = 3.0 per week
    Middleware  weekly buckets from the Monday of 01-03 (01-01) to the Sunday of 01-16 (01-21):
                01-01: D0 D1, 01-08: D2 D3 D4, 01-15: D5 -> (2 + 3 + 1) / 3 = 2.0 per week
Change failure rate over [01-03, 01-31):
    gitops-dora I1 -> D1, I2 -> D3, I3 -> D4 (latest success within 7 days); I4 unattributed -> 3/6
    Middleware  incident in [deployment, next deployment): I1 D1, I2 D3, I3 D4, I4 D5 -> 4/6
Recovery over [01-03, 01-31):
    gitops-dora time_to_restore_median_hours = median(1, 2, 9, 2) = 2 h
    Middleware  mean time to recovery = (1 + 2 + 9 + 2) / 4 = 3.5 h
"""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.stability_env import run_cli_inprocess as run_cli
from tests.stability_env import write_csv


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


DEPLOYMENTS = {
    name: t(at)
    for name, at in (
        ("D0", "2024-01-03 10:00"),
        ("D1", "2024-01-04 10:00"),
        ("D2", "2024-01-08 10:00"),
        ("D3", "2024-01-09 10:00"),
        ("D4", "2024-01-10 10:00"),
        ("D5", "2024-01-15 10:00"),
    )
}
INCIDENTS = {
    name: (t(c), t(r))
    for name, c, r in (
        ("I1", "2024-01-04 11:00", "2024-01-04 12:00"),
        ("I2", "2024-01-09 12:00", "2024-01-09 14:00"),
        ("I3", "2024-01-12 10:00", "2024-01-12 19:00"),
        ("I4", "2024-01-26 10:00", "2024-01-26 12:00"),
    )
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("middleware")
    store = tmp / "store.ducklake"
    deployments = write_csv(
        tmp / "deployments.csv",
        ["id", "service", "environment", "revision", "deployed_at"],
        [(n, "web", "production", f"build-{n}", at.isoformat()) for n, at in DEPLOYMENTS.items()],
    )
    incidents = write_csv(
        tmp / "incidents.csv",
        ["id", "service", "created_at", "resolved_at"],
        [(n, "web", c.isoformat(), r.isoformat()) for n, (c, r) in INCIDENTS.items()],
    )
    run_cli(store, "import", str(deployments), str(incidents))
    return store


def group(db: Path, since: str, until: str) -> dict[str, Any]:
    out = run_cli(db, "metrics", "--since", since, "--until", until, "--format", "json").stdout
    groups = json.loads(out)["groups"]
    assert len(groups) == 1
    return dict(groups[0])


# Middleware's rules, transcribed from analytics.py / incidents.py / utils/time.py to check the
# hand-worked values above against the same rows
def monday(moment: datetime) -> datetime:
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    return day - timedelta(days=day.weekday())


def middleware_weekly_frequency(times: list[datetime], start: datetime, end: datetime) -> float:
    """Mean deployments per weekly bucket, every bucket from start's Monday to end's Sunday."""
    buckets: dict[datetime, int] = defaultdict(int)
    week = monday(start)
    while week <= end:
        buckets[week] = 0
        week += timedelta(days=7)
    for moment in times:
        if start <= moment <= end:
            buckets[monday(moment)] += 1
    return sum(buckets.values()) / len(buckets)


def middleware_failed(
    deployments: dict[str, datetime], incidents: dict[str, tuple[datetime, datetime]]
) -> set[str]:
    """get_deployment_incidents_map: an incident belongs to the deployment before it, until the next one."""
    ordered = sorted(deployments.items(), key=lambda d: d[1])
    failed = set()
    for (name, at), nxt in zip(ordered, [*ordered[1:], None], strict=True):
        if any(at <= c and (nxt is None or c < nxt[1]) for c, _ in incidents.values()):
            failed.add(name)
    return failed


def test_deployment_frequency_per_week(db: Path) -> None:
    ours = group(db, "2024-01-03", "2024-01-17")
    assert ours["deployments"] == 6
    assert ours["deployments_per_week"] == pytest.approx(3.0)
    theirs = middleware_weekly_frequency(
        list(DEPLOYMENTS.values()), t("2024-01-03 00:00"), t("2024-01-16 23:59:59")
    )
    assert theirs == pytest.approx(2.0)
    assert ours["deployments_per_week"] - theirs == pytest.approx(1.0)


def test_change_failure_rate_without_an_attribution_limit(db: Path) -> None:
    ours = group(db, "2024-01-03", "2024-01-31")
    assert (ours["failed_deployments"], ours["deployment_attempts"]) == (3, 6)
    assert ours["change_failure_rate"] == pytest.approx(0.5)
    assert ours["unattributed_incidents"] == 1
    listed = json.loads(run_cli(db, "incidents", "--format", "json").stdout)
    assert {r["id"]: r["deployment_id"] for r in listed} == {"I1": "D1", "I2": "D3", "I3": "D4", "I4": None}
    theirs = middleware_failed(DEPLOYMENTS, INCIDENTS)
    assert theirs == {"D1", "D3", "D4", "D5"}
    assert len(theirs) / len(DEPLOYMENTS) == pytest.approx(4 / 6)


def test_restore_time_median_against_mean(db: Path) -> None:
    ours = group(db, "2024-01-03", "2024-01-31")
    assert ours["incidents"] == 4
    assert ours["time_to_restore_median_hours"] == pytest.approx(2.0)
    hours = [(r - c).total_seconds() / 3600 for c, r in INCIDENTS.values()]
    assert hours == [1, 2, 9, 2]
    assert sum(hours) / len(hours) == pytest.approx(3.5)  # Middleware's mean time to recovery

"""A service in several teams (issue #15): ``services[].teams`` in the config, through the real CLI.

Hand-worked example (March 2026, UTC, environment production), config:
shop in team payments and also platform; search in platform.

    shop    s1 03-01 10:00, s2 03-03 10:00, s3 03-05 10:00; incident 03-05 12:00 -> fails s3
    search  q1 03-02 10:00, q2 03-04 10:00

Over [03-01, 03-08): by team, payments has 3 deployments (CFR 1/3) and platform 5 (shop's 3 and
search's 2, CFR 1/5): shop counts in both. Not grouped by team, shop counts once: production has 5
deployments (not 8), CFR 1/5. ``--team platform`` keeps shop too (its stored team is payments).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stability_env import DEPLOYMENT_HEADER, INCIDENT_HEADER, write_csv
from tests.stability_env import run_cli_inprocess as run_cli
from tests.store_query import query

CONFIG = """\
services:
  - name: shop
    team: payments
    teams: [platform]
  - name: search
    team: platform
"""


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("teams")
    db, config = tmp / "store.ducklake", tmp / "gitops-dora.yaml"
    config.write_text(CONFIG)
    deploys = write_csv(tmp / "deployments.csv", DEPLOYMENT_HEADER, [
        (d, svc, "production", f"v{d}", f"2026-03-0{day}T10:00:00Z", "success", "")
        for d, svc, day in (("s1", "shop", 1), ("s2", "shop", 3), ("s3", "shop", 5),
                            ("q1", "search", 2), ("q2", "search", 4))])
    incidents = write_csv(tmp / "incidents.csv", INCIDENT_HEADER, [
        ("i1", "shop", "production", "2026-03-05T12:00:00Z", "2026-03-05T13:00:00Z", "down", "")])
    run_cli(db, "import", str(deploys), str(incidents), config=config)
    return db, config


def groups(store: tuple[Path, Path], *args: str) -> dict[Any, dict[str, Any]]:
    db, config = store
    out = run_cli(db, "metrics", "--since", "2026-03-01", "--until", "2026-03-08", "--format", "json", *args,
                  config=config).stdout
    report = json.loads(out)
    dims = report["group_by"]
    return {tuple(g[d] for d in dims): g for g in report["groups"]}


def test_a_service_counts_for_each_of_its_teams(store: tuple[Path, Path]) -> None:
    by_team = groups(store, "--group-by", "team")
    assert sorted(by_team) == [("payments",), ("platform",)]
    assert by_team[("payments",)]["deployments"] == 3
    assert by_team[("payments",)]["change_failure_rate"] == pytest.approx(1 / 3)
    assert by_team[("platform",)]["deployments"] == 5
    assert by_team[("platform",)]["change_failure_rate"] == pytest.approx(1 / 5)
    assert query(store[0], "SELECT name, team FROM services ORDER BY name") == [
        ("search", "platform"), ("shop", "payments")]


def test_without_team_grouping_a_service_counts_once(store: tuple[Path, Path]) -> None:
    by_env = groups(store, "--group-by", "environment")
    assert by_env[("production",)]["deployments"] == 5
    assert by_env[("production",)]["change_failure_rate"] == pytest.approx(1 / 5)


def test_team_filter_keeps_services_listed_in_that_team(store: tuple[Path, Path]) -> None:
    platform = groups(store, "--group-by", "service", "--team", "platform")
    assert {k: g["deployments"] for k, g in platform.items()} == {("search",): 2, ("shop",): 3}
    payments = groups(store, "--group-by", "environment", "--team", "payments")
    assert payments[("production",)]["deployments"] == 3


def test_listings_filtered_by_a_further_team_keep_its_services(store: tuple[Path, Path]) -> None:
    """deployments, incidents and changes --team agree with the metrics: shop is in platform too."""
    db, config = store
    listed = json.loads(run_cli(db, "deployments", "--team", "platform", "--format", "json",
                                config=config).stdout)
    assert sorted(r["id"] for r in listed) == ["q1", "q2", "s1", "s2", "s3"]
    only_payments = json.loads(run_cli(db, "deployments", "--team", "payments", "--format", "json",
                                       config=config).stdout)
    assert sorted(r["id"] for r in only_payments) == ["s1", "s2", "s3"]
    incidents = json.loads(run_cli(db, "incidents", "--team", "platform", "--format", "json",
                                   config=config).stdout)
    assert [r["id"] for r in incidents] == ["i1"]
    changes = run_cli(db, "changes", "--team", "platform", "--format", "json", config=config)
    assert json.loads(changes.stdout) == []  # no commits were imported: nothing, and no error

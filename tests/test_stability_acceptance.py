"""ACCEPTANCE: releases of a real git repository collected as deployments, plus a hand-written
incidents CSV covering every attribution rule; ``gitops-dora metrics --format json`` must give
exactly the change failure rate, recovery median and time-to-restore median worked out by hand
from the definitions in docs/metrics.md.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gitrepo import GitRepo
from tests.stability_env import INCIDENT_HEADER, write_csv
from tests.stability_env import run_cli_inprocess as run_cli


def test_metrics_json_matches_the_hand_computation(tmp_path: Path, make_repo: Callable[..., GitRepo]) -> None:
    # Releases of service "shop" (production), each an annotated tag = one deployment:
    #   D1 v1.0.0 04-01T12  c1 init                          (baseline)
    #   D2 v1.1.0 04-03T12  c2 cart, c3 wishlist
    #   D3 v1.2.0 04-05T12  c4 search
    #   D4 v1.2.1 04-06T06  r1 = revert(c4)                  -> D3 has a revert signal; D4 is rework
    #   D5 v1.3.0 04-08T12  c5 payments
    #   D6 v1.3.1 04-20T12  c6 "fix: hotfix null total"      -> rework (hotfix pattern)
    #   D7 v1.4.0 04-25T12  c7 reviews
    repo = make_repo("shop")
    repo.commit("init", at="2024-04-01T00:00:00+00:00")
    repo.annotated_tag("v1.0.0", at="2024-04-01T12:00:00+00:00")
    c2 = repo.commit("feature: cart", at="2024-04-02T00:00:00+00:00")
    repo.commit("feature: wishlist", at="2024-04-03T00:00:00+00:00")
    repo.annotated_tag("v1.1.0", at="2024-04-03T12:00:00+00:00")
    c4 = repo.commit("feature: search", at="2024-04-05T00:00:00+00:00")
    repo.annotated_tag("v1.2.0", at="2024-04-05T12:00:00+00:00")
    repo.revert(c4, at="2024-04-06T00:00:00+00:00")
    repo.annotated_tag("v1.2.1", at="2024-04-06T06:00:00+00:00")
    repo.commit("feature: payments", at="2024-04-08T00:00:00+00:00")
    repo.annotated_tag("v1.3.0", at="2024-04-08T12:00:00+00:00")
    repo.commit("fix: hotfix null total", at="2024-04-20T00:00:00+00:00")
    repo.annotated_tag("v1.3.1", at="2024-04-20T12:00:00+00:00")
    repo.commit("feature: reviews", at="2024-04-25T00:00:00+00:00")
    repo.annotated_tag("v1.4.0", at="2024-04-25T12:00:00+00:00")

    db = tmp_path / "dora.duckdb"
    run_cli(db, "collect", "git", str(repo.path), "--service", "shop", "--environment", "production",
            "--deploy-tags", r"^v\d+\.\d+\.\d+$")
    # Incidents (rule -> deployment; time to restore = resolved - created):
    #   INC-1 root cause c2 (10-char sha), created 04-09T00 (the gap rule would pick D5)
    #         -> rule 1 -> D2; restore 6 h
    #   INC-2 root cause "v1.3.0" (a revision: the tag) -> D5; restore 2 h
    #   INC-3 no root cause, 04-21T00, 12 h after D6 -> rule 2 -> D6; restore 4 h
    #   INC-4 no root cause, 04-22T00 -> D6 as well (two incidents, one failed deployment); 10 h
    #   INC-5 04-17T00: D5 is 8.5 days earlier, beyond the 7-day gap -> unattributed; 1 h
    #   INC-6 04-26T00, still open -> D7 (failed, not recovered); no restore time
    #   INC-7 root cause "deadbeefcafe" matches nothing -> falls through to rule 2 -> D3; 3 h
    incidents = write_csv(tmp_path / "incidents.csv", INCIDENT_HEADER, [
        ("INC-1", "shop", "production", "2024-04-09T00:00:00Z", "2024-04-09T06:00:00Z", "cart totals wrong",
         c2[:10]),
        ("INC-2", "shop", "production", "2024-04-08T13:00:00Z", "2024-04-08T15:00:00Z", "payments 500",
         "v1.3.0"),
        ("INC-3", "shop", "production", "2024-04-21T00:00:00Z", "2024-04-21T04:00:00Z", "slow pages", ""),
        ("INC-4", "shop", "production", "2024-04-22T00:00:00Z", "2024-04-22T10:00:00Z", "slow again", ""),
        ("INC-5", "shop", "production", "2024-04-17T00:00:00Z", "2024-04-17T01:00:00Z", "DNS provider", ""),
        ("INC-6", "shop", "production", "2024-04-26T00:00:00Z", "", "reviews missing", ""),
        ("INC-7", "shop", "production", "2024-04-05T20:00:00Z", "2024-04-05T23:00:00Z", "search empty",
         "deadbeefcafe"),
    ])
    run_cli(db, "import", str(incidents))

    listed = {i["id"]: (i["attribution_rule"], i["deployment_id"]) for i in
              json.loads(run_cli(db, "incidents", "--format", "json").stdout)}
    assert listed == {
        "INC-1": ("root_cause", "git-tag:shop:v1.1.0"), "INC-2": ("root_cause", "git-tag:shop:v1.3.0"),
        "INC-3": ("gap", "git-tag:shop:v1.3.1"), "INC-4": ("gap", "git-tag:shop:v1.3.1"),
        "INC-5": ("unattributed", None), "INC-6": ("gap", "git-tag:shop:v1.4.0"),
        "INC-7": ("gap", "git-tag:shop:v1.2.0"),
    }

    payload = json.loads(run_cli(db, "metrics", "--since", "2024-04-01", "--until", "2024-05-01",
                                 "--format", "json").stdout)
    (group,) = payload["groups"]
    assert (group["service"], group["environment"]) == ("shop", "production")
    # Failed: D2 (INC-1), D3 (INC-7 and the revert), D5 (INC-2), D6 (INC-3, INC-4), D7 (INC-6).
    # CFR = 5 failed / 7 deployments.
    assert group["deployment_attempts"] == 7
    assert group["failed_deployments"] == 5
    assert group["change_failure_rate"] == pytest.approx(5 / 7)
    # Recovery (incidents first: the latest resolution of the deployment's incidents):
    #   D2 04-03T12 -> 04-09T06 = 138 h; D3 04-05T12 -> 04-05T23 = 11 h (INC-7; the revert
    #   deployment at 18 h is not used when incidents exist); D5 04-08T12 -> 04-08T15 = 3 h;
    #   D6 04-20T12 -> 04-22T10 = 46 h; D7 open -> left out.
    #   sorted 3, 11, 46, 138 -> median (11 + 46) / 2 = 28.5 h;
    #   p90 = quantile_cont: position 0.9 * 3 = 2.7 -> 46 + 0.7 * (138 - 46) = 110.4 h
    assert group["failed_deployment_recovery_median_hours"] == pytest.approx(28.5)
    assert group["failed_deployment_recovery_p90_hours"] == pytest.approx(110.4)
    assert group["unrecovered_failed_deployments"] == 1
    # Time to restore, incidents created in the window and resolved: 6, 2, 4, 10, 1, 3
    #   sorted 1, 2, 3, 4, 6, 10 -> median (3 + 4) / 2 = 3.5 h
    assert group["time_to_restore_median_hours"] == pytest.approx(3.5)
    assert (group["incidents"], group["unattributed_incidents"], group["open_incidents"]) == (7, 1, 1)
    # Rework: D4 (ships the revert r1) and D6 (hotfix) -> 2 / 7
    assert group["rework_deployments"] == 2
    assert group["rework_rate"] == pytest.approx(2 / 7)
    # Deployment days in the four whole weeks from 04-01: 4 (04-01, 03, 05, 06), 1, 1, 1 -> median 1
    assert group["deployment_days_per_week_median"] == pytest.approx(1.0)

    # Ratings against the default (latest, 2024) table: CFR 71.4% is nearest Low's 40%;
    # recovery 28.5 h is "1 day to 1 week", which no 2024 cluster published: the best cluster
    # below it is Low (1 week - 1 month).
    ratings = group["ratings"]
    cfr_rating = ratings["change_failure_rate"]
    assert (cfr_rating["cluster"], cfr_rating["year"]) == ("low", 2024)
    assert ratings["failed_deployment_recovery_time"]["bucket"] == "1d_1w"
    assert ratings["failed_deployment_recovery_time"]["cluster"] == "low"
    assert ratings["deployment_frequency"]["bucket"] == "daily_weekly"
    # --benchmark 2021 rates the pre-2023 time to restore instead: 3.5 h < 1 day -> High
    old = json.loads(run_cli(db, "metrics", "--since", "2024-04-01", "--until", "2024-05-01",
                             "--benchmark", "2021", "--format", "json").stdout)["groups"][0]["ratings"]
    assert (old["time_to_restore"]["bucket"], old["time_to_restore"]["cluster"]) == ("1h_1d", "high")

"""Stability metrics, one case per test, expected values worked by hand in the comments.

Inputs go through the real import command (and ``collect git`` for real repositories); the
figures come from the metrics engine on the published snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import pytest

from analytics.config import load_config
from analytics.metrics.engine import apply_settings
from analytics.store.connection import open_writer
from tests.gitrepo import GitRepo
from tests.stability_env import (
    DEPLOYMENT_HEADER,
    INCIDENT_HEADER,
    Reads,
    copied_snapshot,
    gitops,
    only_group,
    rows,
    write_csv,
)
from tests.store_fixture import DemoStore, copy_demo, copy_store
from tests.typer_once import command_built_once

pytestmark = pytest.mark.usefixtures("one_duckdb_thread")  # tests/conftest.py


@pytest.fixture(scope="module", autouse=True)
def _command_built_once() -> Iterator[None]:
    """The click command of the in-process imports built once for the module (tests/typer_once.py),
    not on every ``gitops`` call; each call still parses its arguments in a fresh click context."""
    with command_built_once():
        yield


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A new store with nothing in it, made once for the module: each test writes to its own copy
    (tests/store_fixture.copy_store, 0.01 CPU-s) instead of creating the catalog and its tables in
    its first import (0.04-0.05). What each test checks is its inputs' metrics, not the store's birth."""
    db = tmp_path_factory.mktemp("empty") / "dora.duckdb"
    with open_writer(db, source="test"):
        pass
    return db


@pytest.fixture
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """The test's store: a copy of :func:`empty_store` for a test whose first command is an import;
    no store yet for one that builds a repository (``make_repo``) and starts with ``collect git``,
    whose new-store path is cheaper than a collection into an empty store (0.15 against 0.25 CPU-s
    for these repositories, measured in a loop; an import is the other way: 0.22 new, 0.18 copied)."""
    if "make_repo" in request.fixturenames:
        return tmp_path / "dora.duckdb"
    return copy_store(request.getfixturevalue("empty_store"), tmp_path / "dora.duckdb")


def _import(db: Path, tmp_path: Path, deployments: Sequence[Sequence[object]],
            incidents: Sequence[Sequence[object]], config: Path | None = None) -> None:
    files = []
    if deployments:
        files.append(str(write_csv(tmp_path / "deployments.csv", DEPLOYMENT_HEADER, deployments)))
    if incidents:
        files.append(str(write_csv(tmp_path / "incidents.csv", INCIDENT_HEADER, incidents)))
    gitops(db, "import", *files, config=config)


def _attribution(s: Reads) -> dict[str, tuple[str, str | None]]:
    found = s.rows("SELECT incident_id, attribution_rule, deployment_id FROM incident_attribution")
    return {r[0]: (r[1], r[2]) for r in found}


def test_several_incidents_on_one_deployment(db: Path, tmp_path: Path) -> None:
    # D1 03-01, D2 03-04, D3 03-10 (pay/production). Three incidents after D2 and before D3 all go to
    # D2 by the gap rule. D2 is ONE failed deployment: CFR = 1 failed / 3 deployments.
    # D2 recovers when the last of its incidents is resolved: 03-06T06:00 - 03-04T00:00 = 54 h.
    # Time to restore per incident: I1 2 h, I2 12 h, I3 6 h -> median 6 h.
    _import(db, tmp_path, [
        ("D1", "pay", "production", "a1", "2024-03-01T00:00:00Z", "success", ""),
        ("D2", "pay", "production", "a2", "2024-03-04T00:00:00Z", "success", ""),
        ("D3", "pay", "production", "a3", "2024-03-10T00:00:00Z", "success", ""),
    ], [
        ("I1", "pay", "production", "2024-03-04T06:00:00Z", "2024-03-04T08:00:00Z", "errors", ""),
        ("I2", "pay", "production", "2024-03-05T00:00:00Z", "2024-03-05T12:00:00Z", "latency", ""),
        ("I3", "pay", "production", "2024-03-06T00:00:00Z", "2024-03-06T06:00:00Z", "timeouts", ""),
    ])
    with copied_snapshot(db) as s:
        assert _attribution(s) == {"I1": ("gap", "D2"), "I2": ("gap", "D2"), "I3": ("gap", "D2")}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert g["deployment_attempts"] == 3
        assert g["failed_deployments"] == 1
        assert g["change_failure_rate"] == pytest.approx(1 / 3)
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(54.0)
        assert g["failed_deployment_recovery_p90_hours"] == pytest.approx(54.0)
        assert g["incidents"] == 3
        assert g["unattributed_incidents"] == 0
        assert g["time_to_restore_median_hours"] == pytest.approx(6.0)
        signals = s.rows("SELECT deployment_id, signal, evidence FROM failure_signals")
        assert signals == [("D2", "incident", ["I1", "I2", "I3"])]


def test_incident_outside_the_attribution_gap(db: Path, tmp_path: Path) -> None:
    # D1 at 03-01T00:00. I_edge is created exactly 7 days later (gap is inclusive) -> D1 by gap.
    # I_late is created 7 days and 1 second later -> unattributed, but still counted.
    # Default gap: incidents 2, unattributed 1, failed 1 of 1 deployment -> CFR 1.0.
    # With max_attribution_gap: 1d both are unattributed -> failed 0, CFR 0.0.
    deployments = [("D1", "pay", "production", "a1", "2024-03-01T00:00:00Z", "success", "")]
    incidents = [
        ("I_edge", "pay", "production", "2024-03-08T00:00:00Z", "2024-03-08T01:00:00Z", "edge", ""),
        ("I_late", "pay", "production", "2024-03-08T00:00:01Z", "2024-03-08T02:00:01Z", "late", ""),
    ]
    _import(db, tmp_path, deployments, incidents)
    config = tmp_path / "gitops-dora.yaml"
    config.write_text("incidents:\n  max_attribution_gap: 1d\n")
    with copied_snapshot(db) as s:
        assert _attribution(s) == {"I_edge": ("gap", "D1"), "I_late": ("unattributed", None)}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert (g["incidents"], g["unattributed_incidents"], g["failed_deployments"]) == (2, 1, 1)
        assert g["change_failure_rate"] == 1.0

        # the same snapshot with the 1-day gap, on the same reader: the config's settings applied
        # as copied_snapshot(db, config) applies them (the views read them at every query)
        s = Reads(s.con, load_config(config))
        apply_settings(s.con, s.config)
        assert _attribution(s) == {"I_edge": ("unattributed", None), "I_late": ("unattributed", None)}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert (g["incidents"], g["unattributed_incidents"], g["failed_deployments"]) == (2, 2, 0)
        assert g["change_failure_rate"] == 0.0


def _tagged_repo(make_repo: Callable[..., GitRepo]) -> tuple[GitRepo, dict[str, str]]:
    repo = make_repo("app")
    shas = {"c1": repo.commit("base", at="2024-03-01T00:00:00+00:00")}
    repo.annotated_tag("v1.0.0", at="2024-03-01T12:00:00+00:00")
    shas["c2"] = repo.commit("feature: new checkout", at="2024-03-02T00:00:00+00:00")
    shas["c3"] = repo.commit("feature: coupons", at="2024-03-03T00:00:00+00:00")
    repo.annotated_tag("v1.1.0", at="2024-03-05T00:00:00+00:00")
    shas["c4"] = repo.commit("chore: bump deps", at="2024-03-06T00:00:00+00:00")
    repo.annotated_tag("v1.2.0", at="2024-03-10T00:00:00+00:00")
    return repo, shas


def test_root_cause_shipped_by_a_later_release(db: Path, tmp_path: Path,
                                               make_repo: Callable[..., GitRepo]) -> None:
    # Releases v1.0.0 (03-01T12), v1.1.0 (03-05, ships c2 and c3), v1.2.0 (03-10, ships c4).
    # I_after (03-12) names c2 by an 8-character sha: the gap rule would pick v1.2.0, the root
    # cause gives v1.1.0, the first release that shipped c2.
    # I_before (03-04, before v1.1.0 existed) names c3: the gap rule would pick v1.0.0; the root
    # cause gives the LATER release v1.1.0 that shipped c3.
    # v1.1.0 failed once (CFR 1/3); recovered at the later resolution 03-12T04:00:
    # 03-12T04:00 - 03-05T00:00 = 7 days 4 hours = 172 h.
    repo, shas = _tagged_repo(make_repo)
    gitops(db, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", r"^v\d+\.\d+\.\d+$")
    _import(db, tmp_path, [], [
        ("I_after", "app", "production", "2024-03-12T00:00:00Z", "2024-03-12T04:00:00Z", "bad",
         shas["c2"][:8]),
        ("I_before", "app", "production", "2024-03-04T00:00:00Z", "2024-03-04T06:00:00Z", "bad",
         shas["c3"]),
    ])
    with copied_snapshot(db) as s:
        v110 = s.rows("SELECT id FROM deployments WHERE source_ref = 'v1.1.0'")[0][0]
        assert _attribution(s) == {"I_after": ("root_cause", v110), "I_before": ("root_cause", v110)}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="app", environment="production")
        assert g["deployment_attempts"] == 3
        assert g["failed_deployments"] == 1
        assert g["change_failure_rate"] == pytest.approx(1 / 3)
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(172.0)


def test_two_production_environments(db: Path, tmp_path: Path) -> None:
    # pay deploys to prod-eu and prod-us, both production. I_us (prod-us, 03-03T12) goes to the
    # latest prod-us deployment (D_us1 at 03-01T06), not to D_eu2 (03-03T00), the latest overall.
    # I_eu (prod-eu, 03-03T01) goes to D_eu2.
    # Per environment: 2 deployments, 1 failed -> CFR 0.5 each. By service only: 4, 2 -> 0.5.
    # Recovery: D_eu2 03-03T00 -> 03-03T03 = 3 h; D_us1 03-01T06 -> 03-03T18 = 60 h; median 31.5 h.
    config = tmp_path / "gitops-dora.yaml"
    config.write_text(
        "environments:\n  - {name: prod-eu, production: true}\n  - {name: prod-us, production: true}\n"
    )
    _import(db, tmp_path, [
        ("D_eu1", "pay", "prod-eu", "a1", "2024-03-01T00:00:00Z", "success", ""),
        ("D_us1", "pay", "prod-us", "a1", "2024-03-01T06:00:00Z", "success", ""),
        ("D_eu2", "pay", "prod-eu", "a2", "2024-03-03T00:00:00Z", "success", ""),
        ("D_us2", "pay", "prod-us", "a2", "2024-03-04T00:00:00Z", "success", ""),
    ], [
        ("I_us", "pay", "prod-us", "2024-03-03T12:00:00Z", "2024-03-03T18:00:00Z", "us down", ""),
        ("I_eu", "pay", "prod-eu", "2024-03-03T01:00:00Z", "2024-03-03T03:00:00Z", "eu slow", ""),
    ], config=config)
    with copied_snapshot(db, config) as s:
        assert _attribution(s) == {"I_us": ("gap", "D_us1"), "I_eu": ("gap", "D_eu2")}
        assert s.rows("SELECT name, is_production FROM environments ORDER BY name") == [
            ("prod-eu", True), ("prod-us", True)]
        groups = s.metrics("2024-03-01", "2024-04-01")
        for env in ("prod-eu", "prod-us"):
            g = only_group(groups, service="pay", environment=env)
            figures = (g["deployment_attempts"], g["failed_deployments"], g["change_failure_rate"])
            assert figures == (2, 1, 0.5)
        by_service = s.metrics("2024-03-01", "2024-04-01", group_by=("service",))
        g = only_group(by_service, service="pay")
        assert (g["deployment_attempts"], g["failed_deployments"], g["change_failure_rate"]) == (4, 2, 0.5)
        assert g["incidents"] == 2
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(31.5)


def test_revert_chain(db: Path, tmp_path: Path, make_repo: Callable[..., GitRepo]) -> None:
    # v1 base | v2 ships c2 | v3 ships r1 = revert(c2) | v4 ships r2 = revert(r1), a re-land |
    # v5 ships r3 = revert(r2).
    # Depth: r1 = 1 (genuine revert), r2 = 2 (re-land), r3 = 3 (genuine revert).
    # Failed: v2 (c2 reverted by v3, recovered 24 h later) and v4 (r2 reverted by v5, 24 h);
    # v3 is NOT failed: its change r1 was undone by a re-land, not by a fix.
    # CFR 2/5 = 0.4; recovery median 24 h. Rework: v3 and v5 carry genuine reverts -> 2/5 = 0.4.
    repo = make_repo("app")
    repo.commit("base", at="2024-03-01T00:00:00+00:00")
    repo.annotated_tag("v1", at="2024-03-01T12:00:00+00:00")
    c2 = repo.commit("feature: fancy cache", at="2024-03-02T00:00:00+00:00")
    repo.annotated_tag("v2", at="2024-03-02T12:00:00+00:00")
    r1 = repo.revert(c2, at="2024-03-03T00:00:00+00:00")
    repo.annotated_tag("v3", at="2024-03-03T12:00:00+00:00")
    r2 = repo.revert(r1, at="2024-03-05T00:00:00+00:00")
    repo.annotated_tag("v4", at="2024-03-05T12:00:00+00:00")
    repo.revert(r2, at="2024-03-06T00:00:00+00:00")
    repo.annotated_tag("v5", at="2024-03-06T12:00:00+00:00")
    gitops(db, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", r"^v\d+$")
    with copied_snapshot(db) as s:
        outcome = dict((r[0], (r[1], r[2])) for r in s.rows(
            "SELECT d.source_ref, o.is_failed, o.is_rework FROM deployment_outcomes o "
            "JOIN deployments d ON d.id = o.id"))
        assert outcome == {"v1": (False, False), "v2": (True, False), "v3": (False, True),
                           "v4": (True, False), "v5": (False, True)}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="app", environment="production")
        assert g["deployment_attempts"] == 5
        assert g["failed_deployments"] == 2
        assert g["change_failure_rate"] == pytest.approx(0.4)
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(24.0)
        assert g["rework_deployments"] == 2
        assert g["rework_rate"] == pytest.approx(0.4)


def test_revert_in_the_same_deployment_is_neither_failure_nor_rework(
    db: Path, tmp_path: Path, make_repo: Callable[..., GitRepo]
) -> None:
    # v1 base | c2 and its revert r1 both land before v2, so v2 ships c2 and r1 together: the bad
    # change never reached users. v2 is not failed and not rework; v1 neither. CFR 0/2, rework 0/2.
    repo = make_repo("app")
    repo.commit("base", at="2024-03-01T00:00:00+00:00")
    repo.annotated_tag("v1", at="2024-03-01T12:00:00+00:00")
    c2 = repo.commit("feature: risky", at="2024-03-02T00:00:00+00:00")
    repo.revert(c2, at="2024-03-02T03:00:00+00:00")
    repo.annotated_tag("v2", at="2024-03-02T12:00:00+00:00")
    gitops(db, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", r"^v\d+$")
    with copied_snapshot(db) as s:
        outcome = dict((r[0], (r[1], r[2])) for r in s.rows(
            "SELECT d.source_ref, o.is_failed, o.is_rework FROM deployment_outcomes o "
            "JOIN deployments d ON d.id = o.id"))
        assert outcome == {"v1": (False, False), "v2": (False, False)}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="app", environment="production")
        assert (g["failed_deployments"], g["rework_deployments"]) == (0, 0)
        assert g["rework_rate"] == pytest.approx(0.0)


def test_deployment_with_no_new_commits(db: Path, tmp_path: Path, make_repo: Callable[..., GitRepo]) -> None:
    # v1 (c1, 03-01), v2 (c2, 03-02), v2.0.1 re-tags c2 on 03-03: a redeploy that ships nothing.
    # It is still a deployment (3 attempts) and the latest one before I1 (03-03T06), so the gap
    # rule charges I1 to it: failed 1 of 3, CFR 1/3; recovery 03-03T00 -> 03-03T10 = 10 h.
    repo = make_repo("app")
    repo.commit("one", at="2024-03-01T00:00:00+00:00")
    repo.annotated_tag("v1", at="2024-03-01T00:00:00+00:00")
    repo.commit("two", at="2024-03-02T00:00:00+00:00")
    repo.annotated_tag("v2", at="2024-03-02T00:00:00+00:00")
    repo.annotated_tag("v2.0.1", at="2024-03-03T00:00:00+00:00")
    gitops(db, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", r"^v[\d.]+$")
    _import(db, tmp_path, [], [
        ("I1", "app", "production", "2024-03-03T06:00:00Z", "2024-03-03T10:00:00Z", "oops", ""),
    ])
    with copied_snapshot(db) as s:
        redeploy = s.rows("SELECT id FROM deployments WHERE source_ref = 'v2.0.1'")[0][0]
        assert s.rows("SELECT changes FROM deployment_facts WHERE id = ?", [redeploy]) == [(0,)]
        assert _attribution(s) == {"I1": ("gap", redeploy)}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="app", environment="production")
        assert (g["deployment_attempts"], g["failed_deployments"]) == (3, 1)
        assert g["change_failure_rate"] == pytest.approx(1 / 3)
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(10.0)


def test_open_incident(db: Path, tmp_path: Path) -> None:
    # I1 (03-02, still open) -> D1; I2 (03-06T00 -> 03-06T10) -> D2.
    # Both deployments failed: CFR 2/2 = 1.0. D1 has not recovered: left out of the recovery
    # median and counted in unrecovered_failed_deployments. D2: 03-05 -> 03-06T10 = 34 h.
    # Time to restore counts resolved incidents only: 10 h; open_incidents 1.
    _import(db, tmp_path, [
        ("D1", "pay", "production", "a1", "2024-03-01T00:00:00Z", "success", ""),
        ("D2", "pay", "production", "a2", "2024-03-05T00:00:00Z", "success", ""),
    ], [
        ("I1", "pay", "production", "2024-03-02T00:00:00Z", "", "still burning", ""),
        ("I2", "pay", "production", "2024-03-06T00:00:00Z", "2024-03-06T10:00:00Z", "fixed", ""),
    ])
    with copied_snapshot(db) as s:
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert (g["failed_deployments"], g["change_failure_rate"]) == (2, 1.0)
        assert g["unrecovered_failed_deployments"] == 1
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(34.0)
        assert (g["incidents"], g["open_incidents"]) == (2, 1)
        assert g["time_to_restore_median_hours"] == pytest.approx(10.0)
        assert s.rows("SELECT recovered_at FROM deployment_outcomes WHERE id = 'D1'") == [(None,)]


def test_window_edge_exactly_on_a_deployment(db: Path, tmp_path: Path) -> None:
    # D1 at 03-01T00:00, D2 exactly at 03-10T00:00. I0 begins at the same instant as D2 and
    # goes to D2 ("at or before"); I1 (03-10T01) also goes to D2.
    # [03-01, 03-10): D1 only (since is inclusive, until exclusive): 1 attempt, 0 failed, CFR 0;
    #   no incident began in the window.
    # [03-10, 03-20): D2 only: 1 attempt, 1 failed, CFR 1.0; incidents I0 and I1 -> 2.
    _import(db, tmp_path, [
        ("D1", "pay", "production", "a1", "2024-03-01T00:00:00Z", "success", ""),
        ("D2", "pay", "production", "a2", "2024-03-10T00:00:00Z", "success", ""),
    ], [
        ("I0", "pay", "production", "2024-03-10T00:00:00Z", "2024-03-10T02:00:00Z", "at once", ""),
        ("I1", "pay", "production", "2024-03-10T01:00:00Z", "2024-03-10T02:00:00Z", "soon", ""),
    ])
    with copied_snapshot(db) as s:
        assert _attribution(s) == {"I0": ("gap", "D2"), "I1": ("gap", "D2")}
        first = only_group(s.metrics("2024-03-01", "2024-03-10"), service="pay", environment="production")
        assert (first["deployment_attempts"], first["failed_deployments"]) == (1, 0)
        assert first["change_failure_rate"] == 0.0
        assert first["incidents"] == 0
        second = only_group(s.metrics("2024-03-10", "2024-03-20"), service="pay", environment="production")
        assert (second["deployment_attempts"], second["failed_deployments"]) == (1, 1)
        assert second["change_failure_rate"] == 1.0
        assert second["incidents"] == 2


def test_failed_rollout_and_rollback_signals_are_kept_apart(db: Path, tmp_path: Path) -> None:
    # D1 ok (03-01), D2 a failed rollout (03-02), D3 ok (03-03) restores service, plus an incident
    # on D3 (03-03T01 -> 03-03T02). Signals: D2 reconciler_failed (recovered by D3: 24 h),
    # D3 incident (recovery from D3's deployment time: 03-03T00 -> 03-03T02 = 2 h).
    # Attempts 3 (the failed rollout counts in the denominator), failed 2 -> CFR 2/3, never > 1.
    _import(db, tmp_path, [
        ("D1", "pay", "production", "a1", "2024-03-01T00:00:00Z", "success", ""),
        ("D2", "pay", "production", "a2", "2024-03-02T00:00:00Z", "failed", ""),
        ("D3", "pay", "production", "a3", "2024-03-03T00:00:00Z", "success", ""),
    ], [
        ("I1", "pay", "production", "2024-03-03T01:00:00Z", "2024-03-03T02:00:00Z", "blip", ""),
    ])
    with copied_snapshot(db) as s:
        signals = s.rows("SELECT deployment_id, signal, restored_by FROM failure_signals ORDER BY 1, 2")
        assert signals == [("D2", "reconciler_failed", "D3"), ("D3", "incident", None)]
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert g["deployments"] == 2  # throughput counts successful deployments only
        assert (g["deployment_attempts"], g["failed_deployments"]) == (3, 2)
        assert g["change_failure_rate"] == pytest.approx(2 / 3)
        # recoveries 24 h and 2 h -> median 13 h
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(13.0)


def test_rollback_marks_the_replaced_deployment_failed(db: Path, tmp_path: Path) -> None:
    # D1 r1 (03-01), D2 r2 (03-02), D3 rolls back to r1 (03-02T06), D4 r3 (03-04).
    # The rollback signal goes to D2, the deployment running when D3 rolled back; recovered at D3:
    # 03-02T00 -> 03-02T06 = 6 h. D3 is rework (a rollback), not a failure.
    # Attempts 4, failed 1 -> CFR 0.25; rework 1 -> 0.25.
    deployments = tmp_path / "deployments.csv"
    deployments.write_text(
        "id,service,environment,revision,deployed_at,status,repository,rollback\n"
        "D1,pay,production,r1,2024-03-01T00:00:00Z,success,,\n"
        "D2,pay,production,r2,2024-03-02T00:00:00Z,success,,false\n"
        "D3,pay,production,r1,2024-03-02T06:00:00Z,success,,true\n"
        "D4,pay,production,r3,2024-03-04T00:00:00Z,success,,\n"
    )
    gitops(db, "import", str(deployments))
    with copied_snapshot(db) as s:
        assert s.rows("SELECT deployment_id, signal, evidence, restored_by FROM failure_signals") == [
            ("D2", "rollback", ["D3"], "D3")]
        rework = s.rows("SELECT id, rework_reasons FROM deployment_outcomes WHERE is_rework")
        assert rework == [("D3", ["rollback"])]
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert (g["deployment_attempts"], g["failed_deployments"], g["rework_deployments"]) == (4, 1, 1)
        assert (g["change_failure_rate"], g["rework_rate"]) == (0.25, 0.25)
        assert g["failed_deployment_recovery_median_hours"] == pytest.approx(6.0)


def test_demo_incidents_cover_every_attribution_rule(tmp_path: Path, demo_store: DemoStore) -> None:
    # The demo's incident step imports through `gitops-dora import`; every rule and an open
    # incident must show up, each incident once, and a second demo run must not duplicate them.
    # The first run is the session's `gitops-dora demo` build (tests/conftest.py), copied to be
    # written to; the second runs here.
    demo = copy_demo(demo_store, tmp_path / "copy")
    db, workdir = demo.db, demo.workdir
    # (other demo steps may add incidents from other sources; this step's are source 'import')
    query = ("SELECT attribution_rule, count(*), count(*) FILTER (WHERE is_open) FROM incident_attribution "
             "WHERE source = 'import' GROUP BY 1")
    first = dict((r[0], (r[1], r[2])) for r in rows(db, query))
    assert set(first) == {"root_cause", "gap", "unattributed"}
    assert sum(open_count for _, open_count in first.values()) == 1
    csv_lines = (workdir / "incidents.csv").read_text().strip().splitlines()
    assert sum(count for count, _ in first.values()) == len(csv_lines) - 1
    gitops(db, "demo", "--workdir", str(workdir))
    assert dict((r[0], (r[1], r[2])) for r in rows(db, query)) == first


def test_root_cause_deployment_after_the_incident_was_resolved(db: Path, tmp_path: Path) -> None:
    # I1 (03-03T00 -> 03-03T05) names D2, which was deployed later (03-05): rule 1 still charges D2
    # (CFR 1/2), but a recovery before the deployment time is no duration: it is left out of the
    # median (None) and D2 is not "unrecovered" either.
    _import(db, tmp_path, [
        ("D1", "pay", "production", "r1", "2024-03-01T00:00:00Z", "success", ""),
        ("D2", "pay", "production", "r2", "2024-03-05T00:00:00Z", "success", ""),
    ], [
        ("I1", "pay", "production", "2024-03-03T00:00:00Z", "2024-03-03T05:00:00Z", "odd", "D2"),
    ])
    with copied_snapshot(db) as s:
        assert _attribution(s) == {"I1": ("root_cause", "D2")}
        g = only_group(s.metrics("2024-03-01", "2024-04-01"), service="pay", environment="production")
        assert (g["failed_deployments"], g["change_failure_rate"]) == (1, 0.5)
        assert g["failed_deployment_recovery_median_hours"] is None
        assert g["unrecovered_failed_deployments"] == 0

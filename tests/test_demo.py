"""`gitops-dora demo`: builds, is deterministic across work dirs, idempotent, and has metrics.

Determinism is checked on what the demo loads (commits, tags, deployments, their changes,
services, environments), the manifest it writes, and the `metrics` JSON: two builds in different
folders must agree exactly, and a second build into the same database must change nothing.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import cli_inprocess
from tests.store_fixture import DemoStore
from tests.store_query import store_reader

SERVICES = {"payments-api": "payments", "storefront": "web", "inventory": "supply"}
COMPARED = {
    "commits": "SELECT * FROM commits ORDER BY repo, sha",
    "tags": "SELECT * FROM tags ORDER BY repo, name",
    "deployments": "SELECT * FROM deployments ORDER BY id",
    "deployment_changes": "SELECT * FROM deployment_changes ORDER BY ALL",
    "services": "SELECT * FROM services ORDER BY name",
    "environments": "SELECT * FROM environments ORDER BY name",
}



def run_cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    """``gitops-dora ARGS`` in this process (tests/cli_inprocess.py: the real entry point with its
    environment, folder, separate streams and exit status, without a process start): this module's
    own build, its re-run and the reads. The build it is compared with is the run's shared one
    (tests/conftest.py), a real ``gitops-dora demo`` process, so the comparison also holds the two
    ways of running the command to the same store and manifest."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    proc = cli_inprocess.run(list(args), env=env, cwd=cwd)
    assert proc.returncode == 0, proc.stderr
    return proc


def snapshot(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    con = store_reader(db)
    try:
        return {name: con.execute(sql).fetchall() for name, sql in COMPARED.items()}
    finally:
        con.close()


def table_counts(db: Path) -> dict[str, int]:
    con = store_reader(db)
    try:
        names = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        skip = {"collection_runs", "data_warnings", "collector_state", "schema_migrations"}
        return {n: con.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0]  # type: ignore[index]
                for n in names if n not in skip}
    finally:
        con.close()


@pytest.fixture(scope="module")
def builds(tmp_path_factory: pytest.TempPathFactory, demo_store: DemoStore) -> dict[str, Any]:
    base = tmp_path_factory.mktemp("demo")
    (base / "a").mkdir()
    first = run_cli("--db", "a/demo.duckdb", "demo", cwd=base)           # default work dir: a/demo
    # b: the run's shared build (tests/conftest.py), `gitops-dora --db B demo --workdir WORK` in
    # another folder; read only here (test_rerun_changes_nothing re-runs into a, this module's own)
    return {"base": base, "first_stdout": first.stdout, "a": base / "a" / "demo.duckdb",
            "b": demo_store.db, "a_work": base / "a" / "demo", "b_work": demo_store.workdir}


def metrics_json(db: Path, cwd: Path) -> dict[str, Any]:
    proc = run_cli("--db", str(db), "metrics", "--since", "2026-05-01", "--until", "2026-11-01",
                   "--format", "json", cwd=cwd)
    return dict(json.loads(proc.stdout))


def test_demo_prints_database_and_next_command(builds: dict[str, Any]) -> None:
    out = builds["first_stdout"]
    assert f"demo database: {builds['a']}" in out
    assert f"gitops-dora --db {builds['a']} dashboard" in out
    assert (builds["a_work"] / "demo-manifest.json").exists()
    assert (builds["a_work"] / "repos" / "platform-config" / "apps" / "storefront" / "overlays"
            / "production" / "kustomization.yaml").exists()


def test_manifest_matches_the_generated_repositories(builds: dict[str, Any]) -> None:
    work = builds["a_work"]
    manifest = json.loads((work / "demo-manifest.json").read_text())
    assert {s["name"]: s["team"] for s in manifest["services"]} == SERVICES
    for service, releases in manifest["releases"].items():
        repo = work / "repos" / service
        tags = subprocess.run(["git", "-C", str(repo), "tag"], capture_output=True, text=True).stdout.split()
        assert sorted(tags) == sorted(r["tag"] for r in releases)
        assert any(r["kind"] == "hotfix" for r in releases), service
        # every release's commit as git resolves its tag: one rev-parse for all of a repository's
        # tags (it prints one line per argument, in order; 78 git processes were 3)
        peeled = [f"{r['tag']}^{{commit}}" for r in releases]
        shas = subprocess.run(["git", "-C", str(repo), "rev-parse", *peeled],
                              capture_output=True, text=True, check=True).stdout.split()
        assert shas == [r["sha"] for r in releases]
    # every production bump of the config repo follows the staging bump of the same release
    staged = {(c["service"], c["tag"]): c["committed_at"] for c in manifest["config_commits"]["staging"]}
    for c in manifest["config_commits"]["production"]:
        assert staged[(c["service"], c["tag"])] <= c["committed_at"]
        assert c["image_tag"] == f"sha-{c['app_sha'][:7]}"
    config_log = subprocess.run(["git", "-C", str(work / "repos" / "platform-config"), "log", "--format=%H"],
                                capture_output=True, text=True).stdout.split()
    assert manifest["config_commits"]["production"][-1]["commit"] in config_log
    assert sum(1 for r in manifest["reverts"].values() for _ in r) >= 1


def test_two_work_dirs_give_the_same_database_and_manifest(builds: dict[str, Any]) -> None:
    a, b = snapshot(builds["a"]), snapshot(builds["b"])
    for name in COMPARED:
        assert a[name] == b[name], name
    assert len(a["commits"]) > 500 and len(a["deployments"]) > 60
    assert (builds["a_work"] / "demo-manifest.json").read_bytes() == \
        (builds["b_work"] / "demo-manifest.json").read_bytes()
    assert metrics_json(builds["a"], builds["base"]) == metrics_json(builds["b"], builds["base"])


def test_rerun_changes_nothing(builds: dict[str, Any]) -> None:
    before, counts = snapshot(builds["a"]), table_counts(builds["a"])
    manifest = (builds["a_work"] / "demo-manifest.json").read_bytes()
    run_cli("--db", "a/demo.duckdb", "demo", cwd=builds["base"])
    assert snapshot(builds["a"]) == before
    assert table_counts(builds["a"]) == counts
    assert (builds["a_work"] / "demo-manifest.json").read_bytes() == manifest


def test_metrics_are_non_empty_for_all_three_services(builds: dict[str, Any]) -> None:
    doc = metrics_json(builds["a"], builds["base"])
    production = {g["service"]: g for g in doc["groups"] if g["environment"] == "production"}
    assert set(SERVICES) <= set(production)
    for service in SERVICES:
        g = production[service]
        assert g["deployments"] > 10, service
        assert g["changes"] > 100, service
        assert g["lead_time_median_hours"] > 0, service
        assert g["baseline_deployments"] == 1, service
    proc = run_cli("--db", str(builds["a"]), "metrics", "--group-by", "team", "--format", "json",
                   cwd=builds["base"])
    assert {g["team"] for g in json.loads(proc.stdout)["groups"]} >= set(SERVICES.values())


def test_maturity_timeline_rises_as_the_platform_team_adopts_gitops(builds: dict[str, Any]) -> None:
    """`assess --history monthly` on the demo's platform-config, through the CLI.

    Hand-worked from analytics/demo/platform_files.py and docs/maturity.md:
    * 2026-05: overlays only; no Terraform/infrastructure (declarative-iac not met) -> level null;
    * 2026-06 (2026-06-15 commit): gotk-sync.yaml, pruning Flux Kustomizations, the ingress-nginx
      HelmRelease under infrastructure/ and main.tf meet all of Level 0; no SOPS yet -> level 0;
      July has no platform change -> still 0;
    * 2026-08 (2026-08-14): .sops.yaml, a sops-encrypted Secret and `decryption: sops` meet
      secrets-management, the last missing Level 1 capability -> level 1; September repeats it;
    * 2026-10 (2026-10-01): CODEOWNERS and a Kyverno ClusterPolicy meet security-governance, but
      progressive-delivery is still missing -> level stays 1, Level 2 progress 3/5 -> 4/5.
    """
    repo = builds["a_work"] / "repos" / "platform-config"
    proc = run_cli("--db", str(builds["base"] / "assess.duckdb"), "assess", str(repo),
                   "--history", "monthly", "--format", "json", cwd=builds["base"])
    history = json.loads(proc.stdout)["history"]
    assert [(h["period"], h["level"]) for h in history] == [
        ("2026-05", None), ("2026-06", 0), ("2026-07", 0), ("2026-08", 1), ("2026-09", 1), ("2026-10", 1),
    ]
    status = {h["period"]: h["statuses"] for h in history}
    assert status["2026-05"]["declarative-iac"] == "not_met"
    assert status["2026-06"]["declarative-iac"] == "met"
    assert status["2026-07"]["secrets-management"] == "not_met"
    assert status["2026-08"]["secrets-management"] == "met"
    assert status["2026-09"]["security-governance"] == "not_met"
    assert status["2026-10"]["security-governance"] == "met"
    assert [lv["progress"] for lv in history[-1]["levels"]][:3] == [1.0, 1.0, 0.8]
    # what the demo itself stored (step 60) is the same timeline
    stored = json.loads((builds["a_work"] / "maturity-assessment.json").read_text())["history"]
    assert [(h["period"], h["level"]) for h in stored] == [(h["period"], h["level"]) for h in history]


def test_flux_drift_is_corrected_and_is_evidence_for_workload_reconciliation(builds: dict[str, Any]) -> None:
    """Step 50 imports a DriftDetected Event for Kustomization inventory-production while its 13th
    production config commit (index 12) runs, and a ReconciliationSucceeded of the SAME revision
    7 minutes later. Hand-worked expectations:
    * both events are stored, drift then sync, both carrying the running commit as revision;
    * the re-sync is not a deployment: inventory production still has one deployment per
      production config commit of inventory in the manifest;
    * `assess` (step 60, collected data up to now) shows "1 of 1 drifts corrected" on
      workload-reconciliation, from the object, not from a file.
    """
    manifest = json.loads((builds["a_work"] / "demo-manifest.json").read_text())
    entries = [c for c in manifest["config_commits"]["production"] if c["service"] == "inventory"]
    running = entries[12]["commit"]
    con = store_reader(builds["a"])
    try:
        timeline = con.execute(
            "SELECT event_type, reason, revision, occurred_at FROM reconciler_events"
            " WHERE reconciler = 'flux' AND name = 'inventory-production' ORDER BY occurred_at"
        ).fetchall()
        deployments = con.execute(
            "SELECT count(*) FROM deployments"
            " WHERE source_ref = 'Kustomization/flux-system/inventory-production'"
        ).fetchone()
    finally:
        con.close()
    drift = [i for i, e in enumerate(timeline) if e[1] == "DriftDetected"]
    assert len(drift) == 1
    events = timeline[drift[0]:drift[0] + 2]
    assert [(e[0], e[1], e[2]) for e in events] == [
        ("drift", "DriftDetected", running), ("sync", "ReconciliationSucceeded", running)]
    assert (events[1][3] - events[0][3]).total_seconds() == 7 * 60
    drifted_at = events[0][3].strftime("%Y-%m-%dT%H:%M:%SZ")
    assert entries[12]["committed_at"] < drifted_at < entries[13]["committed_at"]
    assert deployments == (len(entries),)
    point = json.loads((builds["a_work"] / "maturity-assessment.json").read_text())
    capability = {c["id"]: c for c in point["capabilities"]}["workload-reconciliation"]
    collected = [e for e in capability["evidence"] if e["object"] is not None]
    assert [(e["object"], e["detail"].split(" (")[0], e["supports"]) for e in collected] == [
        ("flux Kustomization flux-system/inventory-production",
         "1 of 1 drifts corrected by a later sync", True)]


def test_rework_rate_is_plausible_and_every_hotfix_release_is_rework(builds: dict[str, Any]) -> None:
    """The generator makes a hotfix release after ~10% of feature releases and reverts ~4% of
    feature branches (10_repos.HOTFIX_SHARE/REVERT_SHARE). Every production deployment of a hotfix
    release ships a `Merge branch 'hotfix/...'` commit, which the default hotfix pattern marks as
    rework, so rework_deployments >= the hotfix releases in the manifest's production config
    commits; and no service's rework rate is above 0.25 (it was 0.28-0.48 with 30%/10%)."""
    manifest = json.loads((builds["a_work"] / "demo-manifest.json").read_text())
    doc = metrics_json(builds["a"], builds["base"])
    production = {g["service"]: g for g in doc["groups"] if g["environment"] == "production"}
    for service in SERVICES:
        kinds = {r["tag"]: r["kind"] for r in manifest["releases"][service]}
        hotfixes = sum(1 for c in manifest["config_commits"]["production"]
                       if c["service"] == service and kinds[c["tag"]] == "hotfix")
        g = production[service]
        assert hotfixes >= 1, service
        assert hotfixes <= g["rework_deployments"], service
        assert 0.05 <= g["rework_rate"] <= 0.25, (service, g["rework_rate"])

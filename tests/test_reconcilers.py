"""Reconciler collection: Argo CD and Flux objects, Events and notifications become reconciler
events and deployments, and config-repo deployments reach the app commits behind them.

Everything goes through the real CLI (``gitops-dora import``/``collect``) into a real DuckDB file.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from analytics.store import relations
from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.reconciler_objects import (
    application,
    argocd_event,
    as_list,
    failed_operation,
    flux_event,
    helm_snapshot,
    helmrelease,
    kustomization,
    kustomization_history_entry,
    notification,
)
from tests.store_query import query, store_reader

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module", autouse=True)
def small_loads_as_values() -> Iterator[None]:
    """A user's import of a small dump loads its rows as VALUES lists of literals (while pandas is
    not loaded: analytics.store.relations.values_pay); this worker has pandas loaded, so that path
    is chosen here on purpose. The k8s collector, receiver and demo tests take the DataFrame path,
    and tests/test_small_loads_no_pandas.py compares the two."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(relations, "values_pay", relations.fits_values)
        yield


def cli(db: Path, *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The command run in this process by tests/cli_inprocess.py (exit code and streams as the
    console command's)."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_PAUSE_BEFORE_COMMIT"}
    extra = ["--config", str(config)] if config else []
    return cli_inprocess.run(["--db", str(db), *extra, *args], env=env)


def write_json(path: Path, doc: Any) -> Path:
    path.write_text(json.dumps(doc, indent=2))
    return path


def base_config(tmp_path: Path, extra: dict[str, Any] | None = None) -> Path:
    doc: dict[str, Any] = {
        "environments": [{"name": "production", "production": True}, {"name": "staging"}],
    }
    doc.update(extra or {})
    path = tmp_path / "gitops-dora.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, proc.stderr
    return proc.stderr


# --- Argo CD --------------------------------------------------------------------------------------


def test_ten_syncs_of_one_revision_are_one_deployment_and_ten_events(tmp_path: Path) -> None:
    rev = "5d2c8a1f0e9b7c6d5a4f3e2d1c0b9a8f7e6d5c4b"
    # Ten successful syncs (self-heal re-syncs) of one revision, an hour apart from T0.
    syncs = [(rev, T0 + timedelta(hours=i)) for i in range(10)]
    app = application(
        "payments-api-production",
        repo_url="https://git.example.com/platform-config.git",
        path="apps/payments-api/overlays/production",
        dest_namespace="payments",
        history=syncs,
    )
    db = tmp_path / "db.duckdb"
    dump = write_json(tmp_path / "apps.json", as_list("Application", [app]))
    err = ok(cli(db, "import", str(dump), config=base_config(tmp_path)))
    assert "imported 10 kubectl rows" in err

    # The operationState is the last history entry's sync (same startedAt), so it adds no event.
    assert query(db, "SELECT count(*), count(DISTINCT id) FROM reconciler_events") == [(10, 10)]
    deployments = query(
        db, "SELECT service, environment, revision, deployed_at, status, is_rollback, source FROM deployments"
    )
    # Mapped by the name suffix: payments-api / production; deployed at the FIRST deployedAt (T0).
    assert deployments == [("payments-api", "production", rev, T0, "success", False, "argocd")]
    # Every one of the ten syncs is linked to that one deployment for audit.
    assert query(
        db,
        "SELECT count(DISTINCT deployment_id), count(*) FROM reconciler_events "
        "WHERE deployment_id IS NOT NULL",
    ) == [(1, 10)]

    # Re-importing the same dump changes nothing (idempotent).
    ok(cli(db, "import", str(dump), config=base_config(tmp_path)))
    assert query(db, "SELECT count(*) FROM reconciler_events") == [(10,)]
    assert query(db, "SELECT count(*) FROM deployments") == [(1,)]


def test_argocd_failed_sync_and_rollback(tmp_path: Path) -> None:
    a, b, c = ("a" * 40, "b" * 40, "c" * 40)
    # History (successes only): a at T0, b at T0+1h, a again at T0+3h (a rollback to a).
    history = [(a, T0), (b, T0 + timedelta(hours=1)), (a, T0 + timedelta(hours=3))]
    # The current operation: c failed at T0+2h..T0+2h05 (failed syncs are only in operationState/Events).
    op = failed_operation(
        c,
        T0 + timedelta(hours=2),
        T0 + timedelta(hours=2, minutes=5),
        "one or more objects failed to apply, reason: Deployment.apps is invalid",
    )
    app = application(
        "storefront-staging",
        repo_url="https://git.example.com/platform-config.git",
        path="apps/storefront/overlays/staging",
        dest_namespace="storefront",
        history=history,
        operation=op,
    )
    # The controller's Event for the same failure, plus a health change and an OperationStarted.
    events = [
        argocd_event(
            "storefront-staging",
            "OperationStarted",
            f"Initiated automated sync to '{c}'",
            T0 + timedelta(hours=2),
            uid="e-0001",
        ),
        argocd_event(
            "storefront-staging",
            "OperationCompleted",
            f"Sync operation to {c} failed: one or more objects failed to apply",
            T0 + timedelta(hours=2, minutes=5),
            uid="e-0002",
            warning=True,
        ),
        argocd_event(
            "storefront-staging",
            "ResourceUpdated",
            "Updated health status: Healthy -> Degraded",
            T0 + timedelta(hours=2, minutes=6),
            uid="e-0003",
        ),
    ]
    db = tmp_path / "db.duckdb"
    ok(
        cli(
            db,
            "import",
            str(write_json(tmp_path / "apps.json", app)),
            str(write_json(tmp_path / "events.json", as_list("Event", events))),
            config=base_config(tmp_path),
        )
    )
    rows = query(
        db,
        "SELECT revision, deployed_at, status, is_rollback, rollback_target FROM deployments "
        "ORDER BY deployed_at",
    )
    assert rows == [
        (a, T0, "success", False, None),
        (b, T0 + timedelta(hours=1), "success", False, None),
        # operationState (finishedAt) and the Event (same time) are one failed attempt, not two.
        (c, T0 + timedelta(hours=2, minutes=5), "failed", False, None),
        (a, T0 + timedelta(hours=3), "success", True, a),
    ]
    kinds = query(db, "SELECT event_type, count(*) FROM reconciler_events GROUP BY 1 ORDER BY 1")
    assert kinds == [("health", 1), ("operation_started", 1), ("sync", 3), ("sync_failed", 2)]
    assert query(db, "SELECT status FROM reconciler_events WHERE event_type = 'health'") == [("Degraded",)]


def test_mapping_rules_labels_and_default(tmp_path: Path) -> None:
    rev = "d" * 40
    config = base_config(
        tmp_path,
        {
            "mapping": {
                "rules": [
                    {
                        "match": r"^Application/argocd/web-(?P<environment>prod|stage)$",
                        "service": "storefront",
                    },
                ]
            }
        },
    )
    by_rule = application("web-prod", repo_url="u", path="p", dest_namespace="x", history=[(rev, T0)])
    by_label = application(
        "checkout",
        repo_url="u",
        path="p",
        dest_namespace="staging-apps",
        history=[(rev, T0)],
        labels={"app.kubernetes.io/part-of": "payments-api"},
    )
    db = tmp_path / "db.duckdb"
    ok(
        cli(
            db,
            "import",
            str(write_json(tmp_path / "a.json", as_list("Application", [by_rule, by_label]))),
            config=config,
        )
    )
    assert query(
        db, "SELECT name, service, environment, mapped_by FROM reconciler_objects ORDER BY name"
    ) == [
        ("checkout", "payments-api", "staging", "label:app.kubernetes.io/part-of,destination"),
        ("web-prod", "storefront", "prod", "rule:1"),
    ]


# --- Flux HelmRelease -------------------------------------------------------------------------------


def test_helmrelease_two_snapshots_are_two_deployments(tmp_path: Path) -> None:
    installed = datetime(2024, 5, 7, 4, 54, 14, tzinfo=UTC)
    upgraded = datetime(2024, 5, 9, 16, 2, 31, tzinfo=UTC)
    hr = helmrelease(
        "podinfo",
        "podinfo",
        [
            helm_snapshot(1, "6.6.0", installed, installed, "superseded"),
            helm_snapshot(2, "6.6.1", upgraded, installed, "deployed"),
        ],
    )
    db = tmp_path / "db.duckdb"
    path = tmp_path / "hr.yaml"
    path.write_text(yaml.safe_dump(hr))  # kubectl get helmrelease podinfo -o yaml
    ok(cli(db, "import", str(path), config=base_config(tmp_path)))
    # Each snapshot's lastDeployed (not the shared firstDeployed) is its deployment time.
    assert query(
        db,
        "SELECT revision, revision_format, deployed_at, status, source FROM deployments ORDER BY deployed_at",
    ) == [
        ("6.6.0", "helm_chart", installed, "success", "flux"),
        ("6.6.1", "helm_chart", upgraded, "success", "flux"),
    ]
    # An UpgradeSucceeded Event for release v2 later on is a re-observation, not a third deployment.
    ev = flux_event(
        "HelmRelease",
        "podinfo",
        "podinfo",
        "UpgradeSucceeded",
        "Helm upgrade succeeded for release podinfo/podinfo.v2 with chart podinfo@6.6.1",
        upgraded + timedelta(seconds=3),
        revision="6.6.1",
        uid="h-0001",
    )
    ok(
        cli(
            db,
            "import",
            str(write_json(tmp_path / "ev.json", as_list("Event", [ev]))),
            config=base_config(tmp_path),
        )
    )
    assert query(db, "SELECT count(*) FROM deployments") == [(2,)]
    assert query(db, "SELECT count(*) FROM reconciler_events") == [(3,)]


def test_helm_failed_upgrade_is_failed_attempt(tmp_path: Path) -> None:
    t1 = datetime(2024, 5, 7, 4, 0, tzinfo=UTC)
    t2 = datetime(2024, 5, 8, 4, 0, tzinfo=UTC)
    hr = helmrelease(
        "podinfo",
        "podinfo",
        [
            helm_snapshot(1, "6.6.0", t1, t1, "deployed"),
            helm_snapshot(2, "6.6.1+0cc9a8446c95", t2, t1, "failed"),
        ],
        ready=("False", "UpgradeFailed", "Helm upgrade failed: context deadline exceeded"),
        ready_at=t2,
    )
    db = tmp_path / "db.duckdb"
    ok(cli(db, "import", str(write_json(tmp_path / "hr.json", hr)), config=base_config(tmp_path)))
    # The failed snapshot and the Ready=False condition (same chart version) are one failed attempt.
    assert query(db, "SELECT revision, status FROM deployments ORDER BY deployed_at") == [
        ("6.6.0", "success"),
        ("0cc9a8446c95", "failed"),
    ]


# --- Flux Kustomization + two-repo lead time ------------------------------------------------------------


def _two_repos(tmp_path: Path) -> tuple[GitRepo, GitRepo, list[str], list[str]]:
    app = GitRepo.init(tmp_path / "payments-api")
    a1 = app.commit("feat: card tokens", at="2024-03-01T09:00:00+00:00")
    a2 = app.commit("feat: refunds", at="2024-03-02T10:00:00+00:00")
    a3 = app.commit("fix: refund rounding", at="2024-03-03T11:00:00+00:00")
    config = GitRepo.init(tmp_path / "platform-config")
    overlay = "apps/payments-api/overlays/production/kustomization.yaml"

    def kustomize(tag: str) -> dict[str, str]:
        return {
            overlay: yaml.safe_dump(
                {
                    "apiVersion": "kustomize.config.k8s.io/v1beta1",
                    "kind": "Kustomization",
                    "resources": ["../../base"],
                    "images": [{"name": "registry.example.com/acme/payments-api", "newTag": tag}],
                }
            )
        }

    c1 = config.commit(
        "deploy payments-api a1", at="2024-03-01T12:00:00+00:00", files=kustomize(f"sha-{a1[:7]}")
    )
    # An unrelated config change elsewhere in the repo (another team's app) is not a payments change.
    c_other = config.commit(
        "storefront replicas",
        at="2024-03-02T08:00:00+00:00",
        files={"apps/storefront/overlays/production/replicas.yaml": "replicas: 3\n"},
    )
    c2 = config.commit(
        "deploy payments-api a3", at="2024-03-03T12:00:00+00:00", files=kustomize(f"main-{a3[:7]}-1709467200")
    )
    return app, config, [a1, a2, a3], [c1, c_other, c2]


def _services_config(tmp_path: Path, app: GitRepo, config_repo: GitRepo) -> Path:
    return base_config(
        tmp_path,
        {
            "services": [
                {
                    "name": "payments-api",
                    "team": "payments",
                    "repositories": [str(app.path)],
                    "image": "registry.example.com/acme/payments-api",
                    "gitops": {
                        "repository": str(config_repo.path),
                        "paths": {
                            "production": "apps/payments-api/overlays/production",
                            "staging": "apps/payments-api/overlays/staging",
                        },
                    },
                }
            ]
        },
    )


def test_kustomization_events_deploy_config_commits_and_reach_app_commits(tmp_path: Path) -> None:
    app, config_repo, (a1, a2, a3), (c1, _c_other, c2) = _two_repos(tmp_path)
    config = _services_config(tmp_path, app, config_repo)
    db = tmp_path / "db.duckdb"
    ok(cli(db, "collect", "git", str(app.path), config=config))
    ok(cli(db, "collect", "git", str(config_repo.path), config=config))

    d1 = datetime(2024, 3, 1, 12, 5, tzinfo=UTC)
    d2 = datetime(2024, 3, 3, 12, 10, tzinfo=UTC)
    events = [
        flux_event(
            "Kustomization",
            "payments-api-production",
            "flux-system",
            "ReconciliationSucceeded",
            "Reconciliation finished in 1.2s, next run in 10m0s",
            d1,
            revision=f"main@sha1:{c1}",
            uid="k-0001",
        ),
        flux_event(
            "Kustomization",
            "payments-api-production",
            "flux-system",
            "ReconciliationSucceeded",
            "Reconciliation finished in 0.9s, next run in 10m0s",
            d2,
            revision=f"main@sha1:{c2}",
            uid="k-0002",
        ),
        # The next interval re-applies c2: a re-sync, not a deployment.
        flux_event(
            "Kustomization",
            "payments-api-production",
            "flux-system",
            "ReconciliationSucceeded",
            "Reconciliation finished in 0.8s, next run in 10m0s",
            d2 + timedelta(minutes=10),
            revision=f"main@sha1:{c2}",
            uid="k-0003",
        ),
    ]
    dump = write_json(tmp_path / "events.json", as_list("Event", events))
    ok(cli(db, "import", str(dump), config=config))

    deps = query(
        db,
        "SELECT id, revision, repository, deployed_at, revision_format FROM deployments "
        "WHERE source = 'flux' ORDER BY deployed_at",
    )
    assert [(r[1], r[2], r[3], r[4]) for r in deps] == [
        (c1, "platform-config", d1, "ref@sha1"),
        (c2, "platform-config", d2, "ref@sha1"),
    ]
    second = deps[1][0]
    changes = query(
        db, "SELECT repo, sha FROM deployment_changes WHERE deployment_id = ? ORDER BY repo, sha", [second]
    )
    # App commits between the image deployed before (sha-a1) and now (main-a3-...): a2 and a3;
    # plus the config commit c2 under the service's production path (c_other is another app's).
    assert changes == sorted([("payments-api", a2), ("payments-api", a3), ("platform-config", c2)])

    # Lead times through the metrics views (the first deployment is the baseline: no lead times).
    con = store_reader(db)
    try:
        from analytics.metrics.views import install_views

        install_views(con)
        leads = con.execute(
            "SELECT repo, sha, round(lead_hours, 4) FROM change_lead_times "
            "WHERE deployment_id = ? AND counts_for_lead_time ORDER BY lead_hours",
            [second],
        ).fetchall()
    finally:
        con.close()
    # d2 = 03-03 12:10. c2 authored 03-03 12:00 -> 10 min = 0.1667 h; a3 03-03 11:00 -> 1h10 = 1.1667 h;
    # a2 03-02 10:00 -> 26h10 = 26.1667 h.
    assert leads == [
        ("platform-config", c2, 0.1667),
        ("payments-api", a3, 1.1667),
        ("payments-api", a2, 26.1667),
    ]
    images = query(db, "SELECT commit_sha, tag, app_sha FROM config_image_changes ORDER BY committed_at")
    assert images == [(c1, f"sha-{a1[:7]}", a1), (c2, f"main-{a3[:7]}-1709467200", a3)]


def test_kustomization_history_and_notifications(tmp_path: Path) -> None:
    r1, r2 = "main@sha1:" + "1" * 40, "main@sha1:" + "2" * 40
    first1, first2 = T0, T0 + timedelta(days=1)
    ks = kustomization(
        "inventory-staging",
        "flux-system",
        path="./apps/inventory/overlays/staging",
        applied=r2,
        ready_at=first2 + timedelta(hours=5),
        history=[
            kustomization_history_entry(r2, first2, first2 + timedelta(hours=5), 31),
            kustomization_history_entry(r1, first1, first1 + timedelta(hours=23), 139),
        ],
    )
    db = tmp_path / "db.duckdb"
    ok(cli(db, "import", str(write_json(tmp_path / "ks.json", ks)), config=base_config(tmp_path)))
    # One deployment per history entry, at firstReconciled; the Ready condition re-observes r2.
    assert query(db, "SELECT revision, deployed_at FROM deployments ORDER BY deployed_at") == [
        ("1" * 40, first1),
        ("2" * 40, first2),
    ]
    # notification-controller JSON lines, bare (nc >= 1.5) and prefixed keys; a failure on r3.
    r3 = "main@sha1:" + "3" * 40
    lines = [
        notification(
            "Kustomization",
            "inventory-staging",
            "flux-system",
            "ReconciliationFailed",
            "Deployment/inventory/inventory dry-run failed",
            first2 + timedelta(days=1),
            revision=r3,
            bare_keys=True,
            severity="error",
        ),
        notification(
            "Kustomization",
            "inventory-staging",
            "flux-system",
            "ReconciliationSucceeded",
            "Reconciliation finished",
            first2 + timedelta(days=1, hours=1),
            revision=r3,
        ),
    ]
    jl = tmp_path / "flux-events.jsonl"
    jl.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    err = ok(cli(db, "import", str(jl), config=base_config(tmp_path)))
    assert "flux-events" in err
    assert query(db, "SELECT revision, status, deployed_at FROM deployments ORDER BY deployed_at")[2:] == [
        ("3" * 40, "failed", first2 + timedelta(days=1)),
        ("3" * 40, "success", first2 + timedelta(days=1, hours=1)),
    ]
    # The notification events took the object's mapping (inventory / staging).
    assert query(db, "SELECT DISTINCT service, environment FROM reconciler_events") == [
        ("inventory", "staging")
    ]


def test_unknown_revision_is_kept_and_counted(tmp_path: Path) -> None:
    app = application(
        "legacy-production",
        repo_url="u",
        path="p",
        dest_namespace="legacy",
        history=[("not a revision!", T0)],
    )
    db = tmp_path / "db.duckdb"
    err = ok(cli(db, "import", str(write_json(tmp_path / "a.json", app)), config=base_config(tmp_path)))
    assert "1 revisions in an unknown format kept verbatim" in err
    assert query(db, "SELECT revision, raw_revision, revision_format FROM deployments") == [
        ("not a revision!", "not a revision!", "unknown")
    ]
    assert query(
        db, "SELECT kind, detail, count FROM data_warnings WHERE kind = 'unknown_revision_format'"
    ) == [("unknown_revision_format", "not a revision!", 1)]


def test_bad_dump_names_the_file_and_writes_nothing(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    good = write_json(
        tmp_path / "good.json",
        application("a-production", repo_url="u", path="p", dest_namespace="n", history=[("e" * 40, T0)]),
    )
    ok(cli(db, "import", str(good), config=base_config(tmp_path)))
    bad = tmp_path / "broken.json"
    bad.write_text('{"apiVersion": "argoproj.io/v1alpha1", "kind": "Application", "metadata": {')
    proc = cli(db, "import", str(bad), config=base_config(tmp_path))
    assert proc.returncode == 2 and "broken.json" in proc.stderr and proc.stderr.count("\n") == 1
    assert query(db, "SELECT count(*) FROM deployments") == [(1,)]


@pytest.mark.parametrize("bare", [True, False])
def test_notification_metadata_keys_prefixed_or_bare(tmp_path: Path, bare: bool) -> None:
    rev = "main@sha1:" + "4" * 40
    line = notification(
        "Kustomization",
        "inventory-production",
        "flux-system",
        "ReconciliationSucceeded",
        "ok",
        T0,
        revision=rev,
        bare_keys=bare,
    )
    jl = tmp_path / "n.jsonl"
    jl.write_text(json.dumps(line) + "\n")
    db = tmp_path / "db.duckdb"
    ok(cli(db, "import", str(jl), config=base_config(tmp_path)))
    assert query(db, "SELECT revision, revision_format FROM deployments") == [("4" * 40, "ref@sha1")]


# --- image references in config-repo YAML ------------------------------------------------------------


def test_image_refs_from_containers_kustomize_and_helm_values() -> None:
    from analytics.deployments.images import ImageRef, image_refs, split_image

    paths = ["image.tag", "image.version", "*.image.tag"]
    deployment = yaml.safe_load(
        """
apiVersion: apps/v1
kind: Deployment
spec:
  template:
    spec:
      initContainers: [{name: migrate, image: "registry:5000/acme/payments-api:sha-1a2b3c4"}]
      containers: [{name: app, image: "registry:5000/acme/payments-api:main-1a2b3c4-1700000000@sha256:%s"}]
"""
        % ("f" * 64)
    )
    # The registry port is not a tag; a digest after the tag is dropped.
    assert image_refs(deployment, paths) == [
        ImageRef("registry:5000/acme/payments-api", "sha-1a2b3c4"),
        ImageRef("registry:5000/acme/payments-api", "main-1a2b3c4-1700000000"),
    ]
    assert split_image("registry:5000/acme/app") is None  # no tag at all
    kustomization = {
        "kind": "Kustomization",
        "images": [{"name": "acme/inventory", "newName": "reg/acme/inventory", "newTag": "v2.3.1"}],
    }
    assert image_refs(kustomization, paths) == [ImageRef("reg/acme/inventory", "v2.3.1")]
    helm = {
        "apiVersion": "helm.toolkit.fluxcd.io/v2",
        "kind": "HelmRelease",
        "spec": {
            "values": {
                "image": {"repository": "acme/storefront", "tag": "sha-9f8e7d6"},
                "worker": {"image": {"repository": "acme/storefront-worker", "tag": "sha-0a1b2c3"}},
                "replicaCount": 3,
            }
        },
    }
    assert image_refs(helm, paths) == [
        ImageRef("acme/storefront", "sha-9f8e7d6"),
        ImageRef("acme/storefront-worker", "sha-0a1b2c3"),
    ]


def test_argocd_deployment_of_helm_values_bump_maps_app_tag(tmp_path: Path) -> None:
    app = GitRepo.init(tmp_path / "storefront")
    s1 = app.commit("feat: cart", at="2024-04-01T08:00:00+00:00")
    app.annotated_tag("v1.0.0", at="2024-04-01T08:30:00+00:00")
    s2 = app.commit("feat: wishlist", at="2024-04-02T08:00:00+00:00")
    s3 = app.commit("fix: wishlist sort", at="2024-04-02T09:00:00+00:00")
    app.annotated_tag("v1.1.0", at="2024-04-02T09:30:00+00:00")
    cfg = GitRepo.init(tmp_path / "platform-config")
    path = "apps/storefront/overlays/production/release.yaml"

    def release(tag: str) -> dict[str, str]:
        return {
            path: yaml.safe_dump(
                {
                    "apiVersion": "helm.toolkit.fluxcd.io/v2",
                    "kind": "HelmRelease",
                    "metadata": {"name": "storefront"},
                    "spec": {
                        "chart": {"spec": {"chart": "storefront"}},
                        "values": {"image": {"repository": "acme/storefront", "tag": tag}},
                    },
                }
            )
        }

    c1 = cfg.commit("storefront 1.0.0", at="2024-04-01T10:00:00+00:00", files=release("1.0.0"))
    c2 = cfg.commit("storefront 1.1.0", at="2024-04-02T10:00:00+00:00", files=release("1.1.0"))
    config = base_config(
        tmp_path,
        {
            "services": [
                {
                    "name": "storefront",
                    "repositories": [str(app.path)],
                    "gitops": {
                        "repository": str(cfg.path),
                        "paths": {"production": "apps/storefront/overlays/production"},
                    },
                }
            ]
        },
    )
    d1 = datetime(2024, 4, 1, 10, 3, tzinfo=UTC)
    d2 = datetime(2024, 4, 2, 10, 4, tzinfo=UTC)
    argo = application(
        "storefront-production",
        repo_url="https://git.example.com/platform-config.git",
        path="apps/storefront/overlays/production",
        dest_namespace="storefront",
        history=[(c1, d1), (c2, d2)],
    )
    db = tmp_path / "db.duckdb"
    ok(cli(db, "import", str(write_json(tmp_path / "app.json", argo)), config=config))
    # Tag "1.1.0" equals app tag v1.1.0 (-> s3), "1.0.0" equals v1.0.0 (-> s1): the second deployment
    # ships rev-list s3 ^s1 = {s2, s3}, plus config commit c2 under the production path.
    rows = query(
        db,
        "SELECT repo, sha FROM deployment_changes WHERE deployment_id = "
        "(SELECT id FROM deployments WHERE revision = ?) ORDER BY repo, sha",
        [c2],
    )
    assert rows == sorted([("storefront", s2), ("storefront", s3), ("platform-config", c2)])
    assert query(db, "SELECT tag, app_sha FROM config_image_changes ORDER BY committed_at") == [
        ("1.0.0", s1),
        ("1.1.0", s3),
    ]


def test_argocd_notification_lines_and_bad_flux_line(tmp_path: Path) -> None:
    rev_a, rev_b = "a" * 40, "b" * 40
    first = application(
        "inventory-staging", repo_url="u", path="p", dest_namespace="inventory", history=[(rev_a, T0)]
    )
    second = application(
        "inventory-staging",
        repo_url="u",
        path="p",
        dest_namespace="inventory",
        history=[(rev_a, T0), (rev_b, T0 + timedelta(hours=1))],
    )
    jl = tmp_path / "argocd-notifications.jsonl"
    jl.write_text(json.dumps(first) + "\n" + json.dumps(second) + "\n")
    db = tmp_path / "db.duckdb"
    err = ok(cli(db, "import", str(jl), config=base_config(tmp_path)))
    assert "argocd-notifications" in err
    # History entry 0 arrives twice (stored once), entry 1 once: two events, two deployments.
    assert query(db, "SELECT count(*) FROM reconciler_events") == [(2,)]
    assert query(db, "SELECT revision, environment FROM deployments ORDER BY deployed_at") == [
        (rev_a, "staging"),
        (rev_b, "staging"),
    ]
    # A Flux event line without a timestamp rejects the whole file, naming file and line.
    good = notification(
        "Kustomization",
        "inventory-staging",
        "flux-system",
        "ReconciliationSucceeded",
        "ok",
        T0,
        revision="main@sha1:" + "c" * 40,
    )
    broken = dict(good, timestamp="yesterday")
    fl = tmp_path / "flux.jsonl"
    fl.write_text(json.dumps(good) + "\n" + json.dumps(broken) + "\n")
    proc = cli(db, "import", str(fl), config=base_config(tmp_path))
    assert proc.returncode == 2
    assert proc.stderr.strip() == f"error: {fl}: line 2: event has no usable timestamp"
    assert query(db, "SELECT count(*) FROM deployments") == [(2,)]

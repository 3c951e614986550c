"""Evidence from outside the repository: a kubectl dump of the cluster and collected DuckDB data."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from pytest_httpserver import HTTPServer

from analytics.store.connection import open_writer
from tests import maturity_repos as repos
from tests.test_assess import assess, evidence_of, statuses

DUMP = {
    "apiVersion": "v1",
    "kind": "List",
    "items": [
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "kustomizations.kustomize.toolkit.fluxcd.io"},
        },
        {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "clusterpolicies.kyverno.io"},
        },
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "flux-system"}},
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "kustomize-controller", "namespace": "flux-system"},
            "spec": {"replicas": 1},
        },
        {
            "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
            "kind": "Kustomization",
            "metadata": {"name": "apps", "namespace": "flux-system"},
            "spec": {
                "interval": "10m",
                "path": "./apps",
                "prune": True,
                "sourceRef": {"kind": "GitRepository", "name": "flux-system"},
            },
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop"},
            "spec": {"template": {"spec": {"containers": [{"name": "web", "image": "nginx:latest"}]}}},
        },
    ],
}


def test_cluster_dump_counts_for_cluster_capabilities(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repos.plain_app(tmp_path / "app")
    dump = tmp_path / "cluster.yaml"
    dump.write_text(yaml.safe_dump(DUMP))
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path), "--cluster-dump", str(dump))
    got = statuses(result)
    # Live objects prove the platform, the reconciler and the policy engine...
    assert (
        got["suitable-infrastructure"],
        got["pull-based"],
        got["workload-reconciliation"],
        got["security-governance"],
    ) == ("met", "met", "met", "met")
    # ...but are not declarations in git, and the running nginx:latest is not an image reference
    # of the repository, so these stay as for the plain repo.
    assert (got["declarative-workloads"], got["immutable-images"], got["declarative-iac"]) == (
        "not_met",
        "unknown",
        "not_met",
    )
    objects = {e["object"] for e in evidence_of(result, "pull-based") if e["supports"]}
    assert objects == {
        "CustomResourceDefinition kustomizations.kustomize.toolkit.fluxcd.io",
        "Namespace flux-system",
        "Deployment flux-system/kustomize-controller",
        "Kustomization flux-system/apps",
    }
    assert [e["object"] for e in evidence_of(result, "security-governance") if e["supports"]] == [
        "CustomResourceDefinition clusterpolicies.kyverno.io"
    ]


def test_cluster_dump_that_is_not_kubernetes_fails_cleanly(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytics.cli import main

    repo = repos.plain_app(tmp_path / "app")
    dump = tmp_path / "cluster.yaml"
    dump.write_text("just: text\n")
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(tmp_path / "db.duckdb"), "assess", str(repo.path), "--cluster-dump", str(dump)])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: cluster dump {dump} holds no Kubernetes objects"
    assert not (tmp_path / "db.duckdb").exists()  # rejected before the store was opened


def _event(eid: str, name: str, event_type: str, at: str, reason: str | None = None) -> dict[str, object]:
    return {
        "id": eid,
        "reconciler": "argocd",
        "kind": "Application",
        "namespace": "argocd",
        "name": name,
        "event_type": event_type,
        "reason": reason,
        "occurred_at": datetime.fromisoformat(at),
        "status": "Succeeded" if event_type == "sync" else None,
        "source": "cluster",
    }


def _object(name: str, *, repository: str | None = None, source_url: str | None = None) -> dict[str, object]:
    return {
        "reconciler": "argocd",
        "kind": "Application",
        "namespace": "argocd",
        "name": name,
        "service": name,
        "environment": "production",
        "mapped_by": "default",
        "repository": repository,
        "source_url": source_url,
        "last_seen": datetime(2024, 6, 1, tzinfo=UTC),
    }


def _pr(number: int, merged: str, reviewed: str | None) -> dict[str, object]:
    return {
        "repo": "acme/app",
        "number": number,
        "provider": "github",
        "title": f"change {number}",
        "created_at": datetime(2024, 5, 1, tzinfo=UTC),
        "merged_at": datetime.fromisoformat(merged),
        "first_review_at": datetime.fromisoformat(reviewed) if reviewed else None,
    }


def test_collected_drift_corrections_and_reviews(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.plain_app(tmp_path / "app")  # committed 2024-06-03T10:00Z; --at HEAD judges then
    db = tmp_path / "db.duckdb"
    with open_writer(db, source="test") as session:
        session.upsert(
            "reconciler_events",
            [
                _event("e1", "guestbook", "drift", "2024-05-20T08:00:00+00:00", "DriftDetected"),
                _event("e2", "guestbook", "sync", "2024-05-20T08:03:00+00:00"),  # corrects e1
                _event(
                    "e3", "billing", "drift", "2024-05-21T08:00:00+00:00", "DriftDetected"
                ),  # never corrected
                _event("e4", "guestbook", "sync", "2024-07-01T08:00:00+00:00"),  # after the assessed moment
                # Applications of another repository, and one no object row explains: not evidence
                # about "app", however many syncs and drifts they have.
                _event("x1", "storefront", "drift", "2024-05-22T08:00:00+00:00", "DriftDetected"),
                _event("x2", "storefront", "sync", "2024-05-22T08:01:00+00:00"),
                _event("x3", "storefront", "sync", "2024-05-23T08:01:00+00:00"),
                _event("x4", "stray", "drift", "2024-05-24T08:00:00+00:00", "DriftDetected"),
            ],
        )
        session.upsert(
            "reconciler_objects",
            [
                _object("guestbook", source_url="https://github.com/acme/app.git"),  # by its repoURL
                _object("billing", repository="app"),  # by the config repository recorded for it
                _object("storefront", repository="shop-config",
                        source_url="https://github.com/acme/shop-config.git"),
            ],
        )
        session.upsert(
            "pull_requests",
            [
                _pr(1, "2024-05-10T12:00:00+00:00", "2024-05-10T11:00:00+00:00"),
                _pr(2, "2024-05-28T12:00:00+00:00", "2024-05-28T09:30:00+00:00"),
                _pr(3, "2024-01-05T12:00:00+00:00", None),  # older than the 90-day window: ignored
            ],
        )
    result = assess(capsys, db, str(repo.path), "--at", "HEAD")
    got = statuses(result)
    assert (got["workload-reconciliation"], got["pull-based"], got["security-governance"]) == (
        "met",
        "met",
        "met",
    )
    recon = evidence_of(result, "workload-reconciliation")
    assert [(e["object"], e["supports"]) for e in recon] == [
        ("argocd Application argocd/guestbook", True),
        ("argocd Application argocd/billing", False),
    ]
    pulled = {e["object"] for c in result["capabilities"] for e in c["evidence"] if e["object"]}
    assert not any("storefront" in o or "stray" in o for o in pulled), pulled
    assert recon[0]["detail"].startswith("1 of 1 drifts corrected by a later sync")
    review = evidence_of(result, "security-governance")
    assert [(e["object"], e["detail"]) for e in review] == [
        (
            "pull_requests acme/app",
            "all 2 PRs merged in the 90 days before 2024-06-03 were reviewed before merge",
        )
    ]
    # A PR merged before its first review is evidence against review governance.
    with open_writer(db, source="test") as session:
        session.upsert("pull_requests", [_pr(4, "2024-06-01T12:00:00+00:00", "2024-06-01T13:00:00+00:00")])
    answers = tmp_path / "answers.yaml"
    answers.write_text("answers:\n  security-governance: yes\n")
    result = assess(capsys, db, str(repo.path), "--at", "HEAD", "--answers", str(answers))
    cap = next(c for c in result["capabilities"] if c["id"] == "security-governance")
    assert (cap["status"], cap["answer"]) == ("not_met", "yes")
    assert [e["detail"] for e in cap["evidence"]] == ["1 of 3 merged PRs had no review before merge (#4)"]
    assert cap["conflict"] is not None and cap["conflict"].startswith("answered yes, but evidence shows")


def _crd(name: str, group: str, kind: str, plural: str) -> dict[str, object]:
    """A CRD as the API server lists it (the client checks spec.group/names/scope/versions)."""
    return {
        "metadata": {"name": name, "uid": f"uid-{plural}"},
        "spec": {
            "group": group,
            "names": {"kind": kind, "plural": plural},
            "scope": "Namespaced",
            "versions": [{"name": "v1", "served": True, "storage": True}],
        },
    }


def _list(kind: str, api_version: str, items: list[dict[str, object]]) -> dict[str, object]:
    return {"kind": kind, "apiVersion": api_version, "metadata": {"resourceVersion": "1"}, "items": items}


def test_live_cluster_through_the_kubernetes_client(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    httpserver.expect_request("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").respond_with_json(
        _list(
            "CustomResourceDefinitionList",
            "apiextensions.k8s.io/v1",
            [
                _crd("applications.argoproj.io", "argoproj.io", "Application", "applications"),
                _crd("rollouts.argoproj.io", "argoproj.io", "Rollout", "rollouts"),
            ],
        )
    )
    httpserver.expect_request("/api/v1/namespaces").respond_with_json(
        _list("NamespaceList", "v1", [{"metadata": {"name": "argocd"}}, {"metadata": {"name": "default"}}])
    )
    httpserver.expect_request("/apis/apps/v1/deployments").respond_with_json(
        _list(
            "DeploymentList",
            "apps/v1",
            [
                {
                    "metadata": {"name": "argo-rollouts", "namespace": "argo-rollouts"},
                    "spec": {
                        "selector": {"matchLabels": {"app": "argo-rollouts"}},
                        "template": {
                            "spec": {
                                "containers": [
                                    {"name": "c", "image": "quay.io/argoproj/argo-rollouts:v1.7.1"}
                                ]
                            }
                        },
                    },
                },
            ],
        )
    )
    httpserver.expect_request("/apis/apps/v1/statefulsets").respond_with_json(
        _list(
            "StatefulSetList",
            "apps/v1",
            [
                {
                    "metadata": {"name": "argocd-application-controller", "namespace": "argocd"},
                    "spec": {
                        "selector": {"matchLabels": {"app": "ctl"}},
                        "serviceName": "ctl",
                        "template": {
                            "spec": {
                                "containers": [{"name": "c", "image": "quay.io/argoproj/argocd:v2.11.0"}]
                            }
                        },
                    },
                },
            ],
        )
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "other",
                "clusters": [{"name": "lab", "cluster": {"server": httpserver.url_for("").rstrip("/")}}],
                "users": [{"name": "lab", "user": {"token": "not-a-secret"}}],
                "contexts": [
                    {"name": "lab", "context": {"cluster": "lab", "user": "lab"}},
                    {"name": "other", "context": {"cluster": "lab", "user": "lab"}},
                ],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    repo = repos.plain_app(tmp_path / "app")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path), "--kube-context", "lab")
    got = statuses(result)
    assert (got["suitable-infrastructure"], got["pull-based"], got["progressive-delivery"]) == (
        "met",
        "met",
        "met",
    )
    # Installed controllers are not a reconciliation policy: no Application objects were read.
    assert got["workload-reconciliation"] == "not_met"
    assert [e["object"] for e in evidence_of(result, "progressive-delivery")] == [
        "CustomResourceDefinition rollouts.argoproj.io",
        "Deployment argo-rollouts/argo-rollouts",
    ]
    assert [e["object"] for e in evidence_of(result, "pull-based") if e["supports"]] == [
        "CustomResourceDefinition applications.argoproj.io",
        "Namespace argocd",
        "StatefulSet argocd/argocd-application-controller",
    ]


def test_live_cluster_refusing_access_fails_cleanly(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    httpserver: HTTPServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from analytics.cli import main

    httpserver.expect_request("/apis/apiextensions.k8s.io/v1/customresourcedefinitions").respond_with_json(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "reason": "Forbidden",
            "code": 403,
            "message": "customresourcedefinitions is forbidden",
        },
        status=403,
    )
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "current-context": "lab",
                "clusters": [{"name": "lab", "cluster": {"server": httpserver.url_for("").rstrip("/")}}],
                "users": [{"name": "lab", "user": {"token": "not-a-secret"}}],
                "contexts": [{"name": "lab", "context": {"cluster": "lab", "user": "lab"}}],
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    repo = repos.plain_app(tmp_path / "app")
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(tmp_path / "db.duckdb"), "assess", str(repo.path), "--kube-context", ""])
    assert exit_info.value.code == 2
    assert (
        capsys.readouterr().err.strip()
        == "error: kube context (current): API error 403: customresourcedefinitions is forbidden"
    )
    assert not (tmp_path / "db.duckdb").exists()

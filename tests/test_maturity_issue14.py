"""Issue #14: the assessment rates real-shaped GitOps repositories right.

Unknown is not failure; images are read wherever they are declared; examples, docs and tests are
not deployments; plain-text credentials count against secrets management; tenants, environments
and infrastructure come from what is declared; Flux v1 is pull-based. Each repository is built by
a function in tests/maturity_repos.py from the shape of the public repositories that were misrated.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from analytics.cli import main
from assessment.detectors.images import classify
from assessment.model import NOT_DEPLOYED, load_model
from assessment.scan import not_deployed
from assessment.scoring import reached
from tests import maturity_repos as repos
from tests.test_assess import assess, evidence_of, statuses


def cap(result: dict[str, Any], cap_id: str) -> dict[str, Any]:
    return next(c for c in result["capabilities"] if c["id"] == cap_id)


def test_flux2_kustomize_helm_example_is_level_0_blocked_by_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repos.flux2_kustomize_helm_example(tmp_path / "flux2-kustomize-helm-example")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    got = statuses(result)
    # The redis repository/tag pair in the HelmRelease values is a pinned image.
    assert got["immutable-images"] == "met"
    images = evidence_of(result, "immutable-images")
    assert [(e["path"], e["line"]) for e in images] == [("apps/base/podinfo/release.yaml", 25)]
    assert "public.ecr.aws/docker/library/redis:8.6.2" in images[0]["detail"]
    assert result["level"] == 0
    assert [(s["kind"], s["capability"]) for s in result["next_steps"]] == [("fix", "secrets-management")]
    assert [b["capability"] for b in result["blocking"]] == ["secrets-management"]
    assert result["undecided"] == []
    assert not any("latest" in s["action"] for s in result["next_steps"])
    # The chart version range ">=1.0.0" in the overlays is no image.
    assert all("1.0.0" not in e["detail"] for e in images)
    # Most relevant evidence first: a reconciler object, not a schema file or a Namespace.
    first = evidence_of(result, "declarative-workloads")[0]
    assert (first["path"], first["line"]) == ("apps/base/podinfo/release.yaml", 2)
    assert "HelmRelease/podinfo" in first["detail"]
    assert all(not (e["path"] or "").startswith(".") for e in evidence_of(result, "declarative-workloads"))


def test_flux2_example_table_shows_blocking(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.flux2_kustomize_helm_example(tmp_path / "flux2-kustomize-helm-example")
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(tmp_path / "db.duckdb"), "assess", str(repo.path)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "GitOps maturity level 0" in out
    assert "Blocking (not met)" in out and "secrets-management" in out
    assert "Undecided" not in out  # nothing unknown up to Level 1


def test_table_shows_undecided_and_examples(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.tool_repo_with_examples(tmp_path / "mytool")
    with pytest.raises(SystemExit):
        main.run(["--db", str(tmp_path / "db.duckdb"), "assess", str(repo.path)])
    out = capsys.readouterr().out
    assert "Seen in examples" in out and "examples/canary/canary.yaml" in out
    assert "e2e-only-password" not in out
    kyverno = repos.kyverno_policies(tmp_path / "policies")
    with pytest.raises(SystemExit):
        main.run(["--db", str(tmp_path / "db.duckdb"), "assess", str(kyverno.path)])
    out = capsys.readouterr().out
    assert "Undecided" in out and "immutable-images" in out


def test_unknown_is_not_failure() -> None:
    assert reached(["met", "met", "met", "met", "unknown"])
    assert reached(["met", "attested", "met", "unknown", "unknown"])
    assert not reached(["met", "met", "unknown", "unknown", "unknown"])  # never on unknowns alone
    assert not reached(["met", "met", "met", "met", "not_met"])


def test_unknown_images_ask_a_question_not_a_fix(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.kyverno_policies(tmp_path / "policies")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert result["level"] == 0  # immutable-images unknown: undecided, not failed
    undecided = {u["capability"]: u for u in result["undecided"]}
    assert "application repository" in undecided["immutable-images"]["source"]
    assert undecided["immutable-images"]["question"].startswith("Does every deployed container image")
    assert all(s["capability"] != "immutable-images" for s in result["next_steps"])


@pytest.mark.parametrize(
    ("ref", "kind"),
    [
        ("ghcr.io/fluxcd/helm-controller:*", "pattern"),
        ("nginx:1.x", "pattern"),
        ("nginx:~1.2", "pattern"),
        ("nginx:latest", "latest"),
        ("nginx", "untagged"),
        ("nginx:1.25.3", "tag"),
        ("localhost:5000/nginx", "untagged"),
        ("nginx@sha256:" + "a" * 64, "digest"),
    ],
)
def test_wildcards_ranges_and_latest_are_never_pins(ref: str, kind: str) -> None:
    assert classify(ref) == kind


def test_images_read_wherever_declared(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.images_everywhere(tmp_path / "deploy")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result)["immutable-images"] == "met"
    evidence = evidence_of(result, "immutable-images")
    found = {(e["path"], e["line"], e["detail"].split(" ")[1]) for e in evidence}
    assert found == {
        ("apps/jobs/cron.yaml", 13, "busybox:1.36"),  # the same image twice: each at its own line
        ("apps/jobs/cron.yaml", 15, "busybox:1.36"),
        ("argocd/api.yaml", 14, "ghcr.io/acme/api:1.4.2"),  # Argo CD kustomize.images
        ("argocd/web.yaml", 14, "ghcr.io/acme/web:2.0.1"),  # Argo CD helm.parameters
        ("charts/web/values.yaml", 3, "docker.io/bitnami/nginx:1.25.3"),  # image {registry, repository, tag}
        ("charts/web/values.yaml", 8, "quay.io/prometheus/nginx-exporter:v1.1.0"),  # pair at depth
        ("flux/image-policy.yaml", 10, "api"),  # Flux ImagePolicy
    }
    # The Kyverno verifyImages pattern ...:* is neither a pin nor a :latest.
    assert not any("helm-controller" in e["detail"] for e in evidence_of(result, "immutable-images"))


def test_latest_in_helm_values_refutes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.images_everywhere(tmp_path / "deploy", web_tag="latest")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result)["immutable-images"] == "not_met"
    against = [e for e in evidence_of(result, "immutable-images") if not e["supports"]]
    assert [(e["path"], e["line"]) for e in against] == [("charts/web/values.yaml", 3)]
    assert [b["capability"] for b in result["blocking"]] == ["immutable-images"]


def test_examples_docs_and_tests_are_not_deployed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.tool_repo_with_examples(tmp_path / "mytool")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    progressive = cap(result, "progressive-delivery")
    assert progressive["status"] == "not_met"
    seen = {e["path"] for e in progressive["seen_in_examples"]}
    assert seen == {"examples/canary/canary.yaml", "docs/rollout.yaml", "artifacts/examples/rollout.yaml"}
    # The Secret under test/e2e/ is not evidence against secrets management.
    secrets = cap(result, "secrets-management")
    assert (secrets["status"], [e for e in secrets["evidence"] if not e["supports"]]) == ("not_met", [])
    # --include-examples counts them.
    every = assess(capsys, tmp_path / "db.duckdb", str(repo.path), "--include-examples")
    assert statuses(every)["progressive-delivery"] == "met"
    assert any(not e["supports"] for e in cap(every, "secrets-management")["evidence"])


def test_plain_text_credentials_count_against_secrets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repos.plaintext_credentials(tmp_path / "shop")
    db = tmp_path / "db.duckdb"
    result = assess(capsys, db, str(repo.path))
    secrets = cap(result, "secrets-management")
    assert secrets["status"] == "not_met"
    assert [(e["path"], e["line"], e["supports"]) for e in secrets["evidence"]] == [
        ("charts/shop/values-production.yaml", 4, False),  # DB_PASSWORD
        ("manifests/config.yaml", 7, False),  # API_TOKEN in a ConfigMap
        ("manifests/worker.yaml", 21, False),  # SMTP_PASSWORD in env (the secretKeyRef one is fine)
    ]
    # Values-file variants of one chart, one Application to one cluster: one environment, not two.
    assert statuses(result)["environment-management"] == "not_met"
    with pytest.raises(SystemExit):
        main.run(["--db", str(db), "assess", str(repo.path)])
    table = capsys.readouterr().out
    for value in ("prod_password", "tok_live_123456", "mail-pass-42"):
        assert value not in table and value not in str(result)


def test_tenants_infrastructure_and_substitution(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.flux_platform(tmp_path / "platform")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    got = statuses(result)
    # Impersonating kustomize-controller is the platform itself, not two tenants.
    assert got["cross-enterprise-governance"] == "not_met"
    assert "0 restricted tenants" in cap(result, "cross-enterprise-governance")["note"]
    # istiod declared as a HelmRelease under istio/ is infrastructure, wherever the folder is.
    assert got["declarative-iac"] == "met" and got["whole-environment"] == "met"
    assert evidence_of(result, "declarative-iac")[0]["path"] == "istio/istiod.yaml"
    # One substituteFrom into one cluster is no mass customisation.
    assert got["mass-customization"] == "not_met"
    with_tenants = assess(capsys, tmp_path / "db.duckdb",
                          str(repos.flux_platform(tmp_path / "platform2", tenants=True).path))
    assert statuses(with_tenants)["cross-enterprise-governance"] == "met"


def test_flux_v1_is_pull_based(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.flux_v1(tmp_path / "v1")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    got = statuses(result)
    assert (got["pull-based"], got["workload-reconciliation"], got["package-management"]) == ("met",) * 3
    assert [(e["path"], e["line"]) for e in evidence_of(result, "pull-based")] == [
        ("releases/podinfo.yaml", 2),
        ("workloads/web.yaml", 6),
    ]


@pytest.mark.parametrize(
    ("path", "deployed"),
    [
        ("examples/canary/canary.yaml", False),
        ("artifacts/examples/rollout.yaml", False),
        ("test/e2e/secret.yaml", False),
        ("pkg/testdata/app.yaml", False),
        ("hack/kind.yaml", False),
        ("docs/rollout.yaml", False),
        ("charts/app/charts/redis/templates/deployment.yaml", False),  # a vendored subchart
        ("vendor/github.com/x/y/deploy.yaml", False),
        ("charts/app/templates/deployment.yaml", True),  # the repository's own chart
        ("clusters/test/apps.yaml", True),  # an environment named test
        ("overlays/test/kustomization.yaml", True),
        ("docs/CODEOWNERS", True),
        ("apps/base/podinfo/release.yaml", True),
    ],
)
def test_not_deployed_paths(path: str, deployed: bool) -> None:
    assert not_deployed(path, NOT_DEPLOYED) is not deployed


def test_not_deployed_list_is_a_model_key() -> None:
    assert load_model().not_deployed == NOT_DEPLOYED
    assert not not_deployed("examples/a.yaml", ("samples",))
    assert not_deployed("samples/a.yaml", ("samples",))


def test_history_of_a_flux_v1_repository_is_pull_based_from_the_start(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Started on Flux v1 / Helm Operator (2019), moved to Flux v2 later: pull-based every month."""
    repo = repos.flux_v1(tmp_path / "v1")  # committed 2024-06
    repo.commit("flux v2", "2024-08-05T10:00:00+00:00", files={
        "clusters/prod/flux-system/gotk-sync.yaml": repos.gotk_sync("prod"),
    })
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path), "--history", "monthly")
    assert [(p["period"], p["statuses"]["pull-based"]) for p in result["history"]] == [
        ("2024-06", "met"), ("2024-07", "met"), ("2024-08", "met"),
    ]

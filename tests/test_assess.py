"""`gitops-dora assess` on real repositories of each kind: every capability's status and the level.

Expected values are worked out by hand from the files each builder in tests/maturity_repos.py
commits and the rules in assessment/rules.py (docs/maturity.md lists them).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from analytics.cli import main
from tests import maturity_repos as repos
from tests.store_query import store_reader

L0 = (
    "declarative-iac",
    "declarative-workloads",
    "version-control",
    "immutable-images",
    "suitable-infrastructure",
)


def assess(capsys: pytest.CaptureFixture[str], db: Path, *args: str) -> dict[str, Any]:
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(db), "assess", *args, "--format", "json"])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0, out
    return json.loads(out)


def statuses(result: dict[str, Any]) -> dict[str, str]:
    return {c["id"]: c["status"] for c in result["capabilities"]}


def evidence_of(result: dict[str, Any], cap_id: str) -> list[dict[str, Any]]:
    return next(c["evidence"] for c in result["capabilities"] if c["id"] == cap_id)


def test_flux_multi_cluster(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.flux_multi_cluster(tmp_path / "fleet-infra")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result) == {
        "declarative-iac": "met",  # infrastructure/controllers/ingress-nginx.yaml
        "declarative-workloads": "met",  # apps/base/podinfo/deployment.yaml
        "version-control": "met",
        "immutable-images": "met",  # podinfo:6.5.4, nothing on :latest
        "suitable-infrastructure": "met",
        "workload-reconciliation": "met",  # Flux Kustomizations
        "environment-management": "met",  # clusters/staging + clusters/production
        "secrets-management": "not_met",  # no SOPS / sealed / external secrets
        "pull-based": "met",
        "package-management": "met",  # kustomization.yaml, HelmRelease
        "whole-environment": "met",  # infra manifests + workloads + Flux
        "cluster-workload-separation": "met",  # clusters/ + infrastructure/ vs apps/, dependsOn
        "security-governance": "not_met",
        "progressive-delivery": "not_met",
        "template-customization": "met",  # apps/<env> overlays patch ../base/podinfo
        "fleet-management": "not_met",  # two clusters are environments, not a fleet (needs 3+)
        "mass-customization": "not_met",
        "advanced-policy": "not_met",
        "cross-enterprise-governance": "unknown",  # no tenancy or policy evidence either way
        "multi-cloud": "unknown",  # no infrastructure provider named
    }
    # L0 all met; L1 misses secrets-management -> level 0; progress L1 = 4/5, L2 = 3/5.
    assert result["level"] == 0
    assert [(lv["level"], lv["met"], lv["progress"]) for lv in result["levels"]] == [
        (0, True, 1.0),
        (1, False, 0.8),
        (2, False, 0.6),
        (3, False, 0.0),
    ]
    assert [s["capability"] for s in result["next_steps"]] == ["secrets-management"]
    assert "SOPS" in result["next_steps"][0]["action"]
    # Evidence points at files and lines: the apps Kustomization's `kind:` is line 2 of apps.yaml.
    recon = evidence_of(result, "workload-reconciliation")
    assert {"path": "clusters/production/apps.yaml", "line": 2} in [
        {"path": e["path"], "line": e["line"]} for e in recon
    ]
    envs = {e["path"] for e in evidence_of(result, "environment-management")}
    assert envs == {"clusters/production/", "clusters/staging/"}
    principles = {p["id"]: p["status"] for p in result["principles"]}
    assert principles == {
        "declarative": "satisfied",
        "versioned-immutable": "satisfied",
        "pulled-automatically": "satisfied",
        "continuously-reconciled": "satisfied",
    }


def test_argocd_app_of_apps_with_templated_applications(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo = repos.argocd_app_of_apps(tmp_path / "argocd-example-apps")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result) == {
        "declarative-iac": "not_met",  # only applications, no infrastructure
        "declarative-workloads": "met",
        "version-control": "met",
        "immutable-images": "met",  # ks-guestbook-demo:0.2
        "suitable-infrastructure": "met",
        "workload-reconciliation": "met",  # selfHeal in root-app.yaml and the templated guestbook app
        "environment-management": "not_met",
        "secrets-management": "not_met",
        "pull-based": "met",
        "package-management": "met",  # apps/Chart.yaml
        "whole-environment": "not_met",
        "cluster-workload-separation": "not_met",  # apps/ only, no cluster configuration dir
        "security-governance": "not_met",
        "progressive-delivery": "not_met",
        "template-customization": "not_met",  # one values.yaml, no overlays
        "fleet-management": "not_met",
        "mass-customization": "not_met",
        "advanced-policy": "not_met",
        "cross-enterprise-governance": "unknown",
        "multi-cloud": "unknown",
    }
    assert result["level"] is None  # declarative-iac missing at Level 0
    recon = evidence_of(result, "workload-reconciliation")
    # The templated Application (not valid YAML) still counts: in APP_TEMPLATE `syncPolicy:` is
    # line 21, `automated:` 22, `prune:` 23, `selfHeal: true` 24. The manual helm-guestbook app is
    # shown as evidence against.
    assert {"path": "apps/templates/guestbook.yaml", "line": 24, "supports": True} in [
        {k: e[k] for k in ("path", "line", "supports")} for e in recon
    ]
    against = [e for e in recon if not e["supports"]]
    assert [e["path"] for e in against] == ["apps/templates/helm-guestbook.yaml"]
    assert [s["capability"] for s in result["next_steps"]] == ["declarative-iac"]
    # Declarative: workloads met, infrastructure not -> partial.
    assert {p["id"]: p["status"] for p in result["principles"]} == {
        "declarative": "partial",
        "versioned-immutable": "satisfied",
        "pulled-automatically": "satisfied",
        "continuously-reconciled": "satisfied",
    }


def test_helm_chart_with_templated_rollout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.helm_rollout(tmp_path / "web")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result) == {
        "declarative-iac": "not_met",
        "declarative-workloads": "met",  # templated Rollout and Service
        "version-control": "met",
        "immutable-images": "met",  # values.yaml: empty tag -> chart appVersion 2.4.1
        "suitable-infrastructure": "met",
        "workload-reconciliation": "not_met",
        # values-staging.yaml + values-production.yaml alone target no other cluster or namespace
        # (issue #14): not environments
        "environment-management": "not_met",
        "secrets-management": "not_met",
        "pull-based": "not_met",
        "package-management": "met",
        "whole-environment": "not_met",
        "cluster-workload-separation": "not_met",
        "security-governance": "not_met",
        "progressive-delivery": "met",  # templated Rollout + AnalysisTemplate
        "template-customization": "met",  # per-environment values files beside Chart.yaml
        "fleet-management": "not_met",
        "mass-customization": "not_met",
        "advanced-policy": "not_met",
        "cross-enterprise-governance": "unknown",
        "multi-cloud": "unknown",
    }
    assert result["level"] is None
    progressive = evidence_of(result, "progressive-delivery")
    # Rule order: Canary, Rollout, AnalysisTemplate; `kind:` is line 2 of both templates.
    assert [(e["path"], e["line"]) for e in progressive] == [
        ("charts/web/templates/rollout.yaml", 2),
        ("charts/web/templates/analysis.yaml", 2),
    ]
    assert "(canary) (templated)" in progressive[0]["detail"]
    # Nothing pulls or reconciles: a chart alone is declarative but not GitOps yet.
    assert {p["id"]: p["status"] for p in result["principles"]} == {
        "declarative": "partial",
        "versioned-immutable": "satisfied",
        "pulled-automatically": "not_satisfied",
        "continuously-reconciled": "not_satisfied",
    }


def test_sops_encrypted_secrets(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.sops_flux(tmp_path / "payments-config")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result) == {
        "declarative-iac": "met",  # terraform/main.tf
        "declarative-workloads": "met",
        "version-control": "met",
        "immutable-images": "met",
        "suitable-infrastructure": "met",
        "workload-reconciliation": "met",
        "environment-management": "met",
        "secrets-management": "met",  # .sops.yaml, sops: block, Flux decryption
        "pull-based": "met",
        "package-management": "met",
        "whole-environment": "not_met",  # Terraform run outside the reconciler
        "cluster-workload-separation": "met",  # clusters/ vs apps/
        "security-governance": "not_met",
        "progressive-delivery": "not_met",
        "template-customization": "not_met",
        "fleet-management": "not_met",
        "mass-customization": "not_met",
        "advanced-policy": "not_met",
        "cross-enterprise-governance": "unknown",
        "multi-cloud": "not_met",  # AWS only
    }
    assert result["level"] == 1
    assert [lv["progress"] for lv in result["levels"]] == [1.0, 1.0, 0.2, 0.0]
    assert [s["capability"] for s in result["next_steps"]] == [
        "whole-environment",
        "security-governance",
        "progressive-delivery",
        "template-customization",
    ]
    secrets = {(e["path"], e["line"]) for e in evidence_of(result, "secrets-management")}
    # `sops:` is line 9 of SOPS_SECRET (after apiVersion, kind, metadata, name, namespace, type,
    # data, password); `decryption:` is line 15 of each cluster Kustomization (no dependsOn).
    assert ("apps/payments/secret.enc.yaml", 9) in secrets
    assert (".sops.yaml", 1) in secrets
    assert ("clusters/staging/payments.yaml", 15) in secrets
    # The encrypted Secret is not mistaken for a plain-text one.
    assert all(e["supports"] for e in evidence_of(result, "secrets-management"))


def test_kyverno_policies(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.kyverno_policies(tmp_path / "policies")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result) == {
        "declarative-iac": "met",  # policies declare the cluster's configuration (issue #14)
        "declarative-workloads": "met",  # ClusterPolicy objects are declarations
        "version-control": "met",
        "immutable-images": "unknown",  # no image references at all
        "suitable-infrastructure": "met",
        "workload-reconciliation": "not_met",
        "environment-management": "not_met",
        "secrets-management": "not_met",
        "pull-based": "not_met",
        "package-management": "met",  # policies/kustomization.yaml
        "whole-environment": "not_met",
        "cluster-workload-separation": "not_met",
        "security-governance": "met",  # Kyverno + Gatekeeper
        "progressive-delivery": "not_met",
        "template-customization": "not_met",
        "fleet-management": "not_met",
        "mass-customization": "not_met",
        "advanced-policy": "met",  # the mutate rule
        "cross-enterprise-governance": "not_met",  # policy engine but no tenants
        "multi-cloud": "unknown",
    }
    # Level 0: nothing not_met, four of five met; images are undecided, not failed.
    assert result["level"] == 0
    assert result["levels"][0]["undecided"] == ["immutable-images"]
    governance = [e["detail"] for e in evidence_of(result, "security-governance")]
    assert any("Gatekeeper ConstraintTemplate k8srequiredlabels" in d for d in governance)
    assert any("ClusterPolicy/require-labels (1 rules, Enforce)" in d for d in governance)
    advanced = evidence_of(result, "advanced-policy")
    assert [(e["path"], e["line"]) for e in advanced] == [("policies/add-default-requests.yaml", 12)]


def test_applicationset_with_cluster_generator(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.argocd_appset(tmp_path / "gitops")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result) == {
        "declarative-iac": "not_met",
        "declarative-workloads": "met",
        "version-control": "met",
        "immutable-images": "met",  # pinned by digest
        "suitable-infrastructure": "met",
        "workload-reconciliation": "met",  # the generated Applications self-heal
        "environment-management": "met",  # every registered production cluster
        "secrets-management": "not_met",
        "pull-based": "met",
        "package-management": "not_met",  # plain directory source, no chart or kustomization
        "whole-environment": "not_met",
        "cluster-workload-separation": "not_met",
        "security-governance": "not_met",
        "progressive-delivery": "not_met",
        "template-customization": "not_met",
        "fleet-management": "met",  # clusters generator
        "mass-customization": "met",  # {{.name}} / {{.server}} parameters
        "advanced-policy": "not_met",
        "cross-enterprise-governance": "not_met",  # two restricted AppProjects but no policy engine
        "multi-cloud": "unknown",
    }
    assert result["level"] is None
    fleet = evidence_of(result, "fleet-management")
    assert [(e["path"], e["line"]) for e in fleet] == [("bootstrap/guestbook-appset.yaml", 9)]


def test_terraform(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.terraform(tmp_path / "infra")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    expected = {cap: "not_met" for cap in statuses(result)}
    expected.update(
        {
            "declarative-iac": "met",
            "version-control": "met",
            "immutable-images": "unknown",
            "cross-enterprise-governance": "unknown",
            "multi-cloud": "met",
        }
    )  # google_* in gcp/main.tf and aws_* in aws/eks.tf
    assert statuses(result) == expected
    assert result["level"] is None  # no workloads: declarative-workloads and suitable-infrastructure fail
    clouds = sorted((e["path"], e["line"], e["detail"]) for e in evidence_of(result, "multi-cloud"))
    assert clouds == [
        ("aws/eks.tf", 1, "Terraform aws_eks_cluster targets aws"),
        ("gcp/main.tf", 1, "Terraform google targets gcp"),
    ]


def test_plain_application_repo(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.plain_app(tmp_path / "app")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    expected = {cap: "not_met" for cap in statuses(result)}
    expected.update(
        {
            "version-control": "met",
            "immutable-images": "unknown",
            "cross-enterprise-governance": "unknown",
            "multi-cloud": "unknown",
        }
    )
    assert statuses(result) == expected
    assert result["level"] is None
    assert result["levels"][0] == {
        "level": 0,
        "name": "Prerequisites",
        "met": False,
        "progress": 0.2,
        "blocking": ["declarative-iac", "declarative-workloads", "suitable-infrastructure"],
        "undecided": ["immutable-images"],
    }
    # The CI pipeline pushing with helm is shown as evidence against pull-based.
    pull = evidence_of(result, "pull-based")
    assert [(e["path"], e["line"], e["supports"]) for e in pull] == [
        (".github/workflows/deploy.yml", 8, False)
    ]
    # Fixes for what is missing first; the unknown asks a question or for a source, never a fix.
    assert [(s["kind"], s["capability"]) for s in result["next_steps"]] == [
        ("fix", "declarative-iac"),
        ("fix", "declarative-workloads"),
        ("fix", "suitable-infrastructure"),
        ("decide", "immutable-images"),
    ]
    decide = result["next_steps"][-1]["action"]
    assert "no container image references found" in decide and "application repository" in decide
    assert "Replace" not in decide
    assert [u["capability"] for u in result["undecided"]] == ["immutable-images"]
    assert {p["id"]: p["status"] for p in result["principles"]}["declarative"] == "not_satisfied"


def test_assessment_is_stored_once_per_state(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.sops_flux(tmp_path / "payments-config")
    db = tmp_path / "db.duckdb"
    head = repo.rev_parse()
    assess(capsys, db, str(repo.path), "--at", "HEAD", "--store")
    assess(capsys, db, str(repo.path), "--at", "HEAD", "--store")  # re-run replaces, never duplicates
    con = store_reader(db)
    rows = con.execute("SELECT id, kind, level, revisions FROM maturity_assessments").fetchall()
    assert rows == [(f"payments-config|point|{head}", "point", 1, [head])]
    caps = con.execute(
        "SELECT count(*), count(*) FILTER (WHERE status = 'met') FROM maturity_capability_status"
    ).fetchone()
    assert caps == (20, 11)  # 5 + 5 + 1 + 0 met, see test_sops_encrypted_secrets
    from assessment import store

    latest = store.latest(con)
    assert latest is not None and latest["result"]["level"] == 1 and latest["target"] == "payments-config"
    con.close()


def test_kustomize_override_pins_a_latest_base(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.gitrepo import GitRepo

    repo = GitRepo.init(tmp_path / "config")
    base = repos.deployment("shop", "ghcr.io/acme/shop:latest")
    overlay = (
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../../base\n"
        "images:\n  - name: ghcr.io/acme/shop\n    newTag: sha-1a2b3c4\n"
    )
    repo.commit(
        "shop",
        repos.AT,
        files={
            "shop/base/deployment.yaml": base,
            "shop/base/kustomization.yaml": "resources:\n  - deployment.yaml\n",
            "shop/overlays/staging/kustomization.yaml": overlay,
            "shop/overlays/production/kustomization.yaml": overlay,
            "cart/deployment.yaml": repos.deployment("cart", "ghcr.io/acme/cart:latest"),
        },
    )
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    cap = next(c for c in result["capabilities"] if c["id"] == "immutable-images")
    # shop's base :latest is replaced by the overlays' newTag; cart's :latest (line 17) is deployed as is.
    assert cap["status"] == "not_met"
    assert [(e["path"], e["line"]) for e in cap["evidence"] if not e["supports"]] == [
        ("cart/deployment.yaml", 17)
    ]
    repo.git("rm", "-q", "cart/deployment.yaml")
    repo.commit("drop cart", "2024-06-04T10:00:00+00:00", files={})
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    assert statuses(result)["immutable-images"] == "met"
    assert statuses(result)["template-customization"] == "met"  # overlays of ../../base with images
    # overlays/staging + overlays/production, but nothing in the repository builds them (no Flux
    # Kustomization or Argo CD Application): undecided, not met (issue #14)
    assert statuses(result)["environment-management"] == "unknown"


@pytest.mark.timeout(60)
def test_odd_files_do_not_break_the_scan(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.gitrepo import GitRepo

    repo = GitRepo.init(tmp_path / "odd")
    laughs = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        laughs += f"{name}: &{name} [" + ", ".join([f"*{prev}"] * 9) + "]\n"
    repo.commit(
        "odd files",
        repos.AT,
        files={
            "broken.yaml": "kind: Deployment\n  : : [\n",  # not YAML at all
            "laughs.yaml": laughs,  # 9^9 references if expanded
            "huge.yaml": "apiVersion: v1\nkind: ConfigMap\n" + "# padding\n" * 600_000,  # > 5 MB: skipped
            "ok.yaml": repos.deployment("web", "ghcr.io/acme/web:2.0.0"),
        },
    )
    (repo.path / "latin1.yaml").write_bytes(b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: caf\xe9\n")
    (repo.path / "dangling.yaml").symlink_to(tmp_path / "nowhere.yaml")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path))
    details = sorted(e["detail"] for e in evidence_of(result, "declarative-workloads"))
    # ok.yaml's Deployment and the Latin-1 ConfigMap (undecodable byte replaced); huge.yaml is not read.
    assert details == ["apps/v1 Deployment/web", "v1 ConfigMap/caf\ufffd"]
    assert statuses(result)["immutable-images"] == "met"


def test_several_repositories_are_one_estate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    fleet = repos.flux_multi_cluster(tmp_path / "fleet-infra")
    infra = repos.terraform(tmp_path / "infra")
    alone = statuses(assess(capsys, tmp_path / "db.duckdb", str(fleet.path), "--store"))
    result = assess(capsys, tmp_path / "db.duckdb", str(fleet.path), str(infra.path), "--store")
    # The Terraform repo adds two clouds: multi-cloud goes from unknown to met; nothing else changes
    # (declarative-iac was already met by infrastructure/ manifests), so the level stays 0.
    changed = {k: (alone[k], v) for k, v in statuses(result).items() if alone[k] != v}
    assert changed == {"multi-cloud": ("unknown", "met")}
    assert result["level"] == 0
    # Evidence paths carry the repository name when several are assessed.
    paths = {e["path"] for e in evidence_of(result, "declarative-iac")}
    assert (
        "infra/gcp/main.tf" in paths and "fleet-infra/infrastructure/controllers/ingress-nginx.yaml" in paths
    )
    con = store_reader(tmp_path / "db.duckdb")
    targets = con.execute("SELECT DISTINCT target FROM maturity_assessments ORDER BY 1").fetchall()
    con.close()
    assert targets == [("fleet-infra",), ("fleet-infra+infra",)]


def test_table_output_and_option_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.sops_flux(tmp_path / "payments-config")
    db = str(tmp_path / "db.duckdb")
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", db, "assess", str(repo.path)])
    out = capsys.readouterr().out
    assert exit_info.value.code == 0
    assert "payments-config: GitOps maturity level 1" in out
    assert "OpenGitOps principles" in out and "Next steps" in out
    assert "secrets-management" in out and "Maturity by month" not in out
    for args, message in (
        (["--history", "weekly"], "error: --history 'weekly' is not supported (use: monthly)"),
        (["--format", "csv"], "error: assess supports --format table or json"),
        (["--at", "no-such-rev"], f"error: {repo.path}: revision 'no-such-rev' not found"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main.run(["--db", db, "assess", str(repo.path), *args])
        assert (exit_info.value.code, capsys.readouterr().err.strip()) == (2, message)

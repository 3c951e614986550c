"""What trying `assess` as a user found (session 21), each a test that fails on the code before:
fleet add-ons declared by an ApplicationSet, flux2-multi-tenancy's tenant shape, CI smoke tests
against a throwaway cluster, chart templates' names, files the scan leaves out, a repository with
no commit, the table's evidence for what is not met, and the user's own files (answers, cluster
dump, config) that are not text or not files at all."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from analytics.cli import main
from tests.gitrepo import GitRepo
from tests.test_assess import assess, evidence_of, statuses

APPSET_ADDON = """\
apiVersion: argoproj.io/v1alpha1
kind: ApplicationSet
metadata:
  name: cert-manager
  namespace: argocd
spec:
  generators:
    - clusters: {}
  template:
    metadata:
      name: 'cert-manager-{{name}}'
    spec:
      project: default
      source:
        repoURL: https://charts.jetstack.io
        chart: cert-manager
        targetRevision: v1.14.4
      destination:
        server: '{{server}}'
        namespace: cert-manager
      syncPolicy:
        automated:
          selfHeal: true
"""


SERVICE = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"


def committed(path: Path, files: dict[str, str]) -> GitRepo:
    repo = GitRepo.init(path)
    repo.commit("config", at="2026-01-05T10:00:00+00:00", files=files)
    return repo


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main.run(list(args))
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


def cap(result: dict[str, Any], cap_id: str) -> dict[str, Any]:
    return next(c for c in result["capabilities"] if c["id"] == cap_id)


def test_an_applicationset_of_an_addon_chart_declares_infrastructure(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = committed(tmp_path / "fleet", {"addons/cert-manager.yaml": APPSET_ADDON})
    result = assess(capsys, tmp_path / "db.ducklake", str(repo.path))
    assert statuses(result)["declarative-iac"] == "met"
    assert "cluster add-on chart cert-manager" in evidence_of(result, "declarative-iac")[0]["detail"]
    # the same template with an application chart is no add-on
    app = committed(tmp_path / "apps", {"apps/shop.yaml": APPSET_ADDON.replace("cert-manager", "shop")})
    assert statuses(assess(capsys, tmp_path / "db.ducklake", str(app.path)))["declarative-iac"] == "not_met"


def tenant_sync(team: str) -> str:
    """tenants/base/<team>/sync.yaml of fluxcd/flux2-multi-tenancy: the tenant's Kustomization
    lives in the tenants' namespace and impersonates the team's account, with no targetNamespace."""
    return (f"apiVersion: source.toolkit.fluxcd.io/v1\nkind: GitRepository\nmetadata:\n  name: {team}\n"
            f"  namespace: apps\nspec:\n  interval: 1m\n  url: https://example.com/{team}\n  ref:\n"
            f"    branch: main\n---\napiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\n"
            f"metadata:\n  name: {team}\n  namespace: apps\nspec:\n  serviceAccountName: {team}\n"
            f"  interval: 5m\n  sourceRef:\n    kind: GitRepository\n    name: {team}\n  prune: true\n")


POLICY = ("apiVersion: kyverno.io/v1\nkind: ClusterPolicy\nmetadata:\n  name: flux-multi-tenancy\nspec:\n"
          "  validationFailureAction: Enforce\n  rules:\n    - name: serviceAccountName\n      match:\n"
          "        any:\n          - resources:\n              kinds: [Kustomization, HelmRelease]\n"
          "      validate:\n        message: spec.serviceAccountName is required\n        pattern:\n"
          "          spec:\n            serviceAccountName: '?*'\n")


def test_flux_multi_tenancy_tenants_in_their_namespace_are_tenants(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"tenants/base/dev-team/sync.yaml": tenant_sync("dev-team"),
             "tenants/base/ops-team/sync.yaml": tenant_sync("ops-team"),
             "infrastructure/kyverno-policies/flux-multi-tenancy.yaml": POLICY}
    result = assess(capsys, tmp_path / "db.ducklake", str(committed(tmp_path / "mt", files).path))
    governance = cap(result, "cross-enterprise-governance")
    assert governance["status"] == "met", governance
    details = " ".join(e["detail"] for e in governance["evidence"])
    assert "tenant account dev-team in namespace apps" in details and "ops-team" in details
    # the same Kustomizations in flux-system impersonating a controller stay the platform's own
    platform = {k: v.replace("namespace: apps", "namespace: flux-system") for k, v in files.items()}
    again = assess(capsys, tmp_path / "db.ducklake", str(committed(tmp_path / "platform", platform).path))
    assert cap(again, "cross-enterprise-governance")["status"] == "not_met"


WORKFLOW = """\
on: pull_request
jobs:
  validate:
    runs-on: ubuntu-latest
    steps:
      - run: kubectl apply --dry-run=client -f deploy/
      - run: kubectl create secret generic db --from-literal=x=y --dry-run=client -o yaml | kubeseal > s.yaml
"""
SMOKE = """\
on: pull_request
jobs:
  smoke:
    runs-on: ubuntu-latest
    steps:
      - uses: helm/kind-action@v1
      - run: helm install smoke ./chart --wait
"""
DEPLOY = ("on: push\njobs:\n  deploy:\n    runs-on: ubuntu-latest\n    steps:\n"
          "      - run: kubectl apply -f k8s/\n")


def test_dry_runs_and_throwaway_clusters_in_ci_are_no_push(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    quiet = committed(tmp_path / "quiet", {".github/workflows/validate.yaml": WORKFLOW,
                                           ".github/workflows/smoke.yaml": SMOKE})
    result = assess(capsys, tmp_path / "db.ducklake", str(quiet.path))
    assert [e for e in evidence_of(result, "pull-based") if ".github/" in (e["path"] or "")] == []
    pushing = committed(tmp_path / "push", {".github/workflows/deploy.yaml": DEPLOY})
    pushed = assess(capsys, tmp_path / "db.ducklake", str(pushing.path))
    against = [e for e in evidence_of(pushed, "pull-based") if not e["supports"]]
    assert [(e["path"], e["line"]) for e in against] == [(".github/workflows/deploy.yaml", 6)]


BOTH_JOBS = """\
on: push
jobs:
  smoke:
    runs-on: ubuntu-latest
    steps:
      - uses: helm/kind-action@v1
      - run: helm install smoke ./chart --wait
  deploy:
    needs: smoke
    runs-on: ubuntu-latest
    steps:
      - run: helm upgrade --install web ./chart
"""
GITLAB_BOTH = """\
stages: [test, deploy]
smoke:
  stage: test
  script:
    - kind create cluster
    - kubectl apply -f k8s/
deploy:
  stage: deploy
  script:
    - kubectl apply -f k8s/
"""


def test_a_smoke_test_job_does_not_hide_the_deploy_job_beside_it(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The throwaway cluster is judged per job: the kind job's install is a test, the other job's
    upgrade a push (judged per file, the whole workflow counted as a test)."""
    for name, files, line in (("gh", {".github/workflows/ci.yaml": BOTH_JOBS}, 12),
                              ("gl", {".gitlab-ci.yml": GITLAB_BOTH}, 10)):
        repo = committed(tmp_path / name, files)
        result = assess(capsys, tmp_path / "db.ducklake", str(repo.path))
        against = [(e["path"], e["line"]) for e in evidence_of(result, "pull-based") if not e["supports"]]
        assert against == [(next(iter(files)), line)], (name, against)


def test_a_chart_templates_name_is_its_expression(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    deployment = ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n"
                  "  name: {{ include \"webapp.fullname\" . }}\n  labels:\n    app: web\nspec:\n"
                  "  template:\n    spec:\n      containers:\n        - name: web\n"
                  "          image: \"ghcr.io/acme/web:1.2.3\"\n")
    quoted = "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: \"two words\"\ndata: {}\n"
    chart = "apiVersion: v2\nname: webapp\nversion: 1.0.0\n"
    repo = committed(tmp_path / "chart", {"chart/Chart.yaml": chart, "chart/templates/cm.yaml": quoted,
                                          "chart/templates/deployment.yaml": deployment})
    code, out, _ = run(capsys, "--db", str(tmp_path / "db.ducklake"), "assess", str(repo.path),
                       "--format", "json")
    assert code == 0
    assert "Deployment/{{ include \\\"webapp.fullname\\\" . }}" in out
    assert "Deployment/{{\"" not in out and "Deployment/{{ \"" not in out


def test_files_over_the_limit_are_reported_as_skipped(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    big = ("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\ndata:\n  x: \""
           + "a" * (6 * 1024 * 1024) + "\"\n")
    web = "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec: {}\n"
    repo = committed(tmp_path / "big", {"big.yaml": big, "web.yaml": web})
    code, out, err = run(capsys, "--db", str(tmp_path / "db.ducklake"), "assess", str(repo.path),
                         "--format", "json")
    assert code == 0
    assert "big.yaml: larger than 5 MB, not scanned" in out
    assert "warning: skipped big.yaml: larger than 5 MB, not scanned" in err
    # the same at a revision (the blob path)
    _, at_head, _ = run(capsys, "--db", str(tmp_path / "db.ducklake"), "assess", str(repo.path),
                        "--at", "HEAD", "--format", "json")
    assert "big.yaml: larger than 5 MB, not scanned" in at_head


def test_a_repository_without_a_commit_versions_nothing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = GitRepo.init(tmp_path / "unborn")
    (repo.path / "svc.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata:\n  name: web\nspec: {}\n")
    version = cap(assess(capsys, tmp_path / "db.ducklake", str(repo.path)), "version-control")
    assert version["status"] == "not_met" and version["note"] == "a git repository with no commit yet"
    repo.commit("first", at="2026-01-05T10:00:00+00:00")
    assert cap(assess(capsys, tmp_path / "db.ducklake", str(repo.path)), "version-control")["status"] == "met"


def test_the_table_explains_what_is_not_met_and_shows_level_0(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    files = {"values.yaml": "image:\n  repository: ghcr.io/acme/web\n  tag: \"0.1\"\n",
             "sync/manifests.yaml": ("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n"
                                     "  template:\n    spec:\n      containers:\n        - name: web\n"
                                     "          image: nginx:latest\n")}
    repo = committed(tmp_path / "apps", files)
    code, out, _ = run(capsys, "--db", str(tmp_path / "db.ducklake"), "assess", str(repo.path))
    assert code == 0
    row = next(line for line in out.splitlines() if " immutable-images " in line and "not_met" in line)
    assert "against:" in row, row
    blocking = out.split("Blocking (not met)", 1)[1]
    first = next(line for line in blocking.splitlines() if "immutable-images" in line)
    assert first.split()[0] == "0", first


def test_odd_paths_to_assess_get_one_line_each(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = committed(tmp_path / "repo", {"apps/svc.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n"
                                                          "  name: web\nspec: {}\n"})
    db = str(tmp_path / "db.ducklake")
    # the repository's own .git folder is its history, like a bare repository
    result = assess(capsys, tmp_path / "db.ducklake", str(repo.path / ".git"))
    assert statuses(result)["version-control"] == "met"
    code, _, err = run(capsys, "--db", db, "assess", str(repo.path / ".git" / "objects"))
    assert code == 2 and "inside a repository's .git folder" in err
    # a subfolder is assessed, and asked for a revision it names the repository to pass
    code, _, err = run(capsys, "--db", db, "assess", str(repo.path / "apps"), "--at", "HEAD")
    assert code == 2 and f"inside the repository at {repo.path.resolve()}" in err
    code, _, err = run(capsys, "--db", db, "assess", str(repo.path / "apps" / "svc.yaml"))
    assert code == 2 and "not a directory" in err and "no such directory" not in err


def test_file_names_in_warnings_are_text(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = committed(tmp_path / "repo", {"web.yaml": SERVICE})
    os.symlink("/etc/passwd", repo.path / "e\x1b]0;TITLE\x07vil\x1b[31m.yaml")
    code, _, err = run(capsys, "--db", str(tmp_path / "db.ducklake"), "assess", str(repo.path))
    assert code == 0 and "warning: skipped" in err
    # the escape sequences are removed whole (the title and colour they set), the name kept
    assert "\x1b" not in err and "\x07" not in err and "TITLE" not in err
    assert "warning: skipped evil.yaml: symbolic link to outside the repository" in err


@pytest.mark.parametrize("option", ["--answers", "--cluster-dump"])
def test_answers_and_dumps_that_are_not_text_files_are_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], option: str) -> None:
    repo = committed(tmp_path / "repo", {"web.yaml": SERVICE})
    db = str(tmp_path / "db.ducklake")
    binary = tmp_path / "bin.yaml"
    binary.write_bytes(b"answers:\n  x: \xff\xfe\n")
    code, _, err = run(capsys, "--db", db, "assess", str(repo.path), option, str(binary))
    assert code == 2 and err.count("\n") == 1 and "is not UTF-8 text (line 2" in err, err
    code, _, err = run(capsys, "--db", db, "assess", str(repo.path), option, "/dev/zero")
    assert code == 2 and "/dev/zero is not a regular file" in err, err
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # nobody writes to it: reading it would wait for ever
    code, _, err = run(capsys, "--db", db, "assess", str(repo.path), option, str(fifo))
    assert code == 2 and "is not a regular file" in err, err


def test_a_config_that_is_not_a_text_file_is_one_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    binary = tmp_path / "config.yaml"
    binary.write_bytes(b"\xff\xfe")
    for config, expected in ((str(binary), "is not UTF-8 text (line 1, byte 1)"),
                             ("/dev/zero", "is not a regular file"), (str(tmp_path), "is a folder")):
        code, _, err = run(capsys, "--db", str(tmp_path / "db.ducklake"), "--config", config, "metrics")
        assert code == 2 and expected in err and err.count("\n") == 1, err

"""`gitops-dora deployments` (and the date options shared with `metrics`) on a real collected repo.

Repository (all UTC unless noted):
    A  2024-03-01 10:00                  <- v1.0.0 lightweight: deployed 2024-03-01T10:00Z, 1 change
    B  2024-03-02 09:00
    C  2024-03-02 11:00                  <- v1.1.0 annotated 2024-03-03 12:00: 2 changes (B, C)
    D  2024-03-05 08:00                  <- v1.2.0 annotated 2024-03-05 11:30 +0200 (= 09:30Z): 1 change
Service "app" of team "core" (from the config file), environment production.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.reconciler_objects import application, as_list, kustomization, kustomization_history_entry

CLI = str(Path(sys.executable).parent / "gitops-dora")
FIELDS = ["id", "service", "team", "environment", "revision", "deployed_at", "status", "source",
          "source_ref", "changes", "mapped_by"]


def run_cli(tmp: Path, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    """The command in this process (tests/cli_inprocess.py), or with ``process`` the installed
    script in a subprocess (the table test: a table as the real process draws it)."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["COLUMNS"] = "200"
    argv = ["--db", str(tmp / "store.duckdb"), "--config", str(tmp / "gitops-dora.yaml"), *args]
    if not process:
        return cli_inprocess.run(argv, env=env, cwd=tmp)
    return subprocess.run([CLI, *argv], capture_output=True, text=True, env=env, timeout=120, cwd=tmp)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("read")
    repo = GitRepo.init(tmp / "app")
    shas = {"A": repo.commit("A", at="2024-03-01T10:00:00+00:00")}
    repo.tag("v1.0.0")
    shas["B"] = repo.commit("B", at="2024-03-02T09:00:00+00:00")
    shas["C"] = repo.commit("C", at="2024-03-02T11:00:00+00:00")
    repo.annotated_tag("v1.1.0", at="2024-03-03T12:00:00+00:00")
    shas["D"] = repo.commit("D", at="2024-03-05T08:00:00+00:00")
    repo.annotated_tag("v1.2.0", at="2024-03-05T11:30:00+02:00")
    (tmp / "gitops-dora.yaml").write_text(
        "services:\n  - name: app\n    team: core\n    repositories: [app]\n"
        "environments:\n  - name: production\n    production: true\n"
    )
    proc = run_cli(tmp, "collect", "git", str(repo.path), "--service", "app",
                   "--deploy-tags", r"^v\d+\.\d+\.\d+$")
    assert proc.returncode == 0, proc.stderr
    return tmp, shas


def test_deployments_json_fields_times_and_change_counts(store: tuple[Path, dict[str, str]]) -> None:
    tmp, shas = store
    proc = run_cli(tmp, "deployments", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [list(r) for r in rows] == [FIELDS] * 3
    assert [(r["source_ref"], r["deployed_at"], r["changes"], r["revision"]) for r in rows] == [
        ("v1.0.0", "2024-03-01T10:00:00Z", 1, shas["A"]),
        ("v1.1.0", "2024-03-03T12:00:00Z", 2, shas["C"]),
        ("v1.2.0", "2024-03-05T09:30:00Z", 1, shas["D"]),   # 11:30 +0200 shown in UTC
    ]
    assert {(r["service"], r["team"], r["environment"], r["status"], r["mapped_by"]) for r in rows} == {
        ("app", "core", "production", "success", None)}   # tags are no reconciler objects: no mapping


def test_deployments_window_is_half_open_and_accepts_zones(store: tuple[Path, dict[str, str]]) -> None:
    tmp, _ = store
    # [03-03 12:00Z, 03-05 09:30Z): v1.1.0 exactly at since is in, v1.2.0 exactly at until is out
    proc = run_cli(tmp, "deployments", "--since", "2024-03-03T14:00:00+02:00",
                   "--until", "2024-03-05T09:30:00Z", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert [r["source_ref"] for r in json.loads(proc.stdout)] == ["v1.1.0"]
    # a plain date is midnight UTC: [03-02, 03-06) holds v1.1.0 and v1.2.0
    proc = run_cli(tmp, "deployments", "--since", "2024-03-02", "--until", "2024-03-06", "--format", "json")
    assert [r["source_ref"] for r in json.loads(proc.stdout)] == ["v1.1.0", "v1.2.0"]


def test_deployments_csv_and_table(store: tuple[Path, dict[str, str]]) -> None:
    tmp, shas = store
    proc = run_cli(tmp, "deployments", "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == ",".join(FIELDS)
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert [(r["source_ref"], r["changes"], r["deployed_at"]) for r in rows] == [
        ("v1.0.0", "1", "2024-03-01T10:00:00Z"), ("v1.1.0", "2", "2024-03-03T12:00:00Z"),
        ("v1.2.0", "1", "2024-03-05T09:30:00Z")]

    proc = run_cli(tmp, "deployments", "--service", "app", "--environment", "production", process=True)
    assert proc.returncode == 0, proc.stderr
    assert "v1.1.0" in proc.stdout and "2024-03-05 09:30" in proc.stdout   # tables: UTC to the minute
    assert shas["C"][:12] in proc.stdout and shas["C"] not in proc.stdout   # short revision in tables

    proc = run_cli(tmp, "deployments", "--service", "nope", "--format", "json")   # a typo is no empty list
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr == "error: --service nope: not in the store or the config; known services: app\n"


@pytest.mark.parametrize("command", ["deployments", "metrics"])
@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (("--since", "2024-02-30"), "--since '2024-02-30': not a valid date"),
        (("--until", "yesterday"), "--until 'yesterday': not a date"),
        (("--since", "2024-03-01T10:00:00"), "needs a zone"),
        (("--since", "2024-03-05", "--until", "2024-03-01"), "must be after --since"),
    ],
)
def test_bad_dates_give_one_clear_line(store: tuple[Path, dict[str, str]], command: str,
                                       args: tuple[str, ...], fragment: str) -> None:
    tmp, _ = store
    proc = run_cli(tmp, command, *args)
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr


def test_missing_database_is_one_line(tmp_path: Path) -> None:
    (tmp_path / "gitops-dora.yaml").write_text("services: []\n")
    proc = run_cli(tmp_path, "deployments")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: no database at {tmp_path / 'store.duckdb'}: run `gitops-dora demo` or a "
        "`gitops-dora collect` command first"]


@pytest.fixture(scope="module")
def reconciled(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One git tag deployment plus three reconciler objects, each mapped a different way, loaded
    with `collect git` and `import` (kubectl dumps shaped like the real Argo CD/Flux objects)."""
    tmp = tmp_path_factory.mktemp("mapped")
    repo = GitRepo.init(tmp / "app")
    repo.commit("A", at="2024-03-01T10:00:00+00:00")
    repo.tag("v1.0.0")
    (tmp / "gitops-dora.yaml").write_text(
        "services:\n  - name: app\n    team: core\n    repositories: [app]\n"
        "environments:\n  - name: production\n    production: true\n  - name: staging\n"
        "mapping:\n  rules:\n"
        "    - match: '^Application/argocd/web-(?P<environment>production|staging)$'\n"
        "      service: storefront\n"
    )
    proc = run_cli(tmp, "collect", "git", str(repo.path), "--service", "app",
                   "--deploy-tags", r"^v\d+\.\d+\.\d+$")
    assert proc.returncode == 0, proc.stderr
    rev_a, rev_b, rev_c = "a" * 40, "b" * 40, "c" * 40
    apps = [
        application("web-production", repo_url="https://git.example.com/cfg.git", path="web",
                    dest_namespace="web", history=[(rev_a, datetime(2024, 3, 4, 9, 0, tzinfo=UTC))],
                    uid="uid-web-production"),
        application("checkout", repo_url="https://git.example.com/cfg.git", path="checkout",
                    dest_namespace="staging-apps", history=[(rev_b, datetime(2024, 3, 5, 9, 0, tzinfo=UTC))],
                    labels={"app.kubernetes.io/part-of": "payments-api"}, uid="uid-checkout"),
    ]
    applied = datetime(2024, 3, 6, 9, 0, tzinfo=UTC)
    ks = kustomization(
        "inventory-production", "flux-system", path="./apps/inventory/overlays/production",
        applied=f"main@sha1:{rev_c}", ready_at=applied,
        history=[kustomization_history_entry(f"main@sha1:{rev_c}", applied, applied, 1)],
    )
    (tmp / "apps.json").write_text(json.dumps(as_list("Application", apps)))
    (tmp / "ks.json").write_text(json.dumps(as_list("Kustomization", [ks])))
    proc = run_cli(tmp, "import", str(tmp / "apps.json"), str(tmp / "ks.json"))
    assert proc.returncode == 0, proc.stderr
    return tmp


def test_deployments_show_how_reconciler_objects_were_mapped(reconciled: Path) -> None:
    """Expected, oldest first (mapped_by as the reconciler mapping records it):
    * v1.0.0 (git tag, 03-01): no reconciler object -> null in JSON, empty in CSV and the table;
    * Application argocd/web-production (03-04): the config's first rule names service and
      environment -> storefront/production, "rule:1";
    * Application argocd/checkout (03-05): label app.kubernetes.io/part-of gives the service,
      the destination namespace "staging-apps" the environment -> payments-api/staging;
    * Kustomization flux-system/inventory-production (03-06): "<service>-<environment>" name.
    """
    proc = run_cli(reconciled, "deployments", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(proc.stdout)
    assert [list(r) for r in rows] == [FIELDS] * 4
    assert [(r["source"], r["source_ref"], r["service"], r["environment"], r["mapped_by"]) for r in rows] == [
        ("git-tag", "v1.0.0", "app", "production", None),
        ("argocd", "Application/argocd/web-production", "storefront", "production", "rule:1"),
        ("argocd", "Application/argocd/checkout", "payments-api", "staging",
         "label:app.kubernetes.io/part-of,destination"),
        ("flux", "Kustomization/flux-system/inventory-production", "inventory", "production", "name-suffix"),
    ]

    proc = run_cli(reconciled, "deployments", "--format", "csv", "--service", "app,inventory")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[0] == ",".join(FIELDS)
    assert [(r["source_ref"], r["mapped_by"]) for r in csv.DictReader(io.StringIO(proc.stdout))] == [
        ("v1.0.0", ""), ("Kustomization/flux-system/inventory-production", "name-suffix")]

    proc = run_cli(reconciled, "deployments", "--environment", "production", "--since", "2024-03-02")
    assert proc.returncode == 0, proc.stderr
    assert "mapped_by" in proc.stdout and "rule:1" in proc.stdout and "name-suffix" in proc.stdout
    assert "destination" not in proc.stdout   # the staging deployment is filtered out

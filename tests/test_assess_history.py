"""Maturity over time (--history monthly), assessing revisions without a checkout, and answers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from assessment import store
from tests import maturity_repos as repos
from tests.gitrepo import GitRepo
from tests.store_query import store_reader
from tests.test_assess import assess, statuses


def adopting_flux(path: Path) -> tuple[GitRepo, dict[str, str]]:
    """Plain manifests + Terraform in January; Flux, SOPS and a second cluster adopted at the turn
    of February/March (23:30 at -02:00 on 29 Feb is 01:30 UTC on 1 March)."""
    repo = GitRepo.init(path)
    shas = {}
    shas["jan"] = repo.commit(
        "manifests and terraform",
        "2024-01-10T09:00:00+00:00",
        files={
            "apps/web/deployment.yaml": repos.deployment("web", "ghcr.io/acme/web:1.0.0"),
            "terraform/main.tf": 'resource "aws_eks_cluster" "main" {\n  name = "main"\n}\n',
        },
    )
    shas["feb"] = repo.commit("docs", "2024-02-12T09:00:00+00:00", files={"README.md": "# web\n"})
    files = {
        ".sops.yaml": "creation_rules:\n  - age: age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9a\n",
        "apps/web/kustomization.yaml": "resources:\n  - deployment.yaml\n  - secret.enc.yaml\n",
        "apps/web/secret.enc.yaml": repos.SOPS_SECRET,
    }
    for cluster in ("staging", "production"):
        files[f"clusters/{cluster}/flux-system/gotk-sync.yaml"] = repos.gotk_sync(cluster)
        files[f"clusters/{cluster}/web.yaml"] = repos.flux_kustomization("web", "./apps/web", sops=True)
    shas["flux"] = repo.commit("adopt flux", "2024-02-29T23:30:00-02:00", files=files)
    shas["mar"] = repo.commit("tune", "2024-03-20T10:00:00+00:00", files={"README.md": "# web service\n"})
    shas["may"] = repo.commit("more docs", "2024-05-02T10:00:00+00:00", files={"README.md": "# web svc\n"})
    return repo, shas


def test_history_monthly_shows_level_rising_the_month_flux_was_adopted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, shas = adopting_flux(tmp_path / "web-config")
    db = tmp_path / "db.duckdb"
    result = assess(capsys, db, str(repo.path), "--history", "monthly", "--store")
    # Jan, Feb: L0 met (manifests, Terraform, pinned image, git), no reconciler -> level 0.
    # The adoption commit is 1 March in UTC, so March is the first month at level 1; April has no
    # commit and keeps March's last state; May is the last month.
    timeline = [(p["period"], p["level"], p["revisions"]) for p in result["history"]]
    assert timeline == [
        ("2024-01", 0, [shas["jan"]]),
        ("2024-02", 0, [shas["feb"]]),
        ("2024-03", 1, [shas["mar"]]),
        ("2024-04", 1, [shas["mar"]]),
        ("2024-05", 1, [shas["may"]]),
    ]
    feb = result["history"][1]["statuses"]
    assert (feb["workload-reconciliation"], feb["secrets-management"], feb["pull-based"]) == (
        "not_met",
        "not_met",
        "not_met",
    )
    assert result["level"] == 1  # the point assessment of the working tree
    assess(capsys, db, str(repo.path), "--history", "monthly", "--store")  # idempotent re-run
    con = store_reader(db)
    stored = con.execute(
        "SELECT period, level FROM maturity_assessments WHERE kind = 'monthly' ORDER BY period"
    ).fetchall()
    assert stored == [("2024-01", 0), ("2024-02", 0), ("2024-03", 1), ("2024-04", 1), ("2024-05", 1)]
    points = store.timeline(con, "web-config")
    # Level 1 progress in February: no reconciler, one environment, no SOPS, no kustomization: 0/5.
    # March: all five Level 1 capabilities met.
    assert [(p["period"], p["progress"][1]) for p in points][1:3] == [("2024-02", 0.0), ("2024-03", 1.0)]
    assert con.execute("SELECT count(*) FROM maturity_assessments WHERE kind = 'point'").fetchone() == (1,)
    con.close()


def test_revision_is_read_without_checkout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo, shas = adopting_flux(tmp_path / "web-config")
    # An uncommitted policy in the working tree: it counts for the working tree only.
    (repo.path / "policies").mkdir()
    (repo.path / "policies" / "labels.yaml").write_text(repos.KYVERNO_VALIDATE)
    before = (repo.git("status", "--porcelain"), repo.rev_parse())
    db = tmp_path / "db.duckdb"
    at_jan = assess(capsys, db, str(repo.path), "--at", shas["jan"])
    at_head = assess(capsys, db, str(repo.path), "--at", "HEAD")
    worktree = assess(capsys, db, str(repo.path))
    assert (at_jan["level"], at_head["level"], worktree["level"]) == (0, 1, 1)
    assert statuses(at_jan)["pull-based"] == "not_met"
    assert statuses(at_head)["pull-based"] == "met"
    assert statuses(at_head)["security-governance"] == "not_met"
    assert statuses(worktree)["security-governance"] == "met"  # policies/labels.yaml, uncommitted
    # Nothing was checked out: same HEAD, same untracked file, nothing else changed.
    assert (repo.git("status", "--porcelain"), repo.rev_parse()) == before == ("?? policies/", shas["may"])


def test_bare_repository_and_url(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.sops_flux(tmp_path / "payments-config")
    bare = repo.clone(tmp_path / "payments-config.git", bare=True)
    by_path = assess(capsys, tmp_path / "db.duckdb", str(bare.path))
    by_url = assess(capsys, tmp_path / "db.duckdb", repo.url)
    assert by_path["level"] == by_url["level"] == 1
    assert statuses(by_path) == statuses(by_url)


def test_answers_attest_and_disagree(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.sops_flux(tmp_path / "payments-config")
    answers = tmp_path / "answers.yaml"
    answers.write_text(
        "answers:\n"
        "  whole-environment: yes\n"  # no evidence -> attested
        "  security-governance: yes\n"
        "  progressive-delivery:\n    answer: yes\n    note: Flagger in the other repo\n"
        "  template-customization: yes\n"
        "  secrets-management: no\n"  # evidence met -> stays met, disagreement shown
        "  fleet-management: no\n"  # no evidence -> not_met, no disagreement
    )
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path), "--answers", str(answers))
    caps = {c["id"]: c for c in result["capabilities"]}
    assert [
        caps[c]["status"]
        for c in (
            "whole-environment",
            "security-governance",
            "progressive-delivery",
            "template-customization",
        )
    ] == ["attested"] * 4
    assert caps["progressive-delivery"]["answer_note"] == "Flagger in the other repo"
    assert (caps["secrets-management"]["status"], caps["secrets-management"]["answer"]) == ("met", "no")
    assert caps["secrets-management"]["conflict"] == "answered no, but evidence shows it is in place"
    assert caps["secrets-management"]["evidence"]  # the evidence is shown beside the answer
    assert (caps["fleet-management"]["status"], caps["fleet-management"]["conflict"]) == ("not_met", None)
    # Level 2: cluster-workload-separation met + four attested. Progress counts met only: 1/5.
    assert result["level"] == 2
    assert [lv["progress"] for lv in result["levels"]] == [1.0, 1.0, 0.2, 0.0]
    # What blocks Level 3 first, then what is undecided there (a question, not a fix).
    assert [(s["kind"], s["capability"]) for s in result["next_steps"]] == [
        ("fix", "fleet-management"),
        ("fix", "mass-customization"),
        ("fix", "advanced-policy"),
        ("fix", "multi-cloud"),  # one infrastructure provider only
        ("decide", "cross-enterprise-governance"),
    ]


def test_evidence_outranks_a_yes_answer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    repo = repos.sops_flux(tmp_path / "payments-config", image="nginx:latest")
    answers = tmp_path / "answers.yaml"
    answers.write_text("answers:\n  immutable-images: yes\n")
    result = assess(capsys, tmp_path / "db.duckdb", str(repo.path), "--answers", str(answers))
    cap = next(c for c in result["capabilities"] if c["id"] == "immutable-images")
    assert (cap["status"], cap["answer"]) == ("not_met", "yes")
    assert cap["conflict"] == (
        "answered yes, but evidence shows it is missing: 1 image references use :latest or no tag"
    )
    # deployment(): `image:` is line 17 of the manifest.
    assert [(e["path"], e["line"], e["supports"]) for e in cap["evidence"]] == [
        ("apps/payments/deployment.yaml", 17, False)
    ]
    assert result["level"] is None


def test_bad_answers_file_changes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from analytics.cli import main

    repo = repos.sops_flux(tmp_path / "payments-config")
    db = tmp_path / "db.duckdb"
    assess(capsys, db, str(repo.path), "--store")
    bad = tmp_path / "answers.yaml"
    bad.write_text("answers:\n  gitops-everything: yes\n")
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(db), "assess", str(repo.path), "--answers", str(bad), "--store"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert (
        err.strip()
        == f"error: {bad}: unknown capability id 'gitops-everything' (see data/maturity/model.yaml)"
    )
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(db), "assess", str(tmp_path / "missing-repo"), "--store"])
    assert exit_info.value.code == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path / 'missing-repo'}: no such directory"
    con = store_reader(db)
    assert con.execute("SELECT count(*) FROM maturity_assessments").fetchone() == (1,)
    con.close()


def test_credentials_in_a_url_are_never_shown_or_stored(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from analytics.cli import main

    url = "https://deploy-bot:s3cr3t-t0ken@127.0.0.1:9/acme/config.git"  # port 9: nothing listens
    with pytest.raises(SystemExit) as exit_info:
        main.run(["--db", str(tmp_path / "db.duckdb"), "assess", url, "--store"])
    err = capsys.readouterr().err
    assert exit_info.value.code == 2
    assert err.startswith("error: https://deploy-bot:***@127.0.0.1:9/acme/config.git: cannot clone: ")
    assert "s3cr3t" not in err
    assert not (tmp_path / "db.duckdb").exists()


def test_url_over_http_is_assessed_and_stored_without_credentials(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], httpserver: HTTPServer
) -> None:
    """A loopback server speaking git's dumb HTTP protocol: static files of a bare repository."""
    repo = repos.sops_flux(tmp_path / "payments-config")
    bare = repo.clone(tmp_path / "served.git", bare=True)
    bare.git("update-server-info")

    def serve(request: Request) -> Response:
        rel = request.path.removeprefix("/acme/payments-config.git/")
        target = bare.path / rel
        if not target.is_file():
            return Response("not found", status=404)
        return Response(target.read_bytes(), content_type="application/octet-stream")

    httpserver.expect_request(re.compile(r"^/acme/payments-config\.git/.*")).respond_with_handler(serve)
    url = httpserver.url_for("/acme/payments-config.git").replace("http://", "http://bot:s3cr3t@")
    db = tmp_path / "db.duckdb"
    result = assess(capsys, db, url, "--store")
    assert result["level"] == 1  # same repository as test_sops_encrypted_secrets
    con = store_reader(db)
    stored = con.execute("SELECT target, sources, result::VARCHAR FROM maturity_assessments").fetchall()
    con.close()
    assert [(t, s) for t, s, _ in stored] == [
        (
            "payments-config",
            [httpserver.url_for("/acme/payments-config.git").replace("http://", "http://bot:***@")],
        )
    ]
    assert "s3cr3t" not in stored[0][2]


def test_newest_first_readers_get_the_point_assessment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    repo, shas = adopting_flux(tmp_path / "web-config")
    answers = tmp_path / "answers.yaml"
    answers.write_text("answers:\n  security-governance: yes\n")
    db = tmp_path / "db.duckdb"
    assess(capsys, db, str(repo.path), "--at", "HEAD", "--history", "monthly", "--answers", str(answers),
           "--store")
    con = store_reader(db)
    # --at HEAD and the 2024-05 point hold the same commit and the same as_of; the dashboard's
    # "as_of DESC, assessed_at DESC" order must still return today's assessment (with answers).
    newest = con.execute(
        "SELECT kind, as_of = (SELECT max(as_of) FROM maturity_assessments) "
        "FROM maturity_assessments ORDER BY as_of DESC, assessed_at DESC, id LIMIT 1"
    ).fetchone()
    may = con.execute("SELECT revisions FROM maturity_assessments WHERE period = '2024-05'").fetchone()
    latest = store.latest(con, "web-config")
    con.close()
    assert newest == ("point", True)
    assert may == ([shas["may"]],)
    assert (
        latest is not None and latest["answers_file"] == str(answers) and latest["revisions"] == [shas["may"]]
    )


def test_history_of_two_repositories_takes_each_at_its_month_end(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    app = GitRepo.init(tmp_path / "app")
    a_jan = app.commit(
        "deployment",
        "2024-01-20T10:00:00+00:00",
        files={"deploy/web.yaml": repos.deployment("web", "ghcr.io/acme/web:1.0.0")},
    )
    a_mar = app.commit(
        "bump",
        "2024-03-02T10:00:00+00:00",
        files={"deploy/web.yaml": repos.deployment("web", "ghcr.io/acme/web:1.1.0")},
    )
    infra = GitRepo.init(tmp_path / "infra")
    i_feb = infra.commit(
        "eks",
        "2024-02-10T10:00:00+00:00",
        files={"main.tf": 'resource "aws_eks_cluster" "main" {\n  name = "main"\n}\n'},
    )
    result = assess(capsys, tmp_path / "db.duckdb", str(app.path), str(infra.path), "--history", "monthly")
    # January: only the app exists (no IaC -> null). February: the app at its January commit plus
    # the Terraform repo -> Level 0 met. March: the app's March commit, infra still at February.
    assert [(p["period"], p["revisions"], p["level"]) for p in result["history"]] == [
        ("2024-01", [a_jan, ""], None),
        ("2024-02", [a_jan, i_feb], 0),
        ("2024-03", [a_mar, i_feb], 0),
    ]

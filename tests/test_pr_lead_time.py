"""PR-aware lead time: squash merges start at the PR's first commit; breakdown in ``metrics``."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pytest_httpserver import HTTPServer

from analytics.store.connection import open_reader
from tests import cli_inprocess
from tests.github_api import GitHubAPI
from tests.gitrepo import GitRepo

TOKEN = "ghp_test_token_123"


def cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["GITHUB_TOKEN"] = TOKEN
    result = cli_inprocess.run(["--db", str(db), *args], env=env, cwd=db.parent)  # in this process
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def history(tmp_path: Path, httpserver: HTTPServer) -> tuple[Path, dict[str, str]]:
    """Repo ``app`` with a squash-merged PR, a trunk commit, a merge-commit PR and three tag deployments."""
    repo = GitRepo.init(tmp_path / "app")
    c0 = repo.commit("init", at="2026-01-01T00:00:00+00:00")
    repo.annotated_tag("v0", at="2026-01-01T01:00:00+00:00")           # baseline deployment
    repo.branch("retry")
    f1 = repo.commit("retry: wip", at="2026-01-02T08:00:00+00:00")
    f2 = repo.commit("retry: tests", at="2026-01-02T10:00:00+00:00")
    repo.checkout("main")
    s1 = repo.commit("Retry payments (#1)", at="2026-01-03T12:00:00+00:00")  # the squash commit
    t1 = repo.commit("fix typo", at="2026-01-03T13:00:00+00:00")             # trunk, no PR
    repo.annotated_tag("v1", at="2026-01-03T18:00:00+00:00")
    repo.branch("ledger")
    g1 = repo.commit("ledger", at="2026-01-04T09:00:00+00:00")
    repo.checkout("main")
    m2 = repo.merge("ledger", at="2026-01-04T15:00:00+00:00", message="Merge pull request #2")
    repo.annotated_tag("v2", at="2026-01-04T20:00:00+00:00")
    shas = {"c0": c0, "f1": f1, "f2": f2, "s1": s1, "t1": t1, "g1": g1, "m2": m2}

    api = GitHubAPI(httpserver, "acme/app", token=TOKEN)
    api.add_pull(1, title="Retry payments", author="ada", created="2026-01-02T11:00:00Z",
                 updated="2026-01-03T12:00:00Z", merged="2026-01-03T12:00:00Z", merge_sha=s1,
                 commits=[(f1, "2026-01-02T08:00:00Z"), (f2, "2026-01-02T10:00:00Z")],
                 reviews=[(11, "bo", "APPROVED", "2026-01-02T15:00:00Z")])
    api.add_pull(2, title="Ledger", author="cy", created="2026-01-04T10:00:00Z",
                 updated="2026-01-04T15:00:00Z", merged="2026-01-04T15:00:00Z", merge_sha=m2,
                 commits=[(g1, "2026-01-04T09:00:00Z")],
                 reviews=[(21, "ada", "APPROVED", "2026-01-04T11:00:00Z")])
    db = tmp_path / "dora.duckdb"
    cli(db, "collect", "git", str(repo.path), "--deploy-tags", "^v", "--service", "app")
    cli(db, "collect", "github", "acme/app", "--base-url", api.base)  # repo id "app" found by name
    return db, shas


def metrics(db: Path) -> dict[str, Any]:
    out = cli(db, "metrics", "--format", "json", "--since", "2025-12-01", "--until", "2026-02-01")
    groups = json.loads(out.stdout)["groups"]
    assert len(groups) == 1
    return dict(groups[0])


def test_squash_merge_starts_at_the_pr_first_commit(history: tuple[Path, dict[str, str]]) -> None:
    db, s = history
    con = open_reader(db)
    try:
        rows = dict(((r[0]), (r[1], r[2])) for r in con.execute(
            "SELECT sha, start_source, lead_hours FROM change_lead_times WHERE NOT is_baseline").fetchall())
    finally:
        con.close()
    # s1 (squash commit, authored at the merge 01-03 12:00) starts at PR #1's first commit f1 (01-02 08:00)
    # and ships with v1 at 01-03 18:00: 34 h, not the 6 h its own author time would give
    assert rows[s["s1"]] == ("pr_first_commit", 34.0)
    # t1 has no PR: its own author time 13:00 -> 18:00 = 5 h
    assert rows[s["t1"]] == ("author", 5.0)
    # PR #2 used a merge commit: g1 keeps its time (09:00 -> 20:00 = 11 h); m2 starts at the PR's first commit
    assert rows[s["g1"]] == ("author", 11.0)
    assert rows[s["m2"]] == ("pr_first_commit", 11.0)
    assert s["f1"] not in rows and s["f2"] not in rows  # feature-branch commits were never deployed


def test_breakdown_appears_in_metrics_and_commits_without_pr_still_count(
    history: tuple[Path, dict[str, str]],
) -> None:
    db, _ = history
    group = metrics(db)
    assert (group["service"], group["environment"]) == ("app", "production")
    # counted changes: s1 34 h, t1 5 h, g1 11 h, m2 11 h -> median 11 h (t1 counts although it has no PR)
    assert group["lead_time_median_hours"] == pytest.approx(11.0)
    # PR #1: coding 08:00 -> 11:00 = 3 h, pickup 11:00 -> 15:00 = 4 h, review 15:00 -> 12:00 next day = 21 h,
    #        deploy 12:00 -> 18:00 = 6 h (3 + 4 + 21 + 6 = 34 = its lead time)
    # PR #2: coding 09:00 -> 10:00 = 1 h, pickup 10:00 -> 11:00 = 1 h, review 11:00 -> 15:00 = 4 h,
    #        deploy 15:00 -> 20:00 = 5 h; counted once although it shipped two changes (g1, m2)
    assert group["prs_deployed"] == 2
    assert group["pr_coding_median_hours"] == pytest.approx(2.0)     # median(3, 1)
    assert group["pr_pickup_median_hours"] == pytest.approx(2.5)     # median(4, 1)
    assert group["pr_review_median_hours"] == pytest.approx(12.5)    # median(21, 4)
    assert group["pr_deploy_median_hours"] == pytest.approx(5.5)     # median(6, 5)
    assert group["changes_with_pr"] == 3                               # s1, g1, m2
    assert group["changes_without_pr"] == 1                            # t1

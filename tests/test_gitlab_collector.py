"""``gitops-dora collect gitlab`` against a loopback GitLab REST API v4 (tests/gitlab_api.py)."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer

from tests import codehost_cli
from tests.codehost_cli import utc
from tests.gitlab_api import GitLabAPI
from tests.loopback_api import Fault

TOKEN = "glpat-test-token"
PROJECT = "acme/payments"
C1, C2, C3, SQ = "c1" * 20, "c2" * 20, "c3" * 20, "5a" * 20


def run_cli(tmp_path: Path, *args: str, token: str | None = TOKEN) -> subprocess.CompletedProcess[str]:
    return codehost_cli.run_cli(tmp_path / "gl.duckdb", *args, token_env="GITLAB_TOKEN", token=token)


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    return codehost_cli.query(tmp_path / "gl.duckdb", sql)


@pytest.fixture
def api(httpserver: HTTPServer) -> GitLabAPI:
    gl = GitLabAPI(httpserver, PROJECT, token=TOKEN)
    # MR 1: squash-merged (no merge commit, squash_commit_sha SQ); commits 07:00 and 09:00; opened 10:00;
    # the author's own comment (10:30) and a system note by the author do not count; bo approves at 13:00
    gl.add_mr(
        1,
        title="Add ledger",
        author="ada",
        state="merged",
        created="2026-01-05T10:00:00.000Z",
        updated="2026-01-05T15:00:00.000Z",
        merged="2026-01-05T15:00:00.000Z",
        squash_sha=SQ,
        commits=[(C1, "2026-01-05T07:00:00.000+00:00"), (C2, "2026-01-05T09:00:00.000+00:00")],
        notes=[
            (1, "ada", "please review", False, "2026-01-05T10:30:00.000Z"),
            (2, "ada", "added 1 commit", True, "2026-01-05T10:40:00.000Z"),
            (3, "bo", "approved this merge request", True, "2026-01-05T13:00:00.000Z"),
        ],
        labels=("backend",),
    )
    gl.add_mr(
        2,
        title="Draft: cleanup",
        author="cy",
        state="opened",
        created="2026-01-06T08:00:00.000Z",
        updated="2026-01-06T08:00:00.000Z",
        commits=[(C3, "2026-01-06T07:30:00.000+00:00")],
    )
    gl.add_deployment(
        101, SQ, "production", "success", "2026-01-05T16:00:00.000Z", "2026-01-05T16:04:00.000Z"
    )
    gl.add_deployment(102, C3, "staging", "failed", "2026-01-06T09:00:00.000Z", "2026-01-06T09:02:00.000Z")
    gl.add_deployment(103, C3, "production", "running", "2026-01-06T10:00:00.000Z", None)
    gl.add_issue(
        5,
        title="Ledger outage",
        labels=(),
        incident_type=True,
        created="2026-01-05T17:00:00.000Z",
        updated="2026-01-05T18:00:00.000Z",
        closed="2026-01-05T18:00:00.000Z",
        description=f"Root cause: {SQ[:12]}",
    )
    gl.add_issue(
        6,
        title="Latency",
        labels=("Incident",),
        created="2026-01-07T00:00:00.000Z",
        updated="2026-01-07T00:00:00.000Z",
    )
    gl.add_issue(
        7,
        title="Docs",
        labels=("docs",),
        created="2026-01-07T00:00:00.000Z",
        updated="2026-01-07T01:00:00.000Z",
    )
    return gl


def test_collects_merge_requests_deployments_and_incidents(tmp_path: Path, api: GitLabAPI) -> None:
    result = run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base)
    assert result.returncode == 0, result.stderr
    assert "2 merge requests, 2 deployments, 2 incidents" in result.stderr
    assert query(
        tmp_path,
        "SELECT number, state, first_commit_at, first_review_at, merged_at, merge_commit_sha,"
        " commit_shas, provider FROM pull_requests ORDER BY number",
    ) == [
        (
            1,
            "merged",
            utc("2026-01-05T07:00:00Z"),
            utc("2026-01-05T13:00:00Z"),
            utc("2026-01-05T15:00:00Z"),
            SQ,
            [C2, C1],
            "gitlab",
        ),
        (2, "opened", utc("2026-01-06T07:30:00Z"), None, None, None, [C3], "gitlab"),
    ]
    assert query(
        tmp_path, "SELECT id, environment, revision, status, deployed_at FROM deployments ORDER BY id"
    ) == [
        (f"gitlab:{PROJECT}:101", "production", SQ, "success", utc("2026-01-05T16:04:00Z")),
        (f"gitlab:{PROJECT}:102", "staging", C3, "failed", utc("2026-01-06T09:02:00Z")),
    ]  # 103 is still running
    assert query(tmp_path, "SELECT id, resolved_at, root_cause FROM incidents ORDER BY id") == [
        (f"gitlab:{PROJECT}#5", utc("2026-01-05T18:00:00Z"), SQ[:12]),
        (f"gitlab:{PROJECT}#6", None, None),
    ]
    # 3 deployments in pages of 2: the second page was fetched through the Link header
    assert any(p.endswith("/deployments") and parse_qs(q).get("page") == ["2"] for p, q in api.log)
    assert TOKEN.encode() not in (tmp_path / "gl.duckdb").read_bytes()


def test_incremental_second_run_asks_updated_after(tmp_path: Path, api: GitLabAPI) -> None:
    assert run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base).returncode == 0
    api.log.clear()
    result = run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base)
    assert result.returncode == 0, result.stderr
    # watermarks: newest MR update 2026-01-06T08:00, newest issue update 2026-01-07T01:00
    asked = {
        p.rsplit("/", 1)[-1]: parse_qs(q).get("updated_after")
        for p, q in api.log
        if p.endswith(("/merge_requests", "/issues"))
    }
    assert asked == {"merge_requests": ["2026-01-06T08:00:00Z"], "issues": ["2026-01-07T01:00:00Z"]}
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(2,)]
    assert query(tmp_path, "SELECT count(*) FROM incidents") == [(2,)]


def test_429_is_waited_out_with_a_countdown(tmp_path: Path, api: GitLabAPI) -> None:
    api.fail("/merge_requests", Fault(429, {"message": "Retry later"}, {"Retry-After": "1"}))
    api.fail(
        "/issues",
        Fault(
            429,
            {"message": "Retry later"},
            {"RateLimit-Remaining": "0", "RateLimit-Reset": str(int(time.time()) + 1)},
        ),
    )
    started = time.monotonic()
    result = run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base)
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("rate limited (HTTP 429): waiting") == 2
    assert time.monotonic() - started >= 2.0  # 1 s Retry-After + >= 1 s to the reset (+1 s margin)
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(2,)]


def test_errors_are_one_line_and_write_nothing(tmp_path: Path, api: GitLabAPI) -> None:
    bad = run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base, token="glpat-wrong")
    assert bad.returncode == 2
    assert bad.stderr.strip() == (
        f"error: gitlab {PROJECT} at {api.base}: 401 unauthorized: check the token in "
        "$GITLAB_TOKEN (or connections.gitlab.token_env/token_file)"
    )
    missing = run_cli(tmp_path, "collect", "gitlab", "acme/nope", "--base-url", api.base)
    assert missing.returncode == 2 and "404 not found" in missing.stderr
    api.fail("/issues", Fault(403, {"message": "403 Forbidden"}))
    forbidden = run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base)
    assert forbidden.returncode == 2 and f"gitlab {PROJECT} at {api.base}: 403 forbidden" in forbidden.stderr
    # the MRs and deployments fetched before the 403 were not written
    assert query(
        tmp_path, "SELECT (SELECT count(*) FROM pull_requests) + (SELECT count(*) FROM deployments)"
    ) == [(0,)]


def test_jobs_of_configured_deployment_jobs_are_deployments(tmp_path: Path, api: GitLabAPI) -> None:
    """Issue #15: CI runs as deployments, opt-in. Finished runs of the configured job in pipelines of
    the default branch are deployments of the pipeline's sha; other jobs, other branches, tags and
    unfinished jobs are not. Without the config key no job is even requested."""
    assert run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base).returncode == 0
    assert not [p for p, _ in api.log if p.endswith("/jobs")]
    api.add_job(501, name="deploy-prod", status="success", ref="main", sha=C1, pipeline_id=90,
                created="2026-01-05T16:00:00.000Z", started="2026-01-05T16:01:00.000Z",
                finished="2026-01-05T16:06:00.000Z")
    api.add_job(502, name="unit-tests", status="success", ref="main", sha=C1, pipeline_id=90,
                created="2026-01-05T16:00:00.000Z", started="2026-01-05T16:00:10.000Z",
                finished="2026-01-05T16:03:00.000Z")
    api.add_job(503, name="deploy-prod", status="failed", ref="main", sha=C3, pipeline_id=91,
                created="2026-01-06T10:00:00.000Z", started="2026-01-06T10:01:00.000Z",
                finished="2026-01-06T10:02:00.000Z")
    api.add_job(504, name="deploy-prod", status="success", ref="main", sha=C3, pipeline_id=91,
                created="2026-01-06T10:05:00.000Z", started="2026-01-06T10:05:30.000Z",
                finished="2026-01-06T10:09:00.000Z")          # the retry of 503
    api.add_job(505, name="deploy-prod", status="success", ref="feature", sha=C2, pipeline_id=92,
                created="2026-01-06T11:00:00.000Z", started="2026-01-06T11:00:30.000Z",
                finished="2026-01-06T11:04:00.000Z")
    api.add_job(506, name="deploy-prod", status="running", ref="main", sha=C3, pipeline_id=93,
                created="2026-01-07T11:00:00.000Z", started="2026-01-07T11:00:30.000Z", finished=None)
    config = "connections:\n  gitlab:\n    deployment_jobs: [deploy-prod]\n"
    (tmp_path / "gitops-dora.yaml").write_text(config)
    result = run_cli(tmp_path, "collect", "gitlab", PROJECT, "--base-url", api.base, "--full")
    assert result.returncode == 0, result.stderr
    asked = [parse_qs(q) for p, q in api.log if p.endswith("/jobs")]
    assert asked and all(sorted(a.get("scope[]", [])) == ["failed", "success"] for a in asked)
    jobs = query(tmp_path, "SELECT id, environment, revision, status, started_at, deployed_at, source_ref "
                           "FROM deployments WHERE source = 'gitlab-ci' ORDER BY id")
    assert jobs == [
        (f"gitlab-job:{PROJECT}:501", "production", C1, "success", utc("2026-01-05T16:01:00Z"),
         utc("2026-01-05T16:06:00Z"), "deploy-prod#90"),
        (f"gitlab-job:{PROJECT}:503", "production", C3, "failed", utc("2026-01-06T10:01:00Z"),
         utc("2026-01-06T10:02:00Z"), "deploy-prod#91"),
        (f"gitlab-job:{PROJECT}:504", "production", C3, "success", utc("2026-01-06T10:05:30Z"),
         utc("2026-01-06T10:09:00Z"), "deploy-prod#91"),
    ]

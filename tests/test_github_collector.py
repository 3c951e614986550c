"""``gitops-dora collect github`` against a loopback GitHub REST API (tests/github_api.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, SupportsIndex
from urllib.parse import parse_qs

import pytest
from pytest_httpserver import HTTPServer

from tests import cli_inprocess, codehost_cli
from tests.codehost_cli import utc
from tests.github_api import Fault, GitHubAPI
from tests.test_git_speed_literals import _PROBE

TOKEN = "ghp_test_token_123"
REPO = "acme/payments"
X1, X2, X3, X4, X5 = ("1" * 40, "2" * 40, "3" * 40, "4" * 40, "5" * 40)
M1, M5 = "a1" * 20, "a5" * 20


def run_cli(
    tmp_path: Path, *args: str, token: str | None = TOKEN, extra_env: dict[str, str] | None = None,
    process: bool = False,
) -> subprocess.CompletedProcess[str]:
    return codehost_cli.run_cli(
        tmp_path / "gh.duckdb", *args, token_env="GITHUB_TOKEN", token=token, extra_env=extra_env,
        process=process,
    )


def query(tmp_path: Path, sql: str) -> list[tuple[Any, ...]]:
    return codehost_cli.query(tmp_path / "gh.duckdb", sql)


@pytest.fixture
def api(httpserver: HTTPServer) -> GitHubAPI:
    gh = GitHubAPI(httpserver, REPO, token=TOKEN)
    # PR 1: squash-merged; commits at 08:00 and 10:00, opened 11:00, the author's own comment at 11:30
    # does not count as a review, bo approves at 14:00, merged 16:00 as M1
    gh.add_pull(
        1,
        title="Retry payments",
        author="ada",
        created="2026-01-05T11:00:00Z",
        updated="2026-01-05T16:00:00Z",
        merged="2026-01-05T16:00:00Z",
        merge_sha=M1,
        labels=("feature",),
        commits=[(X1, "2026-01-05T08:00:00Z"), (X2, "2026-01-05T10:00:00Z")],
        reviews=[
            (1, "ada", "COMMENTED", "2026-01-05T11:30:00Z"),
            (2, "bo", "APPROVED", "2026-01-05T14:00:00Z"),
        ],
    )
    gh.add_pull(
        2,
        title="WIP: refunds",
        author="cy",
        created="2026-01-06T09:00:00Z",
        updated="2026-01-06T09:30:00Z",
        commits=[(X3, "2026-01-06T08:00:00Z")],
    )
    gh.add_pull(
        3,
        title="Abandoned",
        author="cy",
        created="2026-01-02T00:00:00Z",
        updated="2026-01-03T00:00:00Z",
        closed="2026-01-03T00:00:00Z",
        commits=[(X4, "2026-01-01T00:00:00Z")],
    )
    gh.add_pull(
        5,
        title="Old",
        author="ada",
        created="2025-12-01T00:00:00Z",
        updated="2025-12-02T00:00:00Z",
        merged="2025-12-02T00:00:00Z",
        merge_sha=M5,
        commits=[(X5, "2025-11-30T00:00:00Z")],
    )
    # deployment 11: in_progress, success at 00:05, later "inactive" (superseded) -> success at 00:05
    gh.add_deployment(
        11,
        M1,
        "production",
        "2026-01-06T00:00:00Z",
        [
            ("in_progress", "2026-01-06T00:00:30Z"),
            ("success", "2026-01-06T00:05:00Z"),
            ("inactive", "2026-01-07T00:00:00Z"),
        ],
    )
    gh.add_deployment(12, X3, "staging", "2026-01-07T00:00:00Z", [("failure", "2026-01-07T00:10:00Z")])
    gh.add_deployment(13, X3, "production", "2026-01-08T00:00:00Z", [("queued", "2026-01-08T00:00:10Z")])
    gh.add_issue(
        20,
        title="Checkout down",
        labels=("Incident", "sev1"),
        created="2026-01-06T01:00:00Z",
        updated="2026-01-06T03:00:00Z",
        closed="2026-01-06T03:00:00Z",
        body=f"Payments failed.\r\n\r\nRoot cause: {M1}\r\n",
    )
    gh.add_issue(
        21,
        title="Slow refunds",
        labels=("incident",),
        created="2026-01-09T00:00:00Z",
        updated="2026-01-09T00:00:00Z",
    )
    gh.add_issue(
        22, title="Typo", labels=("bug",), created="2026-01-04T00:00:00Z", updated="2026-01-04T00:00:00Z"
    )
    gh.add_issue(
        2,
        title="WIP: refunds",
        labels=("incident",),
        created="2026-01-06T09:00:00Z",
        updated="2026-01-06T09:30:00Z",
        is_pull=True,
    )
    gh.add_release(7, "v1.0.0", "main", "2026-01-06T00:00:00Z", "2026-01-06T00:01:00Z")
    return gh


def test_collects_pull_requests_deployments_incidents_and_releases(tmp_path: Path, api: GitHubAPI) -> None:
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base)
    assert result.returncode == 0, result.stderr
    assert "4 pull requests, 2 deployments, 2 incidents, 1 releases" in result.stderr
    prs = query(
        tmp_path,
        "SELECT number, state, first_commit_at, first_review_at, merged_at, merge_commit_sha,"
        " labels, commit_shas, author FROM pull_requests ORDER BY number",
    )
    assert prs[0] == (
        1,
        "merged",
        utc("2026-01-05T08:00:00Z"),
        utc("2026-01-05T14:00:00Z"),
        utc("2026-01-05T16:00:00Z"),
        M1,
        ["feature"],
        [X1, X2],
        "ada",
    )
    assert [(p[0], p[1], p[3]) for p in prs[1:]] == [
        (2, "open", None),
        (3, "closed", None),
        (5, "merged", None),
    ]
    deps = query(
        tmp_path,
        "SELECT id, environment, revision, status, started_at, deployed_at, source, service"
        " FROM deployments ORDER BY id",
    )
    assert deps == [
        (
            f"github:{REPO}:11",
            "production",
            M1,
            "success",
            utc("2026-01-06T00:00:00Z"),
            utc("2026-01-06T00:05:00Z"),
            "github",
            "payments",
        ),
        (
            f"github:{REPO}:12",
            "staging",
            X3,
            "failed",
            utc("2026-01-07T00:00:00Z"),
            utc("2026-01-07T00:10:00Z"),
            "github",
            "payments",
        ),
    ]  # 13 has only "queued": no outcome yet
    incidents = query(
        tmp_path, "SELECT id, created_at, resolved_at, root_cause, labels FROM incidents ORDER BY id"
    )
    assert incidents == [
        (
            f"github:{REPO}#20",
            utc("2026-01-06T01:00:00Z"),
            utc("2026-01-06T03:00:00Z"),
            M1,
            ["Incident", "sev1"],
        ),
        (f"github:{REPO}#21", utc("2026-01-09T00:00:00Z"), None, None, ["incident"]),
    ]  # 22 is a bug, 2 is a pull request
    assert query(tmp_path, "SELECT tag_name, target FROM releases") == [("v1.0.0", "main")]
    # Link pagination was followed: 4 pulls in pages of 2 -> page=2 was requested
    assert any(p.endswith("/pulls") and parse_qs(q).get("page") == ["2"] for p, q in api.log)
    # the token is never stored
    assert TOKEN.encode() not in (tmp_path / "gh.duckdb").read_bytes()


def test_second_run_is_incremental_and_idempotent(tmp_path: Path, api: GitHubAPI) -> None:
    assert run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base).returncode == 0
    api.log.clear()
    api.pulls[1]["title"], api.pulls[1]["updated_at"] = "Refunds", "2026-01-10T01:00:00Z"
    api.add_pull(
        4,
        title="New",
        author="bo",
        created="2026-01-10T00:00:00Z",
        updated="2026-01-10T00:00:00Z",
        commits=[("6" * 40, "2026-01-09T23:00:00Z")],
    )
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base)
    assert result.returncode == 0, result.stderr
    # newest-updated first: [2, 4] [1, 3] [5]; PR 1 (16:00 on 01-05) is older than the watermark
    # (2026-01-06T09:30, PR 2's old updated_at), so page 3 is never fetched and only 2 and 4 are detailed
    pull_pages = [parse_qs(q).get("page", ["1"])[0] for p, q in api.log if p.endswith("/pulls")]
    assert pull_pages == ["1", "2"]
    detailed = sorted({p.split("/")[-2] for p, _ in api.log if p.endswith("/commits")})
    assert detailed == ["2", "4"]
    # issues are asked for with since = the newest updated_at seen (issue 21: 2026-01-09T00:00:00Z)
    since = [parse_qs(q).get("since") for p, q in api.log if p.endswith("/issues")]
    assert since and since[0] == ["2026-01-09T00:00:00Z"]
    assert query(tmp_path, "SELECT number, title FROM pull_requests ORDER BY number") == [
        (1, "Retry payments"),
        (2, "Refunds"),
        (3, "Abandoned"),
        (4, "New"),
        (5, "Old"),
    ]
    assert query(tmp_path, "SELECT count(*) FROM deployments") == [(2,)]
    assert query(tmp_path, "SELECT count(*) FROM incidents") == [(2,)]


def test_rate_limits_are_waited_out_with_a_countdown(tmp_path: Path, api: GitHubAPI) -> None:
    reset = int(time.time()) + 1  # the wait is reset - now + 1 s (the reset second itself): 1-2 s
    api.fail(
        "/pulls",
        Fault(
            403,
            {
                "message": "API rate limit exceeded for 127.0.0.1.",
                "documentation_url": "https://docs.github.com/rest/rate-limit",
            },
            {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(reset)},
        ),
    )
    api.fail(
        "/issues",
        Fault(
            403,
            {
                "message": "You have exceeded a secondary rate limit. Please wait a few "
                "minutes before you try again.",
                "documentation_url": "https://docs.github.com/rest/rate-limit",
            },
            {"Retry-After": "1"},
        ),
    )
    api.fail("/releases", Fault(429, {"message": "Too many requests"}, {"Retry-After": "1"}))
    started = time.monotonic()
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base)
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr
    assert result.stderr.count("rate limited (HTTP 403): waiting") == 2
    assert "rate limited (HTTP 429): waiting 1s" in result.stderr
    assert elapsed >= 3.0  # > 1 s until the primary reset (+1 s margin, partly elapsed) + 1 s + 1 s
    # each limited request was tried again only after its wait, measured where the requests arrive
    # (the elapsed time alone passed with the waits removed on a loaded machine)
    (pulls,) = api.waits_after_faults("/pulls")
    assert pulls >= 1.0  # until the reset second has passed: at least the second's remainder + 1 s
    (issues,) = api.waits_after_faults("/issues")
    (releases,) = api.waits_after_faults("/releases")
    assert issues >= 1.0 and releases >= 1.0  # Retry-After: 1
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(4,)]
    assert query(tmp_path, "SELECT count(*) FROM incidents") == [(2,)]
    assert query(tmp_path, "SELECT count(*) FROM releases") == [(1,)]


class RateLimitedUntilReleased(list[Fault]):
    """A fault queue for ``LoopbackAPI.faults`` that answers ``fault`` to every request until
    ``release()``: the collector stays inside its rate-limit waits exactly as long as the test needs,
    instead of one fixed ``Retry-After: 20`` (20 s of a worker doing nothing)."""

    def __init__(self, fault: Fault) -> None:
        super().__init__()
        self.fault = fault
        self.released = threading.Event()
        self.answered = 0

    def __len__(self) -> int:  # LoopbackAPI tests ``if queue``
        return 0 if self.released.is_set() else 1

    def pop(self, index: SupportsIndex = -1) -> Fault:
        self.answered += 1
        return self.fault

    def release(self) -> None:
        self.released.set()


def test_a_rate_limit_wait_does_not_keep_other_writers_out(tmp_path: Path, api: GitHubAPI) -> None:
    # The run fetches everything before it opens the store: while it waits out a limit, another
    # writer (here an incident import) gets in at once instead of failing on the lock. The issues
    # endpoint answers 429 with Retry-After: 2 until the import has committed (the client retries 8
    # times, so the import has some 16 s), then serves the issues.
    limited = RateLimitedUntilReleased(Fault(429, {"message": "Too many requests"}, {"Retry-After": "2"}))
    api.faults["/issues"] = limited
    db = tmp_path / "gh.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GITOPS_DORA_DB")}
    collector = subprocess.Popen(
        [codehost_cli.CLI, "--db", str(db), "collect", "github", REPO, "--base-url", api.base],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**env, "GITHUB_TOKEN": TOKEN},
    )
    try:
        assert collector.stderr is not None
        deadline = time.monotonic() + 60
        for line in collector.stderr:
            if "rate limited (HTTP 429): waiting" in line:
                break
            assert time.monotonic() < deadline, "the collector never reached its rate-limit wait"
        incidents = tmp_path / "incidents.csv"
        incidents.write_text("id,service,environment,created_at,resolved_at,title,root_cause\n"
                             "INC-9,payments,production,2026-01-05T10:00:00Z,,checkout down,\n")
        # the other writer: the import command in this process (the collector is the process under test)
        other = cli_inprocess.run(["--db", str(db), "import", str(incidents)], env=env, cwd=tmp_path)
        assert other.returncode == 0, other.stderr
        # the import committed while the collector is still rate limited (its issues not served yet)
        assert collector.poll() is None and limited.answered >= 1
        assert query(tmp_path, "SELECT id FROM incidents WHERE id = 'INC-9'") == [("INC-9",)]
    finally:
        limited.release()
    assert collector.wait(timeout=60) == 0
    assert query(tmp_path, "SELECT id FROM incidents WHERE id = 'INC-9'") == [("INC-9",)]
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(4,)]


def test_bad_token_is_one_line_and_writes_nothing(tmp_path: Path, api: GitHubAPI) -> None:
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base, token="ghp_wrong_token",
                     process=True)  # what the real process writes: the token must not show
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: github {REPO} at {api.base}: 401 bad credentials")
    assert "ghp_wrong_token" not in result.stderr
    assert query(tmp_path, "SELECT count(*) FROM pull_requests") == [(0,)]


def test_failure_after_partial_fetch_writes_nothing(tmp_path: Path, api: GitHubAPI) -> None:
    # pulls, deployments and issues succeed; releases then answer 401: the run must leave no rows
    api.fail("/releases", Fault(401, {"message": "Bad credentials"}))
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base)
    assert result.returncode == 2 and "401 bad credentials" in result.stderr
    assert query(
        tmp_path,
        "SELECT (SELECT count(*) FROM pull_requests) + (SELECT count(*) FROM deployments)"
        " + (SELECT count(*) FROM incidents)",
    ) == [(0,)]
    assert query(tmp_path, "SELECT status FROM collection_runs WHERE source = 'github'") == [("failed",)]


def test_not_found_and_forbidden_are_one_line_each(tmp_path: Path, api: GitHubAPI) -> None:
    missing = run_cli(tmp_path, "collect", "github", "acme/nope", "--base-url", api.base)
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        f"error: github acme/nope at {api.base}: 404 not found: the repository "
        "does not exist or the token cannot see it"
    )
    api.fail(f"/repos/{REPO}", Fault(403, {"message": "Resource not accessible by personal access token"}))
    forbidden = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base)
    assert forbidden.returncode == 2
    assert forbidden.stderr.strip() == (
        f"error: github {REPO} at {api.base}: 403 forbidden: Resource not accessible by personal access token"
    )
    bad_name = run_cli(tmp_path, "collect", "github", "just-a-name", "--base-url", api.base)
    assert bad_name.returncode == 2 and "expected OWNER/REPO" in bad_name.stderr


def test_secondary_rate_limit_without_retry_after_backs_off(tmp_path: Path, api: GitHubAPI) -> None:
    # GitHub's secondary limit: 403, a message saying so, and (here) no Retry-After and no exhausted
    # quota; the client must back off for the secondary wait (shortened to 1 s for the test, from
    # GitHub's minute: the countdown says so, and a wait the variable did not set would say another
    # number or none) and retry
    api.fail(
        "/deployments",
        Fault(
            403,
            {
                "message": "You have exceeded a secondary rate limit and have been "
                "temporarily blocked from content creation.",
                "documentation_url": "https://docs.github.com/rest/rate-limit",
            },
        ),
    )
    started = time.monotonic()
    result = run_cli(
        tmp_path,
        "collect",
        "github",
        REPO,
        "--base-url",
        api.base,
        extra_env={"GITOPS_DORA_SECONDARY_RATE_WAIT": "1"},
    )
    assert result.returncode == 0, result.stderr
    assert "rate limited (HTTP 403): waiting 1s" in result.stderr
    assert time.monotonic() - started >= 1.0
    assert query(tmp_path, "SELECT count(*) FROM deployments") == [(2,)]


def test_since_bounds_a_first_run_and_unmatched_merges_are_noted(tmp_path: Path, api: GitHubAPI) -> None:
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base, "--since", "2026-01-06")
    assert result.returncode == 0, result.stderr
    # only PR 2 was updated on or after 2026-01-06 (09:30); PRs 1 (01-05 16:00), 3 and 5 are older
    assert query(tmp_path, "SELECT number FROM pull_requests") == [(2,)]
    # issues: since=2026-01-06 -> 20 (updated 01-06 03:00) and 21 are incidents
    assert query(tmp_path, "SELECT count(*) FROM incidents") == [(2,)]
    full = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base, "--full")
    assert full.returncode == 0, full.stderr
    # no git history was collected: both merged PRs (1 and 5) point at unknown merge commits
    assert query(tmp_path, "SELECT kind, count FROM data_warnings WHERE source = 'github'") == [
        ("pr_merge_commit_unknown", 2)
    ]


def test_workflow_runs_of_configured_workflows_are_deployments(tmp_path: Path, api: GitHubAPI) -> None:
    """Issue #15: CI runs as deployments, opt-in. Runs of the deploy workflow on the default branch
    that completed with success or failure are deployments of their head sha; CI, other branches,
    cancelled and unfinished runs are not. Without the config key no run is even requested."""
    assert run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base).returncode == 0
    assert not [p for p, _ in api.log if p.endswith("/actions/runs")]
    deploy = ".github/workflows/deploy.yml"
    api.add_run(101, name="Deploy", path=deploy, sha=M1, branch="main", created="2026-01-06T01:00:00Z",
                updated="2026-01-06T01:10:00Z", conclusion="success")
    api.add_run(102, name="CI", path=".github/workflows/ci.yml", sha=M1, branch="main",
                created="2026-01-06T01:00:00Z", updated="2026-01-06T01:04:00Z", conclusion="success")
    api.add_run(103, name="Deploy", path=deploy, sha=X3, branch="feature", created="2026-01-06T09:00:00Z",
                updated="2026-01-06T09:10:00Z", conclusion="success")
    api.add_run(104, name="Deploy", path=deploy, sha=X3, branch="main", created="2026-01-07T02:00:00Z",
                updated="2026-01-07T02:05:00Z", conclusion="failure")
    api.add_run(105, name="Deploy", path=deploy, sha=X3, branch="main", created="2026-01-07T03:00:00Z",
                updated="2026-01-07T03:01:00Z", conclusion="cancelled")
    api.add_run(106, name="Deploy", path=deploy, sha=X3, branch="main", created="2026-01-08T00:00:00Z",
                updated="2026-01-08T00:20:00Z", conclusion="success")
    api.add_run(107, name="Deploy", path=deploy, sha=X3, branch="main", created="2026-01-09T00:00:00Z",
                updated="2026-01-09T00:15:00Z", conclusion="success")
    api.add_run(108, name="Deploy", path=deploy, sha=X3, branch="main", created="2026-01-09T05:00:00Z",
                updated="2026-01-09T05:01:00Z", conclusion=None, status="in_progress")
    (tmp_path / "gitops-dora.yaml").write_text(
        "connections:\n  github:\n    deployment_workflows: [deploy.yml]\n")
    result = run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base, "--full")
    assert result.returncode == 0, result.stderr
    asked = [parse_qs(q) for p, q in api.log if p.endswith("/actions/runs")]
    assert asked and all(a.get("branch") == ["main"] and a.get("status") == ["completed"] for a in asked)
    runs = query(tmp_path, "SELECT id, environment, revision, status, started_at, deployed_at, source_ref "
                           "FROM deployments WHERE source = 'github-actions' ORDER BY id")
    assert runs == [
        (f"github-run:{REPO}:101", "production", M1, "success", utc("2026-01-06T01:00:00Z"),
         utc("2026-01-06T01:10:00Z"), "Deploy#101"),
        (f"github-run:{REPO}:104", "production", X3, "failed", utc("2026-01-07T02:00:00Z"),
         utc("2026-01-07T02:05:00Z"), "Deploy#104"),
        (f"github-run:{REPO}:106", "production", X3, "success", utc("2026-01-08T00:00:00Z"),
         utc("2026-01-08T00:20:00Z"), "Deploy#106"),
        (f"github-run:{REPO}:107", "production", X3, "success", utc("2026-01-09T00:00:00Z"),
         utc("2026-01-09T00:15:00Z"), "Deploy#107"),
    ]
    # production: deployment 11 (M1), run 101 redeploys M1, run 106 (X3), run 107 redeploys X3
    def production_deployments() -> int:
        done = cli_inprocess.run(
            ["--db", str(tmp_path / "gh.duckdb"), "metrics", "--environment", "production",
             "--since", "2026-01-05", "--until", "2026-01-10", "--format", "json"], cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        groups = json.loads(done.stdout)["groups"]
        assert len(groups) == 1
        return int(groups[0]["deployments"])

    assert production_deployments() == 4
    config = tmp_path / "gitops-dora.yaml"
    config.write_text(config.read_text() + "deployments:\n  count_redeploys: false\n")
    assert production_deployments() == 2


def test_a_small_collection_loads_no_pandas_and_stores_what_frames_store(
    tmp_path: Path, api: GitHubAPI
) -> None:
    """A process that collects a few pull requests writes them as VALUES literals and never imports
    pandas (about 0.5 s of every CronJob run); the rows equal those of the DataFrame path, which
    this process (pandas loaded) takes."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITHUB_TOKEN", "GITOPS_DORA_DB")}
    env.update(GITHUB_TOKEN=TOKEN, PYTHONPATH=str(Path(__file__).resolve().parent.parent))
    by_values = tmp_path / "values" / "gh.duckdb"
    by_values.parent.mkdir()
    for _ in range(2):  # a first run, then an incremental one
        argv = ["--db", str(by_values), "collect", "github", REPO, "--base-url", api.base]
        proc = subprocess.run([sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, env=env,
                              cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.endswith("IMPORTED=\n"), proc.stdout
    for _ in range(2):
        assert run_cli(tmp_path, "collect", "github", REPO, "--base-url", api.base).returncode == 0
    tables = ("pull_requests", "pr_reviews", "deployments", "incidents", "releases")
    stored = [codehost_cli.query(by_values, f"SELECT * FROM {t} ORDER BY ALL") for t in tables]
    assert stored == [query(tmp_path, f"SELECT * FROM {t} ORDER BY ALL") for t in tables]
    assert len(stored[0]) == 4 and all(stored), stored  # every table holds rows

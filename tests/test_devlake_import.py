"""DevLake's domain tables as import files (issue #15): ``cicd_deployment_commits``, ``issues`` of type
INCIDENT, ``board_issues`` and ``project_mapping``, written by the test with DevLake's column names,
through the real CLI and store.

Hand-worked example (April 2023, UTC; commits imported as the ``commits`` kind):

    api  a1 04-10 06:00   a2 04-12 08:00   a3 04-13 05:00        web  w1 04-10 05:00   w2 04-13 06:00
    project_mapping: shop holds cicd_scopes cicd1, repos github:GithubRepo:1:11 and boards board1

    cicd_deployment_commits (one row per repository and deployment):
    dep1  api a1 finished 04-10 07:10, web w1 07:20  -> one deployment at 07:20, baseline
    dep2  api a3 finished 2023-4-13 9:30, web w2 10:00 -> one deployment at 10:00: a2 26 h, a3 5 h, w2 4 h
    dep3  api a3 FAILURE 04-13 12:00                 -> a failed attempt
    dep4  ABORT                                      -> skipped
    dep5  STAGING a3 04-13 11:00                     -> staging's baseline
    dep6  no environment, api a3 04-14 08:00         -> production (the default, a data warning); nothing new

    issues: #100 INCIDENT on board1, created 04-13 13:00, resolved 15:00 -> shop, attributed to dep2
            #101 BUG -> skipped; #102 INCIDENT on board2 (no project), DONE without a resolution
            date -> resolved at its updated_date, no service

shop/production over [04-13, 04-15): 2 deployments (dep2, dep6), lead time median(26, 5, 4) = 5 h,
change failure rate 2/3 (dep2 has an incident, dep3 failed; attempts dep2, dep3, dep6), time to
restore 2 h. DevLake itself (worked out from the same rows by ``devlake_cfr`` below): one deployment
per cicd_deployment_id too, but only successful PRODUCTION ones, so dep3 (failed) and dep6 (no
environment) are not in its denominator and #102 (not on a board of the project) is not its
incident: 1/1. Its lead time is per PR (no PRs here: none).
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.stability_env import run_cli_inprocess as run_cli
from tests.stability_env import write_csv
from tests.store_query import query

A1, A2, A3 = ("a1" * 20, "a2" * 20, "a3" * 20)
W1, W2 = ("b1" * 20, "b2" * 20)
API, WEB = "github:GithubRepo:1:11", "github:GithubRepo:1:12"
API_URL, WEB_URL = "https://github.com/acme/api.git", "https://github.com/acme/web"
DEPLOY_HEADER = ("id", "cicd_scope_id", "cicd_deployment_id", "name", "result", "status", "environment",
                 "created_date", "started_date", "finished_date", "duration_sec", "commit_sha", "ref_name",
                 "repo_id", "repo_url")


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def files(tmp: Path) -> dict[str, Path]:
    commits = write_csv(tmp / "commits.csv", ("repository", "sha", "parents", "authored_at"), [
        ("api", A1, "", "2023-04-10T06:00:00Z"), ("api", A2, A1, "2023-04-12T08:00:00Z"),
        ("api", A3, A2, "2023-04-13T05:00:00Z"),
        ("web", W1, "", "2023-04-10T05:00:00Z"), ("web", W2, W1, "2023-04-13T06:00:00Z")])
    deploys = write_csv(tmp / "cicd_deployment_commits.csv", DEPLOY_HEADER, [
        (1, "cicd1", "dep1", "deploy", "SUCCESS", "DONE", "PRODUCTION", "2023-04-10 07:00:00",
         "2023-04-10 07:00:00", "2023-04-10 07:10:00", 600, A1, "main", API, API_URL),
        (2, "cicd1", "dep1", "deploy", "SUCCESS", "DONE", "PRODUCTION", "2023-04-10 07:00:00",
         "2023-04-10 07:00:00", "2023-04-10 07:20:00", 1200, W1, "main", WEB, WEB_URL),
        (3, "cicd1", "dep2", "deploy", "SUCCESS", "DONE", "PRODUCTION", "2023-4-13 9:00:00",
         "2023-4-13 9:00:00", "2023-4-13 9:30:00", 1800, A3, "main", API, API_URL),
        (4, "cicd1", "dep2", "deploy", "SUCCESS", "DONE", "PRODUCTION", "2023-04-13 09:00:00",
         "2023-04-13 09:00:00", "2023-04-13 10:00:00", 3600, W2, "main", WEB, WEB_URL),
        (5, "cicd1", "dep3", "deploy", "FAILURE", "DONE", "PRODUCTION", "2023-04-13 11:50:00",
         "2023-04-13 11:50:00", "2023-04-13 12:00:00", 600, A3, "main", API, API_URL),
        (6, "cicd1", "dep4", "deploy", "ABORT", "DONE", "PRODUCTION", "2023-04-13 12:30:00",
         "2023-04-13 12:30:00", "", "", A3, "main", API, API_URL),
        (7, "cicd1", "dep5", "deploy", "SUCCESS", "DONE", "STAGING", "2023-04-13 10:50:00",
         "2023-04-13 10:50:00", "2023-04-13 11:00:00", 600, A3, "main", API, API_URL),
        (8, "cicd1", "dep6", "deploy", "SUCCESS", "DONE", "", "2023-04-14 07:50:00",
         "2023-04-14 07:50:00", "", 600, A3, "main", API, API_URL)])   # finished = started + duration
    issues = write_csv(tmp / "issues.csv", ("id", "url", "issue_key", "title", "type", "status",
                                            "resolution_date", "created_date", "updated_date"), [
        ("github:GithubIssue:1:100", "https://github.com/acme/api/issues/100", "100", "Checkout down",
         "INCIDENT", "DONE", "2023-04-13 15:00:00", "2023-04-13 13:00:00", "2023-04-13 15:05:00"),
        ("github:GithubIssue:1:101", "", "101", "Typo", "BUG", "TODO", "", "2023-04-13 14:00:00", ""),
        ("github:GithubIssue:1:102", "", "102", "Slow search", "INCIDENT", "DONE", "",
         "2023-04-14 09:00:00", "2023-04-14 10:00:00")])
    boards = write_csv(tmp / "board_issues.csv", ("board_id", "issue_id"), [
        ("board1", "github:GithubIssue:1:100"), ("board2", "github:GithubIssue:1:102")])
    mapping = write_csv(tmp / "project_mapping.csv", ("project_name", "table", "row_id"), [
        ("shop", "cicd_scopes", "cicd1"), ("shop", "repos", API), ("shop", "boards", "board1"),
        ("tools", "cicd_scopes", "cicd9")])
    return {"commits": commits, "deploys": deploys, "issues": issues, "boards": boards, "mapping": mapping}


def changes(db: Path, deployment: str) -> dict[str, tuple[float, bool]]:
    rows = json.loads(run_cli(db, "changes", "--deployment", deployment, "--format", "json").stdout)
    return {r["sha"]: (round(r["lead_hours"], 2), r["counted"]) for r in rows}


def shop(db: Path) -> dict[str, Any]:
    out = run_cli(db, "metrics", "--since", "2023-04-13", "--until", "2023-04-15", "--service", "shop",
                  "--environment", "production", "--format", "json").stdout
    groups = json.loads(out)["groups"]
    assert len(groups) == 1
    return dict(groups[0])


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("devlake")
    db = tmp / "store.ducklake"
    f = files(tmp)
    out = run_cli(db, "import", *(str(f[k]) for k in ("mapping", "commits", "deploys", "boards", "issues")))
    assert "cicd_deployment_commits.csv: imported 5 devlake_deployment_commits rows" in out.stderr
    assert "2 deployments of several repositories" in out.stderr
    assert "1 deployments without an environment assigned to production" in out.stderr
    assert "skipped 1 ABORT rows" in out.stderr
    assert "issues.csv: imported 2 devlake_incidents rows" in out.stderr
    assert "skipped 1 BUG issues" in out.stderr
    return db


def test_deployments_group_rows_of_several_repositories(db: Path) -> None:
    rows = query(db, "SELECT id, service, environment, status, deployed_at, source FROM deployments "
                     "ORDER BY id")
    assert rows == [
        ("devlake:dep1", "shop", "production", "success", t("2023-04-10T07:20:00Z"), "devlake"),
        ("devlake:dep2", "shop", "production", "success", t("2023-04-13T10:00:00Z"), "devlake"),
        ("devlake:dep3", "shop", "production", "failed", t("2023-04-13T12:00:00Z"), "devlake"),
        ("devlake:dep5", "shop", "staging", "success", t("2023-04-13T11:00:00Z"), "devlake"),
        ("devlake:dep6", "shop", "production", "success", t("2023-04-14T08:00:00Z"), "devlake")]
    assert query(db, "SELECT repository, revision FROM deployment_revisions WHERE deployment_id = "
                     "'devlake:dep2' ORDER BY 1") == [("api", A3), ("web", W2)]
    assert changes(db, "devlake:dep2") == {A2: (26.0, True), A3: (5.0, True), W2: (4.0, True)}
    assert changes(db, "devlake:dep6") == {}


def test_incidents_of_type_incident_on_the_projects_boards(db: Path) -> None:
    rows = query(db, "SELECT id, service, environment, created_at, resolved_at, source_ref FROM incidents "
                     "ORDER BY id")
    assert rows == [
        ("github:GithubIssue:1:100", "shop", "production", t("2023-04-13T13:00:00Z"),
         t("2023-04-13T15:00:00Z"), "100"),
        ("github:GithubIssue:1:102", None, "production", t("2023-04-14T09:00:00Z"),
         t("2023-04-14T10:00:00Z"), "102")]


def test_metrics_of_the_project(db: Path) -> None:
    group = shop(db)
    assert group["deployments"] == 2
    assert group["lead_time_median_hours"] == pytest.approx(5.0)          # median(26, 5, 4)
    assert group["change_failure_rate"] == pytest.approx(2 / 3)
    assert group["time_to_restore_median_hours"] == pytest.approx(2.0)
    assert query(db, "SELECT detail, count FROM data_warnings WHERE kind = 'default_environment'") == [
        ("deployments without an environment assigned to production", 1)]


def devlake_cfr(f: dict[str, Path], project: str, since: datetime, until: datetime) -> float:
    """DevLake's change failure rate from the exported rows, as docs/Metrics/CFR.md defines it:
    successful PRODUCTION deployments (grouped by cicd_deployment_id, finished at the last row's
    finish) of the project's CI/CD scopes finished in the window; a project incident (on one of its
    boards) belongs to the latest such deployment finished at or before its creation."""
    def rows(name: str) -> list[dict[str, str]]:
        with f[name].open() as fh:
            return list(csv.DictReader(fh))

    def when(text: str) -> datetime:
        day, clock = text.split(" ")
        y, m, d = (int(x) for x in day.split("-"))
        hh, mm, ss = (int(x) for x in clock.split(":"))
        return datetime(y, m, d, hh, mm, ss, tzinfo=UTC)

    mapping = rows("mapping")
    scopes = {r["row_id"] for r in mapping if r["project_name"] == project and r["table"] == "cicd_scopes"}
    boards = {r["row_id"] for r in mapping if r["project_name"] == project and r["table"] == "boards"}
    finished: dict[str, datetime] = {}
    for r in rows("deploys"):
        if r["result"] == "SUCCESS" and r["environment"] == "PRODUCTION" and r["cicd_scope_id"] in scopes:
            end = when(r["finished_date"])
            finished[r["cicd_deployment_id"]] = max(end, finished.get(r["cicd_deployment_id"], end))
    on_board = {r["issue_id"] for r in rows("boards") if r["board_id"] in boards}
    failed = set()
    for issue in rows("issues"):
        if issue["type"] != "INCIDENT" or issue["id"] not in on_board:
            continue
        created = when(issue["created_date"])
        before = [(end, dep) for dep, end in finished.items() if end <= created]
        if before:
            failed.add(max(before)[1])
    window = {dep for dep, end in finished.items() if since <= end < until}
    return len(failed & window) / len(window)


def test_failure_rate_against_devlake(db: Path, tmp_path: Path) -> None:
    ours = shop(db)["change_failure_rate"]
    theirs = devlake_cfr(files(tmp_path), "shop", t("2023-04-13T00:00:00Z"), t("2023-04-15T00:00:00Z"))
    assert (ours, theirs) == (pytest.approx(2 / 3), 1.0)


def test_mapping_imported_last_moves_rows_to_their_project(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    f = files(tmp_path)
    run_cli(db, "import", str(f["commits"]), str(f["deploys"]), str(f["issues"]))
    # without a mapping: a deployment's service is its first repository, an incident has none
    assert query(db, "SELECT DISTINCT service FROM deployments") == [("api",)]
    assert query(db, "SELECT count(*) FROM incidents WHERE service IS NULL") == [(2,)]
    out = run_cli(db, "import", str(f["boards"]), str(f["mapping"]))
    assert "5 deployments and 1 incidents moved to their project" in out.stderr
    assert query(db, "SELECT DISTINCT service FROM deployments") == [("shop",)]
    assert query(db, "SELECT id, service FROM incidents ORDER BY id") == [
        ("github:GithubIssue:1:100", "shop"), ("github:GithubIssue:1:102", None)]
    assert changes(db, "devlake:dep2") == {A2: (26.0, True), A3: (5.0, True), W2: (4.0, True)}
    assert query(db, "SELECT count(*) FROM deployment_changes dc JOIN deployments d "
                     "ON d.id = dc.deployment_id WHERE d.service <> 'shop'") == [(0,)]


def test_a_row_without_a_commit_rejects_the_file(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    bad = write_csv(tmp_path / "cicd_deployment_commits.csv", DEPLOY_HEADER, [
        (1, "cicd1", "dep1", "deploy", "SUCCESS", "DONE", "PRODUCTION", "2023-04-10 07:00:00",
         "2023-04-10 07:00:00", "2023-04-10 07:10:00", 600, A1, "main", API, API_URL),
        (2, "cicd1", "dep1", "deploy", "SUCCESS", "DONE", "PRODUCTION", "2023-04-10 07:00:00",
         "2023-04-10 07:00:00", "2023-04-10 07:20:00", 1200, "", "main", WEB, WEB_URL)])
    proc = run_cli(db, "import", str(bad), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: line 3: missing value for 'commit_sha'; nothing from this file was imported"]
    assert query(db, "SELECT count(*) FROM deployments") == [(0,)]


def test_devlake_pull_requests_and_comments_are_not_incidents(tmp_path: Path) -> None:
    """DevLake's pull_requests and pull_request_comments tables have ``type`` and ``created_date``
    columns too: they stay the pull_requests kind."""
    db = tmp_path / "store.ducklake"
    prs = write_csv(tmp_path / "pull_requests.csv", (
        "id", "base_repo_id", "pull_request_key", "title", "type", "status", "author_id", "created_date",
        "merged_date", "closed_date", "merge_commit_sha", "head_ref", "base_ref"), [
        ("github:GithubPullRequest:1:7", "api", 7, "Retry", "feature", "MERGED", "ada",
         "2023-04-12 09:00:00", "2023-04-12 12:00:00", "2023-04-12 12:00:00", A3, "retry", "main")])
    comments = write_csv(tmp_path / "pull_request_comments.csv", (
        "id", "pull_request_id", "body", "account_id", "created_date", "type"), [
        ("c1", "github:GithubPullRequest:1:7", "LGTM", "bo", "2023-04-12 10:00:00", "NORMAL")])
    out = run_cli(db, "import", str(prs), str(comments))
    assert "pull_requests.csv: imported 1 pull_requests rows" in out.stderr
    assert "pull_request_comments.csv: imported 0 pull_requests rows (" in out.stderr
    assert "1 reviews)" in out.stderr
    assert query(db, "SELECT count(*) FROM incidents") == [(0,)]


def test_the_shipped_example_files_are_this_worked_example(tmp_path: Path) -> None:
    """examples/import/devlake/ holds the very files this module writes, so its README's worked
    result is the one checked above; and they import as the README says."""
    shipped = Path(__file__).resolve().parents[1] / "examples" / "import" / "devlake"
    written = files(tmp_path)
    for path in written.values():
        assert (shipped / path.name).read_text() == path.read_text(), path.name
    db = tmp_path / "example.ducklake"
    order = ("project_mapping.csv", "commits.csv", "cicd_deployment_commits.csv", "board_issues.csv",
             "issues.csv")
    command = next(line for line in (shipped / "README.md").read_text().splitlines() if " import " in line
                   and line.strip().startswith(".venv/bin/gitops-dora"))
    assert tuple(command.split(" import ", 1)[1].split()) == order
    run_cli(db, "import", *(str(shipped / name) for name in order))
    group = shop(db)
    assert (group["deployments"], group["change_failure_rate"]) == (2, pytest.approx(2 / 3))
    assert group["lead_time_median_hours"] == pytest.approx(5.0)
    assert changes(db, "devlake:dep2") == {A2: (26.0, True), A3: (5.0, True), W2: (4.0, True)}

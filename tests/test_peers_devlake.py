"""Cross-check with Apache DevLake (docs/metrics.md, "Differences from peers").

The fixture is shaped like DevLake's own e2e data for the dora plugin
(``backend/plugins/dora/e2e/change_lead_time``: pull_requests, pull_request_commits,
pull_request_comments, cicd_deployment_commits, commits_diffs), rebuilt here with the same values
and loaded through gitops-dora's import kinds. All times UTC; a deployment finishes 60 s after it
starts (DevLake's duration_sec).

    REPO111 (service repo111): commit1 root; pm1 (pr1's merge, authored at its merge 04-11 05:51:47);
            pm2 (pr2's merge, 04-12 05:51:47).   d1 04-10 06:52:47 @commit1 (baseline), d5 04-13 07:29:14 @pm2
    REPO222 (service repo222): commit2 root; pm3 (pr3's merge, 04-14 06:53:51).
            d2 04-10 06:54:51 @commit2 (baseline), d6 04-13 07:30:34 @pm3

    pr1  author a, opened 04-11 04:51:47, merged 05:51:47, first commit 04-10 04:51:47,
         comments: a 04:53:47 (the author's), b 04:56:47, c 04:59:47
    pr2  author a, opened 04-12 04:51:47, merged 05:51:47, commits authored 04-13, 04-14, 04-15
         (all after the merge)
    pr3  author a, opened 04-11 06:53:51, merged 04-14 06:53:51 (after d6 shipped pm3),
         first commit 04-07 04:51:47

gitops-dora (lead time = deployment - start; a merge commit starts at the PR's first commit, never later
than its own author time):
    pm1  04-10 04:51:47 -> 04-13 07:29:14 = 3 d 2 h 37 min 27 s = 4477.45 min = 74.624167 h
    pm2  start = min(04-13 04:51:47, own author time 04-12 05:51:47) = 04-12 05:51:47
         -> 04-13 07:29:14 = 1 d 1 h 37 min 27 s = 1537.45 min = 25.624167 h
    pm3  04-07 04:51:47 -> 04-13 07:30:34 = 6 d 2 h 38 min 47 s = 8798.783 min = 146.646389 h
    median 74.624167 h
DevLake (cycle = coding + opened->merged + merged->deployed, each ceil'd to minutes, a negative span dropped):
    pr1  1440 + 60 + ceil(2977.45) = 4478        pr2  (coding -1440 dropped) + 60 + ceil(1537.45) = 1598
    pr3  ceil(5882.07) + 4320 + (deploy -1403.28 dropped) = 10203
    median: max over percent_rank <= 0.5 of [1598, 4478, 10203] = 4478 min
"""

from __future__ import annotations

import hashlib
import json
import math
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics.store.connection import open_reader
from tests.stability_env import run_cli_inprocess as run_cli
from tests.stability_env import write_csv


def sha(name: str) -> str:
    return hashlib.sha1(name.encode()).hexdigest()


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


# DevLake's rows, in its own column names where they exist
PULL_REQUESTS = [  # id, base_repo_id, author_id, merge_commit_sha, created_date, merged_date
    ("pr1", "repo111", "a", "pm1", "2023-04-11 04:51:47", "2023-04-11 05:51:47"),
    ("pr2", "repo111", "a", "pm2", "2023-04-12 04:51:47", "2023-04-12 05:51:47"),
    ("pr3", "repo222", "a", "pm3", "2023-04-11 06:53:51", "2023-04-14 06:53:51"),
]
PULL_REQUEST_COMMITS = [  # commit_sha, pull_request_id, commit_authored_date
    ("08d2f2b6de0fa8de4d0e2b55b4b9a2e244214029", "pr1", "2023-04-10 04:51:47"),
    ("0edd5d0e0d18516d3309fec90553c3ee7380c149", "pr1", "2023-04-11 04:51:47"),
    ("209168a4b12d91a7ad1f3711fe05b39d5bd8e260", "pr1", "2023-04-12 04:51:47"),
    ("2537845559d8db99e9cda6190f32b50ec979c722", "pr2", "2023-04-13 04:51:47"),
    ("3aba559962e04949a1731f7d5155c7aac2e900ce", "pr2", "2023-04-14 04:51:47"),
    ("3ec3e113ed36a5a8978af295683085054e4dfdd9", "pr2", "2023-04-15 04:51:47"),
    ("4b71faf666833c0c7b915a512811e2c5e746d3de", "pr3", "2023-04-09 04:51:47"),
    ("4f8cdefc9a9d53af16dd482c61623312eb9e9b5e", "pr3", "2023-04-08 04:51:47"),
    ("55f445997abbd5918da59d202d28762cd56fbd44", "pr3", "2023-04-07 04:51:47"),
]
PULL_REQUEST_COMMENTS = [  # id, pull_request_id, created_date, account_id
    ("comment01", "pr1", "2023-04-11 04:53:47", "a"),
    ("comment02", "pr1", "2023-04-11 04:56:47", "b"),
    ("comment03", "pr1", "2023-04-11 04:59:47", "c"),
    ("comment04", "pr2", "2023-04-12 04:51:49", "d"),
    ("comment05", "pr2", "2023-04-12 05:51:47", "e"),
    ("comment07", "pr3", "2023-04-10 06:53:51", "g"),
    ("comment08", "pr3", "2023-04-12 06:53:51", "h"),
]
DEPLOYMENTS = [  # id, repo, started_date, commit (DevLake: commit1/2/5/6; here the merge commits)
    ("1", "repo111", "2023-04-10 06:51:47", "commit1"),
    ("2", "repo222", "2023-04-10 06:53:51", "commit2"),
    ("5", "repo111", "2023-04-13 07:28:14", "pm2"),
    ("6", "repo222", "2023-04-13 07:29:34", "pm3"),
]
COMMITS = [  # repository, name, parent, authored (a merge commit is authored at its PR's merge)
    ("repo111", "commit1", None, "2023-04-10 06:00:00"),
    ("repo111", "pm1", "commit1", "2023-04-11 05:51:47"),
    ("repo111", "pm2", "pm1", "2023-04-12 05:51:47"),
    ("repo222", "commit2", None, "2023-04-10 06:00:00"),
    ("repo222", "pm3", "commit2", "2023-04-14 06:53:51"),
]
DURATION = timedelta(seconds=60)


def finished(started: str) -> datetime:
    return t(started) + DURATION


@pytest.fixture(scope="module")
def lead_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("devlake")
    db = tmp / "store.ducklake"
    files = [
        write_csv(tmp / "commits.csv", ["repository", "sha", "parents", "authored_at", "message"],
                  [(repo, sha(name), sha(parent) if parent else "", t(at).isoformat(), name)
                   for repo, name, parent, at in COMMITS]),
        write_csv(tmp / "deployments.csv",
                  ["id", "service", "environment", "revision", "deployed_at", "repository"],
                  [(dep_id, repo, "production", sha(commit), finished(start).isoformat(), repo)
                   for dep_id, repo, start, commit in DEPLOYMENTS]),
        # DevLake's own tables and column names, as a MySQL export writes them (times without a zone,
        # read as UTC); pull_request_key is the PR number column of the real schema
        write_csv(tmp / "pull_requests.csv",
                  ["id", "base_repo_id", "author_id", "merge_commit_sha", "created_date", "merged_date",
                   "pull_request_key"],
                  [(pid, repo, author, sha(merge), c, m, pid[2:])
                   for pid, repo, author, merge, c, m in PULL_REQUESTS]),
        write_csv(tmp / "pull_request_commits.csv", ["commit_sha", "pull_request_id", "commit_authored_date"],
                  PULL_REQUEST_COMMITS),
        write_csv(tmp / "pull_request_comments.csv", ["id", "pull_request_id", "created_date", "account_id"],
                  PULL_REQUEST_COMMENTS),
    ]
    out = run_cli(db, "import", *map(str, files))
    assert ("pull_request_comments.csv: imported 0 pull_requests rows"
            " (7 timestamps without a zone read as UTC; 7 reviews)") in out.stderr
    return db


# DevLake's rule, transcribed from change_lead_time_calculator.go (computeTimeSpan and the cycle sum),
# to check the hand-worked minutes above against the same rows
def devlake_span(start: datetime, end: datetime) -> int | None:
    minutes = math.ceil((end - start).total_seconds() / 60)
    return None if minutes < 0 else minutes


def devlake_cycle(pid: str, deployed: datetime) -> int:
    _, _, _, _, created, merged = next(p for p in PULL_REQUESTS if p[0] == pid)
    first = min(t(at) for _, p, at in PULL_REQUEST_COMMITS if p == pid)
    spans = (devlake_span(first, t(created)), devlake_span(t(created), t(merged)),
             devlake_span(t(merged), deployed))
    return sum(s for s in spans if s is not None)


def devlake_median(values: list[float]) -> float:
    """max(x) over rows with percent_rank() <= 0.5 (docs/Metrics/LeadTimeForChanges.md)."""
    ordered = sorted(values)
    n = len(ordered)
    ranks = [0.0 if n == 1 else ordered.index(v) / (n - 1) for v in ordered]
    return max(v for v, r in zip(ordered, ranks, strict=True) if r <= 0.5)


def test_lead_time_per_change_and_devlake_cycle_time(lead_store: Path) -> None:
    rows = json.loads(run_cli(lead_store, "changes", "--since", "2023-04-13", "--until", "2023-04-14",
                              "--format", "json").stdout)
    ours = {r["sha"]: (r["deployment_id"], r["start_source"], round(r["lead_hours"] * 60, 2)) for r in rows}
    assert ours == {
        sha("pm1"): ("5", "pr_first_commit", 4477.45),
        sha("pm2"): ("5", "pr_first_commit", 1537.45),
        sha("pm3"): ("6", "pr_first_commit", 8798.78),
    }
    d5, d6 = finished(DEPLOYMENTS[2][2]), finished(DEPLOYMENTS[3][2])
    theirs = {"pm1": devlake_cycle("pr1", d5), "pm2": devlake_cycle("pr2", d5),
              "pm3": devlake_cycle("pr3", d6)}
    assert theirs == {"pm1": 4478, "pm2": 1598, "pm3": 10203}
    # the documented differences: ceil per span (pr1), a dropped negative coding span (pr2), a dropped
    # negative deploy span for a PR merged after the deployment that shipped it (pr3)
    assert theirs["pm1"] - ours[sha("pm1")][2] == pytest.approx(0.55)
    assert theirs["pm2"] - ours[sha("pm2")][2] == pytest.approx(60.55)
    assert theirs["pm3"] - ours[sha("pm3")][2] == pytest.approx(1404.22)


def test_median_against_devlake_percent_rank(lead_store: Path) -> None:
    out = run_cli(lead_store, "metrics", "--since", "2023-04-13", "--until", "2023-04-14",
                  "--group-by", "environment", "--format", "json").stdout
    group = json.loads(out)["groups"][0]
    assert group["lead_time_median_hours"] == pytest.approx(4477.45 / 60)     # middle of 3
    assert group["baseline_deployments"] == 0 and group["deployments"] == 2
    assert devlake_median([4478, 1598, 10203]) == 4478
    # an even count: DevLake keeps the lower middle value, gitops-dora averages the two
    assert devlake_median([6, 12, 18, 24]) == 12


def test_pr3_phases_do_not_add_up_once_clamped(lead_store: Path) -> None:
    con = open_reader(lead_store)
    try:
        row = con.execute(
            "SELECT lead_hours, coding_hours, pickup_hours, review_hours, deploy_hours FROM pr_lead_times"
            " WHERE sha = ?", [sha("pm3")]).fetchone()
    finally:
        con.close()
    assert row is not None
    lead, coding, pickup, review, deploy = (round(v * 60, 2) for v in row)
    # coding 04-07 04:51:47 -> 04-11 06:53:51 = 5882.07 min; pickup: g's comment 04-10 is before the PR
    # was opened -> 0; review 04-10 06:53:51 -> 04-14 06:53:51 = 5760; deploy: merged after d6 -> 0
    assert (coding, pickup, review, deploy) == (5882.07, 0.0, 5760.0, 0.0)
    assert lead == 8798.78
    assert coding + pickup + review + deploy - lead == pytest.approx(2843.29)


def test_pr1_first_review_skips_the_authors_comment(lead_store: Path) -> None:
    con = open_reader(lead_store)
    try:
        row = con.execute("SELECT pickup_hours, review_hours FROM pr_lead_times WHERE sha = ?",
                          [sha("pm1")]).fetchone()
    finally:
        con.close()
    assert row is not None
    # b's comment at 04:56:47, not a's own at 04:53:47: pickup 5 min, review 55 min (DevLake: 5 and 55)
    assert (round(row[0] * 60, 2), round(row[1] * 60, 2)) == (5.0, 55.0)


def test_failure_rate_and_recovery_against_devlake(tmp_path: Path) -> None:
    """Service api, production, 2023-05-02 (D0 05-01 08:00 is the baseline, outside the window):
        D1 10:00 ok, incidents I1 10:20-11:00 and I2 10:40-15:00     D2 12:00 ok, I3 12:30-13:00
        D3 16:00 ok, no incident                                       F 17:00 failed attempt
    gitops-dora: CFR = {D1, D2, F} / {D1, D2, D3, F} = 0.75; recovery per failed deployment D1 10:00->15:00
    = 5 h, D2 1 h, median 3 h; F never recovered.
    DevLake: CFR = {D1, D2} / successful {D1, D2, D3} = 2/3; recovery per incident from the deployment's
    finish: 60, 300, 60 min -> lower-middle median 60 min."""
    db = tmp_path / "store.ducklake"
    deployments = [("D0", "2023-05-01 08:00", "success"), ("D1", "2023-05-02 10:00", "success"),
                   ("D2", "2023-05-02 12:00", "success"), ("D3", "2023-05-02 16:00", "success"),
                   ("F", "2023-05-02 17:00", "failed")]
    incidents = [("I1", "2023-05-02 10:20", "2023-05-02 11:00"),
                 ("I2", "2023-05-02 10:40", "2023-05-02 15:00"),
                 ("I3", "2023-05-02 12:30", "2023-05-02 13:00")]
    dep_file = write_csv(tmp_path / "deployments.csv",
                         ["id", "service", "environment", "revision", "deployed_at", "status"],
                         [(i, "api", "production", f"v-{i}", t(at).isoformat(), s)
                          for i, at, s in deployments])
    inc_file = write_csv(tmp_path / "incidents.csv", ["id", "service", "created_at", "resolved_at"],
                         [(i, "api", t(c).isoformat(), t(r).isoformat()) for i, c, r in incidents])
    run_cli(db, "import", str(dep_file), str(inc_file))
    out = run_cli(db, "metrics", "--since", "2023-05-02", "--until", "2023-05-03", "--format", "json").stdout
    group: dict[str, Any] = json.loads(out)["groups"][0]
    assert (group["failed_deployments"], group["deployment_attempts"]) == (3, 4)
    assert group["change_failure_rate"] == pytest.approx(0.75)
    assert group["failed_deployment_recovery_median_hours"] == pytest.approx(3.0)
    assert group["unrecovered_failed_deployments"] == 1

    # DevLake's numbers from the same rows: incident -> latest successful deployment finished before it
    successes = [(i, t(at)) for i, at, s in deployments if s == "success" and at.startswith("2023-05-02")]
    caused = {i: max((d for d in successes if d[1] <= t(c)), key=lambda d: d[1]) for i, c, _ in incidents}
    assert {i: d[0] for i, d in caused.items()} == {"I1": "D1", "I2": "D1", "I3": "D2"}
    devlake_cfr = len({d[0] for d in caused.values()}) / len(successes)
    assert devlake_cfr == pytest.approx(2 / 3)
    per_incident = [(t(r) - caused[i][1]).total_seconds() / 60 for i, _, r in incidents]
    assert per_incident == [60, 300, 60]
    assert devlake_median(per_incident) == 60
    assert group["failed_deployment_recovery_median_hours"] * 60 - devlake_median(per_incident) == 120

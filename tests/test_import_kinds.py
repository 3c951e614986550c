"""Import kinds ``commits`` and ``pull_requests`` (issue #15) through the real CLI and store.

The example files in ``examples/import/`` are the documented example; their result is worked by hand
in ``examples/import/README.md`` and again here (all times UTC):

    commits   1111 03-02 09:00 (root)   2222 03-03 08:00   3333 03-04 10:00+02:00 = 08:00Z (PR #12's
              merge commit)   4444 03-04 13:00 (reverts 2222)
    deploys   pay-1 03-02 12:00 @1111 (baseline)          pay-2 03-04 18:00 @4444
    pay-2 ships 2222 (34 h), 3333 (own author time: 10 h; with PR #12: first commit 03-02 14:00 -> 52 h),
    4444 (5 h). Median over [03-04, 03-05): 10 h without pull requests, 34 h with them.
    PR #12: coding 03-02 14:00 -> opened 03-03 09:00 = 19 h; pickup -> first review by someone other
    than the author (r2, bo, 14:00; the author's r1 at 09:30 does not count) = 5 h; review -> merged
    03-04 10:00 = 20 h; deploy -> 18:00 = 8 h.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.stability_env import run_cli_inprocess as run_cli
from tests.store_fixture import copy_store
from tests.store_query import query

EXAMPLES = Path(__file__).resolve().parents[1] / "examples" / "import"
S1, S2, S3, S4 = ("1" * 40, "2" * 40, "3" * 40, "4" * 40)


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def example(tmp: Path, name: str) -> Path:
    target = tmp / name
    shutil.copyfile(EXAMPLES / name, target)
    return target


@pytest.fixture(scope="module")
def prs_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store after ``import pull_requests.csv``, made once for the tests that start from it; each
    writes to its own copy (tests/store_fixture.copy_store)."""
    tmp = tmp_path_factory.mktemp("prs")
    db = tmp / "store.ducklake"
    run_cli(db, "import", str(example(tmp, "pull_requests.csv")))
    return db


def changes(db: Path, deployment: str) -> dict[str, tuple[str, float]]:
    rows = json.loads(run_cli(db, "changes", "--deployment", deployment, "--format", "json").stdout)
    return {r["sha"]: (r["start_source"], r["lead_hours"]) for r in rows}


def metrics(db: Path) -> dict[str, Any]:
    out = run_cli(db, "metrics", "--since", "2026-03-04", "--until", "2026-03-05", "--format", "json").stdout
    groups = json.loads(out)["groups"]
    assert len(groups) == 1
    return dict(groups[0])


def test_examples_give_the_hand_worked_lead_times(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    out = run_cli(db, "import", str(example(tmp_path, "commits.csv")),
                  str(example(tmp_path, "deployments.csv")))
    assert "imported 4 commits rows (1 repositories registered without a clone: payments-api)" in out.stderr
    assert changes(db, "pay-2") == {S2: ("author", 34.0), S3: ("author", 10.0), S4: ("author", 5.0)}
    assert metrics(db)["lead_time_median_hours"] == pytest.approx(10.0)   # median(34, 10, 5)

    out = run_cli(db, "import", *(str(example(tmp_path, n)) for n in (
        "pull_requests.csv", "pr_reviews.csv", "pr_commits.csv", "pull_requests.json")))
    assert "pr_reviews.csv: imported 0 pull_requests rows (3 reviews)" in out.stderr
    assert changes(db, "pay-2") == {S2: ("author", 34.0), S3: ("pr_first_commit", 52.0), S4: ("author", 5.0)}
    group = metrics(db)
    assert group["lead_time_median_hours"] == pytest.approx(34.0)         # median(34, 52, 5)
    assert (group["prs_deployed"], group["changes_with_pr"], group["changes_without_pr"]) == (1, 1, 2)
    assert group["pr_coding_median_hours"] == pytest.approx(19.0)
    assert group["pr_pickup_median_hours"] == pytest.approx(5.0)          # not 0.5: r1 is the author's
    assert group["pr_review_median_hours"] == pytest.approx(20.0)
    assert group["pr_deploy_median_hours"] == pytest.approx(8.0)


def test_commit_rows_keep_zones_parents_and_reverts(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    run_cli(db, "import", str(example(tmp_path, "commits.csv")))
    rows = query(db, "SELECT sha, parents, author_time, author_tz, committer_time, subject, reverts_sha "
                     "FROM commits ORDER BY sha")
    assert rows[2] == (S3, [S2], t("2026-03-04T08:00:00Z"), "+0200", t("2026-03-04T10:00:00Z"),
                       "Refunds (#12)", None)
    assert rows[3][0] == S4 and rows[3][5] == 'Revert "Fix currency rounding"' and rows[3][6] == S2
    assert rows[0][1] == []                                               # the root commit
    # importing the same file again changes nothing (MERGE on repo, sha)
    run_cli(db, "import", str(example(tmp_path, "commits.csv")))
    assert query(db, "SELECT count(*) FROM commits")[0][0] == 4
    assert query(db, "SELECT id, url FROM repositories") == [("payments-api", None)]


def test_commits_imported_after_deployments_attribute_the_same_changes(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    out = run_cli(db, "import", str(example(tmp_path, "deployments.csv")))
    assert "attributed" not in out.stderr                                 # no commits yet: nothing to walk
    assert query(db, "SELECT count(*) FROM deployment_changes")[0][0] == 0
    out = run_cli(db, "import", str(example(tmp_path, "commits.csv")))
    assert "changes attributed again for 1 service/environment scopes" in out.stderr
    assert changes(db, "pay-2") == {S2: ("author", 34.0), S3: ("author", 10.0), S4: ("author", 5.0)}
    assert changes(db, "pay-1") == {S1: ("author", 3.0)}                  # 09:00 -> 12:00, baseline


def test_sections_and_nested_reviews_and_commits(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    run_cli(db, "import", str(example(tmp_path, "pull_requests.json")))
    row = query(db, "SELECT author, state, first_commit_at, first_review_at, merged_at, merge_commit_sha,"
                    " commit_shas, labels, base_ref, head_ref FROM pull_requests WHERE number = 21")[0]
    # first commit: nested d... at 03-04 17:00 beats the section's e... at 03-05 08:00; first review: the
    # nested r21 by bo at 11:00 (r22 at 10:00 is by the author ada)
    assert row == ("ada", "merged", t("2026-03-04T17:00:00Z"), t("2026-03-05T11:00:00Z"),
                   t("2026-03-05T16:00:00Z"), "5" * 40, ["d" * 40, "e" * 40], ["feature"], "main",
                   "card-tokens")
    reviews = query(db, "SELECT review_id, author FROM pr_reviews ORDER BY review_id")
    assert reviews == [("r21", "bo"), ("r22", "ada")]


def test_reviews_file_names_prs_of_an_earlier_import_and_reimport_keeps_them(tmp_path: Path,
                                                                            prs_store: Path) -> None:
    db = copy_store(prs_store, tmp_path / "store.ducklake")   # pull_requests.csv imported
    run_cli(db, "import", str(example(tmp_path, "pr_reviews.csv")), str(example(tmp_path, "pr_commits.csv")))
    first = "SELECT number, first_review_at, first_commit_at FROM pull_requests ORDER BY number"
    expected = [(12, t("2026-03-03T14:00:00Z"), t("2026-03-02T14:00:00Z")),
                (13, t("2026-03-04T11:00:00Z"), t("2026-03-04T08:00:00Z"))]
    assert query(db, first) == expected
    # the PR file again (no review or commit columns): the derived times stay
    run_cli(db, "import", str(example(tmp_path, "pull_requests.csv")))
    assert query(db, first) == expected
    # pr_id as repository#number needs no earlier id
    reviews = tmp_path / "more_reviews.csv"
    reviews.write_text("pr_id,id,author,state,submitted_at\npayments-api#13,r9,cy,APPROVED,2026-03-04T10:00:00Z\n")
    run_cli(db, "import", str(reviews))
    assert query(db, first)[1] == (13, t("2026-03-04T10:00:00Z"), t("2026-03-04T08:00:00Z"))


def test_unknown_pull_request_rejects_the_whole_file(tmp_path: Path, prs_store: Path) -> None:
    db = copy_store(prs_store, tmp_path / "store.ducklake")   # pull_requests.csv imported
    bad = tmp_path / "reviews.csv"
    bad.write_text("pr_id,id,author,state,submitted_at\n"
                   "pr-12,x1,bo,APPROVED,2026-03-03T10:00:00Z\n"
                   "pr-99,x2,bo,APPROVED,2026-03-03T11:00:00Z\n")
    proc = run_cli(db, "import", str(bad), check=False)
    assert proc.returncode == 2
    assert "line 3: pr_id 'pr-99' names no pull request" in proc.stderr
    assert query(db, "SELECT count(*) FROM pr_reviews")[0][0] == 0        # x1 was not loaded either
    assert query(db, "SELECT first_review_at FROM pull_requests WHERE number = 12") == [(None,)]


def test_kind_is_told_from_columns_and_bad_values_name_the_line(tmp_path: Path, prs_store: Path) -> None:
    db = copy_store(prs_store, tmp_path / "store.ducklake")   # pull_requests.csv imported
    # repository + number + sha + authored_at: a PR's commits, not a commit of the repository
    pr_commits = tmp_path / "pr_commits_by_number.csv"
    pr_commits.write_text("repository,number,sha,authored_at\npayments-api,13,abcdef1,2026-03-04T07:00:00Z\n")
    out = run_cli(db, "import", str(pr_commits))
    assert "imported 0 pull_requests rows (1 PR commits)" in out.stderr
    assert query(db, "SELECT count(*) FROM commits")[0][0] == 0
    assert query(db, "SELECT first_commit_at, commit_shas FROM pull_requests WHERE number = 13") == [
        (t("2026-03-04T07:00:00Z"), ["abcdef1"])]
    bad = tmp_path / "commits.csv"
    bad.write_text("repository,sha,parents,authored_at\nrepo,1234567,,2026-01-01T00:00:00Z\n"
                   "repo,not-a-sha,,2026-01-01T00:00:00Z\n")
    proc = run_cli(db, "import", str(bad), check=False)
    assert proc.returncode == 2 and "line 3: sha 'not-a-sha' is not a commit sha" in proc.stderr
    assert query(db, "SELECT count(*) FROM commits")[0][0] == 0


def test_fourkeys_events_raw_skips_other_events_and_names_bad_lines(tmp_path: Path) -> None:
    """A check_run is skipped and counted; metadata that is not JSON rejects the file at its line."""
    db = tmp_path / "store.ducklake"
    push = {"before": "0" * 40, "commits": [{"id": "a" * 40, "timestamp": "2024-05-06T08:00:00Z"}],
            "repository": {"name": "shop"}}
    rows = [{"event_type": "push", "id": "a" * 40, "metadata": json.dumps(push),
             "time_created": "2024-05-06 08:00:00 UTC", "source": "github"},
            {"event_type": "check_run", "id": "9", "metadata": "{}",
             "time_created": "2024-05-06 08:01:00 UTC", "source": "github"}]
    good = tmp_path / "events.jsonl"
    good.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = run_cli(db, "import", str(good))
    assert "(1 commits, 0 deployments, 0 incidents; skipped 1 check_run)" in out.stderr
    assert query(db, "SELECT repo, sha, parents, author_time FROM commits") == [
        ("shop", "a" * 40, [], t("2024-05-06T08:00:00Z"))]
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps(rows[0]) + "\n" + json.dumps({**rows[1], "metadata": "{not json"}) + "\n")
    proc = run_cli(tmp_path / "other.ducklake", "import", str(bad), check=False)
    assert proc.returncode == 2 and "line 2: 'metadata' is not JSON text" in proc.stderr

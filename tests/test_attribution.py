"""Which deployment a commit belongs to (analytics/deployments/attribution.py), checked by hand
and against git.

Rule under test: a commit belongs to the first successful deployment, by time, of the same service
and environment whose revision contains it.
"""

from __future__ import annotations

import json
import random
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics.deployments.attribution import attribute_changes
from analytics.store.connection import open_writer
from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.store_query import query
from tests.test_git_collector import SEMVER, run_cli


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _cherry_pick_repo(path: Path) -> tuple[GitRepo, dict[str, str]]:
    """main: A(03-01) B(03-02) C(03-03) D(03-05); release/1.0 from A with C cherry-picked as C'(03-04).

    Tags: v1.0.0 on A, v1.0.1 on C' (release branch), v1.1.0 on D (all lightweight: commit times).
    """
    repo = GitRepo.init(path)
    s: dict[str, str] = {}
    s["A"] = repo.commit("A", at="2024-03-01T09:00:00+00:00")
    repo.tag("v1.0.0")
    s["B"] = repo.commit("B", at="2024-03-02T09:00:00+00:00")
    s["C"] = repo.commit("C fix", at="2024-03-03T09:00:00+00:00")
    repo.branch("release/1.0", s["A"])
    s["C'"] = repo.cherry_pick(s["C"], at="2024-03-04T10:00:00+00:00")
    repo.tag("v1.0.1")
    repo.checkout("main")
    s["D"] = repo.commit("D", at="2024-03-05T09:00:00+00:00")
    repo.tag("v1.1.0")
    return repo, s


def test_cherry_picks_are_different_commits_on_each_branch(tmp_path: Path) -> None:
    repo, s = _cherry_pick_repo(tmp_path / "shop")
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER)
    assert proc.returncode == 0, proc.stderr
    changes = dict(query(db, """SELECT d.source_ref, list(c.sha ORDER BY c.sha) FROM deployments d
                                JOIN deployment_changes c ON c.deployment_id = d.id GROUP BY 1"""))
    # Time order: v1.0.0 (03-01), v1.0.1 (03-04), v1.1.0 (03-05).
    # v1.0.1 ships only C' (A was shipped by v1.0.0). C' is not C: C ships with v1.1.0 with B and D,
    # although its patch reached production a day earlier through the cherry-pick.
    assert changes == {
        "v1.0.0": [s["A"]],
        "v1.0.1": [s["C'"]],
        "v1.1.0": sorted([s["B"], s["C"], s["D"]]),
    }
    assert s["C'"] != s["C"]


def _insert_deployments(db: Path, rows: list[dict[str, Any]]) -> None:
    base = {"environment": "production", "repository": "shop", "status": "success", "source": "import",
            "service": "shop"}
    with open_writer(db, source="test", target="deployments") as session:
        session.upsert("deployments", [{**base, **r} for r in rows])
        attribute_changes(session, deployment_ids=[r["id"] for r in rows])


def _changes(db: Path) -> dict[str, list[str]]:
    return dict(query(db, "SELECT deployment_id, list(sha ORDER BY sha) FROM deployment_changes GROUP BY 1"))


@pytest.fixture
def collected(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    repo, s = _cherry_pick_repo(tmp_path / "shop")
    db = tmp_path / "db.duckdb"
    assert run_cli(db, "collect", "git", str(repo.path)).returncode == 0  # no git deployments
    return db, s


def test_imported_revisions_full_abbreviated_and_tag(collected: tuple[Path, dict[str, str]]) -> None:
    db, s = collected
    _insert_deployments(db, [
        {"id": "imp-1", "revision": "v1.0.0", "deployed_at": utc("2024-03-06T00:00:00")},      # tag name
        {"id": "imp-2", "revision": s["B"][:7], "deployed_at": utc("2024-03-07T00:00:00")},    # abbreviated
        # full sha in upper case
        {"id": "imp-3", "revision": s["D"].upper(), "deployed_at": utc("2024-03-08T00:00:00")},
        {"id": "imp-4", "revision": "0badc0de", "deployed_at": utc("2024-03-09T00:00:00")},    # unknown
    ])
    # imp-1: rev-list A = {A}; imp-2: rev-list B ^A = {B}; imp-3: rev-list D ^B = {C, D}; imp-4: unresolved.
    assert _changes(db) == {"imp-1": [s["A"]], "imp-2": [s["B"]], "imp-3": sorted([s["C"], s["D"]])}
    warning = query(db, "SELECT target, kind, detail, count FROM data_warnings WHERE source = 'attribution'")
    assert len(warning) == 1 and warning[0][:2] == ("shop/production", "unresolved_revision")
    assert "imp-4" in warning[0][2] and warning[0][3] == 1


def test_failed_deployment_ships_nothing(collected: tuple[Path, dict[str, str]]) -> None:
    db, s = collected
    _insert_deployments(db, [
        {"id": "d1", "revision": s["A"], "deployed_at": utc("2024-03-06T00:00:00")},
        {"id": "d2", "revision": s["C"], "deployed_at": utc("2024-03-07T00:00:00"), "status": "failed"},
        {"id": "d3", "revision": s["D"], "deployed_at": utc("2024-03-08T00:00:00")},
    ])
    # d2 failed, so B and C first reach production with d3 (together with D).
    assert _changes(db) == {"d1": [s["A"]], "d3": sorted([s["B"], s["C"], s["D"]])}


def test_equal_times_order_by_revision_commit_time_then_id(collected: tuple[Path, dict[str, str]]) -> None:
    db, s = collected
    same = utc("2024-03-06T00:00:00")
    # Ids sort the "wrong" way on purpose: z-old must still go first because its revision B
    # (committed 03-02) is older than D (03-05).
    _insert_deployments(db, [
        {"id": "a-new", "revision": s["D"], "deployed_at": same},
        {"id": "z-old", "revision": s["B"], "deployed_at": same},
    ])
    assert _changes(db) == {"z-old": sorted([s["A"], s["B"]]), "a-new": sorted([s["C"], s["D"]])}


def test_scopes_are_independent_and_recompute_is_idempotent(collected: tuple[Path, dict[str, str]]) -> None:
    db, s = collected
    _insert_deployments(db, [
        {"id": "stg", "revision": s["D"], "deployed_at": utc("2024-03-06T00:00:00"),
         "environment": "staging"},
        {"id": "p1", "revision": s["B"], "deployed_at": utc("2024-03-07T00:00:00")},
        {"id": "p2", "revision": s["D"], "deployed_at": utc("2024-03-08T00:00:00")},
    ])
    # staging shipped everything first, but production counts on its own: p1 = {A, B}, p2 = {C, D}.
    expected = {"stg": sorted([s["A"], s["B"], s["C"], s["D"]]), "p1": sorted([s["A"], s["B"]]),
                "p2": sorted([s["C"], s["D"]])}
    assert _changes(db) == expected
    with open_writer(db, source="test") as session:
        attribute_changes(session)  # every scope again: same rows
    assert _changes(db) == expected
    # Deleting p1 moves A and B to p2 and drops p1's rows.
    with open_writer(db, source="test") as session:
        session.con.execute("DELETE FROM deployments WHERE id = 'p1'")
        attribute_changes(session, service="shop", environment="production")
    assert _changes(db) == {"stg": expected["stg"], "p2": sorted([s["A"], s["B"], s["C"], s["D"]])}


def _random_history(path: Path, seed: int = 7) -> GitRepo:
    """~80 commits over ~400 days: feature branches merged --no-ff, semver tags, some other tags."""
    rng = random.Random(seed)
    repo = GitRepo.init(path)
    t = datetime(2023, 1, 2, 9, 0, tzinfo=UTC)
    minor = 0
    for i in range(40):
        t += timedelta(hours=rng.randint(20, 200))
        if rng.random() < 0.4:
            repo.branch(f"f{i}")
            for _ in range(rng.randint(1, 3)):
                # author time may be well before the commit time (rebased work)
                author = t - timedelta(hours=rng.randint(0, 72))
                repo.commit(f"work {i}", at=author, committed_at=t)
                t += timedelta(hours=rng.randint(1, 10))
            repo.checkout("main")
            repo.merge(f"f{i}", at=t)
        else:
            repo.commit(f"main {i}", at=t)
        if rng.random() < 0.35:
            minor += 1
            name = f"v1.{minor}.0"
            if rng.random() < 0.5:
                repo.annotated_tag(name, at=t + timedelta(hours=rng.randint(1, 30)))
            else:
                repo.tag(name)
        elif rng.random() < 0.2:
            repo.tag(f"rc-{i}")
    return repo


def test_cross_check_against_git_rev_list(tmp_path: Path) -> None:
    repo = _random_history(tmp_path / "lib")
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER)
    assert proc.returncode == 0, proc.stderr

    # Independent computation: semver tags in time order (tag time = tagger date, or committer date
    # for lightweight tags), each shipping `git rev-list <tag> --not <earlier tags>`.
    listing = repo.git("for-each-ref", "--format=%(refname:strip=2) %(taggerdate:unix) %(*objectname)",
                       "refs/tags")
    tags = []
    for line in listing.splitlines():
        name, tagger_unix, _ = (line.split(" ") + ["", ""])[:3]
        if not name.startswith("v"):
            continue
        when = int(tagger_unix) if tagger_unix else int(repo.git("log", "-1", "--format=%ct", name))
        tags.append((when, name))
    tags.sort()
    expected: dict[str, set[str]] = {}
    for k, (_, name) in enumerate(tags):
        earlier = [f"^{n}" for _, n in tags[:k]]
        expected[f"git-tag:lib:{name}"] = set(repo.git("rev-list", name, *earlier).split())
    got = {dep: set(shas) for dep, shas in _changes(db).items()}
    assert len(tags) >= 8
    assert query(db, "SELECT count(*) FROM deployments") == [(len(tags),)]
    assert got == {k: v for k, v in expected.items() if v}

    # Lead times the same way: deployment time - author time, first deployment excluded (baseline),
    # negatives excluded, window [since, until) on deployment time; ordinary median.
    since, until = datetime(2023, 3, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC)
    author = {sha: int(ts) for sha, ts in
              (line.split() for line in repo.git("log", "--all", "--format=%H %at").splitlines())}
    hours = []
    deploys_in_window = 0
    for k, (when, name) in enumerate(tags):
        if not since.timestamp() <= when < until.timestamp():
            continue
        deploys_in_window += 1
        if k == 0:
            continue
        for sha in expected[f"git-tag:lib:{name}"]:
            lead = when - author[sha]
            if lead >= 0:
                hours.append(lead / 3600)
    metrics = cli_inprocess.run(["--db", str(db), "metrics", "--since", "2023-03-01", "--until", "2024-03-01",
                                 "--format", "json"])
    if "No such command 'metrics'" in metrics.stderr:
        pytest.skip("the metrics command is not registered yet")
    assert metrics.returncode == 0, metrics.stderr
    group = json.loads(metrics.stdout)["groups"][0]
    assert group["deployments"] == deploys_in_window
    assert group["lead_time_median_hours"] == pytest.approx(statistics.median(hours), abs=1e-6)

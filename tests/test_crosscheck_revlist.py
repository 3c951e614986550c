"""Acceptance: `collect git --deploy-tags` + `metrics` agree with plain `git rev-list` and `git log`.

A seeded generator builds a real repository over 2024-09 .. 2026-02 with feature branches merged
--no-ff, commits rebased later (committer after author), author time zones, a release branch with
a cherry-pick, two release tags on one commit (a deployment with no new commits), a commit whose
author time is after its release's tag time (a negative lead time), annotated and lightweight
semver tags, and tags that are not releases (nightly-..., v2.0.0-rc.1).

The independent computation (scripts/crosscheck_revlist.py, which also runs the same check on any
real clone) uses only git and the written definitions:
* deployment time = tagger date (annotated) or committer date (lightweight);
* a deployment's changes = ``git rev-list <tag> --not <every earlier release>``, i.e. each commit
  belongs to the first release, by time, that contains it;
* lead time = deployment time - author time (or committer time); negative ones left out and
  counted; the first release ever is the baseline and gives no lead times;
* window [2025-01-01, 2026-01-01) on deployment time; ordinary median; p90 by linear
  interpolation (continuous quantile).
"""

from __future__ import annotations

import importlib.util
import json
import os
import random
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from tests import cli_inprocess
from tests.git_stream import HistoryStream
from tests.gitrepo import GitRepo

SEMVER = r"^v[0-9]+\.[0-9]+\.[0-9]+$"
SINCE, UNTIL = datetime(2025, 1, 1, tzinfo=UTC), datetime(2026, 1, 1, tzinfo=UTC)


def build_repo(path: Path) -> GitRepo:
    """The repository, written by one ``git fast-import`` stream (tests/git_stream.py) instead of some
    600 git processes through GitRepo: the same commits, tags and branches, sha for sha."""
    rng = random.Random(20250101)
    now = datetime(2024, 9, 2, 9, tzinfo=UTC)
    with HistoryStream(path) as repo:
        repo.commit("initial", at=now)
        repo.annotated_tag("v0.1.0", at=now + timedelta(hours=2))
        minor, last_release = 1, "v0.1.0"
        zones = ["+0000", "+0200", "-0500", "+0530"]
        for i in range(110):
            now += timedelta(days=rng.randint(2, 6), hours=rng.randint(0, 8))
            if rng.random() < 0.45:
                repo.branch(f"feature/f{i}")
                for k in range(rng.randint(1, 3)):
                    at = now + timedelta(hours=3 * k)
                    later = at + timedelta(hours=rng.randint(1, 30)) if rng.random() < 0.3 else None
                    repo.commit(f"feature {i} step {k}", at=at, tz=rng.choice(zones), committed_at=later)
                repo.checkout("main")
                now += timedelta(hours=40)
                repo.merge(f"feature/f{i}", at=now)
            else:
                repo.commit(f"fix {i}", at=now, tz=rng.choice(zones))
            if i == 17:  # not releases: must never become deployments
                repo.tag("nightly-2025-03-01")
                repo.annotated_tag("v2.0.0-rc.1", at=now + timedelta(hours=1))
            if i % 5 == 4:
                tag_at = now + timedelta(hours=rng.randint(1, 20))
                tag = f"v1.{minor}.0"
                if rng.random() < 0.5:
                    repo.annotated_tag(tag, at=tag_at)
                else:
                    repo.tag(tag)  # lightweight: deployed at the commit's committer date
                if i == 64:  # a second release on the same commit ships nothing new
                    repo.annotated_tag(f"v1.{minor}.1", at=tag_at + timedelta(hours=3))
                if i == 39:  # a hotfix release branch off the previous release, with a cherry-pick
                    head = repo.last_non_merge()
                    repo.branch(f"release/{last_release}", start=last_release)
                    repo.cherry_pick(head, at=tag_at + timedelta(hours=1))
                    repo.annotated_tag(f"{last_release[:-2]}.9", at=tag_at + timedelta(hours=2))
                    repo.checkout("main")
                last_release, minor = tag, minor + 1
            if i == 49:  # written after its release was tagged: a negative lead time
                write_at = now + timedelta(days=1)
                repo.commit("late author clock", at=write_at + timedelta(hours=6), committed_at=write_at)
                repo.annotated_tag(f"v1.{minor}.0", at=write_at + timedelta(hours=1))
                last_release, minor = f"v1.{minor}.0", minor + 1
                now = write_at + timedelta(hours=8)
    return repo.repo


def _load_oracle() -> ModuleType:
    """scripts/crosscheck_revlist.py: the git-only computation, shared with the manual check."""
    path = Path(__file__).resolve().parent.parent / "scripts" / "crosscheck_revlist.py"
    spec = importlib.util.spec_from_file_location("crosscheck_revlist", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ORACLE = _load_oracle()


def independent(repo: GitRepo, start: str, since: datetime = SINCE,
                until: datetime = UNTIL) -> dict[str, Any]:
    """Everything the metrics should say, from git plumbing and the definitions only."""
    return dict(ORACLE.revlist_metrics(repo.path, SEMVER, since, until, start))


def run_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    proc = cli_inprocess.run(["--db", str(db), *args], env=env)  # the command, in this process
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def collected(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, Path]:
    base = tmp_path_factory.mktemp("crosscheck")
    repo = build_repo(base / "app")
    db = base / "store.duckdb"
    run_cli(db, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", SEMVER)
    return repo, db


@pytest.mark.parametrize("start", ["author", "committer"])
def test_metrics_equal_revlist_computation(collected: tuple[GitRepo, Path], start: str) -> None:
    repo, db = collected
    expected = independent(repo, start)
    # the generator must have produced the cases this test is about
    if start == "author":  # the late-clock commit is negative by author time only
        assert expected["excluded_negative_lead_times"] >= 1
    assert any(n == 0 for _, n in expected["releases"])
    assert expected["deployments"] >= 8

    doc = json.loads(run_cli(db, "metrics", "--since", "2025-01-01", "--until", "2026-01-01",
                             "--lead-time-start", start, "--format", "json").stdout)
    assert (doc["since"], doc["until"]) == ("2025-01-01T00:00:00Z", "2026-01-01T00:00:00Z")
    [group] = doc["groups"]
    assert (group["service"], group["environment"]) == ("app", "production")
    for key in ("deployments", "deployment_days", "changes", "excluded_negative_lead_times",
                "baseline_deployments"):
        assert group[key] == expected[key], key
    for key in ("deployments_per_week", "lead_time_median_hours", "lead_time_p90_hours"):
        assert group[key] == pytest.approx(expected[key], rel=1e-9), key


def test_first_year_with_the_baseline_release(collected: tuple[GitRepo, Path]) -> None:
    """2024 holds v0.1.0, the first release ever: a deployment, but no lead times."""
    repo, db = collected
    since, until = datetime(2024, 1, 1, tzinfo=UTC), datetime(2025, 1, 1, tzinfo=UTC)
    expected = independent(repo, "author", since, until)
    assert expected["baseline_deployments"] == 1
    doc = json.loads(run_cli(db, "metrics", "--since", "2024-01-01", "--until", "2025-01-01",
                             "--format", "json").stdout)
    [group] = doc["groups"]
    for key in ("deployments", "deployment_days", "changes", "baseline_deployments",
                "excluded_negative_lead_times"):
        assert group[key] == expected[key], key
    for key in ("lead_time_median_hours", "lead_time_p90_hours", "deployments_per_week"):
        assert group[key] == pytest.approx(expected[key], rel=1e-9), key


def test_deployments_list_equals_revlist(collected: tuple[GitRepo, Path]) -> None:
    repo, db = collected
    expected = independent(repo, "author")["releases"]
    rows = json.loads(run_cli(db, "deployments", "--since", "2025-01-01", "--until", "2026-01-01",
                              "--format", "json").stdout)
    assert [(r["source_ref"], r["changes"]) for r in rows] == expected

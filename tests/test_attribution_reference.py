"""attribute_changes (set-based start resolution in analytics/deployments/attribution.sql, one walk
per scope) against a straightforward reference: every revision resolved in Python the way the
module's docstring says, deployments ordered by (time, committer time of the start commit, id),
and each one shipping ``git rev-list START --not <earlier starts of its scope and repository>``.

The repositories are generated: --no-ff merges, reverts, tags (lightweight and annotated), a
force-pushed branch whose commits were never collected, two repositories, and deployments naming
revisions as full, upper-case, padded and abbreviated shas (some ambiguous), tags, unknown text,
with equal times, failed statuses, no repository, and several repositories at once."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics.deployments.attribution import attribute_changes
from analytics.store.connection import open_writer
from bench.git_ingest import fast_import_repo
from tests.git_stream import HistoryStream
from tests.gitrepo import GitRepo
from tests.store_query import query
from tests.test_git_collector import run_cli

T0 = datetime(2024, 1, 1, tzinfo=UTC)
SCOPES = [("api", "production"), ("api", "staging"), ("web", "production"), ("big", "production")]
_PY_SPACE = " \t\u00a0\u2003\n"


def _history(path: Path, seed: int, commits: int) -> tuple[GitRepo, list[str]]:
    """A main line with --no-ff merges of short branches, reverts and tags, plus a branch that is
    force-pushed away (its commits are unreachable, so never collected); and the shas of those
    commits. One ``git fast-import`` stream (tests/git_stream.py) writes what GitRepo's git process
    per step wrote: the same commits, shas and refs, in 0.06 instead of 2.85 CPU-s for the four
    repositories of both seeds (docs/performance.md, session 10, helper H6)."""
    rng = random.Random(seed)
    t = T0
    with HistoryStream(path) as repo:
        made: list[int] = []
        for i in range(commits):
            t += timedelta(hours=rng.randint(1, 30))
            roll = rng.random()
            if roll < 0.25:
                repo.branch(f"f{i}")
                for k in range(rng.randint(1, 3)):
                    made.append(repo.commit(f"work {i}.{k}", at=t - timedelta(days=3),
                                            committed_at=t - timedelta(hours=rng.randint(0, 80))))
                repo.checkout("main")
                made.append(repo.merge(f"f{i}", at=t))
            elif roll < 0.32 and made:
                made.append(repo.commit(f"to revert {i}", at=t))
                made.append(repo.revert(made[-1], at=t + timedelta(minutes=5)))
            else:
                made.append(repo.commit(f"main {i}", at=t))
            if rng.random() < 0.15:
                if rng.random() < 0.5:
                    repo.annotated_tag(f"v{i}", at=t + timedelta(hours=1))
                else:
                    repo.tag(f"v{i}")
        repo.branch("gone")
        away = [repo.commit(f"force-pushed away {k}", at=t + timedelta(hours=k + 1)) for k in range(3)]
        repo.checkout("main")
        repo.delete_branch("gone")
        # fast-import keeps no reflog, where GitRepo's history found these: the stream names them
        gone = [repo.sha(mark) for mark in away]
    return repo.repo, gone


def _facts(repo: GitRepo, gone: list[str]) -> tuple[dict[str, int], dict[str, str], list[str]]:
    """(collected sha -> committer time, tag -> commit, shas of the force-pushed commits)."""
    times = {sha: int(ts) for sha, ts in (line.split() for line in
             repo.git("log", "--all", "--format=%H %ct").splitlines())}
    tags = {}
    for line in repo.git("for-each-ref", "--format=%(refname:strip=2) %(objectname) %(*objectname)",
                         "refs/tags").splitlines():
        name, obj, *peeled = line.split()
        tags[name] = peeled[0] if peeled else obj
    assert not set(gone) & set(times), "a force-pushed commit is still reachable"
    return times, tags, gone


def _revision(rng: random.Random, shas: list[str], tags: dict[str, str], gone: list[str]) -> str:
    """A revision in one of the forms users and CI systems write."""
    sha = rng.choice(shas)
    form = rng.randrange(10)
    if form == 0:
        return sha.upper()
    if form == 1:
        return rng.choice(_PY_SPACE) + sha[: rng.randint(7, 12)] + rng.choice(_PY_SPACE)
    if form == 2:
        shared = _shared_prefixes(shas)
        if shared and rng.random() < 0.7:
            return rng.choice(shared)  # names two or more commits: unresolved
        return sha[: rng.randint(4, 5)]
    if form == 3 and tags:
        return rng.choice(sorted(tags))
    if form == 4:
        return rng.choice([*gone, "not-a-commit", "deadbeef", "v999"])
    if form == 5:
        return sha[: rng.randint(7, 12)]
    return sha


def _shared_prefixes(shas: list[str]) -> list[str]:
    """Four-digit abbreviations that two or more commits share."""
    seen: dict[str, int] = {}
    for sha in shas:
        seen[sha[:4]] = seen.get(sha[:4], 0) + 1
    return sorted(prefix for prefix, count in seen.items() if count > 1)


def _resolve(rev: str | None, shas: dict[str, int], tags: dict[str, str]) -> str | None:
    """The docstring's order: exact sha, tag, trimmed lower-case sha, unique abbreviation."""
    if rev is None:
        return None
    if rev in shas:
        return rev
    if rev in tags and tags[rev] in shas:
        return tags[rev]
    if rev.strip(" ").lower() in shas:
        return rev.strip(" ").lower()
    prefix = rev.strip().lower()
    if 4 <= len(prefix) <= 40 and all(c in "0123456789abcdef" for c in prefix):
        hits = [sha for sha in shas if sha.startswith(prefix)]
        return hits[0] if len(hits) == 1 else None
    return None


Facts = tuple[dict[str, int], dict[str, str], list[str]]


def _expected(repos: dict[str, GitRepo], facts: dict[str, Facts], deployments: list[dict[str, Any]],
              pairs: list[dict[str, Any]]) -> tuple[dict[str, set[str]], dict[str, tuple[int, list[str]]]]:
    shipped: dict[tuple[str, str], list[tuple[str, str | None, str | None, str | None, int]]] = {}
    for d in deployments:
        if d["status"] != "success":
            continue
        rows = {(d["id"], d["repository"], d["revision"], d["raw_revision"])}
        rows |= {(p["deployment_id"], p["repository"], p["revision"], p["raw_revision"])
                 for p in pairs if p["deployment_id"] == d["id"]}
        when = int(d["deployed_at"].timestamp() * 1_000_000)
        shipped.setdefault((d["service"], d["environment"]), []).extend((*r, when) for r in rows)
    changes: dict[str, set[str]] = {}
    warnings: dict[str, tuple[int, list[str]]] = {}
    for (svc, env), rows in sorted(shipped.items()):
        walks, failed = [], []
        for dep_id, repo, revision, raw, when in rows:
            start = None
            if repo in facts:
                times, tags, _ = facts[repo]
                start = _resolve(revision, times, tags) or _resolve(raw, times, tags)
            if start is None:
                failed.append((repo is not None, repo or "", dep_id, revision is None, revision or "",
                               raw is None, raw or "", f"{dep_id} (no repository)" if repo is None
                               else f"{dep_id} ({repo}@{revision})"))
            else:
                walks.append((when, facts[repo][0][start], dep_id, repo, start))
        earlier: dict[str, list[str]] = {}
        for _, _, dep_id, repo, start in sorted(walks):
            listed = repos[repo].git("rev-list", start, "--not", *earlier.get(repo, []), "--")
            changes.setdefault(dep_id, set()).update(listed.split())
            earlier.setdefault(repo, []).append(start)
        if failed:
            failed.sort()
            warnings[f"{svc}/{env}"] = (len(failed), [f[-1] for f in failed[:3]])
    return {k: v for k, v in changes.items() if v}, warnings


def _stored(db: Path) -> tuple[dict[str, set[str]], dict[str, tuple[int, list[str]]]]:
    changes: dict[str, set[str]] = {}
    for dep_id, sha in query(db, "SELECT deployment_id, sha FROM deployment_changes"):
        changes.setdefault(dep_id, set()).add(sha)
    warnings = {}
    for target, detail, count in query(db, "SELECT target, detail, count FROM data_warnings "
                                           "WHERE source = 'attribution'"):
        names = detail.split(": ", 1)[1].removesuffix(" ...").split(", ")
        warnings[target] = (count, names)
    return changes, warnings


@pytest.mark.parametrize("seed", [3, 11])
def test_attribution_equals_a_reference_walk(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    # "big" (1,500 commits by git fast-import) has four-digit abbreviations two commits share
    fast_import_repo(tmp_path / "big", 1500 + seed)
    built = {"api": _history(tmp_path / "api", seed, 70), "web": _history(tmp_path / "web", seed + 1, 30),
             "big": (GitRepo(tmp_path / "big"), [])}
    repos = {name: repo for name, (repo, _) in built.items()}
    db = tmp_path / "db.duckdb"
    for name, git_repo in repos.items():
        proc = run_cli(db, "collect", "git", str(git_repo.path), "--repo-id", name, "--deploy-tags", "")
        assert proc.returncode == 0, proc.stderr
    facts = {name: _facts(repo, gone) for name, (repo, gone) in built.items()}  # the repositories stay
    deployments: list[dict[str, Any]] = []
    pairs: list[dict[str, Any]] = []
    when = T0 + timedelta(days=1)
    for i in range(220):
        if not deployments or rng.random() > 0.25:
            svc, env = rng.choice(SCOPES)
            when += timedelta(minutes=rng.randint(1, 600))
        # else one in four shares the previous deployment's scope and time: ordered by the
        # committer time of its start commit, then id
        repo = svc if rng.random() < 0.9 else None
        times, tags, gone = facts[svc]
        raw = _revision(rng, sorted(times), tags, gone)
        # the stored revision is the importer's resolution or the raw text; sometimes garbage,
        # so that the raw revision is what resolves
        revision = ((_resolve(raw, times, tags) or raw) if rng.random() < 0.5
                    else rng.choice([raw, "zz-unknown"]))
        dep_id = f"d{rng.randrange(10_000):04d}-{i}"
        deployments.append({"id": dep_id, "service": svc, "environment": env, "repository": repo,
                            "revision": revision, "raw_revision": raw, "deployed_at": when,
                            "status": "failed" if rng.random() < 0.1 else "success", "source": "import"})
        if repo is not None and rng.random() < 0.15:
            other = "web" if svc != "web" else "api"
            o_times, o_tags, o_gone = facts[other]
            o_raw = _revision(rng, sorted(o_times), o_tags, o_gone)
            pairs.append({"deployment_id": dep_id, "repository": other,
                          "revision": _resolve(o_raw, o_times, o_tags) or o_raw, "raw_revision": o_raw,
                          "revision_format": "sha"})
            # the first pair is the deployments row itself, as the importer stores it
            pairs.append({"deployment_id": dep_id, "repository": repo, "revision": revision,
                          "raw_revision": raw, "revision_format": "sha"})
    with open_writer(db, source="test", target="deployments") as session:
        session.upsert("deployments", deployments)
        session.upsert("deployment_revisions", pairs)
        attribute_changes(session, deployment_ids=[d["id"] for d in deployments])
    expected = _expected(repos, facts, deployments, pairs)
    assert sum(len(v) for v in expected[0].values()) > 100 and expected[1]
    assert _stored(db) == expected

    # a recomputation of every scope changes nothing; deleting deployments and failing others
    # moves their commits, through the stored-difference path
    dropped = {d["id"] for d in deployments[::7]}
    failing = {d["id"] for d in deployments[3::9]} - dropped
    with open_writer(db, source="test") as session:
        assert attribute_changes(session) == sum(len(v) for v in expected[0].values())
        chosen = "id IN (SELECT unnest(?::VARCHAR[]))"
        session.con.execute(f"DELETE FROM deployments WHERE {chosen}", [sorted(dropped)])
        session.con.execute(f"UPDATE deployments SET status = 'failed' WHERE {chosen}", [sorted(failing)])
        attribute_changes(session)
    kept = [{**d, "status": "failed" if d["id"] in failing else d["status"]}
            for d in deployments if d["id"] not in dropped]
    expected = _expected(repos, facts, kept, [p for p in pairs if p["deployment_id"] not in dropped])
    changes, warnings = _stored(db)
    assert changes == expected[0]
    assert {k: v for k, v in warnings.items()} == expected[1]

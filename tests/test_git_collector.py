"""`gitops-dora collect git` run as the real console command against real repositories.

The shared example repository (built by ``_release_repo``), all times UTC unless noted:

    A   2024-03-01 09:00 (author tz +0100)   main          <- v1.0.0 (lightweight)
    B   author 2024-03-02 08:00 -0500 (=13:00Z), committed 2024-03-02 14:00Z, branch feature
    C   2024-03-03 10:00                     main          <- nightly-1 (lightweight, not a release)
    M   2024-03-04 12:00  merge --no-ff feature into main (parents C, B)
                                                           <- v1.1.0 (annotated, tagger 2024-03-05 15:30)
    R   2024-03-06 09:00  git revert B       main          <- v1.1.1 (lightweight)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.store.connection import open_writer
from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.store_query import query, store_reader

CLI = str(Path(sys.executable).parent / "gitops-dora")
SEMVER = r"^v[0-9]+\.[0-9]+\.[0-9]+$"


def run_cli(db: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            process: bool = False) -> subprocess.CompletedProcess[str]:
    """The console command, in this process (tests/cli_inprocess.py) unless ``process``: the
    credentials test reads what the real process writes."""
    full_env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_PAUSE_BEFORE_COMMIT"}
    full_env.update(env or {})
    if not process:
        return cli_inprocess.run(["--db", str(db), *args], env=full_env, cwd=cwd)
    return subprocess.run([CLI, "--db", str(db), *args], capture_output=True, text=True, env=full_env,
                          cwd=cwd, timeout=120)


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def _release_repo(path: Path) -> tuple[GitRepo, dict[str, str]]:
    repo = GitRepo.init(path)
    s: dict[str, str] = {}
    s["A"] = repo.commit("A", at="2024-03-01T10:00:00+01:00")
    repo.tag("v1.0.0")
    repo.branch("feature")
    s["B"] = repo.commit("B", at="2024-03-02T08:00:00-05:00", committed_at="2024-03-02T14:00:00+00:00",
                         committer_tz="+0000")
    repo.checkout("main")
    s["C"] = repo.commit("C", at="2024-03-03T10:00:00+00:00")
    repo.tag("nightly-1")
    s["M"] = repo.merge("feature", at="2024-03-04T12:00:00+00:00")
    repo.annotated_tag("v1.1.0", at="2024-03-05T15:30:00+00:00")
    s["R"] = repo.revert(s["B"], at="2024-03-06T09:00:00+00:00")
    repo.tag("v1.1.1")
    return repo, s


@pytest.fixture(scope="module")
def release_built(tmp_path_factory: pytest.TempPathFactory) -> tuple[GitRepo, dict[str, str]]:
    """The example repository, built once per module: some 20 git processes, 0.07 CPU-s and
    0.3 s of a loaded worker each time, for 16 tests (a copy is 0.01 CPU-s)."""
    return _release_repo(tmp_path_factory.mktemp("release") / "shop")


@pytest.fixture
def release(tmp_path: Path, release_built: tuple[GitRepo, dict[str, str]]) -> tuple[GitRepo, dict[str, str]]:
    """A copy of the example repository at ``tmp_path / "shop"``, the test's own to change (new
    commits and tags, a deleted object): the same objects, refs and shas as a repository built here."""
    built, shas = release_built
    repo = GitRepo(shutil.copytree(built.path, tmp_path / "shop", symlinks=True))
    repo._counter = built._counter  # the next commit's file name, as in the repository built here
    return repo, dict(shas)


def test_commits_merges_and_reverts(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    # 5 commits: A B C M R, all new on the first (full) run.
    assert "5 new commits (full; 5 in total)" in proc.stderr
    rows = {r[0]: r[1:] for r in query(db, """
        SELECT sha, parents, is_merge, author_time, author_tz, committer_time, committer_tz, subject,
               reverts_sha FROM commits WHERE repo = 'shop'""")}
    assert set(rows) == set(s.values())
    # A: root, author 10:00+01:00 = 09:00Z, offset kept.
    assert rows[s["A"]][0] == []
    assert rows[s["A"]][2] == utc("2024-03-01T09:00:00") and rows[s["A"]][3] == "+0100"
    # B: author 08:00-05:00 = 13:00Z; committed 14:00Z.
    assert rows[s["B"]][2] == utc("2024-03-02T13:00:00") and rows[s["B"]][3] == "-0500"
    assert rows[s["B"]][4] == utc("2024-03-02T14:00:00") and rows[s["B"]][5] == "+0000"
    # M: the only merge, first parent C then B.
    assert rows[s["M"]][0] == [s["C"], s["B"]] and rows[s["M"]][1] is True
    assert [sha for sha, r in rows.items() if r[1]] == [s["M"]]
    # R reverts B (from "This reverts commit <B>." in the body); nothing else reverts anything.
    assert rows[s["R"]][7] == s["B"] and rows[s["R"]][6] == 'Revert "B"'
    assert sum(1 for r in rows.values() if r[7] is not None) == 1
    repo_row = query(db, "SELECT id, is_bare, is_shallow, local_path FROM repositories")
    assert repo_row == [("shop", False, False, str(repo.path.resolve()))]


def test_annotated_and_lightweight_tags(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    db = tmp_path / "db.duckdb"
    assert run_cli(db, "collect", "git", str(repo.path)).returncode == 0
    tags = {r[0]: r[1:] for r in query(db, "SELECT name, sha, is_annotated, tagged_at FROM tags")}
    assert tags == {
        # lightweight: the committer date of the commit it points at
        "v1.0.0": (s["A"], False, utc("2024-03-01T09:00:00")),
        "nightly-1": (s["C"], False, utc("2024-03-03T10:00:00")),
        "v1.1.1": (s["R"], False, utc("2024-03-06T09:00:00")),
        # annotated: the tagger date, and the sha is the peeled commit (not the tag object)
        "v1.1.0": (s["M"], True, utc("2024-03-05T15:30:00")),
    }


def test_tag_deployments_and_their_changes(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER, "--service", "checkout")
    assert proc.returncode == 0, proc.stderr
    deps = query(db, "SELECT id, service, environment, revision, deployed_at, status, source, source_ref "
                     "FROM deployments ORDER BY deployed_at")
    # nightly-1 does not match the regex; v1.1.0 is at its tagger date.
    assert deps == [
        ("git-tag:shop:v1.0.0", "checkout", "production", s["A"], utc("2024-03-01T09:00:00"), "success",
         "git-tag", "v1.0.0"),
        ("git-tag:shop:v1.1.0", "checkout", "production", s["M"], utc("2024-03-05T15:30:00"), "success",
         "git-tag", "v1.1.0"),
        ("git-tag:shop:v1.1.1", "checkout", "production", s["R"], utc("2024-03-06T09:00:00"), "success",
         "git-tag", "v1.1.1"),
    ]
    changes = query(db, "SELECT deployment_id, list(sha ORDER BY sha) FROM deployment_changes GROUP BY 1")
    # v1.0.0 = rev-list A = {A}; v1.1.0 = rev-list M ^A = {B, C, M}; v1.1.1 = rev-list R ^M = {R}.
    assert dict(changes) == {
        "git-tag:shop:v1.0.0": [s["A"]],
        "git-tag:shop:v1.1.0": sorted([s["B"], s["C"], s["M"]]),
        "git-tag:shop:v1.1.1": [s["R"]],
    }
    assert query(db, "SELECT name, team FROM services") == [("checkout", None)]
    assert query(db, "SELECT name, is_production FROM environments") == [("production", True)]


def test_branch_deployments_are_first_parent_commits(
    tmp_path: Path, release: tuple[GitRepo, dict[str, str]]
) -> None:
    repo, s = release
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path), "--deploy-branch", "main",
                   "--environment", "staging")
    assert proc.returncode == 0, proc.stderr
    deps = query(db, "SELECT revision, deployed_at, environment, source FROM deployments "
                     "ORDER BY deployed_at")
    # first-parent of main: A, C, M, R (B is only reachable through the merge's second parent)
    assert deps == [
        (s["A"], utc("2024-03-01T09:00:00"), "staging", "git-branch"),
        (s["C"], utc("2024-03-03T10:00:00"), "staging", "git-branch"),
        (s["M"], utc("2024-03-04T12:00:00"), "staging", "git-branch"),
        (s["R"], utc("2024-03-06T09:00:00"), "staging", "git-branch"),
    ]
    changes = dict(query(db, """SELECT d.revision, list(c.sha ORDER BY c.sha) FROM deployments d
                                JOIN deployment_changes c ON c.deployment_id = d.id GROUP BY 1"""))
    # The merge deployment ships the merge and the feature commit B.
    assert changes == {s["A"]: [s["A"]], s["C"]: [s["C"]], s["M"]: sorted([s["M"], s["B"]]), s["R"]: [s["R"]]}
    # "staging" is not a production environment unless the config says so.
    assert query(db, "SELECT name, is_production FROM environments") == [("staging", False)]


def test_incremental_rerun(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    db = tmp_path / "db.duckdb"
    assert run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER).returncode == 0
    runs_before = query(db, "SELECT count(*) FROM collection_runs")[0][0]

    # Unchanged: fast path, nothing mined, nothing written (no new collection run). Its speed is
    # measured by bench/git_ingest.py; here the work it must not do: import pandas (DuckDB's binding
    # imports it for any statement with parameters, half a second) or open a writer.
    for _ in range(2):
        proc = subprocess.run([sys.executable, "-X", "importtime", CLI, "--db", str(db), "collect", "git",
                               str(repo.path)], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert "up to date, nothing mined (5 commits, 3 git deployments)" in proc.stderr
        imported = {line.rsplit("|", 1)[1].strip() for line in proc.stderr.splitlines()
                     if line.startswith("import time:")}
        assert "duckdb" in imported  # importtime output is there at all
        assert not {"pandas", "numpy", "pydriller"} & imported
    assert query(db, "SELECT count(*) FROM collection_runs")[0][0] == runs_before

    # Mark an old commit in the store: if the next run re-read old history it would overwrite it.
    with open_writer(db, source="test") as session:
        session.con.execute("UPDATE commits SET subject = 'SENTINEL' WHERE sha = ?", [s["A"]])
    d = repo.commit("D", at="2024-03-07T09:00:00+00:00")
    repo.tag("v1.2.0")
    proc = run_cli(db, "collect", "git", str(repo.path))  # the deploy options are remembered
    assert proc.returncode == 0, proc.stderr
    # Only D is new (incremental), and A still carries the sentinel: old history was not read.
    assert "1 new commits (incremental; 6 in total)" in proc.stderr
    assert query(db, "SELECT subject FROM commits WHERE sha = ?", [s["A"]]) == [("SENTINEL",)]
    assert query(db, "SELECT deployment_id FROM deployment_changes WHERE sha = ?", [d]) == [
        ("git-tag:shop:v1.2.0",)
    ]
    # Same rows again on a forced full recomputation of deployments (options changed): idempotent.
    before = query(db, "SELECT * FROM deployment_changes ORDER BY ALL")
    assert run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER,
                   "--service", "shop").returncode == 0
    assert query(db, "SELECT * FROM deployment_changes ORDER BY ALL") == before


def test_empty_pattern_switches_tag_deployments_off_and_is_remembered(
    tmp_path: Path, release: tuple[GitRepo, dict[str, str]],
) -> None:
    repo, _ = release
    db = tmp_path / "db.duckdb"
    assert run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER).returncode == 0
    assert query(db, "SELECT count(*) FROM deployments WHERE source = 'git-tag'") == [(3,)]
    off = run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", "")
    assert off.returncode == 0, off.stderr
    assert "0 git deployments" in off.stderr
    assert query(db, "SELECT count(*) FROM deployments") == [(0,)]
    assert query(db, "SELECT count(*) FROM deployment_changes") == [(0,)]
    # a bare re-run after a new tag keeps them off
    repo.commit("E", at="2024-03-08T09:00:00+00:00")
    repo.tag("v1.3.0")
    again = run_cli(db, "collect", "git", str(repo.path))
    assert again.returncode == 0, again.stderr
    assert query(db, "SELECT count(*) FROM deployments") == [(0,)]


def test_bare_repo_and_file_url_into_cache(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    bare = repo.clone(tmp_path / "shop-bare.git", bare=True)
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(bare.path))
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT id, is_bare FROM repositories") == [("shop-bare", True)]
    assert query(db, "SELECT count(*) FROM commits WHERE repo = 'shop-bare'") == [(5,)]

    cache = tmp_path / "cache"
    env = {"GITOPS_DORA_CACHE": str(cache)}
    url = repo.url  # file:///.../shop
    proc = run_cli(db, "collect", "git", url, "--deploy-tags", SEMVER, env=env)
    assert proc.returncode == 0, proc.stderr
    clones = list(cache.iterdir())
    assert len(clones) == 1 and clones[0].name.startswith("shop-") and clones[0].name.endswith(".git")
    assert query(db, "SELECT url, local_path FROM repositories WHERE id = 'shop'") == [(url, str(clones[0]))]
    assert query(db, "SELECT count(*) FROM deployments WHERE repository = 'shop'") == [(3,)]
    # A new upstream commit is fetched into the same cache clone on the next run.
    repo.commit("E", at="2024-03-08T09:00:00+00:00")
    proc = run_cli(db, "collect", "git", url, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "1 new commits (incremental; 6 in total)" in proc.stderr
    assert list(cache.iterdir()) == clones


def test_shallow_clone_warns_and_continues(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    shallow = repo.shallow_clone(tmp_path / "shallow", depth=2)
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(shallow.path))
    assert proc.returncode == 0, proc.stderr
    assert "shallow clone" in proc.stderr and "lead times" in proc.stderr
    assert query(db, "SELECT is_shallow FROM repositories") == [(True,)]
    assert query(db, "SELECT kind FROM data_warnings WHERE source = 'git:shallow'") == [("shallow_clone",)]
    # depth 2 on main: R and its parent M; M's parents are cut off.
    assert sorted(r[0] for r in query(db, "SELECT sha FROM commits")) == sorted([s["R"], s["M"]])


def _table_dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    if not db.exists():
        return {}
    con = store_reader(db)   # one reader (one snapshot) for every table: a reader costs 0.1-0.2 s
    try:
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables() WHERE table_name NOT IN "
                                            "('collection_runs', 'schema_migrations')").fetchall()]
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()


def test_missing_object_fails_cleanly(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = release
    db = tmp_path / "db.duckdb"
    other = GitRepo.init(tmp_path / "other")
    other.commit("x", at="2024-01-01T00:00:00+00:00")
    assert run_cli(db, "collect", "git", str(other.path)).returncode == 0
    before = _table_dump(db)
    repo.delete_object(s["C"])
    proc = run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ")
    assert str(repo.path) in lines[0] and s["C"] in lines[0]
    assert _table_dump(db) == before  # nothing of the broken repository was written


@pytest.mark.parametrize("case", ["not-a-repo", "inside-repo", "missing-path", "unknown-ref", "bad-regex"])
def test_bad_input_one_line_nothing_written(
    tmp_path: Path, release: tuple[GitRepo, dict[str, str]], case: str
) -> None:
    repo, _ = release
    db = tmp_path / "db.duckdb"
    plain = tmp_path / "plain"
    plain.mkdir()
    inner = repo.path / "docs"
    inner.mkdir()
    args, needle = {
        "not-a-repo": ([str(plain)], f"{plain} is not a git repository"),
        "inside-repo": ([str(inner)], f"{inner} is not a git repository (it is a folder inside"),
        "missing-path": ([str(tmp_path / "nowhere")], "nowhere: no such file or directory"),
        "unknown-ref": ([str(repo.path), "--deploy-branch", "nope"],
                        "unknown ref 'nope' for --deploy-branch"),
        "bad-regex": ([str(repo.path), "--deploy-tags", "v[0-9"], "--deploy-tags 'v[0-9' is not a valid"),
    }[case]
    proc = run_cli(db, "collect", "git", *args)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], lines
    assert _table_dump(db) == {}  # the database was not even created


def test_config_team_and_environment_flags(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    repo, _ = release
    db = tmp_path / "db.duckdb"
    cfg = tmp_path / "gitops-dora.yaml"
    cfg.write_text(json.dumps({
        "services": [{"name": "webshop", "team": "payments", "repositories": [str(repo.path)]}],
        "environments": [{"name": "prod-eu", "production": True}],
        "deployments": {"git": {"tags": SEMVER, "environment": "prod-eu"}},
    }))
    proc = run_cli(db, "--config", str(cfg), "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    # The config maps the repository to service webshop (team payments), tags and environment.
    assert query(db, "SELECT name, team FROM services") == [("webshop", "payments")]
    assert query(db, "SELECT name, is_production FROM environments") == [("prod-eu", True)]
    assert query(db, "SELECT DISTINCT service, environment FROM deployments") == [("webshop", "prod-eu")]


def test_odd_bytes_in_history_are_kept_readable(tmp_path: Path) -> None:
    """A Latin-1 author name without an encoding header and a unit separator in a subject.

    Both break the fast CSV load, so the collector must fall back to a cleaned copy rather than
    fail or drop the commit: 2 commits in, 2 commits stored, text preserved as far as possible.
    """
    repo = GitRepo.init(tmp_path / "odd")
    first = repo.commit("plain", at="2024-05-01T09:00:00+00:00")
    tree = repo.git("rev-parse", "HEAD^{tree}")
    raw = (f"tree {tree}\nparent {first}\n"
           "author Jos\xe9 <jose@example.com> 1714640400 +0200\n"
           "committer Jos\xe9 <jose@example.com> 1714640400 +0200\n\n"
           "fix \x1f separator\n").encode("latin-1")
    obj = tmp_path / "commit.raw"
    obj.write_bytes(raw)
    odd = repo.git("hash-object", "-t", "commit", "-w", "--literally", str(obj))
    repo.git("update-ref", "refs/heads/main", odd)
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    rows = dict(query(db, "SELECT sha, [author_name, subject, author_tz] FROM commits"))
    assert set(rows) == {first, odd}
    # 0xE9 is not UTF-8: replaced by U+FFFD; the separator inside the subject becomes a space.
    assert rows[odd] == ["Jos\ufffd", "fix   separator", "+0200"]
    assert query(db, "SELECT author_time FROM commits WHERE sha = ?", [odd]) == [
        (utc("2024-05-02T09:00:00"),)  # 1714640400 = 2024-05-02T09:00:00Z
    ]


def test_monorepo_services_keep_their_own_tag_deployments(tmp_path: Path) -> None:
    """Two services from one repository, each with its own tag pattern and its own re-runs.

    api-v1 on A (05-01), web-v1 on B (05-02), api-v2 on C (05-03); every tag is lightweight.
    api: api-v1 ships {A}, api-v2 ships {B, C}. web: web-v1 ships {A, B}.
    """
    repo = GitRepo.init(tmp_path / "mono")
    a = repo.commit("A", at="2024-05-01T09:00:00+00:00")
    repo.tag("api-v1")
    b = repo.commit("B", at="2024-05-02T09:00:00+00:00")
    repo.tag("web-v1")
    c = repo.commit("C", at="2024-05-03T09:00:00+00:00")
    repo.tag("api-v2")
    db = tmp_path / "db.duckdb"
    for service, pattern in (("api", "^api-v"), ("web", "^web-v"), ("api", "^api-v")):
        proc = run_cli(db, "collect", "git", str(repo.path), "--service", service, "--deploy-tags", pattern)
        assert proc.returncode == 0, proc.stderr
    changes = query(db, """SELECT d.service, d.source_ref, list(c.sha ORDER BY c.sha)
                           FROM deployments d JOIN deployment_changes c ON c.deployment_id = d.id
                           GROUP BY ALL ORDER BY ALL""")
    assert changes == [
        ("api", "api-v1", [a]),
        ("api", "api-v2", sorted([b, c])),
        ("web", "web-v1", sorted([a, b])),
    ]


def test_url_credentials_are_never_stored(tmp_path: Path, release: tuple[GitRepo, dict[str, str]]) -> None:
    """A repository served over loopback HTTP (git's "dumb" protocol: plain static files), cloned
    with user:secret in the URL. The secret must not reach the cache clone's config, the
    database or the output, and the re-run's fetch must still work."""
    import functools
    import http.server
    import threading

    repo, _ = release
    served = repo.clone(tmp_path / "www" / "shop.git", bare=True)
    served.git("update-server-info")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "www"))
    handler.log_message = lambda *a, **k: None  # type: ignore[attr-defined]
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://ci-bot:s3cr3t-token@127.0.0.1:{server.server_address[1]}/shop.git"
        db = tmp_path / "db.duckdb"
        env = {"GITOPS_DORA_CACHE": str(tmp_path / "cache")}
        first = run_cli(db, "collect", "git", url, "--deploy-tags", SEMVER, env=env, process=True)
        assert first.returncode == 0, first.stderr
        assert query(db, "SELECT count(*) FROM commits WHERE repo = 'shop'") == [(5,)]
        repo.commit("F", at="2024-03-09T09:00:00+00:00")
        served.git("fetch", "-q", repo.url, "+refs/heads/*:refs/heads/*")
        served.git("update-server-info")
        second = run_cli(db, "collect", "git", url, env=env, process=True)
        assert second.returncode == 0, second.stderr
        assert "1 new commits (incremental; 6 in total)" in second.stderr
    finally:
        server.shutdown()
    (clone,) = (tmp_path / "cache").iterdir()
    assert "s3cr3t" not in (clone / "config").read_text()
    assert "s3cr3t" not in first.stderr + first.stdout + second.stderr + second.stdout
    assert query(db, "SELECT url FROM repositories") == [(url.replace("ci-bot:s3cr3t-token@", ""),)]
    assert b"s3cr3t" not in db.read_bytes()

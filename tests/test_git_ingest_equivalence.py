"""`collect git`'s stored rows against an independent reading of the same repository with git.

The collector streams one ``git log -z`` into DuckDB's CSV reader, starts git before the store
is open, attributes commits on an integer graph and writes only differences on re-runs. These
tests read the repository another way (``git log`` with newline-separated fields per NUL record,
``git rev-list``, ``git for-each-ref``) and compare every commit, tag, deployment and
attribution row, on a history with hostile bytes and shapes, after a full run, after an
incremental run and after a rewrite, and against a fresh collection of the same refs.

Hostile input keeps the behaviour the collector has always had (``_expected_subject``): invalid
UTF-8 becomes U+FFFD, a unit separator inside a field becomes a space, a record separator in a
subject ends the subject, and an empty subject, name or e-mail is stored as NULL.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_log
from analytics.collectors.git_source import locate, ref_tips
from tests.gitrepo import GitRepo, clean_git_env
from tests.store_query import query, store_reader
from tests.test_git_collector import run_cli

ALL_TAGS = ".*"
_REVERT = re.compile(rb"This reverts commit ([0-9a-f]{7,40})")


def _raw_commit(repo: GitRepo, parents: list[str], message: bytes, *,
                author: bytes = b"A <a@x> 1714640400 +0200", committer: bytes = b"A <a@x> 1714640400 +0200",
                header: bytes = b"") -> str:
    """A commit object written byte for byte (git commit would clean these bytes up)."""
    tree = repo.git("rev-parse", "HEAD^{tree}")
    raw = f"tree {tree}\n".encode() + b"".join(f"parent {p}\n".encode() for p in parents)
    raw += b"author " + author + b"\ncommitter " + committer + b"\n" + header + b"\n" + message
    obj = repo.path / "raw.obj"
    obj.write_bytes(raw)
    try:
        return repo.git("hash-object", "-t", "commit", "-w", "--literally", str(obj))
    finally:
        obj.unlink()


def _hostile_repo(path: Path) -> GitRepo:
    """Odd names and bytes, reverts in every spelling, several roots, an octopus merge, every
    kind of tag (lightweight, annotated, a tag of a tag, a tag of a tree, a non-ASCII name)."""
    repo = GitRepo.init(path)
    a = repo.commit("plain first", at="2024-05-01T09:00:00+00:00")
    b = _raw_commit(repo, [a], b"fix \x1f separator\n\nbody\n",
                    author="Jos\xe9 \t<jose@example.com> 1714640400 +0200".encode("latin-1"))
    reverting = f'Revert "fix"\r\n\nThis reverts commit {b}.\nThis reverts commit {a}.\n'
    c = _raw_commit(repo, [b], reverting.encode(),
                    author='O\'Brien "Bob", Jr.\t\U0001F600 <ob@x> 1714650000 -0130'.encode(),
                    committer=b"C, Comma <c@x> 1714650100 +1400")
    d = _raw_commit(repo, [c], b"sub\x1eject\n\nThis reverts commit " + a[:9].encode() + b".\n")
    e = _raw_commit(repo, [d], b"")
    f = _raw_commit(repo, [e], b"multi\nline\nsubject\n\nbody\x1fwith\x1fseps\n",
                    author=b"<> 1 +0000", committer=b"<> 4102444800 -1200")
    g = _raw_commit(repo, [f], "caf\xe9 latin1 \xff\n".encode("latin-1"), header=b"encoding ISO-8859-1\n",
                    author="Ren\xe9 <r@x> 1714660000 +0000".encode("latin-1"))
    h = _raw_commit(repo, [g], ("x" * 5000 + "\n\nThis reverts commit " + "0" * 6 + "\n").encode())
    root2 = _raw_commit(repo, [], b"second root \\ backslash \"quote\" 'single'\n")
    side = _raw_commit(repo, [a], b"side one\n")
    octopus = _raw_commit(repo, [h, root2, side],
                          b"Octopus\n\nThis reverts commit " + side[:4].encode() + b"\n")
    repo.git("update-ref", "refs/heads/main", octopus)
    repo.git("update-ref", "refs/heads/side", side)
    repo.git("update-ref", "refs/remotes/origin/other", root2)
    repo.git("reset", "-q", "--hard", "main")
    repo.tag("v1.0.0", a)
    repo.annotated_tag("v1.1.0", at="2024-05-03T00:00:00+00:00", ref=c)
    repo.git("tag", "-a", "v1.2.0-nested", "-m", "nested", "v1.1.0",
             env={"GIT_COMMITTER_DATE": "1714800000 +0000"})
    repo.git("tag", "tree-tag", "main^{tree}")
    repo.tag("v2.0.0", octopus)
    repo.tag("\u00fcn\u00efcode-tag", g)
    repo.tag("v1.3.0", h)
    repo.git("tag", "v1.4.0", root2)
    return repo


def _expected_subject(raw: bytes) -> str | None:
    """The subject as the collector has always stored it (see the module docstring)."""
    text = raw.split(b"\x1e", 1)[0].decode("utf-8", errors="replace").replace("\x1f", " ")
    return text or None


def _text(raw: bytes) -> str | None:
    return raw.decode("utf-8", errors="replace") or None


def _git_commits(repo: GitRepo, repo_id: str) -> set[tuple[Any, ...]]:
    """Every commit row as git shows it: newline-separated fields in NUL-terminated records (a
    different framing from the collector's unit separators), bodies searched for reverts."""
    raw = subprocess.run(
        ["git", "-C", str(repo.path), "log", "--branches", "--remotes", "--tags", "-z",
         "--date=format:%z", "--format=%H%n%P%n%an%n%ae%n%at%n%ad%n%cn%n%ce%n%ct%n%cd%n%s%n%b"],
        capture_output=True, check=True, env=clean_git_env(),
    ).stdout  # bytes: non-UTF-8 bytes must reach the comparison as git wrote them
    by_sha: dict[str, list[bytes]] = {}
    for record in raw.split(b"\0"):
        if record:
            fields = record.split(b"\n", 11)
            by_sha[fields[0].decode()] = fields
    shas = set(by_sha)
    rows = set()
    for sha, (_, parents, an, ae, at, atz, cn, ce, ct, ctz, subject, *body) in by_sha.items():
        found = _REVERT.search(subject + b"\n" + (body[0] if body else b""))
        target = found.group(1).decode() if found else None
        if target is not None and len(target) < 40:  # abbreviated: expanded when unique
            hits = [s for s in shas if s.startswith(target)]
            target = hits[0] if len(hits) == 1 else target
        plist = parents.decode().split()
        rows.add((repo_id, sha, tuple(plist), _text(an), _text(ae), _utc(int(at)), atz.decode(),
                  _text(cn), _text(ce), _utc(int(ct)), ctz.decode(), _expected_subject(subject),
                  len(plist) > 1, target))
    return rows


def _utc(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def _reads(db: Path, *sqls: str) -> list[list[tuple[Any, ...]]]:
    """Each query's rows, all on one reader of the newest snapshot (a reader per query cost 0.1-0.15
    CPU-s of catalog reads each, most of these tests' time)."""
    con = store_reader(db)
    try:
        return [con.execute(sql).fetchall() for sql in sqls]
    finally:
        con.close()


COMMITS_SQL = ("SELECT repo, sha, parents, author_name, author_email, author_time, author_tz, "
               "committer_name, committer_email, committer_time, committer_tz, subject, is_merge, "
               "reverts_sha FROM commits")


def _commit_rows(rows: list[tuple[Any, ...]]) -> set[tuple[Any, ...]]:
    return {(r[0], r[1], tuple(r[2]), *r[3:]) for r in rows}


def _stored_commits(db: Path) -> set[tuple[Any, ...]]:
    return _commit_rows(query(db, COMMITS_SQL))


def _git_tags(repo: GitRepo) -> dict[str, str]:
    """Tag name -> the commit it finally points at, for tags that reach a commit."""
    out = {}
    for name in repo.git("for-each-ref", "--format=%(refname:strip=2)", "refs/tags").splitlines():
        sha = repo.git("rev-parse", "--verify", "--quiet", f"refs/tags/{name}^{{commit}}", check=False)
        if sha:
            out[name] = sha
    return out


def _tag_time(repo: GitRepo, name: str) -> int:
    """Tagger date of the outermost tag object, else the commit's committer date."""
    kind = repo.git("cat-file", "-t", f"refs/tags/{name}")
    if kind == "tag":
        return int(repo.git("for-each-ref", "--format=%(taggerdate:unix)", f"refs/tags/{name}"))
    return int(repo.git("log", "-1", "--format=%ct", f"refs/tags/{name}"))


def _git_attribution(repo: GitRepo, repo_id: str, pattern: str) -> dict[str, set[str]]:
    """Each matching tag, in time order (ties: the revision's committer time, then the id), ships
    ``git rev-list <tag> --not <earlier tags>``."""
    tags = _git_tags(repo)
    order = sorted(
        (_tag_time(repo, name), int(repo.git("log", "-1", "--format=%ct", sha)),
         f"git-tag:{repo_id}:{name}", sha)
        for name, sha in tags.items() if re.search(pattern, name)
    )
    shipped: dict[str, set[str]] = {}
    for k, (_, _, dep_id, sha) in enumerate(order):
        earlier = [f"^{s}" for *_, s in order[:k]]
        commits = set(repo.git("rev-list", sha, *earlier).split())
        if commits:
            shipped.setdefault(dep_id, set()).update(commits)
    return shipped


ATTRIBUTION_SQL = "SELECT deployment_id, sha FROM deployment_changes"


def _attribution_rows(rows: list[tuple[Any, ...]]) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for dep_id, sha in rows:
        out.setdefault(dep_id, set()).add(sha)
    return out


def _stored_attribution(db: Path) -> dict[str, set[str]]:
    return _attribution_rows(query(db, ATTRIBUTION_SQL))


def _check_against_git(db: Path, repo: GitRepo, repo_id: str, pattern: str) -> None:
    commits, tag_rows, deployments, attribution = _reads(
        db, COMMITS_SQL, "SELECT name, sha, tagged_at FROM tags",
        "SELECT id, revision, deployed_at FROM deployments WHERE source = 'git-tag'", ATTRIBUTION_SQL)
    assert _commit_rows(commits) == _git_commits(repo, repo_id)
    tags = _git_tags(repo)
    assert {(n, s) for n, s, _ in tag_rows} == set(tags.items())
    assert {(n, int(t.timestamp())) for n, _, t in tag_rows} == {(n, _tag_time(repo, n)) for n in tags}
    assert {(d, r, int(t.timestamp())) for d, r, t in deployments} == {
        (f"git-tag:{repo_id}:{n}", s, _tag_time(repo, n)) for n, s in tags.items() if re.search(pattern, n)}
    assert _attribution_rows(attribution) == _git_attribution(repo, repo_id, pattern)


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Every row a collection writes, without run ids and clock times."""
    tables = {
        "commits": "SELECT * FROM commits", "tags": "SELECT * FROM tags",
        "deployments": "SELECT * FROM deployments", "deployment_changes": "SELECT * FROM deployment_changes",
        "services": "SELECT * FROM services", "environments": "SELECT * FROM environments",
        "data_warnings": "SELECT * EXCLUDE (updated_at) FROM data_warnings",
    }
    rows = _reads(db, *tables.values())
    return {name: sorted(found, key=repr) for name, found in zip(tables, rows, strict=True)}


def test_full_incremental_and_rewritten_runs_equal_git(tmp_path: Path) -> None:
    repo = _hostile_repo(tmp_path / "hostile")
    db = tmp_path / "db.ducklake"
    proc = run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", ALL_TAGS)
    assert proc.returncode == 0, proc.stderr
    assert "11 new commits (full; 11 in total), 7 tags, 7 git deployments" in proc.stderr
    _check_against_git(db, repo, "hostile", ALL_TAGS)
    # The hostile commits as the collector has always stored them.
    subjects = {s for (s,) in query(db, "SELECT subject FROM commits")}
    assert {"fix   separator", 'Revert "fix"', "sub", None, "multi line subject", "caf\u00e9 latin1 \u00ff",
            "second root \\ backslash \"quote\" 'single'"} <= subjects
    assert query(db, "SELECT author_name FROM commits WHERE subject = 'fix   separator'") == [("Jos\ufffd",)]

    # Incremental: new commits and a tag; then a rewrite that drops a tip and a tag (gc'd away).
    for i in range(3):
        repo.commit(f"more {i}", at=f"2024-06-0{i + 1}T10:00:00+00:00")
    repo.tag("v3.0.0")
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    assert "3 new commits (incremental; 14 in total), 8 tags, 8 git deployments" in proc.stderr
    _check_against_git(db, repo, "hostile", ALL_TAGS)

    repo.git("update-ref", "refs/heads/main", "main~2")
    repo.git("tag", "-d", "v3.0.0")
    repo.git("reflog", "expire", "--expire=now", "--all")
    repo.git("gc", "-q", "--prune=now")
    repo.commit("after rewrite", at="2024-06-09T10:00:00+00:00")
    repo.tag("v4.0.0")
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    # The dropped commits stay in the store (history is never deleted), so compare what git can
    # still reach, and everything derived from the refs.
    reachable = _git_commits(repo, "hostile")
    assert reachable <= _stored_commits(db)
    assert len(_stored_commits(db)) == 15
    assert _stored_attribution(db) == _git_attribution(repo, "hostile", ALL_TAGS)

    # A fresh store collecting the same refs ends with the same rows, except the two commits
    # only the first store saw before the rewrite.
    fresh = tmp_path / "fresh.ducklake"
    assert run_cli(fresh, "collect", "git", str(repo.path), "--deploy-tags", ALL_TAGS).returncode == 0
    kept, new = _dump(db), _dump(fresh)
    gone = {row[1] for row in kept["commits"]} - {row[1] for row in new["commits"]}
    assert len(gone) == 2
    kept["commits"] = [row for row in kept["commits"] if row[1] not in gone]
    assert kept == new


def test_wrong_guess_of_the_previous_tips_is_corrected_in_the_transaction(tmp_path: Path) -> None:
    """``collect`` starts git log from the tips the fast path saw; when the transaction reads
    different ones, that log is dropped and the right one read, with the same rows as a plain run."""
    repo = _hostile_repo(tmp_path / "hostile")
    db = tmp_path / "db.ducklake"
    assert run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", ALL_TAGS).returncode == 0
    new = repo.commit("one more", at="2024-06-01T10:00:00+00:00")
    repo.tag("v5.0.0")
    location = locate(str(repo.path))
    options = git_collector.GitOptions(service="hostile", environment="production", deploy_tags=ALL_TAGS)
    # A guess naming only the newest commit would make git log read nothing at all.
    git_collector._seen_tips[location.repo_id] = json.dumps({"refs/heads/main": new})
    started: list[tuple[str, ...]] = []

    class Recording(git_log.LogReader):
        def __init__(self, repo_path: Path, exclude: Any) -> None:
            started.append(tuple(exclude))
            super().__init__(repo_path, exclude)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(git_log, "LogReader", Recording)
        summary = git_collector.collect(db, location, options, ref_tips(location.local_path))
    assert summary.new_commits == 1 and summary.total_commits == 12
    assert started[0] == (new,)  # the guess
    assert len(started) == 2 and new not in started[1]  # the transaction's own exclusion
    _check_against_git(db, repo, "hostile", ALL_TAGS)


def test_many_small_chunks_load_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Chunks of a few records each (some needing the slow clean-up path), loaded in batches of
    whatever is ready, end with the same rows as git shows."""
    repo = _hostile_repo(tmp_path / "hostile")
    for i in range(40):
        repo.commit(f"filler {i} \u00e9", at=f"2024-07-{1 + i % 28:02d}T10:{i:02d}:00+00:00")
    repo.tag("v9.0.0")
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 300)
    db = tmp_path / "db.ducklake"
    location = locate(str(repo.path))
    options = git_collector.GitOptions(service="hostile", environment="production", deploy_tags=ALL_TAGS)
    summary = git_collector.collect(db, location, options, ref_tips(location.local_path))
    assert summary.new_commits == 51
    _check_against_git(db, repo, "hostile", ALL_TAGS)

"""Abbreviated shas in "This reverts commit <sha>." resolve to the one commit they name, or to none.

git revert writes the full sha, but people write reverts by hand and abbreviate. ``collect git``
stores what the message says in ``commits.reverts_sha`` and then expands a prefix (7 to 39 hex
digits) to the full sha only when exactly one commit of the same repository starts with it. An
ambiguous prefix (two commits share it) or an unknown one (no commit has it) stays as written:
it never equals a commit's sha, so no metric can attribute the revert to a wrong commit.

The repository ``app`` (all times UTC, every commit on main unless noted):

    A    2024-05-01 09:00
    B    2024-05-02 09:00
    C    2024-05-03 09:00
    T1   2024-05-04 09:00  child of C on branch twin-1 } crafted so that their shas share
    T2   2024-05-04 09:00  child of C on branch twin-2 } their first 7 hex digits (P)
    R7   2024-05-05 09:00  "This reverts commit <A[:7]>."    -> A
    R12  2024-05-06 09:00  "This reverts commit <B[:12]>."   -> B
    RA   2024-05-07 09:00  "This reverts commit <P>."        -> P, as written (ambiguous)
    RU   2024-05-08 09:00  "This reverts commit <U>."        -> U, as written (no such commit)
    RF   2024-05-09 09:00  git revert C (full sha)          -> C
"""

from __future__ import annotations

import hashlib
import subprocess
from pathlib import Path

import pytest

from tests.gitrepo import AUTHOR, COMMITTER, GitRepo, clean_git_env, git_date
from tests.store_query import query_snapshot
from tests.test_git_collector import run_cli

PREFIX = 7  # the shortest abbreviation the collector reads


def _commit_object(tree: str, parent: str, epoch: int, message: str) -> bytes:
    """The raw commit object git would write for these fields (what its sha is the SHA-1 of)."""
    return (f"tree {tree}\nparent {parent}\n"
            f"author {AUTHOR[0]} <{AUTHOR[1]}> {epoch} +0000\n"
            f"committer {COMMITTER[0]} <{COMMITTER[1]}> {epoch} +0000\n\n{message}\n").encode()


def _sha(body: bytes) -> str:
    return hashlib.sha1(b"commit %d\0" % len(body) + body).hexdigest()


def twin_commits(repo: GitRepo, at: str) -> tuple[str, str]:
    """Two children of HEAD whose shas share their first PREFIX hex digits, on branches twin-1/-2.

    A birthday search over the message ("twin <n>"): about 20 000 SHA-1s of a few hundred bytes
    for 28 bits, a few milliseconds, and deterministic because every other field is fixed.
    """
    tree, parent = repo.git("rev-parse", "HEAD^{tree}"), repo.rev_parse()
    epoch = int(git_date(at).split()[0])
    seen: dict[str, str] = {}
    n = 0
    while True:
        message = f"twin {n}"
        prefix = _sha(_commit_object(tree, parent, epoch, message))[:PREFIX]
        if prefix in seen:
            break
        seen[prefix] = message
        n += 1
    shas = []
    for i, text in enumerate((seen[prefix], message), start=1):
        body = _commit_object(tree, parent, epoch, text)
        written = subprocess.run(
            ["git", "-C", str(repo.path), "hash-object", "-t", "commit", "-w", "--stdin"],
            input=body, capture_output=True, check=True, env=clean_git_env(),
        ).stdout.decode().strip()
        assert written == _sha(body)
        repo.git("branch", f"twin-{i}", written)
        shas.append(written)
    return shas[0], shas[1]


def revert_message(prefix: str) -> str:
    return f"Revert a change\n\nThis reverts commit {prefix}."


def unknown_prefix(repo: GitRepo) -> str:
    """PREFIX hex digits that start no object in the repository (git agrees: nothing to disambiguate)."""
    for candidate in ("deadbee", "0000000", "fffffff", "1234567"):
        if not repo.git("rev-parse", f"--disambiguate={candidate}", check=False):
            return candidate
    raise AssertionError("every candidate prefix names an object")


def reverts(db: Path, repo_id: str) -> dict[str, str | None]:
    return dict(query_snapshot(db, "SELECT sha, reverts_sha FROM commits WHERE repo = ?", [repo_id]))


@pytest.fixture
def app(tmp_path: Path) -> tuple[GitRepo, dict[str, str]]:
    repo = GitRepo.init(tmp_path / "app")
    s: dict[str, str] = {}
    s["A"] = repo.commit("A", at="2024-05-01T09:00:00+00:00")
    s["B"] = repo.commit("B", at="2024-05-02T09:00:00+00:00")
    s["C"] = repo.commit("C", at="2024-05-03T09:00:00+00:00")
    s["T1"], s["T2"] = twin_commits(repo, at="2024-05-04T09:00:00+00:00")
    s["P"] = s["T1"][:PREFIX]
    s["U"] = unknown_prefix(repo)
    s["R7"] = repo.commit(revert_message(s["A"][:7]), at="2024-05-05T09:00:00+00:00")
    s["R12"] = repo.commit(revert_message(s["B"][:12]), at="2024-05-06T09:00:00+00:00")
    s["RA"] = repo.commit(revert_message(s["P"]), at="2024-05-07T09:00:00+00:00")
    s["RU"] = repo.commit(revert_message(s["U"]), at="2024-05-08T09:00:00+00:00")
    s["RF"] = repo.revert(s["C"], at="2024-05-09T09:00:00+00:00")
    return repo, s


def test_the_fixture_is_what_the_cases_need(app: tuple[GitRepo, dict[str, str]]) -> None:
    repo, s = app
    # git itself: the twins' prefix is ambiguous, the 7- and 12-digit prefixes are unique.
    assert s["T1"] != s["T2"] and s["T2"].startswith(s["P"])
    ambiguous = repo.git("rev-parse", "--verify", "--quiet", f"{s['P']}^{{commit}}", check=False)
    assert ambiguous == ""
    assert repo.rev_parse(s["A"][:7]) == s["A"]
    assert repo.rev_parse(s["B"][:12]) == s["B"]
    assert repo.git("rev-parse", f"--disambiguate={s['U']}") == ""
    # The message of a hand-written revert carries the prefix exactly as typed.
    assert repo.git("log", "-1", "--format=%b", s["R7"]) == f"This reverts commit {s['A'][:7]}."


def test_unique_prefixes_expand_and_others_stay_as_written(
    tmp_path: Path, app: tuple[GitRepo, dict[str, str]],
) -> None:
    repo, s = app
    db = tmp_path / "db.duckdb"
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    rows = reverts(db, "app")
    assert set(rows) == {s[k] for k in ("A", "B", "C", "T1", "T2", "R7", "R12", "RA", "RU", "RF")}
    # Unique prefixes, 7 and 12 hex digits: the full sha of the one commit that has it.
    assert rows[s["R7"]] == s["A"]
    assert rows[s["R12"]] == s["B"]
    # git revert's full sha is kept as is.
    assert rows[s["RF"]] == s["C"]
    # Ambiguous: two commits start with it, so it names neither; the text stays as written.
    assert rows[s["RA"]] == s["P"]
    # Unknown: no commit starts with it; stays as written.
    assert rows[s["RU"]] == s["U"]
    # Commits that revert nothing have no target.
    for name in ("A", "B", "C", "T1", "T2"):
        assert rows[s[name]] is None, name
    # Every stored target is either a full sha of this repository or an unresolved prefix that
    # equals no sha, so joins on commits.sha (the failure-signal views) can never pick a wrong commit.
    for sha, target in rows.items():
        if target is not None:
            assert (target in rows) == (len(target) == 40), (sha, target)


def test_a_prefix_resolves_against_commits_of_an_earlier_run_and_of_this_repository_only(
    tmp_path: Path, app: tuple[GitRepo, dict[str, str]],
) -> None:
    repo, s = app
    db = tmp_path / "db.duckdb"
    assert run_cli(db, "collect", "git", str(repo.path)).returncode == 0
    # Incremental run: the new revert abbreviates a commit that only the first run read.
    r_late = repo.commit(revert_message(s["R12"][:7]), at="2024-05-10T09:00:00+00:00")
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    assert "1 new commits (incremental; 11 in total)" in proc.stderr
    rows = reverts(db, "app")
    assert rows[r_late] == s["R12"]
    # The first run's unresolved prefixes are still unresolved, not re-guessed.
    assert rows[s["RA"]] == s["P"]
    assert rows[s["RU"]] == s["U"]
    # Another repository in the same store whose message abbreviates a commit of "app": a prefix
    # names a commit of its own repository only, so it stays as written there.
    other = GitRepo.init(tmp_path / "other")
    base = other.commit("base", at="2024-05-01T10:00:00+00:00")
    assert not base.startswith(s["A"][:7])
    foreign = other.commit(revert_message(s["A"][:7]), at="2024-05-02T10:00:00+00:00")
    proc = run_cli(db, "collect", "git", str(other.path))
    assert proc.returncode == 0, proc.stderr
    assert reverts(db, "other") == {base: None, foreign: s["A"][:7]}
    assert reverts(db, "app")[s["R7"]] == s["A"]

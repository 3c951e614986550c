"""A test repository's history written by one ``git fast-import`` process, commit for commit what
:class:`tests.gitrepo.GitRepo` writes with a git process per step.

A generated history of 200 commits, merges and tags cost some 600 git processes through
:class:`~tests.gitrepo.GitRepo` (``add`` and ``commit`` per commit, ``checkout``, ``merge``, ``tag``
and ``rev-parse`` per step: 2.5-3 CPU-s); here it is one stream, plus ``init`` and a final
``reset --hard`` for the working tree. The objects are the same: each ``commit`` adds the file
``change-<n>.txt`` holding the message (``n`` counts the commits of the repository, as GitRepo's
counter does), with GitRepo's author and committer (:data:`tests.gitrepo.AUTHOR`,
:data:`~tests.gitrepo.COMMITTER`), dates and time zones; a merge is ``git merge --no-ff -m``'s
commit (the first parent's tree plus the files of the merged branch); a cherry-pick is ``git
cherry-pick -x``'s (the original's author and files, the committer now, the ``(cherry picked from
commit ...)`` line); annotated tags carry the committer as tagger. So a generator moved from GitRepo
to this class writes the same shas (tests/test_crosscheck_revlist.py: every ref identical).

Only histories whose commits add new files (and whose reverts take them away again) can be written
this way, with no conflicts: that is all :meth:`GitRepo.commit` does without ``files``. Reflogs are
not written (fast-import keeps none): a test that found the commits of a deleted branch in the
reflog takes their shas from :meth:`HistoryStream.sha` instead.

Example::

    with HistoryStream(tmp_path / "app") as s:
        a = s.commit("a", at="2024-01-01T10:00:00+00:00")     # a mark, not a sha
        s.branch("feature")                                      # create + switch
        s.commit("b", at="2024-01-02T09:00:00+00:00", tz="+0200")
        s.checkout("main")
        s.merge("feature", at="2024-01-03T12:00:00+00:00")
        s.annotated_tag("v1.0.0", at="2024-01-04T08:00:00+00:00")
        sha = s.sha(a)
    repo = s.repo                                                # a GitRepo on the result
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from tests.gitrepo import AUTHOR, COMMITTER, GitRepo, When, clean_git_env, fast_import_command, git_date


@dataclass(frozen=True)
class _Commit:
    author: str                    # "Name <email> <epoch> <tz>"
    message: str                   # as stored, with its final newline
    files: dict[str, str]          # the whole tree: path -> content
    added: dict[str, str]          # what it added to its first parent's tree
    parents: tuple[int, ...]
    committed: int                 # committer date, seconds since the epoch


class HistoryStream:
    """A new repository (``main``, GitRepo's config) whose history is streamed to ``git fast-import``;
    a context manager. Methods take marks (from :meth:`commit`, :meth:`merge`, ...) or branch and
    tag names where GitRepo takes revisions."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.repo = GitRepo.init(Path(path), branch=branch)
        self.path = self.repo.path
        self.head = branch                 # the checked-out branch
        self._tips: dict[str, int] = {}    # branch -> mark of its tip
        self._tags: dict[str, int] = {}    # tag -> mark of its commit
        self._commits: dict[int, _Commit] = {}
        self._counter = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> HistoryStream:
        self._proc = subprocess.Popen(
            fast_import_command(self.path),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=clean_git_env())
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None and proc.stderr is not None
        if exc_type is None:
            for name, mark in self._tips.items():   # branches made and never committed to, too
                self._write(f"reset refs/heads/{name}\nfrom :{mark}\n\n")
            self._write("done\n")
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace")
        code = proc.wait()
        if exc_type is None:
            if code != 0:
                raise RuntimeError(f"git fast-import into {self.path} failed: {err.strip()}")
            self.repo.git("checkout", "-q", "-f", self.head)   # index and working tree, as GitRepo's

    # -- history ----------------------------------------------------------------------------
    def commit(self, message: str, at: When, *, tz: str | None = None, committed_at: When | None = None,
               committer_tz: str | None = None) -> int:
        """:meth:`GitRepo.commit` without ``files``: adds ``change-<n>.txt`` holding the message."""
        self._counter += 1
        added = {f"change-{self._counter}.txt": message + "\n"}
        committer = git_date(committed_at if committed_at is not None else at,
                             committer_tz if committer_tz is not None else tz)
        return self._write_commit(f"{_person(AUTHOR)} {git_date(at, tz)}",
                                  f"{_person(COMMITTER)} {committer}", message + "\n", added, self._parents())

    def merge(self, branch: str, at: When, *, message: str | None = None) -> int:
        """:meth:`GitRepo.merge`: a ``--no-ff`` merge of ``branch`` into the checked-out branch."""
        ours, theirs = self._tips[self.head], self._tips[branch]
        base = self._commits[ours].files
        added = {p: c for p, c in self._commits[theirs].files.items() if p not in base}
        date = git_date(at)
        return self._write_commit(f"{_person(AUTHOR)} {date}", f"{_person(COMMITTER)} {date}",
                                  (message or f"Merge branch '{branch}'") + "\n", added, (ours, theirs))

    def cherry_pick(self, mark: int, at: When, *, tz: str | None = None) -> int:
        """:meth:`GitRepo.cherry_pick` (``-x``) of a commit that added files."""
        picked = self._commits[mark]
        message = f"{picked.message}\n(cherry picked from commit {self.sha(mark)})\n"
        return self._write_commit(picked.author, f"{_person(COMMITTER)} {git_date(at, tz)}", message,
                                  dict(picked.added), self._parents())

    def revert(self, mark: int, at: When, *, tz: str | None = None) -> int:
        """:meth:`GitRepo.revert` (``git revert --no-edit``) of a commit that added files: they go."""
        reverted = self._commits[mark]
        subject = reverted.message.split("\n", 1)[0]
        message = f'Revert "{subject}"\n\nThis reverts commit {self.sha(mark)}.\n'
        date = git_date(at, tz)
        return self._write_commit(f"{_person(AUTHOR)} {date}", f"{_person(COMMITTER)} {date}", message, {},
                                  self._parents(), removed=tuple(reverted.added))

    def last_non_merge(self) -> int:
        """``git log -1 --no-merges HEAD``: the newest commit by committer date (then by the order of
        ``git log``'s walk, first parents first) that is not a merge, among those reachable from HEAD."""
        seen: set[int] = set()
        todo, found = [self._tips[self.head]], []
        while todo:
            mark = todo.pop(0)
            if mark in seen:
                continue
            seen.add(mark)
            commit = self._commits[mark]
            if len(commit.parents) < 2:
                found.append(mark)
            todo += commit.parents
        return max(found, key=lambda m: self._commits[m].committed)   # the first of equals: walk order

    def branch(self, name: str, start: str | None = None, *, switch: bool = True) -> None:
        """A branch at ``start`` (a branch or tag name; HEAD when None), checked out unless told not to."""
        self._tips[name] = self._resolve(start if start is not None else self.head)
        if switch:
            self.head = name

    def checkout(self, name: str) -> None:
        self.head = name

    def delete_branch(self, name: str) -> None:
        """``git branch -D``: the ref goes, its commits stay in the repository, unreachable (with no
        reflog naming them: :meth:`sha` tells a test their shas)."""
        assert name != self.head, "git refuses to delete the checked-out branch"
        del self._tips[name]
        self._write(f"reset refs/heads/{name}\nfrom {'0' * 40}\n\n")

    # -- tags -------------------------------------------------------------------------------
    def tag(self, name: str) -> int:
        """A lightweight tag on HEAD; returns its commit's mark."""
        mark = self._tags[name] = self._tips[self.head]
        self._write(f"reset refs/tags/{name}\nfrom :{mark}\n\n")
        return mark

    def annotated_tag(self, name: str, at: When, *, message: str | None = None, tz: str | None = None) -> int:
        """An annotated tag on HEAD, tagged by the committer at ``at``; returns its commit's mark."""
        mark = self._tags[name] = self._tips[self.head]
        self._write(f"tag {name}\nfrom :{mark}\ntagger {_person(COMMITTER)} {git_date(at, tz)}\n")
        self._data((message or f"release {name}") + "\n")
        return mark

    def sha(self, mark: int) -> str:
        """The sha of a commit written so far."""
        assert self._proc is not None and self._proc.stdin is not None and self._proc.stdout is not None
        self._write(f"get-mark :{mark}\n")
        self._proc.stdin.flush()
        answer = self._proc.stdout.readline().decode().strip()
        if len(answer) != 40:
            raise RuntimeError(f"git fast-import in {self.path} gave no sha for mark {mark}")
        return answer

    # -- stream -----------------------------------------------------------------------------
    def _parents(self) -> tuple[int, ...]:
        tip = self._tips.get(self.head)
        return () if tip is None else (tip,)

    def _resolve(self, name: str) -> int:
        return self._tips[name] if name in self._tips else self._tags[name]

    def _write_commit(self, author: str, committer: str, message: str, added: dict[str, str],
                      parents: tuple[int, ...], *, removed: tuple[str, ...] = ()) -> int:
        mark = len(self._commits) + 1
        files = {**(self._commits[parents[0]].files if parents else {}), **added}
        for path in removed:
            files.pop(path, None)
        committed = int(committer.rsplit(" ", 2)[1])
        self._commits[mark] = _Commit(author, message, files, added, parents, committed)
        self._write(f"commit refs/heads/{self.head}\nmark :{mark}\nauthor {author}\ncommitter {committer}\n")
        self._data(message)
        for i, parent in enumerate(parents):
            self._write(f"{'from' if i == 0 else 'merge'} :{parent}\n")
        for path in sorted(removed):
            self._write(f"D {path}\n")
        for path, content in sorted(added.items()):
            self._write(f"M 100644 inline {path}\n")
            self._data(content)
        self._write("\n")
        self._tips[self.head] = mark
        return mark

    def _stdin(self) -> IO[bytes]:
        assert self._proc is not None and self._proc.stdin is not None
        return self._proc.stdin

    def _write(self, text: str) -> None:
        self._stdin().write(text.encode())

    def _data(self, text: str) -> None:
        raw = text.encode()
        self._stdin().write(b"data %d\n" % len(raw) + raw + b"\n")


def _person(who: tuple[str, str]) -> str:
    return f"{who[0]} <{who[1]}>"

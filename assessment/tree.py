"""Reading a repository's files from a working tree or from any git revision without a checkout.

A revision is read with one ``git ls-tree -r`` and one ``git cat-file --batch`` process, so an old
commit costs two process starts however many files it holds, and history assessment never
disturbs the user's working tree. Each file carries a content key (the blob id, or size+mtime
for working-tree files) so per-file scan results can be reused across revisions.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from analytics.errors import SourceError

MAX_FILE_BYTES = 5 * 1024 * 1024  # larger files are generated artefacts, not declarations
_SKIP_DIRS = {".git", "node_modules", ".venv", "venv", "__pycache__", ".terraform", "vendor"}
_URL = re.compile(r"^(https?|ssh|git|file)://|^[\w.-]+@[\w.-]+:")


@dataclass(frozen=True)
class TreeEntry:
    path: str  # POSIX path relative to the repository root
    key: str  # content identity: blob sha, or size/mtime for working-tree files
    size: int


def git(repo: Path, *args: str, input_bytes: bytes | None = None) -> bytes:
    """Run git in ``repo``; any failure becomes one SourceError line naming the repository."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(repo), *args],
            input=input_bytes,
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
        )
    except FileNotFoundError:
        raise SourceError("git is not installed or not on PATH") from None
    if proc.returncode != 0:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise SourceError(
            f"{repo}: git {args[0]} failed: {msg[-1] if msg else 'exit ' + str(proc.returncode)}"
        )
    return proc.stdout


def is_url(spec: str) -> bool:
    return bool(_URL.match(spec))


def redact(text: str) -> str:
    """A URL (or git's message about it) with its credentials masked (``user:***@``), by the rules
    of :mod:`analytics.redaction`: specs are echoed in errors and stored in the DB."""
    from analytics.redaction import redact as _redact

    return _redact(text)


def git_dir_of(path: Path) -> Path | None:
    """The repository containing ``path`` (work tree or bare), or None when it is not in git."""
    try:
        proc = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--absolute-git-dir"], capture_output=True, check=False
        )
    except FileNotFoundError:
        return None
    return Path(proc.stdout.decode().strip()) if proc.returncode == 0 else None


class Tree:
    """A set of files at one state of a repository."""

    label: str
    revision: str | None  # commit sha, or None for a directory outside git
    skipped: list[str]  # "path: reason" for files left out on purpose (e.g. symlinks out of the root)

    def entries(self) -> list[TreeEntry]:
        raise NotImplementedError

    def read(self, entries: Sequence[TreeEntry]) -> Iterator[tuple[TreeEntry, bytes]]:
        raise NotImplementedError


@dataclass
class RevisionTree(Tree):
    """The files of one commit, read from the object store (no checkout)."""

    repo: Path
    label: str
    revision: str | None
    _entries: list[TreeEntry] | None = field(default=None, repr=False)
    skipped: list[str] = field(default_factory=list)

    def _too_large(self, entry: TreeEntry) -> bool:
        """Note a file past MAX_FILE_BYTES as skipped (a vendored CRD bundle must not leave the
        evidence without a word); always False, for use in a filter."""
        note_too_large(self.skipped, entry.path)
        return False

    def entries(self) -> list[TreeEntry]:
        if self._entries is None:
            out = git(self.repo, "ls-tree", "-r", "-z", "--long", "--full-tree", str(self.revision))
            found = []
            for record in out.split(b"\0"):
                if not record:
                    continue
                meta, _, path = record.partition(b"\t")
                parts = meta.split()
                if len(parts) < 4 or parts[1] != b"blob":  # submodules are commits, not files
                    continue
                size = int(parts[3]) if parts[3].isdigit() else 0
                found.append(TreeEntry(path.decode("utf-8", "replace"), parts[2].decode(), size))
            self._entries = found
        return self._entries

    def read(self, entries: Sequence[TreeEntry]) -> Iterator[tuple[TreeEntry, bytes]]:
        wanted = [e for e in entries if e.size <= MAX_FILE_BYTES or self._too_large(e)]
        unique = list(dict.fromkeys(e.key for e in wanted))
        blobs = dict(cat_file_batch(self.repo, unique))
        for entry in wanted:
            data = blobs.get(entry.key)
            if data is not None:
                yield entry, data


def note_too_large(skipped: list[str], path: str) -> None:
    reason = f"{path}: larger than {MAX_FILE_BYTES // (1024 * 1024)} MB, not scanned"
    if reason not in skipped:
        skipped.append(reason)


def cat_file_batch(repo: Path, shas: Sequence[str]) -> Iterator[tuple[str, bytes]]:
    """Stream blobs through one ``git cat-file --batch``; a writer thread avoids a pipe deadlock."""
    if not shas:
        return
    proc = subprocess.Popen(
        ["git", "-C", str(repo), "cat-file", "--batch"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    assert proc.stdin is not None and proc.stdout is not None

    def feed() -> None:
        try:
            assert proc.stdin is not None
            proc.stdin.write("".join(f"{s}\n" for s in shas).encode())
            proc.stdin.close()
        except BrokenPipeError:
            pass

    writer = threading.Thread(target=feed, daemon=True)
    writer.start()
    out = proc.stdout
    try:
        for _ in shas:
            header = out.readline()
            if not header:
                break
            parts = header.split()
            if len(parts) < 3 or parts[1] == b"missing":
                continue
            size = int(parts[2])
            data = out.read(size)
            out.read(1)  # the newline after each object
            yield parts[0].decode(), data
    finally:
        out.close()
        writer.join()
        proc.wait()


@dataclass
class WorkingTree(Tree):
    """A directory on disk; inside git, the tracked and untracked-but-not-ignored files.

    Nothing outside the root is ever read: a symlink (of a file, or of a folder on the way to it)
    that resolves outside the root is skipped and reported in ``skipped``, so assessing an
    untrusted checkout cannot read ``/etc``, a home folder or another repository.
    """

    root: Path
    label: str
    revision: str | None
    in_git: bool
    skipped: list[str] = field(default_factory=list)

    def entries(self) -> list[TreeEntry]:
        if self.in_git:
            out = git(self.root, "ls-files", "-z", "-c", "-o", "--exclude-standard")
            rels = list(dict.fromkeys(p.decode("utf-8", "replace") for p in out.split(b"\0") if p))
        else:
            rels = []
            for dirpath, dirnames, filenames in os.walk(self.root):  # never descends into symlinks
                base = Path(dirpath).relative_to(self.root)
                for d in sorted(dirnames):
                    if (Path(dirpath) / d).is_symlink() and self._outside(base / d):
                        self._skip((base / d).as_posix())
                dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS)
                rels.extend((base / f).as_posix() for f in sorted(filenames))
        found = []
        for rel in rels:
            if self._outside(Path(rel)):
                self._skip(rel)
                continue
            try:
                st = (self.root / rel).stat()
            except OSError:  # tracked but deleted in the working tree, or a dangling link inside
                continue
            if not stat.S_ISREG(st.st_mode):
                continue  # a symlink to a folder inside the root: its files are listed themselves
            found.append(TreeEntry(rel, f"wt:{st.st_size}:{st.st_mtime_ns}:{rel}", st.st_size))
        return found

    def _real_root(self) -> Path:
        return Path(os.path.realpath(self.root))

    def _outside(self, rel: Path) -> bool:
        """Whether ``root/rel``, with every symlink on the way resolved, lies outside the root."""
        real = Path(os.path.realpath(self.root / rel))
        root = self._real_root()
        return real != root and root not in real.parents

    def _skip(self, rel: str) -> None:
        reason = f"{rel}: symbolic link to outside the repository, not followed"
        if reason not in self.skipped:
            self.skipped.append(reason)

    def read(self, entries: Sequence[TreeEntry]) -> Iterator[tuple[TreeEntry, bytes]]:
        for entry in entries:
            if entry.size > MAX_FILE_BYTES:
                note_too_large(self.skipped, entry.path)
                continue
            if self._outside(Path(entry.path)):  # replaced by a link since it was listed
                self._skip(entry.path)
                continue
            try:
                with open(os.path.realpath(self.root / entry.path), "rb") as fh:
                    data = fh.read(MAX_FILE_BYTES + 1)
            except OSError:
                continue
            if len(data) <= MAX_FILE_BYTES:
                yield entry, data
            else:  # grew since it was listed
                note_too_large(self.skipped, entry.path)


@dataclass
class Commit:
    sha: str
    committed_at: datetime


@dataclass
class Source:
    """One PATH_OR_URL argument: where its objects live and how to name it in evidence."""

    spec: str
    label: str
    git_dir: Path | None  # None for a plain directory
    worktree: Path | None  # None for bare repositories and clones of URLs
    versioned: bool = False  # in git with a commit (true also for a subdirectory of a repository)
    repository_root: Path | None = None  # for a subdirectory of a repository: the repository's root
    _cleanup: Callable[[], None] | None = field(default=None, repr=False)

    def tree(self, at: str | None = None) -> Tree:
        """The working tree when no revision is asked for and one exists, otherwise a commit."""
        if at is None and self.worktree is not None:
            head = self.resolve("HEAD", required=False) if self.git_dir else None
            return WorkingTree(
                root=self.worktree, label=self.label, revision=head, in_git=self.git_dir is not None
            )
        if self.git_dir is None:
            raise SourceError(f"{self.spec}: not a git repository, so --at/--history cannot be used")
        sha = self.resolve(at or "HEAD")
        return RevisionTree(repo=self.git_dir, label=self.label, revision=sha)

    def resolve(self, rev: str, required: bool = True) -> str | None:
        if self.git_dir is None:
            if self.repository_root is not None:
                raise SourceError(f"{self.spec}: a folder inside the repository at {self.repository_root}; "
                                  "pass the repository itself to assess a revision")
            raise SourceError(f"{self.spec}: not a git repository, so a revision cannot be assessed")
        proc = subprocess.run(
            ["git", "--git-dir", str(self.git_dir), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            if required:
                raise SourceError(f"{self.spec}: revision {rev!r} not found")
            return None
        return proc.stdout.decode().strip()

    def commit_time(self, sha: str) -> datetime:
        assert self.git_dir is not None
        out = git(self.git_dir, "log", "-1", "--format=%ct", sha).decode().strip()
        return datetime.fromtimestamp(int(out), UTC)

    def commits(self, rev: str = "HEAD") -> list[Commit]:
        """First-parent history of ``rev``, oldest first: the states the main line actually had."""
        if self.git_dir is None:
            raise SourceError(f"{self.spec}: not a git repository, so --history cannot be used")
        sha = self.resolve(rev)
        out = git(self.git_dir, "log", "--first-parent", "--format=%H %ct", str(sha))
        commits = []
        for line in out.decode().splitlines():
            h, _, ts = line.partition(" ")
            commits.append(Commit(h, datetime.fromtimestamp(int(ts), UTC)))
        commits.reverse()
        return commits

    def close(self) -> None:
        if self._cleanup is not None:
            self._cleanup()
            self._cleanup = None


def _label_for(spec: str) -> str:
    name = spec.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
    return name[:-4] if name.endswith(".git") else name or spec


def open_source(spec: str) -> Source:
    """A local path (work tree, bare repo or plain directory) or a URL, cloned bare to a temp dir."""
    if is_url(spec):
        shown = redact(spec)
        tmp = tempfile.mkdtemp(prefix="gitops-dora-assess-")
        target = Path(tmp) / "repo.git"
        from analytics.collectors.git_source import hidden_credentials

        without_userinfo, credentials = hidden_credentials(spec)  # not on git's command line
        proc = subprocess.run(
            ["git", "clone", "--bare", "--quiet", without_userinfo, str(target)],
            capture_output=True,
            check=False,
            env={**os.environ, "GIT_TERMINAL_PROMPT": "0", **credentials},
        )
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            lines = proc.stderr.decode(errors="replace").strip().splitlines()
            reason = redact(lines[-1]).replace(spec, shown) if lines else "git clone failed"
            raise SourceError(f"{shown}: cannot clone: {reason}")
        return Source(
            spec=shown,
            label=_label_for(shown),
            git_dir=target,
            worktree=None,
            versioned=True,
            _cleanup=lambda: shutil.rmtree(tmp, ignore_errors=True),
        )
    path = Path(spec).expanduser()
    if not path.exists():
        raise SourceError(f"{spec}: no such directory")
    if not path.is_dir():
        raise SourceError(f"{spec}: not a directory (pass a repository, a folder of manifests or a URL)")
    path = path.resolve()
    gdir = git_dir_of(path)
    if gdir is None:
        return Source(spec=spec, label=path.name, git_dir=None, worktree=path)
    bare, in_git_dir = (
        subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--is-bare-repository", "--is-inside-git-dir"],
            capture_output=True, check=False,
        )
        .stdout.decode()
        .split()
        + ["false", "false"]
    )[:2]
    if bare == "true":
        return Source(spec=spec, label=_label_for(str(path)), git_dir=gdir, worktree=None, versioned=True)
    if in_git_dir == "true":
        # a work tree's .git folder: its commits, as a bare repository's (a folder inside it is no source)
        if path != Path(gdir).resolve():
            raise SourceError(f"{spec}: a folder inside a repository's .git folder, not a source to assess")
        return Source(spec=spec, label=path.parent.name, git_dir=gdir, worktree=None,
                      versioned=has_commits(gdir))
    top = Path(git(path, "rev-parse", "--show-toplevel").decode().strip())
    if top != path:
        # A subdirectory of a bigger repository: assess just that directory's files.
        return Source(spec=spec, label=path.name, git_dir=None, worktree=path, versioned=has_commits(gdir),
                      repository_root=top)
    return Source(spec=spec, label=path.name, git_dir=gdir, worktree=path, versioned=has_commits(gdir))


def has_commits(git_dir: Path | str) -> bool:
    """Whether the repository has a commit at HEAD: in one that has none (``git init`` and no
    commit yet) nothing is versioned, whatever its folder holds."""
    args = ["git", "--git-dir", str(git_dir), "rev-parse", "--verify", "--quiet", "HEAD^{commit}"]
    return subprocess.run(args, capture_output=True, check=False).returncode == 0

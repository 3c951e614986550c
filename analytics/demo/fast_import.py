"""Writing a git history in one ``git fast-import`` stream.

The demo writes several hundred commits per repository; one fast-import process per repository
does that in well under a second where a ``git commit`` per change would take many seconds. The
history is fully determined by the names, dates and file contents given, so the shas are the same
on every run and every machine.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from analytics.errors import UserError


@dataclass(frozen=True)
class Person:
    name: str
    email: str
    tz: str  # git offset, e.g. "+0200"

    def stamp(self, epoch: int) -> str:
        return f"{self.name} <{self.email}> {epoch} {self.tz}"


def git_env() -> dict[str, str]:
    """No user or system git config may change what is written."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(GIT_CONFIG_NOSYSTEM="1", GIT_CONFIG_GLOBAL=os.devnull, GIT_TERMINAL_PROMPT="0", LC_ALL="C")
    return env


def run_git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, env=git_env())
    if proc.returncode != 0:
        raise UserError(f"demo: git {' '.join(args)} in {repo} failed: {proc.stderr.strip()}")
    return proc.stdout.strip()


class FastImport:
    """A running ``git fast-import`` into a new repository; use as a context manager."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = Path(path)
        self.branch = branch
        self._mark = 0
        self._proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> FastImport:
        self.path.mkdir(parents=True, exist_ok=True)
        subprocess.run(["git", "init", "-q", "-b", self.branch, str(self.path)], check=True,
                       capture_output=True, env=git_env())
        self._proc = subprocess.Popen(
            ["git", "-C", str(self.path), "fast-import", "--quiet", "--done"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=git_env(),
        )
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        if exc_type is None:
            self._write(b"done\n")
        proc.stdin.close()
        err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
        code = proc.wait()
        if exc_type is None and code != 0:
            raise UserError(f"demo: git fast-import into {self.path} failed: {err.strip()}")
        if exc_type is None:
            run_git(self.path, "reset", "-q", "--hard")  # a working tree, like a real clone

    # -- stream -------------------------------------------------------------------------------
    def _stdin(self) -> IO[bytes]:
        assert self._proc is not None and self._proc.stdin is not None
        return self._proc.stdin

    def _write(self, data: bytes) -> None:
        self._stdin().write(data)

    def _data(self, text: str) -> None:
        raw = text.encode()
        self._write(b"data %d\n" % len(raw) + raw + b"\n")

    def commit(
        self,
        ref: str,
        message: str,
        *,
        author: Person,
        authored_at: int,
        committer: Person | None = None,
        committed_at: int | None = None,
        parent: int | None = None,
        merge: int | None = None,
        files: Mapping[str, str | None] | None = None,
    ) -> int:
        """Write one commit on ``ref``; files map path -> content (None deletes). Returns its mark."""
        self._mark += 1
        lines = [
            f"commit {ref}",
            f"mark :{self._mark}",
            f"author {author.stamp(authored_at)}",
            f"committer {(committer or author).stamp(committed_at or authored_at)}",
        ]
        self._write(("\n".join(lines) + "\n").encode())
        self._data(message)
        if parent is not None:
            self._write(f"from :{parent}\n".encode())
        if merge is not None:
            self._write(f"merge :{merge}\n".encode())
        for path, content in sorted((files or {}).items()):
            if content is None:
                self._write(f"D {path}\n".encode())
            else:
                self._write(f"M 100644 inline {path}\n".encode())
                self._data(content)
        self._write(b"\n")
        return self._mark

    def annotated_tag(self, name: str, mark: int, *, tagger: Person, at: int, message: str) -> None:
        self._write(f"tag {name}\nfrom :{mark}\ntagger {tagger.stamp(at)}\n".encode())
        self._data(message)

    def sha(self, mark: int) -> str:
        """The commit id of a mark written so far (fast-import answers on its stdout)."""
        assert self._proc is not None and self._proc.stdout is not None
        self._write(f"get-mark :{mark}\n".encode())
        self._stdin().flush()
        answer = self._proc.stdout.readline().decode().strip()
        if len(answer) != 40:
            raise UserError(f"demo: git fast-import in {self.path} gave no id for mark {mark}")
        return answer

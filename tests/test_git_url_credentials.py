"""A repository URL with credentials (``https://user:TOKEN@host/repo.git``) given to ``collect git``
or ``assess``: the git processes gitops-dora starts never carry the credentials on their command
line, which every user of the machine can read (``ps``, ``/proc/PID/cmdline``) while a clone or
fetch runs. They reach git through the environment (``url.<as given>.insteadOf``), readable only by
the user's own processes.

A real git server on 127.0.0.1: git's "dumb" HTTP protocol (the bare repository's files, after
``git update-server-info``) behind HTTP Basic authentication, so a clone without the credentials
fails. Every git process is started through a wrapper on PATH that records its arguments.
"""

from __future__ import annotations

import base64
import os
import shutil
import stat
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from analytics.collectors.git_source import hidden_credentials
from tests import cli_inprocess
from tests.child_env import child_env
from tests.gitrepo import GitRepo, clean_git_env

USER, PASSWORD = "bob", "Pw9-kq7x4Lm2Zz"
BASIC = base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()


@pytest.mark.parametrize(("url", "bare"), [
    ("https://bob:s3cret@host:8443/o/r.git", "https://host:8443/o/r.git"),
    ("https://bob:p@ss@host/o/r.git", "https://host/o/r.git"),        # the last @ ends the userinfo
    ("https://ghp_TOKEN@github.com/o/r.git", "https://github.com/o/r.git"),
    ("ssh://git@host/o/r.git", "ssh://host/o/r.git"),
])
def test_the_userinfo_moves_from_the_url_to_the_environment(
        monkeypatch: pytest.MonkeyPatch, url: str, bare: str) -> None:
    monkeypatch.delenv("GIT_CONFIG_COUNT", raising=False)
    shown, env = hidden_credentials(url)
    assert shown == bare
    assert env == {"GIT_CONFIG_COUNT": "1", "GIT_CONFIG_KEY_0": f"url.{url}.insteadOf",
                   "GIT_CONFIG_VALUE_0": bare}
    # entries the environment already holds are kept: ours comes after them
    monkeypatch.setenv("GIT_CONFIG_COUNT", "2")
    assert hidden_credentials(url)[1] == {"GIT_CONFIG_COUNT": "3", "GIT_CONFIG_KEY_2": f"url.{url}.insteadOf",
                                          "GIT_CONFIG_VALUE_2": bare}


@pytest.mark.parametrize("url", ["https://host/o/r.git", "git@host:o/r.git", "/src/r.git", "file:///src/r.git"])
def test_a_url_without_userinfo_is_left_as_it_is(url: str) -> None:
    assert hidden_credentials(url) == (url, {})


class _AuthFiles(SimpleHTTPRequestHandler):
    """The served folder's files, to requests with the right Basic credentials only."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        if self.headers.get("Authorization") != f"Basic {BASIC}":
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="git"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        super().do_GET()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture()
def served(tmp_path: Path) -> Iterator[tuple[GitRepo, Path, str]]:
    """A work repository, the bare copy the server serves, and the URL with the credentials."""
    work = GitRepo.init(tmp_path / "work" / "app")
    for day in (1, 2, 3):
        work.commit(f"change {day}", at=f"2026-03-0{day}T10:00:00+00:00")
    root = tmp_path / "served"
    root.mkdir()
    served_repo = root / "app.git"
    work.git("clone", "--quiet", "--bare", str(work.path), str(served_repo))
    GitRepo(served_repo).git("update-server-info")
    handler = type("Handler", (_AuthFiles,), {})

    def make(*args: Any) -> _AuthFiles:
        return handler(*args, directory=str(root))

    server = ThreadingHTTPServer(("127.0.0.1", 0), make)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield work, served_repo, f"http://{USER}:{PASSWORD}@127.0.0.1:{server.server_address[1]}/app.git"
    finally:
        server.shutdown()
        server.server_close()


def _recording_git(folder: Path) -> Path:
    """A ``git`` on PATH that appends its arguments (NUL-separated, one call a line) to a log and
    runs the real git."""
    real = shutil.which("git")
    assert real is not None
    folder.mkdir()
    log = folder / "calls.log"
    script = folder / "git"
    script.write_text(f"#!/bin/sh\nprintf '%s\\0' \"$@\" >> '{log}'\nprintf '\\n' >> '{log}'\n"
                      f"exec '{real}' \"$@\"\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    return log


def test_collect_and_assess_pass_no_credential_on_any_git_command_line(
        tmp_path: Path, served: tuple[GitRepo, Path, str]) -> None:
    work, served_repo, url = served
    log = _recording_git(tmp_path / "bin")
    env = child_env()
    env["PATH"] = f"{log.parent}{os.pathsep}{env['PATH']}"
    env["GITOPS_DORA_CACHE"] = str(tmp_path / "cache")
    db = tmp_path / "s.ducklake"

    first = cli_inprocess.run(["--db", str(db), "collect", "git", url], env=env, cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    assert "3 new commits" in first.stderr
    # a new commit on the server: the second run fetches into the cached clone
    work.commit("change 4", at="2026-03-04T10:00:00+00:00")
    work.git("push", "--quiet", str(served_repo), "main", env=clean_git_env())
    GitRepo(served_repo).git("update-server-info")
    second = cli_inprocess.run(["--db", str(db), "collect", "git", url], env=env, cwd=tmp_path)
    assert second.returncode == 0, second.stderr
    assert "1 new commits" in second.stderr
    assessed = cli_inprocess.run(["--db", str(db), "assess", url, "--format", "json"], env=env, cwd=tmp_path)
    assert assessed.returncode == 0, assessed.stderr

    calls = [line.split("\0") for line in log.read_text().splitlines() if line]
    assert any("clone" in c for c in calls) and any("fetch" in c for c in calls)
    clones = [c for c in calls if "clone" in c]
    assert len(clones) == 2  # collect git's cache and assess's own
    for call in calls:
        joined = " ".join(call)
        assert PASSWORD not in joined and BASIC not in joined and f"{USER}:" not in joined, call
    # the URL git was given is the server's, without the userinfo
    assert all(f"http://127.0.0.1:{url.rsplit(':', 1)[1].split('/')[0]}/app.git" in c for c in clones)
    # and the credentials are not written into the cached clone's config either
    for config in (tmp_path / "cache").rglob("config"):
        assert PASSWORD not in config.read_text()
    for proc in (first, second, assessed):
        assert PASSWORD not in proc.stdout + proc.stderr


def test_without_the_credentials_the_server_refuses_the_clone(
        tmp_path: Path, served: tuple[GitRepo, Path, str]) -> None:
    """The server really checks them: the URL without the userinfo cannot be collected."""
    _, _, url = served
    env = {**child_env(), "GITOPS_DORA_CACHE": str(tmp_path / "cache")}
    proc = cli_inprocess.run(["--db", str(tmp_path / "s.ducklake"), "collect", "git",
                              url.replace(f"{USER}:{PASSWORD}@", "")], env=env, cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.startswith("error: cannot clone http://127.0.0.1:"), proc.stderr

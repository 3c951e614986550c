"""Concurrent first ``collect git URL`` runs sharing one clone cache (a user trial; Kubernetes pods
on a ReadWriteMany cache): each run clones into a temporary folder beside the cache entry and
renames it into place. The losers of that rename failed with "Directory not empty" and left their
partial clones; in separate PID namespaces the temporary names (``.partial-<pid>``) were the same,
and one run's clean-up deleted the other's clone while it was being made.

Real ``gitops-dora`` processes, a real repository (tests/gitrepo.py) served as a ``file://`` URL,
real git. A ``git`` wrapper first on PATH holds each ``git clone`` until every run has started
its clone, so the runs meet in the cache every time instead of by luck of scheduling; every
other git command goes straight to git.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from tests.gitrepo import GitRepo

CLI = str(Path(sys.executable).parent / "gitops-dora")
RUNS = 3

# Holds `git clone` until RUNS clones have started (a file each in $BARRIER; mktemp, since the
# wrappers of runs in different PID namespaces can have the same pid). Gives up waiting after
# about 60 s so that a broken run cannot hang the test; the test then fails on its own asserts.
WRAPPER = """#!/bin/sh
if [ "$1" = "clone" ]; then
    mktemp "$BARRIER/started.XXXXXXXX" >/dev/null
    i=0
    while [ "$(ls "$BARRIER" | wc -l)" -lt {runs} ] && [ $i -lt 1200 ]; do sleep 0.05; i=$((i + 1)); done
fi
exec {git} "$@"
"""


@pytest.fixture
def source(tmp_path: Path) -> GitRepo:
    repo = GitRepo.init(tmp_path / "origin")
    for day in range(1, 6):
        repo.commit(f"change {day}", at=f"2026-03-0{day}T10:00:00+00:00")
    repo.tag("v1.0.0")
    return repo


def _env(tmp_path: Path) -> dict[str, str]:
    git = shutil.which("git")
    assert git
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "git"
    wrapper.write_text(WRAPPER.format(runs=RUNS, git=git))
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    (tmp_path / "barrier").mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env.update(PATH=f"{bin_dir}{os.pathsep}{env.get('PATH', '')}", BARRIER=str(tmp_path / "barrier"),
               GITOPS_DORA_CACHE=str(tmp_path / "cache"), GITOPS_DORA_DUCKDB_THREADS="1")
    return env


def _collect_at_once(
        tmp_path: Path, source: GitRepo, prefix: list[str]) -> list[subprocess.CompletedProcess[str]]:
    env = _env(tmp_path)
    url = (tmp_path / "origin").resolve().as_uri()
    procs = [subprocess.Popen([*prefix, CLI, "--db", str(tmp_path / f"c{i}.ducklake"), "collect", "git", url,
                               "--service", "s", "--deploy-tags", "^v"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                              cwd=tmp_path)
             for i in range(RUNS)]
    done = []
    for proc in procs:
        out, err = proc.communicate(timeout=300)  # a guard against a hang, not a speed check
        done.append(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
    return done


def _check(tmp_path: Path, source: GitRepo, done: list[subprocess.CompletedProcess[str]]) -> None:
    assert len(list((tmp_path / "barrier").iterdir())) == RUNS       # every run cloned: they met
    for proc in done:
        assert proc.returncode == 0, proc.stderr
        assert "5 new commits" in proc.stderr, proc.stderr
    entries = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert len(entries) == 1 and entries[0].endswith(".git"), entries   # no partial clone left
    clone = tmp_path / "cache" / entries[0]
    head = subprocess.run(["git", "--git-dir", str(clone), "rev-parse", "refs/tags/v1.0.0^{commit}"],
                          capture_output=True, text=True, check=True).stdout.strip()
    assert head == source.rev_parse("v1.0.0")
    for i in range(RUNS):  # each store holds the history, from the one clone
        store = str(tmp_path / f"c{i}.ducklake")
        proc = subprocess.run([CLI, "--db", store, "deployments", "--format", "csv"],
                              capture_output=True, text=True, env=_env_plain(tmp_path))
        assert proc.returncode == 0 and len(proc.stdout.splitlines()) == 2, proc.stderr


def _env_plain(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["GITOPS_DORA_CACHE"] = str(tmp_path / "cache")
    return env


def test_concurrent_first_clones_share_the_cache_and_all_succeed(tmp_path: Path, source: GitRepo) -> None:
    _check(tmp_path, source, _collect_at_once(tmp_path, source, []))


def _pid_namespaces() -> list[str] | None:
    """``unshare`` arguments that start a process in a PID namespace of its own, or None."""
    if not shutil.which("unshare"):
        return None
    for prefix in (["unshare", "--pid", "--fork"],
                   ["unshare", "--user", "--map-root-user", "--pid", "--fork"]):
        probe = subprocess.run([*prefix, "sh", "-c", "echo $$"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip() == "1":
            return prefix
    return None


def test_runs_in_separate_pid_namespaces_do_not_share_a_temporary_clone(
        tmp_path: Path, source: GitRepo) -> None:
    """Each run is pid 1 of its own PID namespace (as in its own pod), so a pid-named temporary
    folder is the same for all of them."""
    prefix = _pid_namespaces()
    if prefix is None:
        pytest.skip("unshare cannot create a PID namespace here")
    _check(tmp_path, source, _collect_at_once(tmp_path, source, prefix))

"""The store under a second writer, a killed run, and bad config, driven through the real CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import duckdb

from analytics.config import load_config
from tests.gitrepo import GitRepo
from tests.store_query import query
from tests.test_git_collector import CLI, SEMVER, _table_dump, run_cli

PAUSE = "GITOPS_DORA_PAUSE_BEFORE_COMMIT"


def _repo(path: Path, commits: int, start_day: int = 1) -> GitRepo:
    repo = GitRepo.init(path)
    for i in range(commits):
        repo.commit(f"c{i}", at=f"2024-04-{start_day + i:02d}T09:00:00+00:00")
        repo.tag(f"v1.{start_day + i}.0")
    return repo


def _start_paused(db: Path, repo: GitRepo, seconds: float) -> subprocess.Popen[str]:
    """Start `collect git` that sleeps just before COMMIT; returns once it is in that window."""
    env = {**os.environ, PAUSE: str(seconds)}
    proc = subprocess.Popen([CLI, "--db", str(db), "collect", "git", str(repo.path), "--deploy-tags", SEMVER],
                            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env)
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        if line.startswith("pausing"):
            return proc
        assert time.monotonic() < deadline, "the writer never reached its commit"
    raise AssertionError(f"writer exited before pausing (rc={proc.wait()})")


def _integrity(db: Path) -> None:
    """The file opens read-write, every table scans in full, and a checkpoint succeeds."""
    con = duckdb.connect(str(db))
    try:
        for (table,) in con.execute("SELECT table_name FROM duckdb_tables()").fetchall():
            con.execute(f'SELECT hash(list(t ORDER BY ALL)) FROM "{table}" AS t').fetchall()
        con.execute("CHECKPOINT")
        row = con.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert row is not None and row[0] >= 1
    finally:
        con.close()


def test_second_writer_gets_a_clear_message(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    first_repo = _repo(tmp_path / "alpha", 3)
    second_repo = _repo(tmp_path / "beta", 2)
    first = _start_paused(db, first_repo, 6)
    try:
        started = time.monotonic()
        proc = run_cli(db, "collect", "git", str(second_repo.path))
        assert time.monotonic() - started < 5  # it fails at once, it does not wait
        assert proc.returncode != 0
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1, lines
        # Names the database and the PID holding it.
        assert str(db) in lines[0] and f"PID {first.pid}" in lines[0], lines[0]
    finally:
        assert first.wait(timeout=60) == 0
    # The first run committed normally; the second left no trace.
    assert query(db, "SELECT id FROM repositories") == [("alpha",)]
    assert query(db, "SELECT count(*) FROM commits") == [(3,)]
    _integrity(db)
    # And now the second writer can run.
    assert run_cli(db, "collect", "git", str(second_repo.path)).returncode == 0
    assert query(db, "SELECT count(*) FROM commits WHERE repo = 'beta'") == [(2,)]


def test_second_writer_waits_when_asked_then_runs(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    first = _start_paused(db, _repo(tmp_path / "alpha", 3), 3)
    second_repo = _repo(tmp_path / "beta", 2)
    try:
        # a CronJob beside the webhook receiver: wait for the holder instead of failing
        proc = run_cli(db, "collect", "git", str(second_repo.path), env={"GITOPS_DORA_LOCK_WAIT": "60"})
        assert proc.returncode == 0, proc.stderr
        assert f"is being written by another process (PID {first.pid}" in proc.stderr
        assert "waiting up to 60s" in proc.stderr
    finally:
        assert first.wait(timeout=60) == 0
    assert query(db, "SELECT id FROM repositories ORDER BY id") == [("alpha",), ("beta",)]


def test_second_writer_gives_up_after_its_wait(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    first = _start_paused(db, _repo(tmp_path / "alpha", 3), 8)
    try:
        started = time.monotonic()
        proc = run_cli(db, "collect", "git", str(_repo(tmp_path / "beta", 2).path),
                       env={"GITOPS_DORA_LOCK_WAIT": "1.5"})
        assert 1.5 <= time.monotonic() - started < 7
        assert proc.returncode != 0
        last = proc.stderr.strip().splitlines()[-1]
        assert "after waiting 1.5s" in last and f"PID {first.pid}" in last, last
        bad = run_cli(db, "collect", "git", str(tmp_path / "beta"), env={"GITOPS_DORA_LOCK_WAIT": "soon"})
        assert bad.returncode != 0 and "$GITOPS_DORA_LOCK_WAIT='soon'" in bad.stderr
    finally:
        assert first.wait(timeout=60) == 0
    assert query(db, "SELECT id FROM repositories") == [("alpha",)]


def test_killed_run_leaves_the_store_as_it_was(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    repo = _repo(tmp_path / "alpha", 3)
    assert run_cli(db, "collect", "git", str(repo.path), "--deploy-tags", SEMVER).returncode == 0
    before = _table_dump(db)
    assert len(before["commits"]) == 3 and len(before["deployments"]) == 3
    # Two new commits and tags, then a run killed with SIGKILL while its transaction is open.
    for i in (3, 4):
        repo.commit(f"c{i}", at=f"2024-04-{i + 1:02d}T12:00:00+00:00")
        repo.tag(f"v2.{i}.0")
    victim = _start_paused(db, repo, 30)
    os.kill(victim.pid, signal.SIGKILL)
    assert victim.wait(timeout=30) == -signal.SIGKILL
    # Exactly the rows from before (DuckDB drops the uncommitted WAL on the next open).
    assert _table_dump(db) == before
    _integrity(db)
    # The lock died with the process: a normal re-run picks up the 2 commits and 2 tags.
    proc = run_cli(db, "collect", "git", str(repo.path))
    assert proc.returncode == 0, proc.stderr
    assert "2 new commits (incremental; 5 in total)" in proc.stderr
    assert query(db, "SELECT count(*) FROM deployments") == [(5,)]


def test_config_errors_name_key_and_line(tmp_path: Path) -> None:
    db = tmp_path / "db.duckdb"
    repo = _repo(tmp_path / "alpha", 1)
    cfg = tmp_path / "bad.yaml"
    cfg.write_text(
        "services:\n"                   # line 1
        "  - name: shop\n"              # line 2
        "    team: payments\n"          # line 3
        "environments:\n"               # line 4
        "  - name: production\n"        # line 5
        "    production: maybe\n"       # line 6: not a boolean
    )
    proc = run_cli(db, "--config", str(cfg), "collect", "git", str(repo.path))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "line 6" in lines[0] and "environments.0.production" in lines[0], lines
    assert not db.exists()

    cfg.write_text("deployments:\n  git:\n    tag: '^v'\n")  # line 3: unknown key (it is "tags")
    proc = run_cli(db, "--config", str(cfg), "collect", "git", str(repo.path))
    assert proc.returncode == 2 and "line 3" in proc.stderr and "deployments.git.tag" in proc.stderr
    assert not db.exists()


def test_init_writes_a_config_that_validates(tmp_path: Path) -> None:
    proc = subprocess.run([CLI, "init"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    written = tmp_path / "gitops-dora.yaml"
    config = load_config(written)
    assert config.environments and written.read_text().lstrip().startswith("#")  # annotated
    # The same file is picked up by default and accepted by a collector.
    repo = _repo(tmp_path / "alpha", 1)
    proc = run_cli(tmp_path / "db.duckdb", "collect", "git", str(repo.path), cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert _table_dump(tmp_path / "db.duckdb")["commits"]

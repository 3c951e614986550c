"""Stores for tests: a small hand-made one for metric tests (services, commits, deployments and their
changes, loaded through the store's own writer ``WriteSession.upsert`` so every time is exact; all
UTC), and the demo store that the read-only dashboard, browser and demo tests share."""

from __future__ import annotations

import fcntl
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from analytics.store.connection import open_writer
from tests.child_env import child_env


def utc(text: str) -> datetime:
    """'2026-01-05T10:00' -> that instant in UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@dataclass(frozen=True)
class Deploy:
    service: str
    repository: str
    at: str
    changes: Sequence[str]
    environment: str = "production"
    status: str = "success"


def write_history(
    path: Path,
    *,
    services: dict[str, str | None],
    commits: dict[str, tuple[str, str] | tuple[str, str, str | None]],
    deployments: dict[str, Deploy],
    environments: dict[str, bool] | None = None,
) -> Path:
    """``commits``: sha -> (repo, author time[, committer time]); the subject is the sha. A
    deployment's revision is its last change (its id when it ships none)."""
    envs = environments if environments is not None else {"production": True}
    with open_writer(path, source="test-fixture") as w:
        w.upsert("services", [{"name": name, "team": team} for name, team in services.items()])
        w.upsert("environments", [{"name": n, "is_production": p} for n, p in envs.items()])
        w.upsert("commits", [
            {"repo": spec[0], "sha": sha, "parents": [], "author_time": utc(spec[1]),
             "committer_time": utc((spec[2] if len(spec) > 2 else None) or spec[1]),
             "is_merge": False, "subject": sha}
            for sha, spec in commits.items()
        ])
        w.upsert("deployments", [
            {"id": i, "service": d.service, "environment": d.environment, "repository": d.repository,
             "revision": d.changes[-1] if d.changes else i, "deployed_at": utc(d.at), "status": d.status,
             "source": "test", "source_ref": i}
            for i, d in deployments.items()
        ])
        w.upsert("deployment_changes", [
            {"deployment_id": i, "repo": d.repository, "sha": sha}
            for i, d in deployments.items() for sha in d.changes
        ])
    return path


@dataclass(frozen=True)
class DemoStore:
    """A store built by ``gitops-dora --db DB demo --workdir WORKDIR``."""

    db: Path
    workdir: Path


def build_demo_once(root: Path) -> DemoStore:
    """``gitops-dora demo`` (the real CLI, in a subprocess, with no GITOPS_DORA_* setting but the
    DuckDB thread count, tests/child_env.py) into ``root``, unless it is already there. `demo`
    takes 15-30 s, so one build serves a whole test run:
    pytest-xdist workers pass ``root`` in the run's common temporary folder and take turns on a lock
    file, so the first builds and the others wait for it, then reuse it."""
    root.mkdir(parents=True, exist_ok=True)
    store = DemoStore(db=root / "gitops-dora.ducklake", workdir=root / "demo")
    built = root / "demo-stdout.txt"
    with (root / "build.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)   # released when the file closes
        if not built.exists():
            env = child_env()
            cli = str(Path(sys.executable).with_name("gitops-dora"))
            proc = subprocess.run([cli, "--db", str(store.db), "demo", "--workdir", str(store.workdir)],
                                  capture_output=True, text=True, env=env, timeout=600, cwd=root)
            assert proc.returncode == 0, proc.stderr
            built.write_text(proc.stdout)
    return store


def copy_demo(demo: DemoStore, root: Path) -> DemoStore:
    """A writable copy of the shared demo store and its work folder under ``root`` (for a test that
    needs a store as `demo` leaves it and then writes to it: a copy costs milliseconds, a build
    15-30 s)."""
    root.mkdir(parents=True, exist_ok=True)
    copy = DemoStore(db=root / demo.db.name, workdir=root / demo.workdir.name)
    copy_store(demo.db, copy.db)
    shutil.copytree(demo.workdir, copy.workdir, symlinks=True)
    return copy


def copy_store(db: Path, dest: Path) -> Path:
    """A writable copy at ``dest`` of the embedded store ``db`` (its SQLite catalog and the data
    folder ``<db>.files`` beside it), for tests that write to a store a module fixture built once:
    a copy costs 0.01 CPU-s, building even a small store through the CLI 0.3-0.8. The catalog is
    copied with SQLite's backup API (consistent even with a WAL beside it) and pointed at the
    copied data folder; DuckLake keeps every data file path relative to it, so the copy reads the
    same snapshots, rows and file names as the original and shares no file with it."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    data = Path(str(db) + ".files")
    src = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    target = sqlite3.connect(dest)
    try:
        src.backup(target)
        relative = target.execute(
            "SELECT count(*) FROM (SELECT path_is_relative FROM ducklake_schema UNION ALL "
            "SELECT path_is_relative FROM ducklake_table UNION ALL "
            "SELECT path_is_relative FROM ducklake_data_file UNION ALL "
            "SELECT path_is_relative FROM ducklake_delete_file) WHERE NOT path_is_relative").fetchone()
        assert relative == (0,), f"the store {db} names a data file by an absolute path"
        target.execute("UPDATE ducklake_metadata SET value = ? WHERE key = 'data_path'",
                       [str(dest) + ".files/"])
        target.commit()
    finally:
        target.close()
        src.close()
    if data.exists():
        shutil.copytree(data, Path(str(dest) + ".files"))
    return dest

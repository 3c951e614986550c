"""Workloads for the store acceptance tests (issue #11): big synthetic repositories made with one
``git fast-import`` stream, incident files, signed GitHub deliveries, the real CLI in a subprocess,
and checks over the real store (duplicate natural keys, row counts, a table dump).

Synthetic history (``write_history``): a main line of commits every 10 minutes from ``START``; every
``merge_every``-th step is a ``--no-ff`` merge of a two-commit feature branch (3 commits in all);
an annotated release tag ``v1.<k>.0`` every ``release_every`` commits (a git-tag deployment with
``--deploy-tags SEMVER``) and a lightweight ``nightly-<n>`` tag (not a deployment) every
``nightly_every`` commits. A history is appended to by a later call with ``first=`` the number of
commits already written (``from refs/heads/main^0``), so shas and times are the same on every run.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb

from analytics.store.connection import open_reader
from analytics.store.keys import TABLE_KEYS
from analytics.store.location import resolve
from tests import cli_inprocess
from tests.child_env import child_env
from tests.gitrepo import clean_git_env, fast_import_command

CLI = str(Path(sys.executable).with_name("gitops-dora"))
SEMVER = r"^v[0-9]+\.[0-9]+\.[0-9]+$"
PAUSE_ENV = "GITOPS_DORA_PAUSE_BEFORE_COMMIT"
START = datetime(2024, 1, 1, tzinfo=UTC)
STEP = 600  # seconds between main-line commits


# --- the real CLI -------------------------------------------------------------------------------


def cli_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """This environment without any GITOPS_DORA_* setting but the DuckDB thread count (the test
    names the store; tests/child_env.py), plus ``extra``."""
    return child_env(extra)


@dataclass(frozen=True)
class Store:
    """A store as the CLI names it: ``--db`` (path or URL) and, for PostgreSQL, ``--data-path``."""

    db: str
    data_path: str | None = None

    @property
    def args(self) -> list[str]:
        return ["--db", self.db] + (["--data-path", self.data_path] if self.data_path else [])

    @property
    def env(self) -> dict[str, str]:
        """The same store through the environment (for the webhook receiver helper)."""
        return {"GITOPS_DORA_DATA_PATH": self.data_path} if self.data_path else {}

    def location(self) -> Any:
        from analytics.store.location import resolve

        return resolve(self.db, self.data_path)

    def data_dir(self) -> Path:
        return Path(self.location().data_path)


def cli_args(store: Store, *args: str) -> list[str]:
    return [CLI, *store.args, *args]


def run(store: Store, *args: str, env: Mapping[str, str] | None = None, timeout: float = 600,
        cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``gitops-dora --db ... ARGS`` as a user runs it; the exit code and both streams are returned."""
    return subprocess.run(cli_args(store, *args), capture_output=True, text=True, env=cli_env(env),
                          timeout=timeout, cwd=cwd)


def run_here(store: Store, *args: str, env: Mapping[str, str] | None = None,
             cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """``run`` inside the test process (tests/cli_inprocess.py: the same entry point, environment,
    exit status and streams, without 0.4-0.7 CPU-s of interpreter start-up and imports), for
    commands run one at a time that are not about the process (no kill, no concurrency)."""
    return cli_inprocess.run([*store.args, *args], env=cli_env(env), cwd=cwd)


def ok(proc: subprocess.CompletedProcess[str]) -> subprocess.CompletedProcess[str]:
    assert proc.returncode == 0, f"{' '.join(proc.args)} exited {proc.returncode}:\n{proc.stderr}"
    return proc


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    """The CLI's failure contract: exit ``code``, one ``error:`` line on stderr, no traceback."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, f"exit {proc.returncode}, want {code}:\n{proc.stderr}"
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    return lines[0]


# --- synthetic git history ----------------------------------------------------------------------


@dataclass
class History:
    """What ``write_history`` wrote so far, to know the expected counts."""

    path: Path
    commits: int = 0
    releases: list[str] = field(default_factory=list)  # tag names matching SEMVER, oldest first
    nightlies: list[str] = field(default_factory=list)

    @property
    def last_time(self) -> datetime:
        return START + timedelta(seconds=STEP * self.commits)


def _stream(history: History, count: int, *, release_every: int, nightly_every: int,
            merge_every: int) -> Iterator[bytes]:
    """The fast-import stream for ``count`` more commits, in chunks."""
    out: list[str] = []
    mark = 0
    first = history.commits
    main: str | None = "refs/heads/main^0" if first else None  # continue an existing main line
    made = first
    end = first + count

    def commit(ref: str, parent: str | None, merge: str | None, when: int, msg: str, path: str) -> str:
        nonlocal mark
        mark += 1
        who = f"Dev {mark % 23} <dev{mark % 23}@example.com>"
        lines = [f"commit {ref}", f"mark :{mark}", f"author {who} {when - 1800} +0100",
                 f"committer {who} {when} +0000", f"data {len(msg.encode())}", msg]
        if parent:
            lines.append(f"from {parent}")
        if merge:
            lines.append(f"merge {merge}")
        content = f"{made}\n"
        lines += [f"M 100644 inline {path}", f"data {len(content.encode())}", content]
        out.append("\n".join(lines))
        return f":{mark}"

    base = int(START.timestamp())
    while made < end:
        when = base + STEP * (made + 1)
        if merge_every and made % merge_every == merge_every - 3 and made + 3 <= end and main:
            f1 = commit("refs/heads/feature", main, None, when - 2 * STEP // 3, f"feature {made}",
                        f"feat/{made % 40}.txt")
            f2 = commit("refs/heads/feature", f1, None, when - STEP // 3, f"feature more {made}",
                        f"feat/{made % 40}.txt")
            made += 2
            main = commit("refs/heads/main", main, f2, base + STEP * (made + 1), f"Merge feature {made}",
                          "merges.txt")
            made += 1
        else:
            main = commit("refs/heads/main", main, None, when, f"change {made}", f"src/{made % 97}.txt")
            made += 1
        if release_every and made // release_every > len(history.releases):
            name = f"v1.{len(history.releases) + 1}.0"
            msg = f"release {name}"
            out.append(f"tag {name}\nfrom {main}\ntagger Rel <rel@example.com> "
                       f"{base + STEP * made + 300} +0000\ndata {len(msg)}\n{msg}")
            history.releases.append(name)
        if nightly_every and made // nightly_every > len(history.nightlies):
            name = f"nightly-{len(history.nightlies) + 1}"
            out.append(f"reset refs/tags/{name}\nfrom {main}\n")
            history.nightlies.append(name)
        if len(out) >= 1000:
            yield ("\n".join(out) + "\n").encode()
            out.clear()
    out.append("done\n")
    yield ("\n".join(out) + "\n").encode()
    history.commits = made


def write_history(history: History | Path, count: int, *, release_every: int = 500,
                  nightly_every: int = 250, merge_every: int = 10) -> History:
    """Add ``count`` commits (and their tags) to a bare repository, creating it on first use."""
    if not isinstance(history, History):
        history = History(Path(history))
    env = clean_git_env()
    if not (history.path / "HEAD").exists():
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(history.path)], check=True,
                       env=env, capture_output=True)
    proc = subprocess.Popen(fast_import_command(history.path), stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=env)
    assert proc.stdin is not None and proc.stderr is not None
    for chunk in _stream(history, count, release_every=release_every, nightly_every=nightly_every,
                         merge_every=merge_every):
        proc.stdin.write(chunk)
    proc.stdin.close()
    err = proc.stderr.read().decode(errors="replace")
    assert proc.wait() == 0, f"git fast-import failed: {err}"
    return history


def git_count(path: Path) -> int:
    out = subprocess.run(["git", "-C", str(path), "rev-list", "--count", "--branches", "--tags"],
                         capture_output=True, text=True, check=True, env=clean_git_env())
    return int(out.stdout.strip())


# --- other inputs -------------------------------------------------------------------------------


def write_incidents(path: Path, count: int, service: str = "payments") -> Path:
    """An incidents CSV (the import's columns) with ``count`` resolved incidents INC-1.. in 2024."""
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["id", "service", "environment", "created_at", "resolved_at", "title", "root_cause"])
        for i in range(1, count + 1):
            opened = START + timedelta(hours=7 * i)
            writer.writerow([f"INC-{i}", service, "production", opened.isoformat(),
                             (opened + timedelta(minutes=30 + i % 90)).isoformat(), f"Outage {i}", ""])
    return path


def github_deliveries(count: int, repo: str = "acme/hooks") -> list[tuple[str, dict[str, Any], str]]:
    """``count`` distinct GitHub deliveries (event, payload, delivery id): pushes of one commit
    each (a chain), a successful deployment now and then, and incident issues."""
    from tests.webhook_senders import gh_deployment_status, gh_issue, gh_push

    events: list[tuple[str, dict[str, Any], str]] = []
    head = "0" * 40
    for i in range(count):
        at = (START + timedelta(hours=i)).strftime("%Y-%m-%dT%H:%M:%SZ")
        if i % 5 == 4:
            event, payload = "deployment_status", gh_deployment_status(repo, 9000 + i, head, "success", at)
        elif i % 5 == 3:
            event, payload = "issues", gh_issue(repo, i, ["incident"], at, closed=at)
        else:
            sha = f"{i + 1:040x}"
            event, payload = "push", gh_push(repo, "refs/heads/main", head, [(sha, at, f"push {i}")])
            head = sha
        events.append((event, payload, f"delivery-{i:04d}"))
    return events


# --- the store as the tests read it -------------------------------------------------------------


def present_tables(store: Store) -> set[str]:
    con = open_reader(store.location(), install_views=False)
    try:
        rows = con.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'")
        return {str(r[0]) for r in rows.fetchall()}
    finally:
        con.close()


def duplicate_keys(store: Store) -> dict[str, int]:
    """For every table with a declared natural key: how many key values occur more than once in
    the store's table (``lake.main``: readers see services, environments and repositories through
    views that keep one row per key, which would hide a doubled key from this check)."""
    con = open_reader(store.location(), install_views=False)
    try:
        tables = {str(r[0]) for r in con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'").fetchall()}
        dups: dict[str, int] = {}
        for table, key in TABLE_KEYS.items():
            if table not in tables:
                continue
            cols = ", ".join(f'"{c}"' for c in key)
            stored = f'lake.main."{table}"'
            row = con.execute(
                f"SELECT count(*) FROM (SELECT {cols} FROM {stored} GROUP BY ALL HAVING count(*) > 1)"
            ).fetchone()
            dups[table] = int(row[0]) if row else 0
        return dups
    finally:
        con.close()


def counts(store: Store, tables: Sequence[str], as_of: int | None = None) -> dict[str, int]:
    con = open_reader(store.location(), install_views=False, as_of=as_of)
    try:
        return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]) for t in tables}
    finally:
        con.close()


# The whole state in one statement: on a store that has its tables (all but a store whose first
# run was killed while making them) one catalog round trip instead of a table listing (~20 ms of
# CPU) and three reads, ~35 of the ~100 ms a state cost; the SIGKILL test takes some 25 states.
_GIT_STATE = """
SELECT (SELECT count(*) FROM commits WHERE repo = $1),
       (SELECT count(*) FROM tags WHERE repo = $1),
       (SELECT coalesce(map(list(id), list(n)), MAP {}) FROM (
            SELECT d.id, count(c.sha) AS n FROM deployments d
            LEFT JOIN deployment_changes c ON c.deployment_id = d.id
            WHERE d.repository = $1 AND d.source = 'git-tag' GROUP BY d.id))
"""


def git_state(store: Store, repo_id: str) -> dict[str, Any]:
    """One snapshot's view of a repository: commits, tags, its git-tag deployments and their changes.
    No store yet (a first writer killed before DuckLake made its catalog) is the empty state, and a
    table not made yet (killed while making them) counts as empty."""
    if not resolve(store.location()).exists():
        return {"commits": 0, "tags": 0, "deployments": {}}
    con = open_reader(store.location(), install_views=False)
    try:
        try:
            row = con.execute(_GIT_STATE, [repo_id]).fetchone()
        except duckdb.CatalogException:  # a table is missing: read the ones there are
            return _git_state_of_present_tables(con, repo_id)
        assert row is not None
        return {"commits": int(row[0]), "tags": int(row[1]),
                "deployments": {str(k): int(v) for k, v in row[2].items()}}
    finally:
        con.close()


def _git_state_of_present_tables(con: Any, repo_id: str) -> dict[str, Any]:
    def one(sql: str) -> int:
        return int(con.execute(sql, [repo_id]).fetchall()[0][0])

    tables = _tables(con)   # listed once: each listing is a catalog read
    per_deployment = dict(con.execute(
        "SELECT d.id, count(c.sha) FROM deployments d LEFT JOIN deployment_changes c "
        "ON c.deployment_id = d.id WHERE d.repository = ? AND d.source = 'git-tag' GROUP BY d.id",
        [repo_id]).fetchall()) if {"deployments", "deployment_changes"} <= tables else {}
    return {
        "commits": one("SELECT count(*) FROM commits WHERE repo = ?") if "commits" in tables else 0,
        "tags": one("SELECT count(*) FROM tags WHERE repo = ?") if "tags" in tables else 0,
        "deployments": per_deployment,
    }


def _tables(con: Any) -> set[str]:
    return {str(r[0]) for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_catalog = 'lake'").fetchall()}


def table_dump(store: Store, tables: Sequence[str]) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of ``tables`` in a fixed order (for 'the store reads exactly as before')."""
    con = open_reader(store.location(), install_views=False)
    try:
        return {t: con.execute(f'SELECT * FROM "{t}" ORDER BY ALL').fetchall() for t in tables}
    finally:
        con.close()


def json_out(proc: subprocess.CompletedProcess[str]) -> Any:
    return json.loads(ok(proc).stdout)

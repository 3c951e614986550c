"""ACCEPTANCE (issue #11): the DuckLake store under concurrency, SIGKILL, a full disk, deletion,
time travel and migration from a 0.1 single-file store, driven through the real ``gitops-dora``
console command on real git repositories (``git fast-import``, see tests/store_workloads.py).

1. four workloads at once (embedded SQLite catalog, and a PostgreSQL catalog): ``collect git`` of
   20,000 commits, ``import`` of incidents, the webhook receiver taking 200 signed deliveries from
   threads, and ``metrics``/``deployments`` read in a loop. Every command exits 0, every row is
   there once, and no read ever shows a git deployment without its changes;
2. ``collect git`` killed with SIGKILL at 20+ random points (some inside the pause right before
   COMMIT): the store always shows the state before or after the run, and the next run completes;
3. a full disk (a small tmpfs): one ``error:`` line, exit 2, the store reads as before;
4. a deleted store is collected again in full;
5. ``--as-of`` reproduces an earlier ``metrics`` output byte for byte (snapshot id and time);
6. ``migrate-store`` copies a 0.1 store with verified counts, ``--db OLD`` says to migrate, and
   ``maintain`` leaves the metrics unchanged.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from analytics.collectors.git_log import LOG_DIR_PREFIX
from analytics.errors import UserError
from tests import cli_inprocess
from tests.store_workloads import (
    PAUSE_ENV,
    SEMVER,
    History,
    Store,
    cli_args,
    cli_env,
    counts,
    duplicate_keys,
    git_state,
    github_deliveries,
    json_out,
    ok,
    one_error_line,
    run,
    run_here,
    table_dump,
    write_history,
    write_incidents,
)
from tests.webhook_senders import post_github, receiver

SECRET = "store-acceptance-secret"
WINDOW = ("--since", "2023-01-01", "--until", "2025-01-01")  # all generated data lies in 2024
BIG_COMMITS = 20_000
SENDERS = 100  # threads posting the 200 deliveries at once


@pytest.fixture(scope="module")
def big_repo(tmp_path_factory: pytest.TempPathFactory) -> History:
    """20,000 commits (a --no-ff merge every 10), 40 release tags v1.N.0 (every 500) and 80 nightly
    tags; shared read-only by the tests of this module (repository id ``big``)."""
    return write_history(tmp_path_factory.mktemp("repos") / "big.git", BIG_COMMITS, release_every=500)


@pytest.fixture(scope="module")
def small_repo(tmp_path_factory: pytest.TempPathFactory) -> History:
    """200 commits, 4 releases (repository id ``small``): what fits on the small disk; read only."""
    return write_history(tmp_path_factory.mktemp("small") / "small.git", 200, release_every=50)


@pytest.fixture(scope="module")
def many_incidents(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """60,000 incidents (some 5.8 MB of CSV), more than a 1 MiB disk holds once imported; written
    once (0.25-0.3 CPU-s) for both disk-full tests, which only read it (it is not on the small disk)."""
    return write_incidents(tmp_path_factory.mktemp("inputs") / "many.csv", 60_000)


@pytest.fixture
def own_tmpdir(tmp_path: Path) -> dict[str, str]:
    """``TMPDIR`` under the test's folder, for the ``gitops-dora`` processes of the concurrency and
    SIGKILL tests: a ``collect git`` killed with SIGKILL cannot remove its ``gitops-dora-log-*``
    folder (the repository's whole ``git log``), which then piled up in /tmp (some 50 of them on
    this machine); under ``tmp_path`` it goes with the test's folder."""
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    return {"TMPDIR": str(tmp)}


def _store(kind: str, tmp_path: Path, request: pytest.FixtureRequest) -> Store:
    if kind == "embedded":
        return Store(str(tmp_path / "store.ducklake"))
    pg = request.getfixturevalue("pg_database")  # skips, with the reason, where PostgreSQL cannot start
    return Store(pg.url, str(tmp_path / "lake-data"))


def _expected_git(repo_id: str, history: History, per_release: int) -> dict[str, Any]:
    """What one repository's collection gives: every commit and tag, one git-tag deployment per
    release tag, each shipping the ``per_release`` commits since the previous release."""
    return {
        "commits": history.commits,
        "tags": len(history.releases) + len(history.nightlies),
        "deployments": {f"git-tag:{repo_id}:{name}": per_release for name in history.releases},
    }


def _state(store: Store, repo_id: str) -> dict[str, Any]:
    """``git_state``, or the empty state while no catalog exists yet."""
    try:
        return git_state(store, repo_id)
    except UserError as exc:
        if "no database at" not in str(exc):
            raise
        return {"commits": 0, "tags": 0, "deployments": {}}


# --- 1. four workloads at once --------------------------------------------------------------------


class ReadLoop(threading.Thread):
    """``metrics --format json`` and ``deployments --format json`` alternately until stopped."""

    def __init__(self, store: Store, cwd: Path, env: dict[str, str]) -> None:
        super().__init__(daemon=True)
        self.store, self.cwd, self.env = store, cwd, env
        self.stop = threading.Event()
        self.two_done = threading.Event()  # set once two reads have finished
        self.reads: list[tuple[str, subprocess.CompletedProcess[str]]] = []

    def run(self) -> None:
        turn = 0
        while not self.stop.is_set():
            command = ("metrics", "--format", "json", *WINDOW) if turn % 2 == 0 else \
                ("deployments", "--format", "json")
            read = run(self.store, *command, env=self.env, cwd=self.cwd, timeout=300)
            self.reads.append((command[0], read))
            if len(self.reads) >= 2:
                self.two_done.set()
            turn += 1


def _payments_group(metrics: dict[str, Any]) -> dict[str, Any]:
    groups = [g for g in metrics["groups"] if (g["service"], g["environment"]) == ("payments", "production")]
    assert len(groups) <= 1, groups
    return groups[0] if groups else {"deployments": 0, "changes": 0, "incidents": 0}


class ThreadClients:
    """An httpx client per sending thread, all on one SSL context (a client's own costs some 30 ms of
    CPU). One client shared by 50 threads failed once in a dozen runs with ``httpx.ReadError: [Errno
    9] Bad file descriptor`` (a known race of httpx's connection pool under concurrency,
    encode/httpx#3348): the sender's fault, not the receiver's."""

    def __init__(self) -> None:
        import ssl

        self._ssl = ssl.create_default_context()
        self._local = threading.local()
        self._lock = threading.Lock()
        self._all: list[httpx.Client] = []

    def mine(self) -> httpx.Client:
        client: httpx.Client | None = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=300, verify=self._ssl)
            self._local.client = client
            with self._lock:
                self._all.append(client)
        return client

    def __enter__(self) -> ThreadClients:
        return self

    def __exit__(self, *exc: object) -> None:
        for client in self._all:
            client.close()


@pytest.mark.slow
@pytest.mark.parametrize("catalog", ["embedded", "postgresql"])
def test_collect_import_webhooks_and_reads_at_once(
    catalog: str, big_repo: History, tmp_path: Path, request: pytest.FixtureRequest,
    own_tmpdir: dict[str, str],
) -> None:
    store = _store(catalog, tmp_path, request)
    incidents = 300
    incidents_csv = write_incidents(tmp_path / "incidents.csv", incidents, service="payments")
    deliveries = github_deliveries(200)
    kinds = Counter(event for event, _, _ in deliveries)
    collect = cli_args(store, "collect", "git", str(big_repo.path), "--deploy-tags", SEMVER,
                       "--service", "payments")
    load = cli_args(store, "import", str(incidents_csv))

    # The receiver must be listening before deliveries arrive; its start creates the store.
    hook_env = {"GITOPS_DORA_GITHUB_SECRET": SECRET, **store.env, **own_tmpdir}
    db: Any = store.db  # a path or a URL: the helper passes it on as --db
    with receiver(db, hook_env) as rx, ThreadClients() as clients:
        reader = ReadLoop(store, tmp_path, own_tmpdir)
        # The collection holds its transaction open until two reads have finished, so reads are
        # checked against a writer in flight however fast the collection itself has become.
        release = tmp_path / "release-collect"
        hold = {PAUSE_ENV: f"until:{release}"}
        started = time.monotonic()
        writers = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                    env=cli_env({**env, **own_tmpdir}), cwd=tmp_path)
                   for cmd, env in ((collect, hold), (load, {}))]
        reader.start()

        def release_after_two_reads() -> None:
            reader.two_done.wait(300)
            release.touch()

        releaser = threading.Thread(target=release_after_two_reads, daemon=True)
        releaser.start()
        # 100 senders, under the receiver's 128 requests in flight (more get 503 by design): its
        # writer batches what is queued together, so the same 200 deliveries cost it about a third
        # less CPU than from 50 senders, and the reads around them are fewer.
        with ThreadPoolExecutor(max_workers=SENDERS) as pool:
            answers = list(pool.map(
                lambda d: post_github(clients.mine(), rx.url, d[0], d[1], SECRET, delivery=d[2]), deliveries))
        sent = time.monotonic()
        outputs = [w.communicate(timeout=600) for w in writers]
        writers_done = time.monotonic()
        reads_during = len(reader.reads)
        reader.stop.set()
        reader.join(timeout=600)
    elapsed = writers_done - started
    print(f"{catalog}: deliveries sent in {sent - started:.1f}s, collect+import done after {elapsed:.1f}s, "
          f"{reads_during} reads meanwhile, {len(reader.reads)} in all")

    # every command exited 0; every delivery was stored (a 2xx means committed)
    for writer, cmd, (_, err) in zip(writers, (collect, load), outputs, strict=True):
        assert writer.returncode == 0, f"{' '.join(cmd)} exited {writer.returncode}:\n{err}"
    assert f"{BIG_COMMITS} new commits (full; {BIG_COMMITS} in total)" in outputs[0][1]
    assert f"imported {incidents} incidents rows" in outputs[1][1]
    assert [(a.status_code, a.json().get("message")) for a in answers] == [(200, "stored")] * 200
    # the receiver ran until the helper's SIGTERM: a graceful stop (uvicorn re-raises the signal)
    rx_err = rx.process.stderr.read().decode() if rx.process.stderr else ""
    assert rx.process.returncode in (0, -signal.SIGTERM) and "error" not in rx_err.lower(), rx_err
    assert all(proc.returncode == 0 for _, proc in reader.reads), [
        proc.stderr for _, proc in reader.reads if proc.returncode != 0]
    assert reads_during >= 2, f"only {reads_during} reads while the writers ran ({elapsed:.1f}s)"

    # every row exactly once, and all of them there
    dups = duplicate_keys(store)
    assert dups == dict.fromkeys(dups, 0)
    assert set(dups) >= {"commits", "tags", "deployments", "deployment_changes", "incidents",
                         "webhook_deliveries", "collection_runs", "webhook_pushes", "services"}
    final_git = git_state(store, "big")
    assert final_git == _expected_git("big", big_repo, 500)
    assert counts(store, ["webhook_deliveries", "incidents", "commits", "deployments"]) == {
        "webhook_deliveries": 200,
        "incidents": incidents + kinds["issues"],
        "commits": BIG_COMMITS + kinds["push"],
        "deployments": len(big_repo.releases) + kinds["deployment_status"],
    }

    # every read saw all of a unit or none of it: a git deployment never without its changes
    listing = json_out(run_here(store, "deployments", "--format", "json"))
    final_deployments = {r["id"]: r["changes"] for r in listing if r["source"] == "git-tag"}
    assert final_deployments == final_git["deployments"]
    final_metrics = _payments_group(json_out(run_here(store, "metrics", "--format", "json", *WINDOW)))
    assert (final_metrics["deployments"], final_metrics["incidents"]) == (len(big_repo.releases), incidents)
    seen: Counter[str] = Counter()
    for command, read in reader.reads:
        payload = json.loads(read.stdout)
        if command == "deployments":
            git = {r["id"]: r["changes"] for r in payload if r["source"] == "git-tag"}
            assert git in ({}, final_deployments), "a read showed part of the git collection"
            seen["deployments with git" if git else "deployments without git"] += 1
        else:
            group = _payments_group(payload)
            assert (group["deployments"], group["changes"]) in {
                (0, 0), (final_metrics["deployments"], final_metrics["changes"])}, group
            assert group["incidents"] in (0, incidents), group
            seen["metrics"] += 1
    assert seen["metrics"] >= 1 and seen["deployments with git"] + seen["deployments without git"] >= 1, seen
    print(f"{catalog}: reads {dict(seen)}")


# --- 2. SIGKILL at random points --------------------------------------------------------------------


@pytest.mark.slow
def test_sigkill_at_random_points_leaves_the_state_before_or_after(
    tmp_path: Path, own_tmpdir: dict[str, str]
) -> None:
    seed = int(os.environ.get("STORE_KILL_SEED") or time.time_ns() % 2**31)
    rng = random.Random(seed)
    store = Store(str(tmp_path / "kill.ducklake"))
    history = write_history(tmp_path / "kill.git", 2000, release_every=100)
    collect = ("collect", "git", str(history.path), "--deploy-tags", SEMVER, "--service", "kill")
    log: list[str] = []
    killed_pids: list[int] = []

    never = tmp_path / "never-released"  # the paused runs hold their transaction until killed

    def killed_run(delay: float, pause: bool) -> subprocess.CompletedProcess[str]:
        """Start ``collect git`` and SIGKILL it ``delay`` seconds after start, or, with ``pause``,
        ``delay`` seconds into its pause right before COMMIT. The pause lasts until the kill (a
        fixed-length pause let a loaded machine read the "pausing" line so late that the kill
        landed after the COMMIT, and the test failed on the timing, not on the store)."""
        env = cli_env({**own_tmpdir, PAUSE_ENV: f"until:{never}"} if pause else own_tmpdir)
        proc = subprocess.Popen(cli_args(store, *collect), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, env=env, cwd=tmp_path)
        assert proc.stderr is not None
        early = ""
        if pause:
            for line in proc.stderr:
                early += line
                if line.startswith("pausing"):
                    break
            # the pause setting reached the process (its environment is the one asked for)
            assert early.endswith("\n") and early.splitlines()[-1].startswith("pausing"), early
        try:  # a run that ends before its kill point is not waited for until then
            out, err = proc.communicate(timeout=delay)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            out, err = proc.communicate(timeout=300)
            killed_pids.append(proc.pid)
        return subprocess.CompletedProcess(proc.args, proc.wait(), out, early + err)

    # A kill while the very first run creates the store; then the first run completes.
    first = killed_run(rng.uniform(0.3, 2.5), False)
    assert first.returncode in (0, -signal.SIGKILL), first.stderr
    assert _state(store, "kill") in ({"commits": 0, "tags": 0, "deployments": {}},
                                     _expected_git("kill", history, 100))
    t0 = time.monotonic()
    ok(run(store, *collect, env=own_tmpdir, cwd=tmp_path))
    duration = time.monotonic() - t0
    state = _state(store, "kill")
    assert state == _expected_git("kill", history, 100)

    kills: Counter[str] = Counter()
    attempt = 0
    while kills["killed"] < 20:
        attempt += 1
        assert attempt <= 45, f"only {kills} after {attempt - 1} runs (seed {seed})"
        before = state   # nothing wrote to the store since it was read (the killed run is gone)
        write_history(history, 100, release_every=100)  # one more release each time
        after = _expected_git("kill", history, 100)
        pause = rng.random() < 0.3
        # A kill point anywhere in a run: the runs here are incremental (100 new commits), so their
        # length is the last run that finished (the first, full run's until one has), not the full
        # run's, past whose end most kill points would only let the run finish.
        delay = rng.uniform(0, 0.5) if pause else rng.uniform(0.05, duration)
        started = time.monotonic()
        proc = killed_run(delay, pause)
        outcome = "killed" if proc.returncode == -signal.SIGKILL else "finished"
        if outcome == "finished" and not pause:
            duration = max(time.monotonic() - started, 0.5)
        assert proc.returncode in (0, -signal.SIGKILL), \
            f"run {attempt} (seed {seed}) exited {proc.returncode}:\n{proc.stderr}"
        state = _state(store, "kill")
        which = "before" if state == before else "after" if state == after else "in between"
        log.append(f"{attempt}: {'pause ' if pause else ''}{delay:.2f}s {outcome} -> {which}")
        assert which != "in between", (
            f"seed {seed}, run {attempt}: {state['commits']} commits, "
            f"{len(state['deployments'])} deployments; "
            f"before {before['commits']}/{len(before['deployments'])}, "
            f"after {after['commits']}/{len(after['deployments'])}\n" + "\n".join(log))
        if pause:  # held before its COMMIT until the kill, so nothing of it may show
            assert (outcome, which) == ("killed", "before"), "\n".join(log)
        kills[outcome] += 1
        kills[f"{outcome} {which}"] += 1

    # The next run completes and gives the full data, every row once.
    write_history(history, 100, release_every=100)
    proc = ok(run_here(store, *collect, cwd=tmp_path))
    assert f"(incremental; {history.commits} in total)" in proc.stderr, proc.stderr
    assert _state(store, "kill") == _expected_git("kill", history, 100)
    dups = duplicate_keys(store)
    assert dups == dict.fromkeys(dups, 0)
    assert kills["killed before"] >= 1, "\n".join(log)
    # A killed collection's chunk folder (named with its pid) is under the test's TMPDIR, never in
    # the runner's temporary folder.
    strays = [p.name for pid in killed_pids
              for p in Path(tempfile.gettempdir()).glob(f"{LOG_DIR_PREFIX}{pid}-*")]
    assert strays == [], strays
    print(f"seed {seed}: {dict(kills)}\n" + "\n".join(log))


# --- 3. a full disk ---------------------------------------------------------------------------------


@pytest.fixture
def small_disk(tmp_path: Path) -> Any:
    """A 1 MiB tmpfs (``mount`` needs root or CAP_SYS_ADMIN); skips saying why when it cannot mount."""
    mnt = tmp_path / "small"
    mnt.mkdir()
    if shutil.which("mount") is None:
        pytest.skip("no `mount` command: cannot make a size-limited tmpfs for the disk-full test")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1M,mode=0755", "tmpfs", str(mnt)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs (needs root or CAP_SYS_ADMIN): {proc.stderr.strip()}")
    try:
        yield mnt
    finally:
        if subprocess.run(["umount", str(mnt)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def _referenced_files(store: Store) -> set[str]:
    """Every data or delete file any snapshot of the catalog references, as full paths."""
    import sqlite3

    loc = store.location()
    con = sqlite3.connect(f"file:{loc.catalog}?mode=ro", uri=True)
    try:
        rows = con.execute(
            "SELECT s.path, s.path_is_relative, t.path, t.path_is_relative, f.path, f.path_is_relative "
            "FROM (SELECT table_id, path, path_is_relative FROM ducklake_data_file "
            "      UNION ALL SELECT table_id, path, path_is_relative FROM ducklake_delete_file) f "
            "JOIN (SELECT DISTINCT table_id, schema_id, path, path_is_relative FROM ducklake_table) t "
            "  USING (table_id) "
            "JOIN (SELECT DISTINCT schema_id, path, path_is_relative FROM ducklake_schema) s "
            "  USING (schema_id)"
        ).fetchall()
    finally:
        con.close()
    found = set()
    for schema, schema_rel, table, table_rel, name, name_rel in rows:
        base = loc.data_path
        folder = base + schema if schema_rel else schema
        folder = folder + table if table_rel else table
        found.add(folder + name if name_rel else name)
    return found


def _fill_the_disk(store: Store, small_repo: History, tmp_path: Path) -> tuple[dict[str, Any], set[str]]:
    """Collect a small repository (it fits), then remember what the store reads and holds."""
    ok(run_here(store, "collect", "git", str(small_repo.path), "--deploy-tags", SEMVER, cwd=tmp_path))
    tables = ["commits", "tags", "deployments", "deployment_changes", "incidents", "collector_state",
              "services", "environments", "repositories"]
    return table_dump(store, tables), _files(Path(store.db).parent)


@pytest.mark.slow
def test_disk_full_fails_with_one_line_and_leaves_the_store_as_it_was(
    small_disk: Path, big_repo: History, small_repo: History, many_incidents: Path, tmp_path: Path
) -> None:
    store = Store(str(small_disk / "store.ducklake"))
    small = small_repo
    before, _ = _fill_the_disk(store, small, tmp_path)
    runs_before = counts(store, ["collection_runs"])["collection_runs"]

    # 20,000 commits cannot fit in what is left of 1 MiB: through the git loader...
    proc = run_here(store, "collect", "git", str(big_repo.path), "--deploy-tags", SEMVER, cwd=tmp_path)
    line = one_error_line(proc)
    assert "no space left" in line.lower(), line
    assert table_dump(store, list(before)) == before
    assert ok(run_here(store, "deployments", "--format", "json", cwd=tmp_path)).stdout.count('"git-tag"') == 4
    # ...and through a plain upsert (the store's own translation of the error)
    proc = run_here(store, "import", str(many_incidents), cwd=tmp_path)
    line = one_error_line(proc)
    assert "no space left" in line.lower() and "nothing of this run was committed" in line, line
    assert table_dump(store, list(before)) == before
    failed = counts(store, ["collection_runs"])["collection_runs"] - runs_before
    assert failed in (0, 1, 2)  # a failed run is recorded only when even that row fits

    # With room again the same collection goes through on the same store.
    subprocess.run(["mount", "-o", "remount,size=64M", str(small_disk)], check=True, capture_output=True)
    proc = ok(run_here(store, "collect", "git", str(big_repo.path), "--deploy-tags", SEMVER, cwd=tmp_path))
    assert f"{BIG_COMMITS} new commits (full; {BIG_COMMITS} in total)" in proc.stderr
    assert git_state(store, "big") == _expected_git("big", big_repo, 500)
    assert git_state(store, "small") == _expected_git("small", small, 50)


@pytest.mark.slow
def test_disk_full_leaves_no_stray_files_in_the_store(
    small_disk: Path, big_repo: History, small_repo: History, many_incidents: Path, tmp_path: Path
) -> None:
    store = Store(str(small_disk / "store.ducklake"))
    small = small_repo
    _, files_before = _fill_the_disk(store, small, tmp_path)
    collect = ("collect", "git", str(big_repo.path), "--deploy-tags", SEMVER)
    one_error_line(run_here(store, *collect, cwd=tmp_path))
    one_error_line(run_here(store, "import", str(many_incidents), cwd=tmp_path))
    new = {small_disk / f for f in _files(small_disk) - files_before}
    stray = sorted(f"{f.relative_to(small_disk)} ({f.stat().st_size} bytes)" for f in new
                   if str(f) not in _referenced_files(store) and not f.name.endswith(("-wal", "-shm")))
    assert stray == []


# --- 4. starting over --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_deleted_store_is_collected_again_in_full(tmp_path: Path) -> None:
    history = write_history(tmp_path / "again.git", 1000, release_every=100)
    store = Store(str(tmp_path / "again.ducklake"))
    collect = ("collect", "git", str(history.path), "--deploy-tags", SEMVER)
    first = ok(run_here(store, *collect, cwd=tmp_path))
    assert "1000 new commits (full; 1000 in total)" in first.stderr
    assert "up to date" in ok(run_here(store, *collect, cwd=tmp_path)).stderr
    expected = _expected_git("again", history, 100)
    assert git_state(store, "again") == expected

    catalog = Path(store.db)
    for path in [catalog, catalog.with_name(catalog.name + ".files"),
                 *(catalog.with_name(catalog.name + s) for s in ("-wal", "-shm", "-journal"))]:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("again.ducklake")) == []
    line = one_error_line(run_here(store, "deployments", "--format", "json", cwd=tmp_path))
    assert "no database at" in line, line

    again = ok(run_here(store, *collect, cwd=tmp_path))
    assert "1000 new commits (full; 1000 in total)" in again.stderr and "up to date" not in again.stderr
    assert git_state(store, "again") == expected
    assert len(json_out(run_here(store, "deployments", "--format", "json", cwd=tmp_path))) == 10


# --- 5. --as-of ----------------------------------------------------------------------------------------


@pytest.mark.slow
def test_as_of_reproduces_an_earlier_metrics_output_byte_for_byte(tmp_path: Path) -> None:
    history = write_history(tmp_path / "asof.git", 1000, release_every=100)
    store = Store(str(tmp_path / "asof.ducklake"))
    collect = ("collect", "git", str(history.path), "--deploy-tags", SEMVER)
    window = ("--since", "2024-01-01", "--until", "2024-02-01")
    ok(run_here(store, *collect, cwd=tmp_path))
    then = ok(run_here(store, "metrics", "--format", "json", *window, cwd=tmp_path)).stdout
    report = tmp_path / "r.json"
    ok(run_here(store, "report", "--out", str(report), *window, cwd=tmp_path))
    snapshot_id = json.loads(report.read_text())["snapshot_id"]
    assert isinstance(snapshot_id, int)
    between = datetime.now(UTC)  # after that snapshot's commit, before the next one's

    write_history(history, 300, release_every=100)  # 3 more releases inside the window
    assert "300 new commits" in ok(run_here(store, *collect, cwd=tmp_path)).stderr
    now = ok(run_here(store, "metrics", "--format", "json", *window, cwd=tmp_path)).stdout
    assert [g["deployments"] for g in json.loads(now)["groups"]] == [13]
    assert [g["deployments"] for g in json.loads(then)["groups"]] == [10]

    by_id = ok(run_here(store, "metrics", "--format", "json", *window, "--as-of", str(snapshot_id),
                        cwd=tmp_path))
    assert by_id.stdout == then
    by_time = ok(run_here(store, "metrics", "--format", "json", *window, "--as-of",
                     between.isoformat().replace("+00:00", "Z"), cwd=tmp_path))
    assert by_time.stdout == then
    old_list = json_out(run_here(store, "deployments", "--format", "json", "--as-of", str(snapshot_id),
                            cwd=tmp_path))
    assert len(old_list) == 10

    ok(run_here(store, "report", "--out", str(report), *window, cwd=tmp_path))
    latest = json.loads(report.read_text())["snapshot_id"]  # the newest snapshot, which a report names
    for bad, says in (("soon", "--as-of 'soon'"), ("999999", "no snapshot 999999"),
                      ("2001-01-01T00:00:00Z", "no snapshot 2001-01-01")):
        line = one_error_line(run_here(store, "metrics", "--format", "json", "--as-of", bad, cwd=tmp_path))
        assert says in line, line
        if bad != "soon":  # and what it can name instead: the catalog's first and last snapshot
            assert re.search(rf"\(its {latest + 1} snapshots are 0 \(\d{{4}}-.* UTC\) to {latest}"
                             rf" \(\d{{4}}-.* UTC\)\)$", line), line


# --- 6. migrating a 0.1 store ------------------------------------------------------------------------

# The 0.1 schema (``git show 53b6da4~1:analytics/store/migrations/0001_core.sql`` and its
# schema_migrations), the tables this test fills, verbatim but for comments.
OLD_DDL = """
CREATE TABLE schema_migrations (
    version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL);
CREATE TABLE repositories (
    id VARCHAR PRIMARY KEY, url VARCHAR, local_path VARCHAR, web_url VARCHAR,
    is_bare BOOLEAN NOT NULL DEFAULT FALSE, is_shallow BOOLEAN NOT NULL DEFAULT FALSE,
    last_collected_at TIMESTAMPTZ);
CREATE TABLE commits (
    repo VARCHAR NOT NULL, sha VARCHAR NOT NULL, parents VARCHAR[] NOT NULL,
    author_name VARCHAR, author_email VARCHAR, author_time TIMESTAMPTZ NOT NULL, author_tz VARCHAR,
    committer_name VARCHAR, committer_email VARCHAR, committer_time TIMESTAMPTZ NOT NULL,
    committer_tz VARCHAR,
    subject VARCHAR, is_merge BOOLEAN NOT NULL, reverts_sha VARCHAR, PRIMARY KEY (repo, sha));
CREATE TABLE services (name VARCHAR PRIMARY KEY, team VARCHAR);
CREATE TABLE environments (name VARCHAR PRIMARY KEY, is_production BOOLEAN NOT NULL DEFAULT FALSE);
CREATE TABLE deployments (
    id VARCHAR PRIMARY KEY, service VARCHAR NOT NULL, environment VARCHAR NOT NULL, revision VARCHAR,
    repository VARCHAR, started_at TIMESTAMPTZ, deployed_at TIMESTAMPTZ NOT NULL,
    status VARCHAR NOT NULL CHECK (status IN ('success', 'failed')), source VARCHAR NOT NULL,
    source_ref VARCHAR, is_rollback BOOLEAN NOT NULL DEFAULT FALSE, rollback_target VARCHAR,
    raw_revision VARCHAR, revision_format VARCHAR);
CREATE TABLE deployment_changes (
    deployment_id VARCHAR NOT NULL, repo VARCHAR NOT NULL, sha VARCHAR NOT NULL,
    PRIMARY KEY (deployment_id, repo, sha));
CREATE TABLE incidents (
    id VARCHAR PRIMARY KEY, service VARCHAR, environment VARCHAR, created_at TIMESTAMPTZ NOT NULL,
    resolved_at TIMESTAMPTZ, title VARCHAR, root_cause VARCHAR, source VARCHAR NOT NULL,
    source_ref VARCHAR, url VARCHAR, labels VARCHAR[]);
"""


def _old_store(path: Path) -> dict[str, int]:
    """A 0.1 store: repository ``legacy`` with 30 commits (one a day from 2024-01-01), 3 git-tag
    deployments shipping 10 each (the third failed), 2 incidents. Returns the row counts."""
    start = datetime(2024, 1, 1, 9, tzinfo=UTC)
    con = duckdb.connect(str(path))
    try:
        con.execute("SET TimeZone = 'UTC'")
        con.execute(OLD_DDL)
        con.execute("INSERT INTO schema_migrations VALUES (1, 'core', ?)", [start])
        con.execute("INSERT INTO repositories VALUES "
                    "('legacy', '/src/legacy', '/src/legacy', NULL, false, false, ?)", [start])
        con.execute("INSERT INTO services VALUES ('legacy', 'core-team')")
        con.execute("INSERT INTO environments VALUES ('production', true)")
        shas = [f"{i + 1:040x}" for i in range(30)]
        for i, sha in enumerate(shas):
            at = start + timedelta(days=i)
            con.execute("INSERT INTO commits VALUES ('legacy', ?, ?, 'Ada', 'ada@example.com', ?, '+0000', "
                        "'Ada', 'ada@example.com', ?, '+0000', ?, false, NULL)",
                        [sha, [shas[i - 1]] if i else [], at, at, f"change {i}"])
        for n in range(3):
            dep = f"git-tag:legacy:v1.{n}.0"
            at = start + timedelta(days=10 * n + 9, hours=5)
            con.execute("INSERT INTO deployments VALUES (?, 'legacy', 'production', ?, 'legacy', NULL, ?, ?, "
                        "'git-tag', ?, false, NULL, ?, 'sha')",
                        [dep, shas[10 * n + 9], at, "failed" if n == 2 else "success", f"v1.{n}.0",
                         shas[10 * n + 9]])
            con.executemany("INSERT INTO deployment_changes VALUES (?, 'legacy', ?)",
                            [[dep, sha] for sha in shas[10 * n:10 * n + 10]])
        con.execute("INSERT INTO incidents VALUES ('INC-1', 'legacy', 'production', ?, ?, 'down', NULL, "
                    "'import', NULL, NULL, NULL)",
                    [start + timedelta(days=20), start + timedelta(days=20, hours=3)])
        con.execute("INSERT INTO incidents VALUES ('INC-2', 'legacy', 'production', ?, NULL, 'slow', NULL, "
                    "'import', NULL, NULL, NULL)", [start + timedelta(days=25)])
        tables = [r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()]
        return {t: int(con.execute(f'SELECT count(*) FROM "{t}"').fetchall()[0][0]) for t in tables}
    finally:
        con.close()


@pytest.mark.slow
def test_migrate_a_01_store_then_maintain_keeps_the_metrics(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    want = _old_store(old)
    digest = hashlib.sha256(old.read_bytes()).hexdigest()
    assert want["commits"] == 30 and want["deployment_changes"] == 30

    # --db OLD on any command: exit 2 and one line that says how to migrate; the file is untouched.
    source_repo = write_history(tmp_path / "r.git", 20, release_every=10)
    incidents = write_incidents(tmp_path / "i.csv", 2)
    for args in (("metrics", "--format", "json"), ("deployments",),
                 ("report", "--out", str(tmp_path / "x.json")), ("collect", "git", str(source_repo.path)),
                 ("import", str(incidents)), ("maintain",)):
        line = one_error_line(run_here(Store(str(old)), *args, cwd=tmp_path))
        assert "single-file store of gitops-dora 0.1" in line, line
        assert f"gitops-dora migrate-store {old} NEW" in line, line
    assert hashlib.sha256(old.read_bytes()).hexdigest() == digest

    new = Store(str(tmp_path / "new.ducklake"))
    proc = ok(cli_inprocess.run(["migrate-store", str(old), new.db], env=cli_env(), cwd=tmp_path))
    copied = {t: n for t, n in want.items() if t != "schema_migrations"}
    for table, count in copied.items():
        assert f"  {table}: {count} rows" in proc.stderr, proc.stderr
    assert f"copied {sum(copied.values())} rows in {len(copied)} tables, counts verified" in proc.stderr
    assert counts(new, list(copied)) == copied
    dups = duplicate_keys(new)
    assert dups == dict.fromkeys(dups, 0) and "commits" in dups
    old_con = duckdb.connect(str(old), read_only=True)
    try:
        old_commits = old_con.execute("SELECT * FROM commits ORDER BY ALL").fetchall()
    finally:
        old_con.close()
    assert table_dump(new, ["commits"])["commits"] == old_commits
    assert hashlib.sha256(old.read_bytes()).hexdigest() == digest

    window = ("--since", "2024-01-01", "--until", "2024-03-01")
    before = ok(run_here(new, "metrics", "--format", "json", *window, cwd=tmp_path)).stdout
    (group,) = json.loads(before)["groups"]
    assert (group["service"], group["deployments"], group["deployment_attempts"], group["incidents"]) == \
        ("legacy", 2, 3, 2), group
    listing = ok(run_here(new, "deployments", "--format", "json", cwd=tmp_path)).stdout
    assert [d["changes"] for d in json.loads(listing)] == [10, 10, 10]

    # a second copy into the now filled store is refused
    again = cli_inprocess.run(["migrate-store", str(old), new.db], env=cli_env(), cwd=tmp_path)
    assert "already holds data" in one_error_line(again)

    for retention in ("30", "0"):  # 0: every older snapshot expired and its files deleted
        done = ok(run_here(new, "maintain", "--retention-days", retention, cwd=tmp_path))
        assert "maintain: merged" in done.stderr, done.stderr
        assert ok(run_here(new, "metrics", "--format", "json", *window, cwd=tmp_path)).stdout == before
        assert ok(run_here(new, "deployments", "--format", "json", cwd=tmp_path)).stdout == listing
    assert counts(new, list(copied)) == copied

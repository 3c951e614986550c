"""``GITOPS_DORA_DUCKDB_THREADS`` sets DuckDB's worker threads for every store connection (a pod's CPU
limit, the test suite's two workers on two cores). The suite itself runs with one thread, so these
tests also guard what that could hide: output that depends on how many threads ran the query (a
missing ORDER BY) must show here as a difference between one thread and four."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from analytics.store.connection import open_reader
from tests import cli_inprocess
from tests.store_fixture import DemoStore

READS = [
    ("metrics", "--format", "json"),
    ("metrics", "--trend", "week", "--group-by", "service,environment", "--format", "json"),
    ("deployments", "--format", "json"),
    ("incidents", "--format", "csv"),
    ("deployments", "--format", "csv"),
    ("metrics", "--group-by", "team", "--compare-previous", "--format", "json"),
]


def _run(db: Path, threads: str, *args: str) -> subprocess.CompletedProcess[str]:
    """``gitops-dora --db DB ARGS`` with ``GITOPS_DORA_DUCKDB_THREADS=threads``, run in this process
    (tests/cli_inprocess.py: the command's own environment, which every store connection reads the
    setting from, and the store settings a fresh process starts with; no 0.5 CPU-s of start-up for
    each of the module's 16 commands)."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["GITOPS_DORA_DUCKDB_THREADS"] = threads
    return cli_inprocess.run(["--db", str(db), *args], env=env)


@pytest.mark.parametrize("args", READS, ids=[" ".join(a[:3]) for a in READS])
def test_reads_are_the_same_on_one_thread_and_on_four(demo_store: DemoStore, args: tuple[str, ...]) -> None:
    one = _run(demo_store.db, "1", *args)
    four = _run(demo_store.db, "4", *args)
    assert one.returncode == 0, one.stderr
    assert four.returncode == 0, four.stderr
    assert len(one.stdout) > 200
    assert one.stdout == four.stdout


def test_the_setting_reaches_the_connection(demo_store: DemoStore, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITOPS_DORA_DUCKDB_THREADS", "3")
    con = open_reader(demo_store.db, install_views=False)
    try:
        assert con.execute("SELECT current_setting('threads')").fetchall() == [(3,)]
    finally:
        con.close()


@pytest.mark.parametrize("value", ["0", "two", "-1", "1000"])
def test_a_bad_value_is_one_line_and_exit_2(demo_store: DemoStore, value: str) -> None:
    proc = _run(demo_store.db, value, "deployments", "--format", "json")
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "GITOPS_DORA_DUCKDB_THREADS" in lines[0], proc.stderr

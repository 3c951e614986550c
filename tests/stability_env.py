"""Helpers for the stability and import tests: run the real CLI, write input files, read metrics.

Everything goes through the product's own code paths: the ``gitops-dora`` console command (as a
subprocess, or in-process through the same Typer app), the import command, and the metrics engine
on a read-only snapshot.
"""

from __future__ import annotations

import contextlib
import csv
import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from analytics.cli.main import app
from analytics.config import load_config
from analytics.metrics.engine import MetricsQuery, compute_metrics
from analytics.metrics.window import parse_instant
from analytics.store.connection import open_reader
from tests import cli_inprocess

CLI = str(Path(sys.executable).with_name("gitops-dora"))


def run_cli(
    db: Path, *args: str, config: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """The real console command in a subprocess (exit code and stderr as a user sees them)."""
    argv, env = _argv_env(db, args, config)
    proc = subprocess.run([CLI, *argv], capture_output=True, text=True, env=env, timeout=120)
    return _checked(proc, args, check)


def run_cli_inprocess(
    db: Path, *args: str, config: Path | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """:func:`run_cli` with the command run in this process (tests/cli_inprocess.py): the same exit
    code, stdout and stderr, without a process start (0.4-0.7 CPU-s) per command."""
    argv, env = _argv_env(db, args, config)
    return _checked(cli_inprocess.run(argv, env=env), args, check)


def _argv_env(db: Path, args: Sequence[str], config: Path | None) -> tuple[list[str], dict[str, str]]:
    argv = ["--db", str(db)]
    if config is not None:
        argv += ["--config", str(config)]
    return [*argv, *args], {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}


def _checked(proc: subprocess.CompletedProcess[str], args: Sequence[str], check: bool,
             ) -> subprocess.CompletedProcess[str]:
    if check and proc.returncode != 0:
        raise AssertionError(f"gitops-dora {' '.join(args)} failed ({proc.returncode}): {proc.stderr}")
    return proc


def gitops(db: Path, *args: str, config: Path | None = None) -> str:
    """The same Typer app in-process (fast enough for property tests); raises on failure."""
    argv = ["--db", str(db)]
    if config is not None:
        argv += ["--config", str(config)]
    result = CliRunner().invoke(app, [*argv, *args], catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    if result.exit_code != 0:
        raise AssertionError(f"gitops-dora {' '.join(args)} exited {result.exit_code}: {result.output}")
    return result.output


def write_csv(path: Path, header: Sequence[str], rows: Sequence[Sequence[Any]]) -> Path:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        for row in rows:
            writer.writerow(["" if v is None else v for v in row])
    return path


INCIDENT_HEADER = ("id", "service", "environment", "created_at", "resolved_at", "title", "root_cause")
DEPLOYMENT_HEADER = ("id", "service", "environment", "revision", "deployed_at", "status", "repository")


def metrics(
    db: Path, since: str, until: str, *, group_by: Sequence[str] = ("service", "environment"),
    config: Path | None = None, trend: str | None = None,
) -> list[dict[str, Any]]:
    """The engine's groups for [since, until), as the ``metrics`` command computes them."""
    con = open_reader(db)
    try:
        report = compute_metrics(
            con,
            MetricsQuery(since=parse_instant(since, "--since"), until=parse_instant(until, "--until"),
                         group_by=tuple(group_by), trend=trend),
            load_config(config),
        )
        return report.groups
    finally:
        con.close()


def metrics_and_rows(
    db: Path, since: str, until: str, *sqls: str, group_by: Sequence[str] = ("service", "environment"),
) -> tuple[list[dict[str, Any]], list[list[tuple[Any, ...]]]]:
    """``metrics`` and then ``rows_of(db, *sqls)`` on ONE reader (opening a reader costs about as
    much as a small query): the engine puts back the views it replaced and drops its copies before
    it returns, so the queries read the published snapshot exactly as a fresh reader would."""
    con = open_reader(db)
    try:
        cfg = load_config(None)
        report = compute_metrics(
            con, MetricsQuery(since=parse_instant(since, "--since"), until=parse_instant(until, "--until"),
                              group_by=tuple(group_by)), cfg)
        from analytics.metrics.engine import apply_settings

        apply_settings(con, cfg)
        return report.groups, [con.execute(sql).fetchall() for sql in sqls]
    finally:
        con.close()


def only_group(groups: list[dict[str, Any]], **dims: Any) -> dict[str, Any]:
    found = [g for g in groups if all(g.get(k) == v for k, v in dims.items())]
    assert len(found) == 1, f"expected one group for {dims}, got {len(found)}: {groups}"
    return found[0]


def rows(db: Path, sql: str, params: Sequence[Any] = (), config: Path | None = None) -> list[tuple[Any, ...]]:
    """Query the published snapshot with the metric views installed (and the engine's settings)."""
    from analytics.metrics.engine import apply_settings

    con = open_reader(db)
    try:
        apply_settings(con, load_config(config))
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def rows_of(db: Path, *sqls: str, config: Path | None = None) -> list[list[tuple[Any, ...]]]:
    """Several queries as ``rows`` runs them, on ONE reader (the same snapshot; opening a reader and
    installing the views costs more than a small query), results in order."""
    from analytics.metrics.engine import apply_settings

    con = open_reader(db)
    try:
        apply_settings(con, load_config(config))
        return [con.execute(sql).fetchall() for sql in sqls]
    finally:
        con.close()


@dataclass(frozen=True)
class Reads:
    """Reads of one snapshot on ONE reader (see :func:`snapshot`)."""

    con: Any
    config: Any

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """As :func:`rows`."""
        return self.con.execute(sql, list(params)).fetchall()

    def metrics(self, since: str, until: str, *, group_by: Sequence[str] = ("service", "environment"),
                trend: str | None = None) -> list[dict[str, Any]]:
        """As :func:`metrics`: the engine puts back the views it replaced and drops its copies before
        it returns, so later :meth:`rows` read the snapshot as a fresh reader would."""
        from analytics.metrics.engine import apply_settings

        report = compute_metrics(
            self.con,
            MetricsQuery(since=parse_instant(since, "--since"), until=parse_instant(until, "--until"),
                         group_by=tuple(group_by), trend=trend),
            self.config,
        )
        apply_settings(self.con, self.config)
        return report.groups


@contextlib.contextmanager
def snapshot(db: Path, config: Path | None = None) -> Iterator[Reads]:
    """:func:`rows` and :func:`metrics` of the published snapshot on one reader with the metric
    views and the engine's settings, for a test that reads several times after its writes
    (opening a reader and installing the views costs about 0.1 CPU-s, more than a small query)."""
    from analytics.metrics.engine import apply_settings

    con = open_reader(db)
    try:
        cfg = load_config(config)
        apply_settings(con, cfg)
        yield Reads(con, cfg)
    finally:
        con.close()


# The store tables the metric views and the engine's statements read (analytics/metrics/sql: the views
# and group files name them unqualified). Reads of a small store pay DuckLake's catalog for every
# table of every statement (a metrics run on a tiny store 0.35-0.4 CPU-s, then incident_attribution and
# failure_signals 0.3); on TEMP copies of these tables the same run costs 0.13-0.15 and those reads 0.04,
# for a copy of 0.03 (measured in a loop, one DuckDB thread, before the engine copied commits and
# deployment_changes itself). The engine leaves a TEMP object with a store table's name alone
# (analytics/metrics/engine.copy_table), so it reads the copies too.
VIEW_TABLES = ("deployments", "services", "environments", "incidents", "deployment_revisions",
               "pull_requests", "reconciler_events", "tags", "commits", "deployment_changes")


def copy_view_tables(con: Any) -> None:
    """Copy :data:`VIEW_TABLES` of the reader's snapshot into TEMP tables of the same names, in one
    transaction: every later view, engine run and unqualified query on ``con`` reads the same rows,
    from memory. For a test that reads one snapshot several times; the copies go with the reader.
    The copies are planned without the statistics optimizers, through the engine's own
    ``_without_column_statistics`` (a copy has nothing for them to improve, and on DuckLake they ask
    the catalog for every column's statistics: 0.12-0.13 -> 0.03 CPU-s for these ten tables)."""
    from analytics.metrics.engine import _without_column_statistics, copy_table
    from analytics.metrics.transactions import one_transaction

    row = con.execute("SELECT system.main.current_database()").fetchone()
    database = str(row[0] if row else "main")
    with _without_column_statistics(con), one_transaction(con):
        for name in VIEW_TABLES:
            assert copy_table(con, database, name), f"{name}: already a TEMP object, or not in the store"


@contextlib.contextmanager
def copied_snapshot(db: Path, config: Path | None = None) -> Iterator[Reads]:
    """:func:`snapshot` with the tables the views read copied first (:func:`copy_view_tables`)."""
    from analytics.metrics.engine import apply_settings

    con = open_reader(db)
    try:
        copy_view_tables(con)
        cfg = load_config(config)
        apply_settings(con, cfg)
        yield Reads(con, cfg)
    finally:
        con.close()


def copied_metrics_and_rows(
    db: Path, since: str, until: str, *sqls: str, group_by: Sequence[str] = ("service", "environment"),
) -> tuple[list[dict[str, Any]], list[list[tuple[Any, ...]]]]:
    """:func:`metrics_and_rows` with the tables the views read copied first (:func:`copy_view_tables`)."""
    with copied_snapshot(db) as s:
        return s.metrics(since, until, group_by=group_by), [s.rows(sql) for sql in sqls]

"""The deployments listing query (analytics/listing/deployments.sql) against the command's former
query over the deployment_facts view, printed the Python way: the same bytes through the CLI and
in slices of 13 rows, with and without filters."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics import listing
from analytics.cli import output
from analytics.cli.cmd_read import DEPLOYMENT_COLUMNS, DEPLOYMENTS_SQL
from analytics.store.connection import WriteSession, open_reader, write_unit
from analytics.store.location import resolve
from tests.stability_env import run_cli_inprocess
from tests.stdout_capture import captured

START = datetime(2025, 5, 1, tzinfo=UTC)


def _fill(session: WriteSession) -> None:
    rng = random.Random(11)
    con = session.con
    con.execute("INSERT INTO services VALUES ('pay', 'core'), ('search', 'discovery')")
    con.execute("INSERT INTO environments VALUES ('production', true), ('staging', false)")
    con.execute("INSERT INTO reconciler_objects VALUES ('argocd', 'Application', 'argocd', 'pay-prod', 'pay',"
                " 'production', 'rule:1', NULL, NULL, now()), ('flux', 'Kustomization', 'flux', 'search',"
                " 'search', 'staging', 'name-suffix', NULL, NULL, now())")
    rows = []
    for n in range(300):
        source = rng.choice(["import", "argocd", "flux", "git-tag"])
        ref = {"argocd": "Application/argocd/pay-prod", "flux": "Kustomization/flux/search"}.get(
            source, rng.choice([None, f"v1.{n}", "=HYPERLINK()", "a,b"]))
        at = START + timedelta(minutes=rng.randrange(0, 5000, 10))
        if rng.random() < 0.2:
            at += timedelta(microseconds=rng.randrange(1, 10**6))
        rows.append((f"{source}:dep-{n:03d}", rng.choice(["pay", "search", "edge"]),
                     rng.choice(["production", "staging"]), rng.choice([None, f"{n:040x}"]), at,
                     rng.choice(["success", "failed"]), source, ref))
        for _ in range(rng.randrange(0, 4)):
            con.execute("INSERT INTO deployment_changes (deployment_id, repo, sha) VALUES (?, 'repo', ?)",
                        [rows[-1][0], f"{rng.random()}"])
    con.executemany("INSERT INTO deployments (id, service, environment, revision, deployed_at, status,"
                    " source, source_ref, is_rollback) VALUES (?, ?, ?, ?, ?, ?, ?, ?, false)", rows)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("deployments") / "s.ducklake"
    write_unit(resolve(str(db)), _fill, source="test")
    return db



def _view_output(store: Path, fmt: str, where: str = "TRUE", params: list[Any] | None = None) -> bytes:
    con = open_reader(resolve(str(store)))
    try:
        rows = [dict(zip(DEPLOYMENT_COLUMNS, r, strict=True))
                for r in con.execute(DEPLOYMENTS_SQL.format(where=where), params or []).fetchall()]
    finally:
        con.close()
    return captured(lambda: output.print_rows(rows, DEPLOYMENT_COLUMNS, output.Format(fmt)))


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_output_equals_the_view_printed_in_python(store: Path, fmt: str) -> None:
    expected = _view_output(store, fmt)
    assert run_cli_inprocess(store, "deployments", "--format", fmt).stdout.encode() == expected
    assert expected.count(b"rule:1") > 10 and expected.count(b"\n") > 300


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_filters_equal_the_view(store: Path, fmt: str) -> None:
    proc = run_cli_inprocess(store, "deployments", "--format", fmt, "--team", "core",
                             "--environment", "production", "--since", "2025-05-02", "--until", "2025-05-04")
    expected = _view_output(store, fmt, "d.team IN (?) AND d.environment IN (?) AND d.deployed_at >= ?"
                            " AND d.deployed_at < ?",
                            ["core", "production", START + timedelta(days=1), START + timedelta(days=3)])
    assert proc.stdout.encode() == expected
    assert expected.count(b"\n") > 10


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_sliced_listing_equals_the_view(store: Path, monkeypatch: pytest.MonkeyPatch, fmt: str) -> None:
    monkeypatch.setattr(listing, "SLICE_ROWS", 13)
    con = open_reader(resolve(str(store)))
    try:
        con.execute("SET TimeZone = 'UTC'")
        times, _ = listing.deployments_sql("TRUE")
        assert len(listing.time_slices(con, times, [])) > 10
        header = output.csv_text([], DEPLOYMENT_COLUMNS)
        printed = captured(lambda: listing.print_deployments(
            con, "TRUE", [], columns=DEPLOYMENT_COLUMNS, fmt=fmt, header=header))
    finally:
        con.close()
    assert printed == _view_output(store, fmt)


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_the_python_path_installs_the_views_it_reads(store: Path, monkeypatch: pytest.MonkeyPatch,
                                                     fmt: str) -> None:
    """When DuckDB cannot write the text (JSON times in a session time zone other than UTC), the
    command prints DEPLOYMENTS_SQL's rows over deployment_facts in Python; CSV and JSON open the
    store without the metric views, so that path must install them first."""
    from tests import cli_inprocess

    monkeypatch.setattr(listing, "line_expression", lambda *args, **kwargs: None)
    proc = cli_inprocess.run(["--db", str(store), "deployments", "--format", fmt])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.encode() == _view_output(store, fmt)

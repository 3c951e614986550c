"""The incidents listing query (analytics/listing/incidents.sql) against the incident_attribution
view it stands in for, on a store whose deployments, changes, tags and root causes collide on
purpose (shared sha prefixes, equal deployment times, root causes in every form the view
matches), and `gitops-dora incidents` output against the view's rows printed the Python way."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from analytics import listing
from analytics.cli import output
from analytics.cli.cmd_incidents import COLUMNS
from analytics.config import Config
from analytics.listing import prepare_incidents
from analytics.metrics.engine import apply_settings
from analytics.store.connection import WriteSession, open_reader, write_unit
from analytics.store.location import resolve
from tests.stability_env import run_cli_inprocess as run_cli  # no process start per listing
from tests.stdout_capture import captured

VIEW_SQL = (
    "SELECT incident_id AS id, service, environment, created_at, resolved_at,"
    " CASE WHEN is_open THEN 'open' ELSE 'resolved' END AS status, restore_hours,"
    " attribution_rule, deployment_id, deployment_deployed_at, root_cause, title,"
    " root_cause_unmatched FROM incident_attribution WHERE {where} ORDER BY created_at, incident_id"
)
START = datetime(2025, 3, 1, tzinfo=UTC)
SERVICES = ("pay", "search", "edge")  # edge has no services row (no team)
ENVIRONMENTS = ("production", "staging")


def _hex(rng: random.Random, prefix: str = "") -> str:
    return (prefix + "".join(rng.choice("0123456789abcdef") for _ in range(40)))[:40]


def _fill(session: WriteSession) -> None:
    rng = random.Random(16)
    con = session.con
    con.execute("INSERT INTO services VALUES ('pay', 'core'), ('search', 'discovery')")
    con.execute("INSERT INTO environments VALUES ('production', true), ('staging', false)")
    prefixes = [_hex(rng)[:7] for _ in range(4)]  # shared 7-character prefixes: ambiguous short shas
    deployments = []
    shas: list[str] = []
    for n in range(80):
        at = START + timedelta(minutes=rng.randrange(0, 6 * 24 * 60, 30))  # many equal times
        if rng.random() < 0.1:
            at += timedelta(microseconds=rng.randrange(1, 10**6))
        revision = _hex(rng, rng.choice(prefixes) if rng.random() < 0.3 else "")
        deployments.append((
            f"dep-{n:02d}", rng.choice(SERVICES), rng.choice(ENVIRONMENTS), revision, "repo1", at,
            "success" if rng.random() < 0.8 else "failed", rng.choice(["import", "argocd"]),
            rng.choice([None, f"Application/argocd/app{n % 5}", f"v1.{n}"]),
            rng.choice([None, f"1.{n}.0", revision[:12]]),
        ))
        for _ in range(rng.randrange(0, 3)):
            sha = _hex(rng, rng.choice(prefixes) if rng.random() < 0.3 else "")
            shas.append(sha)
            con.execute("INSERT INTO deployment_changes (deployment_id, repo, sha) VALUES (?, 'repo1', ?)",
                        [f"dep-{n:02d}", sha])
    # ties the choices break by id: two successful deployments at one instant, one revision prefix
    tie = START + timedelta(days=3)
    deployments += [(f"dep-x{n}", "pay", "production", "feedface" + _hex(rng)[8:], "repo1", tie, "success",
                     "import", None, None) for n in (1, 2)]
    con.executemany(
        "INSERT INTO deployments (id, service, environment, revision, repository, deployed_at, status,"
        " source, source_ref, raw_revision, is_rollback) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, false)",
        deployments)
    tags = [(f"v2.{n}", rng.choice(shas)) for n in range(6)]
    con.executemany(
        "INSERT INTO tags VALUES ('repo1', ?, ?, false, TIMESTAMPTZ '2025-03-01 00:00:00+00', NULL)", tags)
    causes: list[Any] = [None, None, None, "", "   ", "nothing", "abc12", "ABCDEF0123"]
    causes += [f" {d[0]} " for d in deployments[:10]] + [d[0] for d in deployments[10:20]]
    causes += [s[:rng.randrange(7, 13)].upper() for s in shas[:15]] + prefixes
    causes += [t[0] for t in tags] + [d[9] for d in deployments[:15] if d[9]]
    causes += [d[8] for d in deployments[:15] if d[8]] + [d[3][:9] for d in deployments[:15]]
    incidents = []
    for n in range(400):
        created = START + timedelta(minutes=rng.randrange(-600, 8 * 24 * 60))
        if rng.random() < 0.3:
            created += timedelta(microseconds=rng.randrange(1, 10**6))
        resolved = None if rng.random() < 0.2 else created + timedelta(seconds=rng.randrange(0, 90_000))
        title = rng.choice(["Outage, big", "=cmd()", "-3.5", " @x", "plain", "a\nb", 'say "hi"', None])
        incidents.append((f"INC-{n:03d}", rng.choice([*SERVICES, None]), rng.choice(ENVIRONMENTS), created,
                          resolved, title, rng.choice(causes)))
    # created at the instant of the tied deployments (gap: the larger id), naming their shared
    # prefix (root cause: the smaller id), and at the instant of other successful deployments
    incidents += [("INC-x1", "pay", "production", tie, None, "tie", None),
                  ("INC-x2", "pay", "production", tie + timedelta(hours=1), None, "tie", "FEEDFACE")]
    incidents += [(f"INC-y{n}", d[1], d[2], d[5], None, "same instant", None)
                  for n, d in enumerate(deployments[:40]) if d[6] == "success"]
    con.executemany(
        "INSERT INTO incidents (id, service, environment, created_at, resolved_at, title, root_cause, source)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, 'import')", incidents)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    db = tmp_path_factory.mktemp("listing") / "s.ducklake"
    write_unit(resolve(str(db)), _fill, source="test")
    return db


@pytest.fixture(scope="module")
def reader(store: Path) -> Iterator[Any]:
    """One reader with the metric views for the module's view comparisons and printed views (an
    open with the views is 0.08-0.1 CPU-s, more than a comparison's queries). Each test sets the
    gap it compares under (or puts the command's settings back), and the listing's statements
    replace their TEMP tables, so no test reads another's state."""
    con = open_reader(resolve(str(store)))
    apply_settings(con, Config())
    yield con
    con.close()


FILTERS = [
    ("TRUE", []),
    ("service IN (?, ?)", ["pay", "edge"]),
    ("(team IN (?) OR service IN (?))", ["core", "search"]),
    ("environment IN (?)", ["staging"]),
    ("created_at >= ? AND created_at < ?", [START + timedelta(days=2), START + timedelta(days=5)]),
    ("is_open", []),
    ("NOT is_open AND service IN (?)", ["search"]),
]


@pytest.mark.parametrize(("where", "params"), FILTERS)
@pytest.mark.parametrize("gap_hours", [168.0, 2.0])
def test_listing_rows_equal_the_attribution_view(
    reader: Any, where: str, params: list[Any], gap_hours: float
) -> None:
    reader.execute(f"SET VARIABLE gitops_dora_max_attribution_gap_hours = {gap_hours!r}::DOUBLE")
    expected = reader.execute(VIEW_SQL.format(where=where), params).fetchall()
    _, sql = prepare_incidents(reader, where, params)
    rows = reader.execute(f"{sql} ORDER BY created_at, id", params).fetchall()
    assert rows == expected
    assert expected
    if where == "TRUE":  # the data exercises every rule, matched or not
        assert {r[7] for r in rows} == {"root_cause", "gap", "unattributed"}
        assert any(r[12] for r in rows) and any(r[7] == "root_cause" and r[10] != r[8] for r in rows)


def _view_output(reader: Any, fmt: str, where: str = "TRUE", params: list[Any] | None = None) -> bytes:
    """What the command printed before the listing query: the view's rows through print_rows, on
    the module's reader with the command's settings put back (an earlier test set another gap)."""
    apply_settings(reader, Config())
    cursor = reader.execute(VIEW_SQL.format(where=where), params or [])
    names = [d[0] for d in cursor.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    return captured(lambda: output.print_rows(rows, COLUMNS, output.Format(fmt)))



@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_output_equals_the_view_printed_in_python(store: Path, reader: Any, fmt: str) -> None:
    proc = run_cli(store, "incidents", "--format", fmt)
    expected = _view_output(reader, fmt)
    assert proc.stdout.encode() == expected
    if fmt == "json":
        rows = json.loads(expected)
        assert len(rows) > 400
        chosen = {r["id"]: (r["attribution_rule"], r["deployment_id"]) for r in rows}
        assert chosen["INC-x1"] == ("gap", "dep-x2") and chosen["INC-x2"] == ("root_cause", "dep-x1")


@pytest.mark.parametrize("fmt", ["csv", "json"])
def test_cli_filters_equal_the_view(store: Path, reader: Any, fmt: str) -> None:
    proc = run_cli(store, "incidents", "--format", fmt, "--service", "pay,search", "--environment",
                   "production", "--since", "2025-03-02", "--until", "2025-03-06T12:00:00+02:00",
                   "--status", "resolved")
    expected = _view_output(
        reader, fmt,
        "service IN (?, ?) AND environment IN (?) AND created_at >= ? AND created_at < ? AND NOT is_open",
        ["pay", "search", "production", datetime(2025, 3, 2, tzinfo=UTC),
         datetime(2025, 3, 6, 10, tzinfo=UTC)],
    )
    assert proc.stdout.encode() == expected
    assert expected.count(b"\n") > 10


def test_cli_output_with_no_rows(store: Path) -> None:
    for fmt, expected in (("json", "[]\n"), ("csv", ",".join(COLUMNS) + "\n")):
        proc = run_cli(store, "incidents", "--format", fmt, "--since", "2030-01-01")
        assert proc.stdout == expected


@pytest.mark.parametrize("fmt", ["csv", "json"])
@pytest.mark.parametrize("gap_hours", [168.0, 2.0])
def test_sliced_listing_equals_the_view(
    reader: Any, monkeypatch: pytest.MonkeyPatch, fmt: str, gap_hours: float
) -> None:
    """Slices of 37 rows: every slice boundary cuts the gap rule's deployments and the sort."""
    monkeypatch.setattr(listing, "SLICE_ROWS", 37)
    con = reader
    apply_settings(con, Config())
    con.execute(f"SET VARIABLE gitops_dora_max_attribution_gap_hours = {gap_hours!r}::DOUBLE")
    created, _ = prepare_incidents(con, "TRUE", [])
    assert len(listing.time_slices(con, created, [])) > 10
    cursor = con.execute(VIEW_SQL.format(where="TRUE"))
    names = [d[0] for d in cursor.description or []]
    rows = [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
    expected = captured(lambda: output.print_rows(rows, COLUMNS, output.Format(fmt)))
    printed = captured(lambda: listing.print_incidents(
        con, "TRUE", [], columns=COLUMNS, fmt=fmt, header=output.csv_text([], COLUMNS)))
    assert printed == expected
    assert expected.count(b"\n") > 400

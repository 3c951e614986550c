"""CLI tables fit the terminal (issue #13): at COLUMNS=80 no row wraps and no value is cut; the
columns that do not fit are left out whole and named on stderr; ``--wide`` shows every column;
COLUMNS is honoured.

Hand-made store (UTC), environments production and staging:
    checkout-service (team payments, repo co):  4 production deployments, 2 staging, with
        reconciler-style ids of 80 characters
    inventory (team supply, repo inv):          3 production deployments, one failed
Incidents (imported from CSV): a long GitHub-style id, one open, one resolved after 5.5 h.

Every check reads the cells by the header's column positions and compares each with the value
the JSON output has for that row, formatted independently here (2 decimals, times to the minute).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

CLI = str(Path(sys.executable).parent / "gitops-dora")


def rid(name: str, sha: str, at: str) -> str:
    return f"argocd:Application/argocd/{name}:{sha}@{at.replace('-', '').replace(':', '')}00Z"


COMMITS: dict[str, tuple[str, str] | tuple[str, str, str | None]] = {
    f"c{i}": ("co" if i < 7 else "inv", f"2026-01-{i + 1:02d}T08:00") for i in range(10)
}
SPECS = [  # (service, environment, repo, at, changes, status)
    ("checkout-service", "production", "co", "2026-01-02T10:00", ["c0"], "success"),
    ("checkout-service", "production", "co", "2026-01-05T10:30", ["c1", "c2"], "success"),
    ("checkout-service", "production", "co", "2026-01-08T16:45", ["c3", "c4"], "success"),
    ("checkout-service", "production", "co", "2026-01-12T09:15", ["c5", "c6"], "success"),
    ("checkout-service", "staging", "co", "2026-01-04T10:00", ["c1"], "success"),
    ("checkout-service", "staging", "co", "2026-01-07T11:00", ["c3"], "success"),
    ("inventory", "production", "inv", "2026-01-09T12:00", ["c7"], "success"),
    ("inventory", "production", "inv", "2026-01-10T12:00", ["c8"], "failed"),
    ("inventory", "production", "inv", "2026-01-11T13:20", ["c9"], "success"),
]
DEPLOYMENTS = {
    rid(f"{svc}-{env}", COMMITS[ch[-1]][0] * 6 + "0123456789ab", at): Deploy(svc, repo, at, ch, env, status)
    for svc, env, repo, at, ch, status in SPECS
}
INCIDENTS_CSV = (
    "id,service,environment,created_at,resolved_at,title,root_cause\n"
    "github:demo-org/checkout-service#1001,checkout-service,production,2026-01-08T18:00:00Z,"
    "2026-01-08T23:30:00Z,Checkout returns 500 for every basket over ten items,\n"
    "INC-7,inventory,production,2026-01-10T13:00:00Z,,Stock levels stale,\n"
)


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("tables")
    path = write_history(tmp / "store.ducklake",
                         services={"checkout-service": "payments", "inventory": "supply"},
                         commits=COMMITS, deployments=DEPLOYMENTS,
                         environments={"production": True, "staging": False})
    (tmp / "incidents.csv").write_text(INCIDENTS_CSV)
    proc = run(path, 200, "import", str(tmp / "incidents.csv"))
    assert proc.returncode == 0, proc.stderr
    return path


def run(db: Path, columns: int | None, *args: str, process: bool = False) -> subprocess.CompletedProcess[str]:
    """The command in this process (tests/cli_inprocess.py: Rich reads the same COLUMNS), or with
    ``process`` the installed script in a subprocess, as a terminal user runs it."""
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_DORA_DB", "COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    if not process:
        return cli_inprocess.run(["--db", str(db), *args], env=env, cwd=db.parent)
    return subprocess.run([CLI, "--db", str(db), *args], capture_output=True, text=True, env=env,
                          cwd=db.parent, timeout=120)


_JSON_SEEN: dict[tuple[str, ...], Any] = {}


def json_of(db: Path, *args: str) -> Any:
    """``COLUMNS=80 gitops-dora --db DB ARGS --format json``, parsed: run once per store and arguments
    in this module (the module's store is only read after its fixture, so a second run would print
    the same; `metrics` and the listings were run up to three times each for the same JSON)."""
    key = (str(db), *args)
    if key not in _JSON_SEEN:
        proc = run(db, 80, *args, "--format", "json")
        assert proc.returncode == 0, proc.stderr
        _JSON_SEEN[key] = json.loads(proc.stdout)
    return _JSON_SEEN[key]


def shown(value: Any) -> str:
    """A JSON value as a table cell should show it, worked out without the CLI's own code."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, float):
        return f"{value:.2f}"
    text = str(value)
    if m := re.fullmatch(r"(\d{4}-\d\d-\d\d)T(\d\d:\d\d)(:\d\d)?Z", text):
        if m[2] == "00:00" and m[3] in (None, ":00"):
            return m[1]
        return f"{m[1]} {m[2]}" + ("" if m[3] in (None, ":00") else m[3])
    return text


def parse_table(stdout: str) -> tuple[list[str], list[dict[str, str]]]:
    """(headers, rows) read by the header's column positions: title, header, rule, one line a row."""
    lines = stdout.rstrip("\n").splitlines()
    header, rule = lines[1], lines[2]
    assert set(rule) == {"─"}, lines[:3]
    starts = [m.start() for m in re.finditer(r"(?:(?<=^)|(?<=   ))\S", header)]
    bounds = [*starts, None]
    names = [header[a:b].strip() for a, b in zip(bounds, bounds[1:], strict=False)]
    rows = [{n: line[a:b].strip() for n, a, b in zip(names, bounds, bounds[1:], strict=False)}
            for line in lines[3:]]
    return names, rows


LABELS = {  # header -> JSON field, for the default (narrow) tables
    "deployed (UTC)": "deployed_at", "service": "service", "env": "environment", "status": "status",
    "changes": "changes", "team": "team", "source": "source", "per week": "deployments_per_week",
    "lead h": "lead_time_median_hours", "lead p90 h": "lead_time_p90_hours", "CFR": "change_failure_rate",
    "recover h": "failed_deployment_recovery_median_hours", "rework": "rework_rate",
    "deploys": "deployments", "created (UTC)": "created_at", "restore h": "restore_hours",
    "rule": "attribution_rule", "repo": "repo", "outcome": "outcome",
    "period": "period_start",
}


def check_fits(proc: subprocess.CompletedProcess[str], json_rows: list[dict[str, Any]], width: int,
               field_of: dict[str, str]) -> list[str]:
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.rstrip("\n").splitlines()
    assert max(len(line) for line in lines) <= width, "\n".join(lines)
    names, rows = parse_table(proc.stdout)
    assert len(rows) == len(json_rows)  # one line per row: nothing wrapped
    compared = 0
    for row, record in zip(rows, json_rows, strict=True):
        for name in names:
            if name in field_of:
                assert row[name] == shown(record[field_of[name]]), (name, row, record)
                compared += 1
    assert compared >= len(json_rows) * 3
    return names


def test_deployments_fit_80_columns_with_whole_values(db: Path) -> None:
    records = json_of(db, "deployments")
    proc = run(db, 80, "deployments")
    names = check_fits(proc, records, 80, LABELS)
    assert names[:5] == ["deployed (UTC)", "service", "env", "status", "changes"]
    left_out = re.search(r"note: (\d+) columns? left out to fit 80 columns \(([^)]*)\); --wide", proc.stderr)
    assert left_out, proc.stderr
    assert "id" in left_out[2].split(", ") and "id" not in names   # 33+ characters do not fit
    assert int(left_out[1]) == 11 - len(names)
    assert not any(r in proc.stdout for r in DEPLOYMENTS)           # no full id, cut or not


def test_metrics_fit_80_columns_in_every_shape(db: Path) -> None:
    for extra in ([], ["--trend", "week"], ["--compare-previous", "--since", "2026-01-08"],
                  ["--group-by", "team,environment"]):
        payload = json_of(db, "metrics", *extra)
        proc = run(db, 80, "metrics", *extra)
        names = check_fits(proc, payload["groups"], 80, LABELS)
        assert "per week" in names and "lead h" in names, (extra, names)   # headline figures stay
        assert "note:" in proc.stderr and proc.stderr.count("\n") <= 3     # no wall of notes


def test_metrics_verbose_prints_the_notes(db: Path) -> None:
    quiet = run(db, 80, "metrics")
    loud = run(db, 80, "metrics", "--verbose")
    notes = json_of(db, "metrics")["notes"]
    assert len(notes) >= 3
    assert all(f"note: {n}" in loud.stderr for n in notes)
    assert not any(f"note: {n}" in quiet.stderr for n in notes)


def test_incidents_and_changes_fit_80_columns(db: Path) -> None:
    records = json_of(db, "incidents")
    assert len(records) == 2
    names = check_fits(run(db, 80, "incidents"), records, 80, LABELS)
    assert {"created (UTC)", "service", "status", "restore h"} <= set(names)
    records = json_of(db, "changes")
    labels = {**LABELS, "lead h": "lead_hours", "deployed (UTC)": "deployed_at"}
    names = check_fits(run(db, 80, "changes"), records, 80, labels)
    assert {"repo", "lead h", "outcome"} <= set(names)


def test_wide_shows_every_column_whole(db: Path) -> None:
    records = json_of(db, "deployments")
    proc = run(db, 80, "deployments", "--wide")
    assert proc.returncode == 0, proc.stderr
    names, rows = parse_table(proc.stdout)
    assert names == list(records[0])                      # every JSON field, under its own name
    assert [r["id"] for r in rows] == [r["id"] for r in records]   # ids whole
    assert [r["revision"] for r in rows] == [r["revision"] for r in records]
    assert "left out" not in proc.stderr
    payload = json_of(db, "metrics")
    proc = run(db, 80, "metrics", "--wide")
    names, rows = parse_table(proc.stdout)
    fields = [k for k in payload["groups"][0] if k != "ratings"]
    assert names[:len(fields)] == fields
    assert {f"{m}_rating" for m in payload["groups"][0]["ratings"]} <= set(names)
    for row, group in zip(rows, payload["groups"], strict=True):
        assert all(row[f] == shown(group[f]) for f in fields)
    for command in ("incidents", "changes"):
        records = json_of(db, command)
        names, rows = parse_table(run(db, 80, command, "--wide").stdout)
        assert set(records[0]) - {"root_cause_unmatched"} <= set(names)


def test_columns_variable_is_honoured(db: Path) -> None:
    narrow, wide = run(db, 80, "deployments", process=True), run(db, 250, "deployments", process=True)
    narrow_names, _ = parse_table(narrow.stdout)
    wide_names, rows = parse_table(wide.stdout)
    assert set(narrow_names) < set(wide_names) and "id" in wide_names
    assert max(len(line) for line in wide.stdout.splitlines()) > 80
    assert "left out" in narrow.stderr and "left out" not in wide.stderr
    for row, full in zip(rows, json_of(db, "deployments"),
                         strict=True):
        parts = re.fullmatch(r"argocd:Application/argocd/([^:]+):([^@]+)@\w+", full["id"])
        assert parts is not None, full["id"]
        name, rev = parts.groups()
        short = f"{name}@{rev[:7]}"   # the object and its revision; start and end when still long
        assert len(row["id"]) <= 32
        assert row["id"] == short if len(short) <= 32 else (
            row["id"] == f"{short[:20]}…{short[-11:]}"), (row["id"], short)
    proc = run(db, 60, "metrics")
    assert max(len(line) for line in proc.stdout.splitlines()) <= 60
    assert "to fit 60 columns" in proc.stderr

"""A user trial's findings in the read commands and reports, each on a store made by the CLI
(``gitops-dora import`` of a deployments file), except the out-of-range dates below:

1. ``report`` JSON dropped control and bidi characters (``"a\\x1b[31mRED"`` came out ``"aRED"``,
   the same as another stored name), while ``metrics --format json`` keeps them verbatim.
2. ``incidents --since B --until A`` (inverted) listed nothing with exit 0; every other read
   command refuses it with exit 2.
3. ``report --out`` naming a FIFO or device (or a symlink to one) replaced it with a rename and
   said "wrote N rows"; ``--out -`` created a file named "-".
4. Extreme dates ended with ``OverflowError`` (exit 1): ``--compare-previous`` over the whole
   calendar, a weekly trend or report in December 9999, and (the store holding a deployment dated
   9999-12-31 or 0001-01-01) every ``metrics`` run without ``--until``. No import path stores such a
   date (imports refuse years outside 1970-2100), so those two stores are written with the store's
   own writer, as tests/test_report.py's store is.
5. A 150-character service name left ``metrics`` showing the service column alone.
"""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

ESC = "a\x1b[31mRED"        # an ANSI colour sequence inside a name
BIDI = "abc\u202edcba"       # a right-to-left override inside a name
TOKEN = "ghp_" + "A1b2C3d4E5" * 3 + "f6G7h8"   # a GitHub token shape: masked in every format
LONG = "svc-" + "x" * 146    # 150 characters
NAMES = [ESC, "aRED", BIDI, "abcdcba", f"leaky-{TOKEN}"]


def run(db: Path, *args: str, columns: int | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("GITOPS_DORA_DB", "COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = str(columns)
    return cli_inprocess.run(["--db", str(db), *args], env=env, cwd=db.parent)


def imported_store(folder: Path, services: list[str]) -> Path:
    """A store made by ``gitops-dora import``: one successful production deployment a day per
    service in September 2026, plus one incident (for ``incidents``)."""
    folder.mkdir(parents=True, exist_ok=True)
    rows = [{"id": f"d{i}", "service": name, "environment": "production", "revision": f"r{i}",
             "deployed_at": f"2026-09-{i + 1:02d}T10:00:00Z", "status": "success"}
            for i, name in enumerate(services)]
    (folder / "deployments.json").write_text(json.dumps(rows))
    (folder / "incidents.csv").write_text(
        "id,service,environment,created_at,resolved_at,title,root_cause\n"
        f"i1,{services[0] if ',' not in services[0] else 'x'},production,2026-09-15T10:00:00Z,"
        "2026-09-15T12:00:00Z,down,\n")
    db = folder / "s.ducklake"
    for name in ("deployments.json", "incidents.csv"):
        proc = run(db, "import", str(folder / name))
        assert proc.returncode == 0, proc.stderr
    return db


@pytest.fixture(scope="module")
def hostile_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return imported_store(tmp_path_factory.mktemp("hostile"), NAMES)


def one_error_line(proc: subprocess.CompletedProcess[str], code: int = 2) -> str:
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert "Traceback" not in proc.stderr and "OverflowError" not in proc.stderr
    return lines[0]


# ---- 1. report JSON keeps text verbatim ------------------------------------------------------------

def test_report_json_keeps_control_and_bidi_characters_as_metrics_json_does(
        hostile_db: Path, tmp_path: Path) -> None:
    metrics = run(hostile_db, "metrics", "--format", "json")
    assert metrics.returncode == 0, metrics.stderr
    # metrics prints what the source said, a report masks token shapes (docs/security.md)
    expected = sorted(g["service"].replace(TOKEN, "***") for g in json.loads(metrics.stdout)["groups"])
    assert ESC in expected and BIDI in expected
    for out, extra in ((tmp_path / "r.json", ()), (tmp_path / "r.txt", ("--format", "json"))):
        proc = run(hostile_db, "report", "--out", str(out), *extra)
        assert proc.returncode == 0, proc.stderr
        doc = json.loads(out.read_text())
        services = sorted(r["service"] for r in doc["rows"])
        assert services == expected
        assert len(set(services)) == len(NAMES)           # no two stored names became one
        assert TOKEN not in out.read_text() and "leaky-" in out.read_text()   # secrets still masked
        assert "\\u001b[31mRED" in out.read_text()         # escaped by the encoder, not dropped


def test_report_csv_and_markdown_keep_their_own_rules(hostile_db: Path, tmp_path: Path) -> None:
    """CSV drops control characters (as every CLI CSV does); Markdown drops them and escapes."""
    proc = run(hostile_db, "report", "--out", str(tmp_path / "r.csv"))
    assert proc.returncode == 0, proc.stderr
    services = sorted(r["service"] for r in csv.DictReader(io.StringIO((tmp_path / "r.csv").read_text())))
    assert ESC not in services and BIDI not in services
    assert services.count("aRED") == 2 and services.count("abcdcba") == 2
    proc = run(hostile_db, "report", "--out", str(tmp_path / "r.md"))
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "r.md").read_text()
    assert "\x1b" not in text and "\u202e" not in text and TOKEN not in text


# ---- 2. incidents refuses an inverted window ---------------------------------------------------------

@pytest.mark.parametrize("until", ["2026-09-01", "2026-10-01"])
def test_incidents_refuses_an_inverted_or_empty_window_like_every_read_command(
        hostile_db: Path, until: str) -> None:
    window = ["--since", "2026-10-01", "--until", until]
    line = one_error_line(run(hostile_db, "incidents", *window))
    assert line == f"error: --until {until} must be after --since 2026-10-01"
    for command in ("deployments", "changes"):
        assert one_error_line(run(hostile_db, command, *window)) == line
    assert run(hostile_db, "incidents", "--since", "2026-09-01", "--until", "2026-10-01",
               "--format", "json").returncode == 0


# ---- 3. --out: special files refused, "-" is stdout ------------------------------------------------

def _special_targets(tmp_path: Path) -> list[Path]:
    fifo = tmp_path / "fifo.csv"
    os.mkfifo(fifo)
    to_fifo = tmp_path / "to-fifo.csv"
    to_fifo.symlink_to(fifo)
    to_null = tmp_path / "to-null.csv"
    to_null.symlink_to(os.devnull)                        # a character device, through a symlink
    return [fifo, to_fifo, to_null]


def test_report_refuses_a_fifo_or_device_target_and_leaves_it_alone(hostile_db: Path, tmp_path: Path) -> None:
    for target in _special_targets(tmp_path):
        before = os.lstat(target)
        line = one_error_line(run(hostile_db, "report", "--out", str(target)))
        assert str(target) in line and "--out -" in line
        after = os.lstat(target)
        assert (after.st_mode, after.st_ino) == (before.st_mode, before.st_ino)   # not replaced
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fifo.csv", "to-fifo.csv", "to-null.csv"]


def test_report_out_dash_writes_to_stdout_and_creates_no_file(hostile_db: Path, tmp_path: Path) -> None:
    proc = run(hostile_db, "report", "--out", "-")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    assert len(rows) == len(NAMES)
    assert proc.stderr.strip() == f"wrote {len(NAMES)} rows (csv) to stdout"
    proc = run(hostile_db, "report", "--out", "-", "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert len(json.loads(proc.stdout)["rows"]) == len(NAMES)
    assert not (hostile_db.parent / "-").exists()


def test_report_still_replaces_a_regular_file(hostile_db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    out.write_text("old\n")
    proc = run(hostile_db, "report", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("service,team,environment,")


# ---- 4. extreme dates ---------------------------------------------------------------------------------

def test_compare_previous_over_the_whole_calendar_is_one_line_exit_2(hostile_db: Path) -> None:
    line = one_error_line(run(hostile_db, "metrics", "--compare-previous",
                              "--since", "1000-01-01", "--until", "9999-12-31"))
    assert "--compare-previous" in line and "--since" in line


def test_trends_and_reports_in_the_last_weeks_of_9999_are_clipped_not_a_crash(
        hostile_db: Path, tmp_path: Path) -> None:
    window = ["--since", "9999-12-01", "--until", "9999-12-31"]
    for trend in ("week", "month"):
        proc = run(hostile_db, "metrics", "--trend", trend, *window, "--format", "json")
        assert proc.returncode == 0, proc.stderr
    out = tmp_path / "x.csv"
    proc = run(hostile_db, "report", "--out", str(out), "--period", "week", *window)
    assert proc.returncode == 0, proc.stderr
    assert out.read_text().startswith("service,")


@pytest.fixture(scope="module")
def far_future_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("far") / "s.ducklake", services={"app": "t"},
                         commits={"c1": ("r", "9999-12-27T10:00"), "c2": ("r", "9999-12-28T10:00")},
                         deployments={"D1": Deploy("app", "r", "9999-12-27T12:00", ["c1"]),
                                      "D2": Deploy("app", "r", "9999-12-31T12:00", ["c2"])})


@pytest.fixture(scope="module")
def year_one_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("one") / "s.ducklake", services={"app": "t"},
                         commits={"c1": ("r", "0001-01-01T10:00"), "c2": ("r", "2026-01-01T10:00")},
                         deployments={"D1": Deploy("app", "r", "0001-01-01T12:00", ["c1"]),
                                      "D2": Deploy("app", "r", "2026-01-02T12:00", ["c2"])})


def _groups(proc: subprocess.CompletedProcess[str]) -> Any:
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_default_window_holds_a_deployment_dated_9999_12_31(far_future_db: Path, tmp_path: Path) -> None:
    doc = _groups(run(far_future_db, "metrics", "--format", "json"))
    assert doc["since"] == "9999-12-27T00:00:00Z" and doc["until"].startswith("9999-12-31T23:59:59")
    assert [g["deployments"] for g in doc["groups"]] == [2]
    doc = _groups(run(far_future_db, "metrics", "--trend", "week", "--format", "json"))
    assert [g["deployments"] for g in doc["groups"]] == [2]
    out = tmp_path / "far.json"
    proc = run(far_future_db, "report", "--period", "week", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    rows = json.loads(out.read_text())["rows"]
    assert [(r["deployments"], r["partial_period"]) for r in rows] == [(2, True)]   # the week is cut


def test_default_window_from_year_one_works_and_compare_previous_is_one_line(year_one_db: Path) -> None:
    doc = _groups(run(year_one_db, "metrics", "--format", "json"))
    assert doc["since"] == "0001-01-01T00:00:00Z" and [g["deployments"] for g in doc["groups"]] == [2]
    line = one_error_line(run(year_one_db, "metrics", "--compare-previous"))
    assert "--compare-previous" in line


# ---- 5. a long text value folds instead of hiding the figures ---------------------------------------

HEADLINES = ("deploys", "per week", "lead h", "CFR", "recover h", "rework")


def test_a_150_character_service_folds_and_the_metric_columns_stay(tmp_path: Path) -> None:
    db = imported_store(tmp_path / "long", [LONG, "short"])
    proc = run(db, "metrics", columns=160)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    header = next(ln for ln in lines if ln.startswith("service"))
    assert all(label in header for label in HEADLINES), proc.stdout
    assert "left out" not in proc.stderr, proc.stderr
    assert all(len(ln) <= 160 for ln in lines)
    assert LONG in "".join(ln.split()[0] if ln.strip() else "" for ln in lines)   # folded, never cut
    for line in lines:
        assert "…" not in line

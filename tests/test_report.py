"""`gitops-dora report`: golden files, agreement with `metrics --trend month`, formula escaping,
atomic replacement and exit codes.

Hand-made store (loaded with the store's own WriteSession.upsert), environment production, UTC:

Service =HYPERLINK("x") (team @ops, repo h-repo):
    H0  2026-01-05 10:00  success  c1 (author 01-04 10:00)   baseline (first ever): no lead time
    H1  2026-01-12 10:00  success  c2 (author 01-11 10:00) -> 24 h
                                   c3 (author 01-12 04:00) ->  6 h
    H2  2026-02-02 10:00  success  c4 (author 02-01 22:00) -> 12 h
Service plain (team web, repo p-repo):
    P0  2026-01-20 00:00  success  c5 (author 01-19 00:00)   baseline
    P1  2026-02-10 00:00  success  c6 (author 02-09 00:00) -> 24 h

`report --period month --since 2026-01-01 --until 2026-03-01` (group by service, team, environment):
    H Jan: deployments 2, days 2, per week 2*7/31 = 0.4516..., changes 3, lead median (6, 24) -> 15,
           p90 = 6 + 0.9 * (24 - 6) = 22.2, baseline_deployments 1
    H Feb: deployments 1, per week 7/28 = 0.25, changes 1, median = p90 = 12
    P Jan: deployments 1 (baseline), changes 1, no lead time (empty cell)
    P Feb: deployments 1, per week 0.25, changes 1, median = p90 = 24
Rows sort by service: '=' (0x3D) sorts before 'p'.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from analytics.json_output import to_jsonable
from analytics.reports import escape_cell
from analytics.store.connection import latest_snapshot
from tests import cli_inprocess
from tests.store_fixture import Deploy, write_history

GOLDEN = Path(__file__).parent / "golden"
EVIL = '=HYPERLINK("x")'
WINDOW = ["--since", "2026-01-01", "--until", "2026-03-01"]


def t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


COMMITS: dict[str, tuple[str, str] | tuple[str, str, str | None]] = {  # sha: (repo, author time)
    "c1": ("h-repo", "2026-01-04T10:00"),
    "c2": ("h-repo", "2026-01-11T10:00"),
    "c3": ("h-repo", "2026-01-12T04:00"),
    "c4": ("h-repo", "2026-02-01T22:00"),
    "c5": ("p-repo", "2026-01-19T00:00"),
    "c6": ("p-repo", "2026-02-09T00:00"),
}
DEPLOYMENTS = {
    "H0": Deploy(EVIL, "h-repo", "2026-01-05T10:00", ["c1"]),
    "H1": Deploy(EVIL, "h-repo", "2026-01-12T10:00", ["c2", "c3"]),
    "H2": Deploy(EVIL, "h-repo", "2026-02-02T10:00", ["c4"]),
    "P0": Deploy("plain", "p-repo", "2026-01-20T00:00", ["c5"]),
    "P1": Deploy("plain", "p-repo", "2026-02-10T00:00", ["c6"]),
}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_history(tmp_path_factory.mktemp("report") / "store.duckdb",
                         services={EVIL: "@ops", "plain": "web"}, commits=COMMITS, deployments=DEPLOYMENTS)


def run(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The CLI run beside the database, so a gitops-dora.yaml in the checkout cannot interfere."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    return cli_inprocess.run(["--db", str(db), *args], env=env, cwd=db.parent)  # in this process


def report_rows(path: Path) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text())))


def test_month_report_matches_golden_csv(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    proc = run(db, "report", "--out", str(out), "--period", "month", *WINDOW)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert normalised(out.read_text(), db) == (GOLDEN / "report_month.csv").read_text()


def test_month_report_values_are_the_hand_worked_ones(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    assert run(db, "report", "--out", str(out), "--period", "month", *WINDOW).returncode == 0
    rows = report_rows(out)
    key = [(r["service"], r["team"], r["period_start"][:7]) for r in rows]
    assert key == [("'" + EVIL, "'@ops", "2026-01"), ("'" + EVIL, "'@ops", "2026-02"),
                   ("plain", "web", "2026-01"), ("plain", "web", "2026-02")]
    h_jan, h_feb, p_jan, p_feb = rows
    assert (h_jan["deployments"], h_jan["changes"], h_jan["baseline_deployments"]) == ("2", "3", "1")
    assert h_jan["deployments_per_week"] == "0.45"           # 2 * 7 / 31, two decimals
    assert h_jan["lead_time_median_hours"] == "15.00"
    assert h_jan["lead_time_p90_hours"] == "22.20"            # not 22.200000000000003
    assert h_feb["lead_time_median_hours"] == "12.00"
    assert h_feb["deployments_per_week"] == "0.25"
    assert p_jan["lead_time_median_hours"] == ""           # baseline only: no lead time
    assert p_feb["lead_time_p90_hours"] == "24.00"
    assert h_jan["change_failure_rate"] == "0.0000"           # ratios: four decimals
    assert [r["partial_period"] for r in rows] == ["false"] * 4   # whole months
    assert h_jan["period_start"] == "2026-01-01T00:00:00Z" and h_jan["period_end"] == "2026-02-01T00:00:00Z"
    assert h_jan["environment"] == "production"
    # ratings flattened: a cluster and a bucket column per rated metric
    assert h_jan["lead_time_rating"] in ("elite", "high", "medium", "low")
    assert h_jan["lead_time_bucket"] == "1h_1d"             # 15 h is under a day


def test_report_period_month_matches_metrics_trend_month(db: Path, tmp_path: Path) -> None:
    """ACCEPTANCE: every field of every group of `metrics --trend month` is in the report row."""
    out = tmp_path / "report.csv"
    assert run(db, "report", "--out", str(out), "--period", "month", *WINDOW).returncode == 0
    proc = run(db, "metrics", "--trend", "month", "--group-by", "service,team,environment",
               "--format", "json", *WINDOW)
    assert proc.returncode == 0, proc.stderr
    groups = json.loads(proc.stdout)["groups"]
    rows = report_rows(out)
    assert len(rows) == len(groups) == 4
    for group, row in zip(groups, rows, strict=True):
        compared = 0
        for field, value in group.items():
            if field == "ratings":
                for metric, rating in value.items():
                    assert row[f"{metric}_rating"] == (rating["cluster"] or "")
                    assert row[f"{metric}_bucket"] == (rating["bucket"] or "")
                continue
            assert field in row, field
            compared += 1
            cell = row[field]
            if value is None:
                assert cell == "", field
            elif isinstance(value, bool):
                assert cell == str(value).lower()
            elif isinstance(value, float):   # CSV rounds: 4 decimals for ratios, 2 for the rest
                decimals = 4 if field.endswith("_rate") else 2
                assert cell == f"{value:.{decimals}f}", field
            elif isinstance(value, int):
                assert cell == str(value), field
            else:
                assert cell == escape_cell(str(value)), field
        assert compared >= 10


def test_json_and_markdown_goldens(db: Path, tmp_path: Path) -> None:
    js, md = tmp_path / "r.json", tmp_path / "r.md"
    assert run(db, "report", "--out", str(js), "--period", "month", *WINDOW).returncode == 0
    assert run(db, "report", "--out", str(md), "--format", "markdown", "--period", "month",
               *WINDOW).returncode == 0
    assert normalised(js.read_text(), db) == (GOLDEN / "report_month.json").read_text()
    assert normalised(md.read_text(), db) == (GOLDEN / "report_month.md").read_text()
    doc = json.loads(js.read_text())
    assert doc["rows"][0]["service"] == EVIL               # JSON is not a spreadsheet: kept verbatim
    assert markdown_cells(md.read_text())[0][0] == EVIL    # Markdown shows it as it is (rendered)


def markdown_cells(text: str) -> list[list[str]]:
    """The body cells of a report's table as a CommonMark renderer with GFM tables shows them,
    and a check that nothing in them became markup: every inline token is plain text (or the
    backslash escapes that make it so)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(text)
    rows: list[list[str]] = []
    in_body = False
    for token in tokens:
        if token.type in ("tbody_open", "tbody_close"):
            in_body = token.type == "tbody_open"
        elif in_body and token.type == "tr_open":
            rows.append([])
        elif in_body and token.type == "inline":
            kinds = {c.type for c in token.children or []}
            assert kinds <= {"text", "text_special"}, (token.content, kinds)
            rows[-1].append("".join(c.content for c in token.children or []))
    return rows


def test_markdown_cells_show_hostile_text_as_text(tmp_path: Path) -> None:
    """A service name with a link, an image, raw HTML, emphasis, code, a bare URL, an e-mail address
    and a table pipe: the rendered cell is that text, with no link, image, HTML or emphasis."""
    hostile = ("a|b [x](http://evil) ![i](http://evil/p.png) <img src=x onerror=alert(1)> *bold* _it_ "
               "`code` ~~gone~~ http://evil.example www.evil.example a@evil.example &amp; \\[y]")
    db = tmp_path / "h.ducklake"
    deployments = tmp_path / "d.csv"
    with deployments.open("w", newline="") as fh:
        csv.writer(fh).writerows([["id", "service", "environment", "revision", "deployed_at"],
                                  ["d1", hostile, "production", "v1", "2026-01-05T10:00:00Z"]])
    assert run(db, "import", str(deployments)).returncode == 0
    out = tmp_path / "r.md"
    assert run(db, "report", "--out", str(out), "--format", "markdown", *WINDOW).returncode == 0
    assert markdown_cells(out.read_text())[0][0] == hostile
    assert "](http" not in out.read_text()                 # no link target left unescaped in the file


def test_whole_window_report_has_one_row_per_group(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert run(db, "report", "--out", str(out), "--group-by", "team", *WINDOW).returncode == 0
    rows = report_rows(out)
    # teams @ops (H0, H1, H2) and web (P0, P1), one period each = the window
    assert [(r["team"], r["deployments"]) for r in rows] == [("'@ops", "3"), ("web", "2")]
    assert all(r["service"] == "" and r["environment"] == "" for r in rows)
    assert rows[0]["period_start"] == "2026-01-01T00:00:00Z"
    assert rows[0]["period_end"] == "2026-03-01T00:00:00Z"


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        (EVIL, "'" + EVIL),
        ("+49 30 1234", "'+49 30 1234"),
        ("-1+2", "'-1+2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("-3.5", "-3.5"),            # plain numbers stay numbers
        ("+12", "+12"),
        ("-1e-3", "-1e-3"),
        ("pay=ments", "pay=ments"),  # only the first character matters
        ("", ""),
        ("\rcmd", "'\rcmd"),
        ("|calc", "'|calc"),                     # DDE
        ("\uff1dSUM(A1)", "'\uff1dSUM(A1)"),     # full-width = + - @ are read as formulas too
        ("\uff0b1", "'\uff0b1"),
        ("\uff0d1", "'\uff0d1"),
        ("\uff20SUM(A1)", "'\uff20SUM(A1)"),
        ("  =1+1", "'  =1+1"),                   # leading spaces are skipped by spreadsheets
        (" -3.5", " -3.5"),
    ],
)
def test_formula_escaping(cell: str, expected: str) -> None:
    assert escape_cell(cell) == expected


def test_report_replaces_atomically_and_leaves_no_temp_files(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "report.csv"
    out.write_text("old report\n")
    reader = out.open()                 # a reader that opened the old report keeps reading it whole
    before = out.stat().st_ino
    assert run(db, "report", "--out", str(out), *WINDOW).returncode == 0
    assert out.stat().st_ino != before  # renamed into place, not rewritten in place
    assert reader.read() == "old report\n"
    reader.close()
    assert out.read_text().startswith("service,team,environment,period_start")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--period", "year"], "--period 'year': use week or month"),
        (["--since", "yesterday"], "--since 'yesterday'"),
        (["--group-by", "planet"], "unknown dimension 'planet'"),
        (["--format", "xml"], "xml"),
    ],
)
def test_bad_input_fails_with_one_line_and_keeps_the_old_report(
    db: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    out = tmp_path / "report.csv"
    out.write_text("old report\n")
    proc = run(db, "report", "--out", str(out), *args)
    assert proc.returncode == 2
    assert message in proc.stderr
    assert out.read_text() == "old report\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.csv"]


def test_missing_folder_and_missing_database_exit_2_with_one_line(db: Path, tmp_path: Path) -> None:
    proc = run(db, "report", "--out", str(tmp_path / "nope" / "r.csv"))
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot write report {tmp_path / 'nope' / 'r.csv'}: folder {tmp_path / 'nope'} does not exist"
    ]
    proc = run(tmp_path / "absent.duckdb", "report", "--out", str(tmp_path / "r.csv"))
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1 and "no database" in proc.stderr
    assert not (tmp_path / "r.csv").exists()


def normalised(text: str, db: Path) -> str:
    """The report with the store snapshot it records (checked here to be the store's newest)
    replaced by placeholders, so the goldens do not depend on when the fixture was committed."""
    snap = latest_snapshot(db)
    assert snap is not None
    when = str(to_jsonable(snap.time))  # as the report writes it
    csv_text = text.startswith("service,")
    assert str(snap.id) in text and (csv_text or when in text), (snap, text[:400])
    text = text.replace(when, "SNAPSHOT_TIME")
    text = re.sub(rf"(\(snapshot |--as-of |\"snapshot_id\": ){snap.id}\b", r"\1SNAPSHOT_ID", text)
    # rows: snapshot_id, then partial_period (the last column)
    text = re.sub(rf"\| {snap.id} \| (true|false) \|$", r"| SNAPSHOT_ID | \1 |", text, flags=re.M)  # Markdown
    return re.sub(rf",{snap.id},(true|false)$", r",SNAPSHOT_ID,\1", text, flags=re.M)


def _write_goldens(db: Path, tmp: Path) -> dict[str, Any]:  # pragma: no cover - regeneration helper
    """Regenerate with: python -c 'from tests.test_report import *; ...' (then review by hand)."""
    names = {"report_month.csv": [], "report_month.json": [], "report_month.md": ["--format", "markdown"]}
    for name, extra in names.items():
        out = tmp / name
        run(db, "report", "--out", str(out), "--period", "month", *WINDOW, *extra)
        (GOLDEN / name).write_text(normalised(out.read_text(), db))
    return names


def test_empty_window_still_writes_the_full_header(db: Path, tmp_path: Path) -> None:
    """No deployment in 2025: no rows, but the same columns a scheduled consumer always reads."""
    full, empty = tmp_path / "full.csv", tmp_path / "empty.csv"
    assert run(db, "report", "--out", str(full), *WINDOW).returncode == 0
    proc = run(db, "report", "--out", str(empty), "--since", "2025-01-01", "--until", "2025-02-01")
    assert proc.returncode == 0, proc.stderr
    assert empty.read_text() == full.read_text().splitlines()[0] + "\n"
    assert "wrote 0 rows" in proc.stderr


def test_benchmark_year_changes_the_rating_columns_and_bad_year_fails(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "r.csv"
    assert run(db, "report", "--out", str(out), "--benchmark", "2019", *WINDOW).returncode == 0
    header = out.read_text().splitlines()[0].split(",")
    assert "time_to_restore_rating" in header                  # 2019 rates time to restore
    assert "failed_deployment_recovery_time_rating" not in header
    proc = run(db, "report", "--out", str(out), "--benchmark", "1999", *WINDOW)
    assert proc.returncode == 2 and "--benchmark 1999" in proc.stderr


def test_precision_option_and_json_keeps_full_precision(db: Path, tmp_path: Path) -> None:
    csv_out, js = tmp_path / "r.csv", tmp_path / "r.json"
    month = ["--period", "month", *WINDOW]
    assert run(db, "report", "--out", str(csv_out), "--precision", "3", *month).returncode == 0
    h_jan = report_rows(csv_out)[0]
    assert h_jan["deployments_per_week"] == "0.452" and h_jan["change_failure_rate"] == "0.000"
    assert h_jan["lead_time_p90_hours"] == "22.200" and h_jan["deployments"] == "2"   # integers stay integers
    assert run(db, "report", "--out", str(js), "--period", "month", *WINDOW).returncode == 0
    assert json.loads(js.read_text())["rows"][0]["deployments_per_week"] == 2 * 7 / 31   # unrounded
    assert run(db, "report", "--out", str(js), "--precision", "1", *month).returncode == 0
    assert json.loads(js.read_text())["rows"][0]["deployments_per_week"] == 0.5
    md = tmp_path / "r.md"
    assert run(db, "report", "--out", str(md), "--precision", "0", *WINDOW).returncode == 0
    text = md.read_text()
    assert "| 12 |" in text and "| 24 |" in text and "| 12.00 |" not in text   # whole-window medians
    proc = run(db, "report", "--out", str(csv_out), "--precision", "-1", *WINDOW)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1


def test_partial_periods_are_flagged_and_not_rated(db: Path, tmp_path: Path) -> None:
    """Weeks over [2026-01-01 (a Thursday), 2026-03-01 (a Sunday)): the first week is 4 days,
    the last 6 (2026-02-23 .. 03-01); the weeks between are whole."""
    out = tmp_path / "w.csv"
    assert run(db, "report", "--out", str(out), "--period", "week", "--group-by", "environment",
               *WINDOW).returncode == 0
    rows = report_rows(out)
    rating_columns = [c for c in rows[0] if c.endswith(("_rating", "_bucket"))]
    assert rating_columns
    partial = [(r["period_start"][:10], r["period_end"][:10]) for r in rows if r["partial_period"] == "true"]
    assert partial == [("2026-01-01", "2026-01-05"), ("2026-02-23", "2026-03-01")]
    for row in rows:
        if row["partial_period"] == "true":
            assert all(row[c] == "" for c in rating_columns), row   # not rated
            assert row["deployments"] != ""                          # but the figures are there
        else:
            assert row["partial_period"] == "false"
    assert any(r["deployment_frequency_rating"] for r in rows if r["partial_period"] == "false")
    # a month the window starts inside is partial too; the whole-window report never is
    assert run(db, "report", "--out", str(out), "--period", "month", "--since", "2026-01-10",
               "--until", "2026-03-01").returncode == 0
    assert [r["partial_period"] for r in report_rows(out)] == ["true", "false", "true", "false"]
    window = ["--since", "2026-01-10", "--until", "2026-02-11"]
    assert run(db, "report", "--out", str(out), *window).returncode == 0
    assert {r["partial_period"] for r in report_rows(out)} == {"false"}


@pytest.mark.parametrize(
    ("name", "extra", "message"),
    [
        ("folder/", [], "is a folder"),
        ("sub", [], "is a folder"),          # an existing folder (created below)
        ("r.xlsx", [], "unknown suffix .xlsx; use .csv, .json, .md or .markdown, or give --format"),
        ("r.txt", [], "unknown suffix .txt"),
    ],
)
def test_out_folder_or_unknown_suffix_is_one_line_and_writes_nothing(
    db: Path, tmp_path: Path, name: str, extra: list[str], message: str
) -> None:
    (tmp_path / "sub").mkdir()
    target = str(tmp_path / name) + ("/" if name.endswith("/") else "")   # Path drops a trailing slash
    proc = run(db, "report", "--out", target, *extra, *WINDOW)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --out ") and message in lines[0], proc.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sub"] and not any((tmp_path / "sub").iterdir())


def test_any_name_is_fine_with_an_explicit_format(db: Path, tmp_path: Path) -> None:
    out = tmp_path / "weekly.txt"
    assert run(db, "report", "--out", str(out), "--format", "markdown", *WINDOW).returncode == 0
    assert out.read_text().startswith("# DORA metrics report")
    plain = tmp_path / "dora-report"              # no suffix: CSV, as before
    assert run(db, "report", "--out", str(plain), *WINDOW).returncode == 0
    assert plain.read_text().startswith("service,team,environment,")

"""Streaming deployments CSV imports (issue #16): a large deployments CSV is read by DuckDB's CSV
reader, checked in SQL and its revisions resolved set-based, loading exactly what the record path
(parse_file + deployments.load) loads: the same deployments, deployment_revisions,
deployment_changes (attribution through git), data warnings and summary line. A file with a row
the record path rejects goes to that path, which names the line.

The repositories are real: ``api`` (a git repository with a merge, annotated and lightweight
tags) collected with ``collect git``, and ``lab`` (commits imported from a CSV, two of whose shas
share a 7-digit prefix, so an abbreviation of it is ambiguous).
"""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics.config import Config
from analytics.errors import SourceError
from analytics.importers import deployments
from analytics.importers.base import detect_csv_kind, parse_file, sniff_csv
from analytics.store.connection import connect, open_reader, write_unit
from analytics.store.location import resolve
from tests.gitrepo import GitRepo
from tests.stability_env import gitops, run_cli_inprocess
from tests.store_fixture import copy_store

HEADER = ("id", "service", "environment", "revision", "deployed_at", "status", "repository", "started_at",
          "rollback")
LAB = [("abcdef1" + "0" * 33, ""), ("abcdef1" + "1" * 33, "abcdef1" + "0" * 33),
       ("abcdef2" + "2" * 33, "abcdef1" + "1" * 33)]


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The api repository (its main-line shas oldest first, and tags) and the lab commits file."""
    root = tmp_path_factory.mktemp("repos")
    api = GitRepo.init(root / "api")
    shas = []
    for day in range(1, 13):
        shas.append(api.commit(f"change {day}", f"2025-01-{day:02d}T10:00:00+00:00"))
        if day == 5:
            api.branch("feature")
            side = api.commit("feature work", "2025-01-05T12:00:00+00:00")
            api.checkout("main")
            shas.append(api.commit("main work", "2025-01-05T13:00:00+00:00"))
            api.merge("feature", "2025-01-05T14:00:00+00:00")
            shas.append(api.rev_parse())
        if day in (3, 8):
            api.annotated_tag(f"v1.{day}.0", f"2025-01-{day:02d}T11:00:00+00:00")
        if day == 10:
            api.tag("nightly-10")
    lab = root / "lab-commits.csv"
    with lab.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["repository", "sha", "parents", "authored_at"])
        for k, (sha, parent) in enumerate(LAB):
            writer.writerow(["lab", sha, parent, f"2025-01-0{k + 1}T09:00:00Z"])
    return {"api": api.path, "shas": shas, "side": side, "lab": lab}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, repos: dict[str, Any]) -> Path:
    """The store every test starts from (api collected, lab's commits imported), built once through
    the CLI and copied by :func:`_store` (0.01 CPU-s a copy, against 0.4-0.8 for a build)."""
    db = tmp_path_factory.mktemp("base") / "s.ducklake"
    gitops(db, "collect", "git", str(repos["api"]), "--repo-id", "api", "--deploy-tags", "")
    gitops(db, "import", str(repos["lab"]))
    return db


def _store(path: Path, base: Path) -> Path:
    """A writable copy of ``base`` (tests/store_fixture.copy_store): the same snapshots and rows."""
    return copy_store(base, path / "s.ducklake")


def _rows(repos: dict[str, Any], count: int, seed: int = 3) -> list[list[str]]:
    """Deployments in time order over three services and environments whose revisions are full,
    abbreviated and padded shas, tags, unknown and ambiguous revisions and multi-repo pairs,
    with formula-looking and padded cells, naive times, failures and rollbacks."""
    rng = random.Random(seed)
    shas: list[str] = repos["shas"]
    out = []
    for i in range(count):
        sha = shas[min(len(shas) - 1, i * len(shas) // count)]
        kind = rng.randrange(14)
        repository = "api"
        revision = {
            0: sha, 1: sha[:7], 2: sha[:12].upper(), 3: f"  {sha}  ", 4: "v1.3.0", 5: "nightly-10",
            6: "v9.9.9", 7: "abcdef1", 8: "abcdef2", 9: "=HYPERLINK(\"x\")", 10: sha,
        }.get(kind, sha)
        if kind in (7, 8):
            repository = rng.choice(["lab", ""])
        if kind == 11:
            repository = ""
            revision = rng.choice([f"api={sha[:9]} lab=abcdef2", f"api={sha},lab={LAB[0][0]}",
                                   "lab=abcdef1;api=v1.8.0", f"api={repos['side']}", "api=nope web=v1"])
        if kind == 12:
            repository = ""  # a plain revision without a repository: resolved in every repository
        out.append([
            f"D-{i}" if i % 17 else f" D-{i}\u00a0",
            rng.choice(["api", "web", "=cmd|' /C calc'!A0", " shop "]),
            rng.choice(["production", "staging", "", " production "]),
            revision,
            rng.choice([f"2025-01-{1 + i * 12 // count:02d}T{10 + i % 12:02d}:{i % 60:02d}:00Z",
                        f"2025-01-{1 + i * 12 // count:02d} {10 + i % 12:02d}:{i % 60:02d}",
                        f"2025-01-{1 + i * 12 // count:02d}T{10 + i % 12:02d}:{i % 60:02d}:00+02:00"]),
            rng.choice(["success", "Failed", "OK", "", "error", " succeeded "]),
            repository,
            rng.choice(["", f"2025-01-{1 + i * 12 // count:02d}T08:00:00Z"]),
            rng.choice(["", "false", "TRUE", "yes", "0", " 1 "]),
        ])
    return out


def _write(path: Path, rows: list[list[str]], header: tuple[str, ...] = HEADER) -> Path:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buf.getvalue(), encoding="utf-8")
    return path


def _streamed(db: Path, src: Path) -> str | None:
    """The stream's summary line (None: the file needs the record path), in one write unit."""
    sniff = sniff_csv(src, min_bytes=0)
    assert sniff is not None
    assert detect_csv_kind(sniff) is deployments

    def work(session: Any) -> str | None:
        summary = deployments.load_csv_stream(session, sniff, Config())
        return summary.line() if summary else None

    return write_unit(resolve(str(db)), work, source="import:deployments", target=str(src))


def _exact(db: Path, src: Path) -> str:
    parsed = parse_file(src)
    return write_unit(resolve(str(db)), lambda s: deployments.load(s, parsed, Config()).line(),
                      source="import:deployments", target=str(src))


TABLES = {  # every table a deployments import writes, and how _tables reads it (sorted)
    "deployments": "SELECT * FROM deployments ORDER BY id",
    "deployment_revisions": "SELECT * FROM deployment_revisions ORDER BY ALL",
    "deployment_changes": "SELECT * FROM deployment_changes ORDER BY ALL",
    "data_warnings": "SELECT source, target, kind, detail, count FROM data_warnings ORDER BY ALL",  # no time
    "services": "SELECT * FROM services ORDER BY ALL",
    "environments": "SELECT * FROM environments ORDER BY ALL",
}


def _tables(db: Path) -> list[Any]:
    """Every table a deployments import writes, sorted (warnings without their time). Read from the
    tables themselves, so the reader goes without the metric views (0.03 instead of 0.08 CPU-s an
    open; this is read some 40 times a module run)."""
    con = open_reader(resolve(str(db)), install_views=False)
    try:
        return [con.execute(sql).fetchall() for sql in TABLES.values()]
    finally:
        con.close()


def _tables_now(con: duckdb.DuckDBPyConnection) -> list[Any]:
    """What :func:`_tables` reads, on ``con`` (a connection not pinned to a snapshot: each
    statement reads the store's newest one). The six row counts are read in one statement first and
    a table without rows is not read again: on DuckLake a ``SELECT *`` of an empty table costs
    ~1 ms of catalog work per column (20-30 ms for ``deployments``), its count ~5 ms; the rows of
    an empty table are ``[]`` either way, and a table with rows is read whole."""
    counts = con.execute("SELECT " + ", ".join(f"(SELECT count(*) FROM {t})" for t in TABLES)).fetchone()
    assert counts is not None
    return [con.execute(sql).fetchall() if n else [] for n, sql in zip(counts, TABLES.values(), strict=True)]


def test_streamed_store_equals_the_record_path(tmp_path: Path, repos: dict[str, Any], base: Path) -> None:
    src = _write(tmp_path / "deploys.csv", _rows(repos, 600))
    a, b = _store(tmp_path / "a", base), _store(tmp_path / "b", base)
    streamed, exact = _streamed(a, src), _exact(b, src)
    assert streamed is not None
    assert streamed == exact
    stream_tables, exact_tables = _tables(a), _tables(b)
    assert stream_tables == exact_tables
    deps, pairs, changes, warnings = exact_tables[:4]
    # the file exercised what it means to: every revision format, pairs, changes and warnings
    assert {d[13] for d in deps} == {"sha", "tag", "unknown"}
    assert {d[4] for d in deps} >= {"api", "lab", None}
    assert any(d[10] for d in deps) and any(d[7] == "failed" for d in deps)
    assert pairs and {p[1] for p in pairs} == {"api", "lab", "web"}
    assert len(changes) > 10
    assert {w[2] for w in warnings} == {"default_environment", "unresolved_revision"}
    assert "deployments of several repositories" in exact and "attributed through git" in exact


def test_reimport_of_changed_rows_equals_the_record_path(tmp_path: Path, repos: dict[str, Any],
                                                         base: Path) -> None:
    rows = _rows(repos, 300, seed=5)
    changed = [list(r) for r in rows]
    changed[1][3] = "v1.8.0"
    changed[2][5] = "failed"
    changed[3][6], changed[3][3] = "", f"api={repos['shas'][2]} lab=abcdef2"  # now shipping two
    changed = [r for r in changed if not (r[6] == "" and "=" in r[3])][:-5] + changed[-5:]  # pairs gone
    changed.append(["NEW", "api", "production", repos["shas"][-1], "2025-02-01T00:00:00Z", "", "api", "", ""])
    first, second = _write(tmp_path / "1.csv", rows), _write(tmp_path / "2.csv", changed)
    a, b = _store(tmp_path / "a", base), _store(tmp_path / "b", base)
    for path in (first, second, second):
        assert _streamed(a, path) == _exact(b, path)
        assert _tables(a) == _tables(b)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, base: Path
           ) -> Iterator[tuple[Path, list[Any], duckdb.DuckDBPyConnection]]:
    """A store the rejected files leave as it was, its tables as built, and one read-only
    connection for the module's checks: every test checks the store still reads exactly so (after
    the stream's refusal and after the record path's), so a refused file that changed it would also
    fail every later test of the module. The connection is not pinned to a snapshot (a reader of
    ``open_reader`` is), so each statement reads the newest one: one open instead of 26 (~0.035
    CPU-s each)."""
    db = _store(tmp_path_factory.mktemp("shared"), base)
    before = _tables(db)
    con = connect(resolve(str(db)), read_only=True)
    try:
        assert _tables_now(con) == before
        yield db, before, con
    finally:
        con.close()


GOOD = ["OK-1", "api", "production", "v1.3.0", "2025-01-05T00:00:00Z", "success", "api", "", ""]


@pytest.mark.parametrize(
    ("column", "value"),
    [
        (0, "OK-1"),  # duplicate id
        (0, ""),
        (1, "  "),
        (3, ""),
        (4, "2025-13-01T00:00:00Z"),
        (4, "01/02/2025"),
        (4, "1969-12-31T23:00:00Z"),
        (4, "2025-01-01T00:00:00Z"),  # started_at (below) after deployed_at
        (5, "maybe"),
        (5, "\u212aO"),  # a Kelvin sign: only Python's lower() would make it "ko"
        (8, "perhaps"),
        (3, "api=a1b2c3d api=v1.3.0"),  # a repository twice
        (3, "api= web=v1"),
    ],
)
def test_a_row_the_record_path_rejects_is_not_streamed(
    tmp_path: Path, shared: tuple[Path, list[Any], duckdb.DuckDBPyConnection], column: int, value: str
) -> None:
    bad = ["X-1", "api", "production", "v1.3.0", "2025-01-06T00:00:00Z", "success", "api",
           "2025-01-02T00:00:00Z", ""]
    bad[column] = value
    if column == 3 and "=" in value:
        bad[6] = ""
    src = _write(tmp_path / "d.csv", [GOOD, ["OK-2", *GOOD[1:]], bad])
    db, before, con = shared
    assert _streamed(db, src) is None
    assert _tables_now(con) == before
    with pytest.raises(SourceError, match=r"line 4: .*nothing from this file was imported"):
        _exact(db, src)
    assert _tables_now(con) == before


def _big(repos: dict[str, Any], count: int) -> list[list[str]]:
    shas: list[str] = repos["shas"]
    return [[f"BIG-{i:06d}", f"svc{i % 5}", ["production", "staging", ""][i % 3],
             shas[i * len(shas) // count][: 7 + i % 30], "2025-01-01T00:00:00Z", "success", "api",
             "", "false"] for i in range(count)]


def test_cli_streams_a_large_file_like_the_record_path(tmp_path: Path, repos: dict[str, Any],
                                                       base: Path) -> None:
    rows = _big(repos, 20_000)
    for i, row in enumerate(rows):
        row[4] = f"2025-01-{1 + i * 12 // len(rows):02d}T{i % 24:02d}:{i % 60:02d}:{i % 59:02d}Z"
    src = _write(tmp_path / "big.csv", rows)
    assert src.stat().st_size > 1024 * 1024  # the command streams it
    a, b = _store(tmp_path / "a", base), _store(tmp_path / "b", base)
    proc = run_cli_inprocess(a, "import", str(src))
    exact = _exact(b, src)
    assert [ln for ln in proc.stderr.splitlines() if "imported" in ln] == [exact]
    before = _tables(a)  # read once (0.18 CPU-s at 20,000 rows): nothing writes to ``a`` until the bad file
    assert before == _tables(b)
    # a bad value late in the file: the command names its line, as the record path does
    rows[15_000][4] = "2025-01-07T25:00:00Z"
    bad = _write(tmp_path / "bad.csv", [[c.replace("BIG-", "NEW-") for c in r] for r in rows])
    proc = run_cli_inprocess(a, "import", str(bad), check=False)
    with pytest.raises(SourceError) as exact_error:
        _exact(b, bad)
    assert proc.returncode == 2
    assert [ln for ln in proc.stderr.splitlines() if ln.strip()] == [f"error: {exact_error.value}"]
    assert "line 15002:" in str(exact_error.value)
    assert _tables(a) == before


def test_redeploys_and_repeated_unknown_revisions_attribute_as_git_says(tmp_path: Path, repos: dict[str, Any],
                                                                        base: Path) -> None:
    """Attribution walks one deployment per (scope, revision) and names every deployment of an
    unresolved revision: its changes must still be ``git rev-list D --not <earlier ones>`` and the
    warning must name the unresolved deployments by repository then id, counting all of them."""
    import subprocess

    shas: list[str] = repos["shas"]
    rng = random.Random(11)
    rows = []
    for i in range(120):
        pick = rng.choice([shas[min(len(shas) - 1, i // 10)], shas[min(len(shas) - 1, i // 10)][:8],
                           shas[max(0, i // 10 - 3)], "nope", "v0.0.1", repos["side"]])
        rows.append([f"R-{rng.randrange(10**6):06d}-{i}", "shop", "production", pick,
                     f"2025-02-01T{i // 60:02d}:{i % 60:02d}:00Z", rng.choice(["success"] * 5 + ["failed"]),
                     "api", "", ""])
    src = _write(tmp_path / "redeploys.csv", rows)
    db = _store(tmp_path / "a", base)
    summary = _exact(db, src)
    assert "120 deployments with changes attributed through git" in summary
    seen: set[str] = set()
    expected: set[tuple[str, str, str]] = set()
    unresolved = []
    revlists: dict[str, list[str] | None] = {}  # git's answer per revision (some 30 distinct of 100)
    for row in rows:  # in time order
        if row[5] != "success":
            continue
        if row[3] not in revlists:
            try:
                revlists[row[3]] = subprocess.run(
                    ["git", "-C", str(repos["api"]), "rev-list", f"{row[3]}^{{commit}}", "--"],
                    capture_output=True, text=True, check=True).stdout.split()
            except subprocess.CalledProcessError:
                revlists[row[3]] = None
        listed = revlists[row[3]]
        if listed is None:
            unresolved.append(row)
            continue
        expected.update((row[0], "api", sha) for sha in listed if sha not in seen)
        seen.update(listed)
    con = open_reader(resolve(str(db)))
    try:
        changes = set(con.execute("SELECT deployment_id, repo, sha FROM deployment_changes").fetchall())
        warning = con.execute("SELECT detail, count FROM data_warnings WHERE kind = 'unresolved_revision' "
                              "AND target = 'shop/production'").fetchall()
    finally:
        con.close()
    assert changes == expected
    names = [f"{r[0]} (api@{r[3]})" for r in sorted(unresolved, key=lambda r: r[0])]
    assert len(names) > 3
    assert warning == [(f"deployments whose revision is not a collected commit: {', '.join(names[:3])} ...",
                        len(names))]

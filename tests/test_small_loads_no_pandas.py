"""Short commands that load a few rows (`import` of a small CSV, `assess`) never make DuckDB's Python
client import pandas and pyarrow (about 0.5 s of CPU, half of such a command): a small
``WriteSession.upsert`` goes in as a VALUES list of literals, and named parameters are written as
literals too. The VALUES path stores exactly what the DataFrame path stores."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import duckdb
import pytest

from analytics.store import relations
from analytics.store.connection import open_writer
from analytics.store.literals import NotInlinable, execute, inline
from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.reconciler_objects import (
    application,
    argocd_event,
    as_list,
    failed_operation,
    kustomization,
)
from tests.store_query import store_reader
from tests.test_git_speed_literals import _PROBE

ROOT = Path(__file__).resolve().parent.parent

def test_named_placeholders_in_strings_and_comments_are_left_alone() -> None:
    sql = "SELECT $a AS \"$a\", '$a ?' AS b -- $a\n, /* $a */ $a"
    assert inline(sql, {"a": 1}) == "SELECT 1 AS \"$a\", '$a ?' AS b -- $a\n, /* $a */ 1"


def test_what_named_literals_cannot_say_is_bound_as_before() -> None:
    for sql, params in [("SELECT $a", {"b": 1}),              # a name without a value
                        ("SELECT $a", {"a": 1, "b": 2}),      # a value the statement does not use
                        ("SELECT ?", {"a": 1}),               # mixed styles
                        ("SELECT $1", {"a": 1}),
                        ("SELECT $tag$ $a $tag$, $a", {"a": 1}),  # a dollar-quoted string
                        ("SELECT $a", {"a": float("nan")})]:
        with pytest.raises(NotInlinable):
            inline(sql, params)
    con = duckdb.connect()
    try:  # bound instead: DuckDB's own answer, an error included
        assert execute(con, "SELECT isnan($a)", {"a": float("nan")}).fetchall() == [(True,)]
        with pytest.raises(duckdb.Error):
            execute(con, "SELECT $a", {"a": 1, "b": 2})
    finally:
        con.close()


def _incidents(n: int, tag: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for i in range(n):
        rows.append({
            "id": f"inc-{i}", "service": ["api", None, "web"][i % 3], "environment": "production",
            "created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(hours=i),
            "resolved_at": None if i % 4 == 0 else
            datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=timezone(timedelta(hours=-5))) + timedelta(hours=i),
            "title": f"{tag} it's ? $1 -- /* naïve ✓ {i}", "root_cause": None if i % 2 else f"sha{i}",
            "source": "import", "source_ref": None, "url": f"https://x.example/{i}?a=1&b='2'",
            "labels": [[], ["p1", "db'x"], None][i % 3],
        })
    return rows


def _progress(n: int) -> list[dict[str, Any]]:
    # an int where the column is DOUBLE
    return [{"assessment_id": "a", "level": i, "name": f"L{i}", "met": i % 2 == 0,
             "progress": [1, 0.5, 0.125][i % 3]} for i in range(n)]


def _assessments(n: int) -> list[dict[str, Any]]:
    # a NaN where the column is a nullable INTEGER: the DataFrame path stores it as NULL; JSON text
    return [{"id": f"t|point|{i}", "target": "t", "sources": [f"/repo/{i}", "b"], "revisions": [],
             "kind": "point", "period": None, "as_of": datetime(2026, 2, 1, 8, tzinfo=UTC),
             "assessed_at": datetime(2026, 2, 1, 9, 30), "level": [2, float("nan")][i % 2],
             "answers_file": None, "result": json.dumps({"level": i, "why": "it's"})} for i in range(n)]


def _load(db: Path, values_path: bool, monkeypatch: pytest.MonkeyPatch) -> list[list[tuple[Any, ...]]]:
    calls: list[bool] = []

    def decide(rows: int, width: int) -> bool:
        calls.append(values_path)
        return values_path

    monkeypatch.setattr(relations, "values_pay", decide)
    with open_writer(db, source="test") as session:
        assert session.upsert("incidents", _incidents(9, "first")) == 9
        assert session.upsert("maturity_level_progress", _progress(6)) == 6
        assert session.upsert("maturity_assessments", _assessments(4)) == 4
    with open_writer(db, source="test") as session:  # a re-load replaces, a new key is added
        assert session.upsert("incidents", _incidents(11, "again")[5:]) == 6
        assert session.upsert("incidents", [{"id": "inc-0", "title": "only the title"}],
                              columns=["id", "title"]) == 1
    assert calls == [values_path] * 5
    con = store_reader(db)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return [con.execute("SELECT * FROM incidents ORDER BY id").fetchall(),
                con.execute("SELECT * FROM maturity_level_progress ORDER BY level").fetchall(),
                con.execute("SELECT *, level IS NULL, typeof(result) FROM maturity_assessments ORDER BY id"
                            ).fetchall()]
    finally:
        con.close()


def test_a_small_upsert_as_values_stores_what_the_dataframe_path_stores(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    by_values = _load(tmp_path / "values.ducklake", True, monkeypatch)
    by_frame = _load(tmp_path / "frame.ducklake", False, monkeypatch)
    assert by_values == by_frame
    incidents, progress, assessments = by_values
    assert len(incidents) == 11
    assert incidents[0][5] == "only the title" and incidents[0][1] == "api"  # other columns kept
    assert [row[4] for row in progress] == [1.0, 0.5, 0.125, 1.0, 0.5, 0.125]
    assert [row[-2:] for row in assessments] == [(False, "JSON"), (True, "JSON")] * 2  # NaN -> NULL


def _probe(db: Path, *args: str, cwd: Path) -> str:
    proc = subprocess.run([sys.executable, "-c", _PROBE, "--db", str(db), *args], capture_output=True,
                          text=True, cwd=cwd, env={**_env(), "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("GITOPS_DORA_DB")}


def test_imports_of_small_csvs_and_assess_import_no_pandas(tmp_path: Path) -> None:
    csv = tmp_path / "incidents.csv"
    csv.write_text("id,service,environment,created_at,resolved_at,title\n" + "".join(
        f"i{i},api,production,2026-01-0{i + 1}T10:00:00Z,2026-01-0{i + 1}T11:30:00Z,it's down {i}\n"
        for i in range(5)))
    deployments = tmp_path / "deployments.csv"
    deployments.write_text("id,service,environment,revision,deployed_at,status,repository\n"
                           "d1,api,production,v1.0.0,2026-01-01T10:00:00Z,success,api\n"
                           "d2,api,production,0123abcd,2026-01-02T10:00:00Z,failed,\n")
    db = tmp_path / "store.ducklake"
    for path in (csv, deployments):
        out = _probe(db, "import", str(path), cwd=tmp_path)
        assert "IMPORTED=\n" in out, out
    repo = GitRepo.init(tmp_path / "config")
    repo.commit("config", "2026-01-05T10:00:00Z", files={
        "apps/api/kustomization.yaml": "resources:\n- deployment.yaml\n",
        "apps/api/deployment.yaml": "apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: api\n"})
    out = _probe(db, "assess", str(repo.path), "--store", "--format", "json", cwd=tmp_path)
    assert out.endswith("IMPORTED=\n"), out[-300:]
    document = json.loads(out.removesuffix("IMPORTED=\n"))
    con = store_reader(db)
    try:
        assert con.execute("SELECT count(*), count(resolved_at), min(title) FROM incidents").fetchall() == [
            (5, 5, "it's down 0")]
        assert con.execute("SELECT id, status, revision, revision_format FROM deployments ORDER BY id"
                           ).fetchall() == [("d1", "success", "v1.0.0", "unknown"),
                                            ("d2", "failed", "0123abcd", "sha")]
        stored = con.execute("SELECT count(*) FROM maturity_assessments").fetchall()
        assert stored == [(1,)]
        assert con.execute("SELECT count(*) FROM maturity_capability_status").fetchall()[0][0] > 0
    finally:
        con.close()
    assert "level" in json.dumps(document)


def _argocd_dump(tmp_path: Path) -> list[str]:
    """An Application with history, a failed operation and a rollback, and its Events (a
    deployment removed and its events relinked when the second file changes the picture)."""
    t0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
    a, b, c = "a" * 40, "b" * 40, "c" * 40
    app = application("shop-prod", repo_url="https://git.example.com/config.git", path="apps/shop",
                      dest_namespace="shop", history=[(a, t0), (b, t0 + timedelta(hours=1)),
                                                      (a, t0 + timedelta(hours=3))],
                      operation=failed_operation(c, t0 + timedelta(hours=2),
                                                 t0 + timedelta(hours=2, minutes=5),
                                                 "it's failed: Deployment.apps is invalid"))
    events = [argocd_event("shop-prod", "OperationCompleted", f"Sync operation to {c} failed",
                           t0 + timedelta(hours=2, minutes=5), uid="e-1", warning=True),
              argocd_event("shop-prod", "ResourceUpdated", "Updated health status: Healthy -> Degraded",
                           t0 + timedelta(hours=2, minutes=6), uid="e-2")]
    (tmp_path / "app.json").write_text(json.dumps(app))
    (tmp_path / "events.json").write_text(json.dumps(as_list("Event", events)))
    return [str(tmp_path / "app.json"), str(tmp_path / "events.json")]


def _reconciler_rows(db: Path) -> list[list[tuple[Any, ...]]]:
    con = store_reader(db)
    try:
        return [con.execute(f"SELECT * {skip} FROM {table} ORDER BY ALL").fetchall()
                for table, skip in [("deployments", ""), ("reconciler_events", ""),
                                    ("reconciler_objects", "EXCLUDE (last_seen)")]]  # the run's time
    finally:
        con.close()


def test_a_small_reconciler_dump_imports_no_pandas_and_stores_what_frames_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = _argocd_dump(tmp_path)
    by_values = tmp_path / "values.ducklake"
    out = _probe(by_values, "import", *files, cwd=tmp_path)
    assert "IMPORTED=\n" in out, out
    by_frames = tmp_path / "frames.ducklake"
    monkeypatch.setattr(relations, "values_pay", lambda rows, width: False)
    proc = cli_inprocess.run(["--db", str(by_frames), "import", *files], env=_env())
    assert proc.returncode == 0, proc.stderr
    stored = _reconciler_rows(by_values)
    assert stored == _reconciler_rows(by_frames)
    assert [len(rows) for rows in stored] == [4, 6, 1]


def test_a_column_of_mixed_kinds_goes_the_dataframe_way(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """VALUES gives a column one type and refuses some mixes a frame stores as text (an int then a
    string: "Cannot combine types VARCHAR and INTEGER_LITERAL"); such rows take the frame."""
    rows = [{"id": "a", "created_at": datetime(2026, 1, 1, tzinfo=UTC), "source": "import", "title": 404,
             "labels": [1, 2]},
            {"id": "b", "created_at": datetime(2026, 1, 2, tzinfo=UTC), "source": "import", "title": "it's",
             "labels": ["p1"]}]
    stored = _stored_both_ways(tmp_path, monkeypatch, {"incidents": rows},
                               ["SELECT id, title, labels FROM incidents ORDER BY id"])
    assert stored[0] == stored[1] == [[("a", "404", ["1", "2"]), ("b", "it's", ["p1"])]]


def _stored_both_ways(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, loads: dict[str, list[dict[str, Any]]],
                      queries: list[str]) -> list[list[list[tuple[Any, ...]]]]:
    """The rows ``queries`` read after ``loads`` (table -> rows) were upserted by the VALUES path
    into one new store and by the DataFrame path into another."""
    stored = []
    for values_path in (True, False):
        monkeypatch.setattr(relations, "values_pay", lambda rows, width, v=values_path: v)
        db = tmp_path / f"{values_path}.ducklake"
        with open_writer(db, source="test") as session:
            for table, rows in loads.items():
                assert session.upsert(table, rows) == len(rows)
        con = store_reader(db)
        try:
            stored.append([con.execute(sql).fetchall() for sql in queries])
        finally:
            con.close()
    return stored


def test_whole_numbers_beside_missing_values_are_stored_as_the_values_path_stores_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pandas makes a column of ints with a None (or NaN) a float column: the DataFrame path wrote a
    reason of 404 into a text column as '404.0', and a large id lost its last digits. Both paths now
    store the ints as given; a column that also holds a fraction is a float column either way."""
    big = 2**60 + 1
    huge = 2**63  # past BIGINT
    rows = [{"id": f"i{n}", "created_at": datetime(2026, 1, 1, tzinfo=UTC), "source": "import",
             "title": title, "root_cause": cause, "source_ref": ref}
            for n, (title, cause, ref) in enumerate(
                [(404, None, huge), (None, big, None), (float("nan"), 7, None), (1, None, None)])]
    levels = [{"id": f"t|point|{n}", "target": "t", "sources": [], "revisions": [], "kind": "point",
               "period": None, "as_of": datetime(2026, 2, 1, tzinfo=UTC), "assessed_at": datetime(2026, 2, 1),
               "level": level, "answers_file": None, "result": "{}"}
              for n, level in enumerate([2, None, float("nan")])]
    progress = [{"assessment_id": "a", "level": n, "name": f"L{n}", "met": True, "progress": value}
                for n, value in enumerate([1, 2, 0.5])]
    stored = _stored_both_ways(
        tmp_path, monkeypatch,
        {"incidents": rows, "maturity_assessments": levels, "maturity_level_progress": progress},
        ["SELECT id, title, root_cause, source_ref FROM incidents ORDER BY id",
         "SELECT id, level FROM maturity_assessments ORDER BY id",
         "SELECT level, progress FROM maturity_level_progress ORDER BY level"])
    assert stored[0] == stored[1]
    assert stored[1] == [
        [("i0", "404", None, str(huge)), ("i1", None, str(big), None), ("i2", None, "7", None),
         ("i3", "1", None, None)],
        [("t|point|0", 2), ("t|point|1", None), ("t|point|2", None)],
        [(0, 1.0), (1, 2.0), (2, 0.5)],
    ]


def test_a_flux_dump_with_a_numeric_reason_imports(tmp_path: Path) -> None:
    """One object's reason is a number, another's text: the events take the DataFrame way (which
    loads pandas) instead of failing on the VALUES list."""
    t0 = datetime(2024, 3, 1, 9, tzinfo=UTC)
    shop = kustomization("shop", "flux-system", path="./apps/shop", applied="main@sha1:" + "a" * 40,
                         ready_at=t0)
    web = kustomization("web", "flux-system", path="./apps/web", applied="main@sha1:" + "b" * 40,
                        ready_at=t0)
    web["status"]["conditions"][0]["reason"] = 404  # a value of another kind than the others' text
    dump = tmp_path / "ks.json"
    dump.write_text(json.dumps(as_list("Kustomization", [shop, web],
                                       api_version="kustomize.toolkit.fluxcd.io/v1")))
    db = tmp_path / "store.ducklake"
    _probe(db, "import", str(dump), cwd=tmp_path)  # exit 0
    con = store_reader(db)
    try:
        reasons = con.execute("SELECT name, reason FROM reconciler_events ORDER BY name").fetchall()
    finally:
        con.close()
    assert ("web", "404") in reasons and any(name == "shop" for name, _ in reasons), reasons

"""A NUL character in a key value (a service, a repository, a deployment id) cannot be stored:
DuckLake writes the key values of a MERGE into its catalog's SQL to prune data files, where NUL ends
the string. The input is refused with one line that says so (exit 2 in the CLI, 422 from the
receiver, which before answered 503 and so had the sender retry the delivery for ever), and
nothing of it is written (analytics/store/upsert.UnstorableKeyError)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests import cli_inprocess
from tests.webhook_senders import gh_deployment_status, post_github, receiver

SECRET = "s3cret-for-nul-tests"
SHA = "1" * 40


def _deployments(db: Path) -> list[dict[str, object]]:
    result = cli_inprocess.run(["--db", str(db), "deployments", "--format", "json"])
    assert result.returncode == 0, result.stderr
    rows: list[dict[str, object]] = json.loads(result.stdout)
    return rows


@pytest.mark.parametrize("kind", ["csv", "json"])
def test_an_import_with_nul_in_a_key_fails_with_one_line_and_writes_nothing(tmp_path: Path,
                                                                           kind: str) -> None:
    db = tmp_path / "s.ducklake"
    good = tmp_path / "good.csv"
    good.write_text("id,service,environment,revision,deployed_at,status\n"
                    f"ok-1,api,production,{SHA},2026-11-01T00:00:00Z,success\n")
    assert cli_inprocess.run(["--db", str(db), "import", str(good)]).returncode == 0
    bad = tmp_path / f"bad.{kind}"
    if kind == "csv":
        bad.write_text("id,service,environment,revision,deployed_at,status\n"
                       f"n-1,api,production,{SHA},2026-11-02T00:00:00Z,success\n"
                       f"n-2,a\0b,production,{SHA},2026-11-03T00:00:00Z,success\n")
    else:
        bad.write_text(json.dumps([
            {"id": "n-1", "service": "api", "environment": "production", "revision": SHA,
             "deployed_at": "2026-11-02T00:00:00Z", "status": "success"},
            {"id": "n-2", "service": "a\u0000b", "environment": "production", "revision": SHA,
             "deployed_at": "2026-11-03T00:00:00Z", "status": "success"}]))
    result = cli_inprocess.run(["--db", str(db), "import", str(bad)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "NUL character" in lines[0] and "Parser Error" not in lines[0]
    assert [row["id"] for row in _deployments(db)] == ["ok-1"]  # n-1 of the same file is not stored


def test_merge_names_the_table_and_keeps_other_parser_errors(tmp_path: Path) -> None:
    from analytics.errors import UserError
    from analytics.store.connection import open_writer
    from analytics.store.upsert import UnstorableKeyError, merge, merge_values

    db = tmp_path / "s.ducklake"
    with open_writer(db, source="test") as session:
        merge_values(session.con, "services", {"name": "api", "team": "t"})
    nul = "SELECT 'a' || chr(0) || 'b' AS name, 't' AS team"
    with (pytest.raises(UnstorableKeyError, match="services key value \\(name\\) contains a NUL"),
          open_writer(db, source="test") as session):
        merge(session.con, "services", nul, ["name", "team"])
    # any other parser error is the writer's, as before, even in one of the forms a NUL gives
    with pytest.raises(UserError) as other, open_writer(db, source="test") as session:
        merge(session.con, "services", "SELECT 'x' AS name, 't' AS team FROM FROM", ["name", "team"])
    assert not isinstance(other.value, UnstorableKeyError)
    assert 'syntax error at or near "FROM"' in str(other.value) and "NUL" not in str(other.value)


def test_small_writes_refuse_a_nul_key_whether_or_not_duckdb_reads_a_file_list(tmp_path: Path) -> None:
    """DuckLake reads no file list for a MERGE of a few rows given as values, nor for a table without
    data files yet: a NUL key was stored there as it was (the receiver's and collectors' small
    writes). The MERGE now checks its source's keys itself, on a new store, on a table with rows,
    for a key of several columns, and for rows from a DataFrame; nothing of a refused unit is kept."""
    import pandas as pd

    from analytics.store.connection import open_writer
    from analytics.store.upsert import UnstorableKeyError, merge_rows, merge_values
    from tests.store_query import query

    db = tmp_path / "new.ducklake"
    with pytest.raises(UnstorableKeyError, match="services key value \\(name\\) contains a NUL"), \
            open_writer(db, source="test") as session:
        merge_values(session.con, "environments", {"name": "prod", "is_production": True})
        merge_values(session.con, "services", {"name": "a\u0000b", "team": "t"})
    assert query(db, "SELECT count(*) FROM services") == [(0,)]
    assert query(db, "SELECT count(*) FROM environments") == [(0,)]  # the unit is undone whole

    with open_writer(db, source="test") as session:
        merge_values(session.con, "services", {"name": "api", "team": "t"})
    with pytest.raises(UnstorableKeyError, match="data_warnings key value"), \
            open_writer(db, source="test") as s:
        merge_rows(s.con, "data_warnings", ["source", "target", "kind", "detail", "count"],
                   [["git", "repo", "kind", "fine", 1], ["git", "repo", "kind", "a\u0000detail", 1]])
    with pytest.raises(UnstorableKeyError, match="services key value"), open_writer(db, source="test") as s:
        s.upsert("services", pd.DataFrame({"name": ["web", "x\u0000y"], "team": ["t", "t"]}))
    assert query(db, "SELECT name FROM services ORDER BY name") == [("api",)]
    assert query(db, "SELECT count(*) FROM data_warnings") == [(0,)]
    with open_writer(db, source="test") as session:  # a NUL outside the key is stored as it is
        merge_values(session.con, "services", {"name": "api", "team": "t\u0000eam"})
    assert query(db, "SELECT team FROM services") == [("t\u0000eam",)]


def test_the_receiver_answers_422_for_a_nul_key_and_stores_the_next_delivery(tmp_path: Path) -> None:
    db = tmp_path / "rx.ducklake"
    with receiver(db, {"GITOPS_DORA_GITHUB_SECRET": SECRET}) as rx, httpx.Client(timeout=30) as client:
        hostile = gh_deployment_status("org/a\u0000b", 7, SHA, "success", "2026-11-01T00:00:00Z")
        answer = post_github(client, rx.url, "deployment_status", hostile, SECRET)
        assert answer.status_code == 422, answer.text
        assert "NUL character" in answer.json()["message"]
        assert "Parser Error" not in answer.text
        clean = gh_deployment_status("org/api", 8, SHA, "success", "2026-11-01T01:00:00Z")
        answer = post_github(client, rx.url, "deployment_status", clean, SECRET)
        assert answer.status_code == 200, answer.text
    assert [row["id"] for row in _deployments(db)] == ["github:org/api:8"]


def test_a_write_that_is_not_a_merge_names_the_nul_too(tmp_path: Path) -> None:
    """A statement other than merge()'s (the commits import's INSERT ... WHERE NOT EXISTS, seen by R1
    before imports refused NUL themselves) fails with DuckLake's parser error; the store's own error
    translation (analytics/store/connection._translate) names the NUL as well."""
    import duckdb

    from analytics.store.connection import _translate
    from analytics.store.location import resolve
    from analytics.store.upsert import UnstorableKeyError

    loc = resolve(tmp_path / "s.ducklake")
    seen = duckdb.ParserException('Parser Error: Failed to get data file list from DuckLake: '
                                  'unterminated quoted string at or near "\'api))))"')
    error = _translate(seen, loc, "writing import:commits")
    assert isinstance(error, UnstorableKeyError) and "NUL character" in str(error)
    plain = duckdb.ParserException('Parser Error: syntax error at or near "x"')
    other = _translate(plain, loc, "writing x")
    assert not isinstance(other, UnstorableKeyError) and "syntax error" in str(other)


BIG = 1024 * 1024 + 1  # from here an import streams the file through DuckDB (importers/base.py)


def _incidents_csv(rows: int, bad_row: int, title: str) -> str:
    lines = ["id,service,created_at,resolved_at,title"]
    for i in range(rows):
        lines.append(f"inc-{i},api,2026-11-01T00:00:00Z,2026-11-01T01:00:00Z,"
                     f"{title if i == bad_row else 'a quiet incident title'}")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("shape", ["csv", "csv-streamed", "json", "jsonl-streamed", "yaml"])
def test_an_import_with_nul_in_any_text_is_refused_with_one_line(tmp_path: Path, shape: str) -> None:
    """Not only keys: a NUL anywhere in an imported file's text is refused before anything is
    written, on the record path and on the streamed one (a streamed file with a NUL takes the
    record path, which refuses it; before, a streamed file stored it)."""
    db = tmp_path / "s.ducklake"
    path = tmp_path / f"incidents.{shape.split('-')[0]}"
    row = {"id": "inc-1", "service": "api", "created_at": "2026-11-01T00:00:00Z",
           "resolved_at": "2026-11-01T01:00:00Z", "title": "disk\u0000full"}
    if shape == "csv":
        path.write_text(_incidents_csv(3, 1, "disk\0full"))
    elif shape == "csv-streamed":
        rows = BIG // 60
        path.write_text(_incidents_csv(rows, rows - 2, "disk\0full"))
        assert path.stat().st_size >= BIG
    elif shape == "json":
        path.write_text(json.dumps({"incidents": [row]}))
    elif shape == "jsonl-streamed":
        quiet = {**row, "title": "a quiet incident title"}
        lines = [json.dumps({**quiet, "id": f"inc-{i}"}) for i in range(12000)]
        lines[-3] = json.dumps({**row, "id": "inc-bad"})  # json.dumps writes the NUL as \u0000
        path.write_text("\n".join(lines) + "\n")
        assert path.stat().st_size >= BIG and b"\\u0000" in path.read_bytes()
    else:
        path.write_text('incidents:\n  - {id: inc-1, service: api, created_at: "2026-11-01T00:00:00Z", '
                        'title: "disk\\0full"}\n')
    result = cli_inprocess.run(["--db", str(db), "import", str(path)])
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NUL character" in lines[0], result.stderr
    listed = cli_inprocess.run(["--db", str(db), "incidents", "--format", "json"])
    assert listed.returncode in (0, 2)
    assert listed.returncode == 2 or json.loads(listed.stdout) == []  # no store yet, or an empty one

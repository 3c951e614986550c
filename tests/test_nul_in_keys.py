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
    # any other parser error is the writer's, as before
    with pytest.raises(UserError) as other, open_writer(db, source="test") as session:
        merge(session.con, "services", "SELECT 'x' AS name, 'unterminated AS team", ["name", "team"])
    assert not isinstance(other.value, UnstorableKeyError)
    assert "unterminated quoted string" in str(other.value) and "NUL" not in str(other.value)


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
    """The commits import adds new rows with an INSERT ... WHERE NOT EXISTS, not merge(): the store's
    own error translation (analytics/store/connection._translate) names the NUL as well."""
    db = tmp_path / "s.ducklake"
    header = "repository,sha,parents,author,authored_at,committed_at,message\n"
    good = tmp_path / "good.csv"
    good.write_text(header + f"api,{SHA},,Ada,2026-03-02T09:00:00Z,2026-03-02T09:00:00Z,first\n")
    assert cli_inprocess.run(["--db", str(db), "import", str(good)]).returncode == 0
    bad = tmp_path / "bad.csv"
    bad.write_text(header + f"api\0x,{'2' * 40},,Ada,2026-03-02T10:00:00Z,2026-03-02T10:00:00Z,second\n")
    result = cli_inprocess.run(["--db", str(db), "import", str(bad)])
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "NUL character" in lines[0] and "Parser Error" not in lines[0], result.stderr

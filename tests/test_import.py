"""``gitops-dora import``: kind detection, formats, zones, bad rows, atomicity, idempotence.

Runs the real console command (in this process, tests/cli_inprocess.py; the unrecognised-file test as
the installed script in a subprocess) and reads the real DuckDB file it wrote.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.gitrepo import GitRepo
from tests.stability_env import DEPLOYMENT_HEADER, INCIDENT_HEADER, write_csv
from tests.stability_env import run_cli as run_cli_process
from tests.stability_env import run_cli_inprocess as run_cli
from tests.store_query import store_reader


def _table(db: Path, sql: str) -> list[tuple[object, ...]]:
    con = store_reader(db)
    try:
        con.execute("SET TimeZone = 'UTC'")
        return con.execute(sql).fetchall()
    finally:
        con.close()


def _incidents(db: Path) -> list[tuple[object, ...]]:
    return _table(db, "SELECT id, service, environment, created_at, resolved_at, title, root_cause "
                      "FROM incidents ORDER BY id")


def _utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_incidents_in_csv_json_and_yaml_load_the_same_rows(tmp_path: Path) -> None:
    # The same two incidents in three formats. The +02:00 time is the instant 08:00Z.
    csv_file = write_csv(tmp_path / "inc.csv", INCIDENT_HEADER, [
        ("INC-1", "pay", "production", "2024-05-01T10:00:00+02:00", "2024-05-01T12:00:00Z", "Checkout down",
         ""),
        ("INC-2", "pay", "staging", "2024-05-02T09:00:00Z", "", "Slow search", "abc1234"),
    ])
    json_file = tmp_path / "inc.json"
    json_file.write_text(json.dumps([
        {"id": "INC-1", "service": "pay", "environment": "production",
         "created_at": "2024-05-01T10:00:00+02:00",
         "resolved_at": "2024-05-01T12:00:00Z", "title": "Checkout down", "root_cause": None},
        {"id": "INC-2", "service": "pay", "environment": "staging", "created_at": "2024-05-02T09:00:00Z",
         "resolved_at": None, "title": "Slow search", "root_cause": "abc1234"},
    ], indent=1))
    yaml_file = tmp_path / "inc.yaml"
    yaml_file.write_text(
        "incidents:\n"
        "  - id: INC-1\n    service: pay\n    environment: production\n"
        "    created_at: 2024-05-01T10:00:00+02:00\n    resolved_at: 2024-05-01T12:00:00Z\n"
        "    title: Checkout down\n"
        "  - id: INC-2\n    service: pay\n    environment: staging\n"
        "    created_at: '2024-05-02T09:00:00Z'\n    resolved_at:\n    title: Slow search\n"
        "    root_cause: abc1234\n"
    )
    expected = [
        ("INC-1", "pay", "production", _utc("2024-05-01T08:00:00+00:00"), _utc("2024-05-01T12:00:00+00:00"),
         "Checkout down", None),
        ("INC-2", "pay", "staging", _utc("2024-05-02T09:00:00+00:00"), None, "Slow search", "abc1234"),
    ]
    for source in (csv_file, json_file, yaml_file):
        db = tmp_path / f"{source.suffix[1:]}.duckdb"
        proc = run_cli(db, "import", str(source))
        assert f"{source}: imported 2 incidents rows" in proc.stderr
        assert _incidents(db) == expected


def test_naive_timestamps_are_read_as_utc_and_counted(tmp_path: Path) -> None:
    # created_at of INC-1 and both times of INC-2 carry no zone: 3 timestamps read as UTC.
    src = write_csv(tmp_path / "inc.csv", INCIDENT_HEADER, [
        ("INC-1", "pay", "production", "2024-05-01 10:00:00", "2024-05-01T12:00:00Z", "a", ""),
        ("INC-2", "pay", "production", "2024-05-02T09:00:00", "2024-05-02T10:00:00", "b", ""),
    ])
    db = tmp_path / "d.duckdb"
    proc = run_cli(db, "import", str(src))
    assert "3 timestamps without a zone read as UTC" in proc.stderr
    assert _table(db, "SELECT created_at FROM incidents WHERE id = 'INC-1'") == [
        (_utc("2024-05-01T10:00:00+00:00"),)]


def test_reimport_changes_nothing(tmp_path: Path) -> None:
    src = write_csv(tmp_path / "dep.csv", DEPLOYMENT_HEADER, [
        ("ci-1", "pay", "production", "1.4.0", "2024-05-01T10:00:00Z", "success", ""),
        ("ci-2", "pay", "production", "1.4.1", "2024-05-02T10:00:00Z", "failed", ""),
    ])
    db = tmp_path / "d.duckdb"
    run_cli(db, "import", str(src))
    query = "SELECT * FROM deployments ORDER BY id"
    first = _table(db, query)
    run_cli(db, "import", str(src))
    assert _table(db, query) == first
    assert len(first) == 2
    # a failed status is kept; the unknown revision format is kept verbatim
    assert [(r[0], r[7], r[12]) for r in first] == [("ci-1", "success", "1.4.0"), ("ci-2", "failed", "1.4.1")]


def test_unrecognised_file_is_one_error_line_naming_it_and_nothing_is_written(tmp_path: Path) -> None:
    good = write_csv(tmp_path / "inc.csv", INCIDENT_HEADER, [
        ("INC-1", "pay", "production", "2024-05-01T10:00:00Z", "", "a", ""),
    ])
    odd = write_csv(tmp_path / "odd.csv", ("name", "colour"), [("apple", "red")])
    db = tmp_path / "d.duckdb"
    proc = run_cli_process(db, "import", str(good), str(odd), check=False)  # the installed script
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"error: {odd}: cannot recognise this file's kind (known kinds: "
                     + lines[0].split("known kinds: ")[1]]
    assert "incidents" in lines[0] and "deployments" in lines[0]
    assert not db.exists() or _table(db, "SELECT count(*) FROM incidents") == [(0,)]


def test_bad_row_rejects_the_whole_file_with_its_line_number(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    first = write_csv(tmp_path / "first.csv", INCIDENT_HEADER, [
        ("INC-0", "pay", "production", "2024-05-01T10:00:00Z", "", "kept", ""),
    ])
    run_cli(db, "import", str(first))
    # line 1 is the header, INC-1 is line 2, INC-2 (bad time) is line 3
    bad = write_csv(tmp_path / "bad.csv", INCIDENT_HEADER, [
        ("INC-1", "pay", "production", "2024-05-02T10:00:00Z", "", "fine", ""),
        ("INC-2", "pay", "production", "yesterday", "", "broken", ""),
        ("INC-3", "pay", "production", "2024-05-03T10:00:00Z", "", "fine", ""),
    ])
    proc = run_cli(db, "import", str(bad), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        f"error: {bad}: line 3: 'created_at' is not an ISO 8601 timestamp: 'yesterday'; "
        "nothing from this file was imported"
    ]
    assert [r[0] for r in _incidents(db)] == ["INC-0"]


def test_bad_rows_of_other_kinds(tmp_path: Path) -> None:
    db = tmp_path / "d.duckdb"
    cases = {
        "resolved_before_created.csv": (INCIDENT_HEADER, [
            ("I1", "pay", "production", "2024-05-02T10:00:00Z", "2024-05-01T10:00:00Z", "t", "")],
            "line 2: 'resolved_at' is earlier than 'created_at'"),
        "duplicate.csv": (INCIDENT_HEADER, [
            ("I1", "pay", "production", "2024-05-02T10:00:00Z", "", "t", ""),
            ("I1", "pay", "production", "2024-05-03T10:00:00Z", "", "t", "")],
            "line 3: duplicate incident id 'I1' (first on line 2)"),
        "bad_status.csv": (DEPLOYMENT_HEADER, [
            ("d1", "pay", "production", "abc", "2024-05-02T10:00:00Z", "exploded", "")],
            "line 2: unknown status 'exploded' (use success or failed)"),
        # (a deployment without an environment is no longer refused: it goes to the default
        # environment, tests/test_deploy_multirepo.py::test_missing_environment_is_a_data_warning)
        "no_service.csv": (DEPLOYMENT_HEADER, [
            ("d1", "pay", "production", "abc", "2024-05-02T10:00:00Z", "success", ""),
            ("d2", "", "production", "abc", "2024-05-03T10:00:00Z", "success", "")],
            "line 3: missing value for 'service'"),
    }
    for name, (header, data, message) in cases.items():
        path = write_csv(tmp_path / name, header, data)
        proc = run_cli(db, "import", str(path), check=False)
        assert proc.returncode == 2, name
        assert proc.stderr.strip() == f"error: {path}: {message}; nothing from this file was imported"
    assert _table(db, "SELECT count(*) FROM incidents") == [(0,)]
    assert _table(db, "SELECT count(*) FROM deployments") == [(0,)]


def test_imported_deployment_of_a_collected_repo_gets_its_changes(
    tmp_path: Path, make_repo: Callable[..., GitRepo]
) -> None:
    # Repo: c1, c2, c3. Deployments from a CI system: ci-1 at c1 (abbreviated sha), ci-2 at tag
    # "release-2" = c3. Attribution: ci-1 ships c1; ci-2 ships c2 and c3.
    repo = make_repo("shop")
    c1 = repo.commit("one", at="2024-05-01T00:00:00+00:00")
    c2 = repo.commit("two", at="2024-05-02T00:00:00+00:00")
    c3 = repo.commit("three", at="2024-05-03T00:00:00+00:00")
    repo.tag("release-2")
    db = tmp_path / "d.duckdb"
    run_cli(db, "collect", "git", str(repo.path))
    src = write_csv(tmp_path / "ci.csv", DEPLOYMENT_HEADER, [
        ("ci-1", "shop", "production", c1[:9], "2024-05-01T12:00:00Z", "success", "shop"),
        ("ci-2", "shop", "production", "release-2", "2024-05-03T12:00:00Z", "success", "shop"),
    ])
    proc = run_cli(db, "import", str(src))
    assert "2 deployments with changes attributed through git" in proc.stderr
    assert _table(db, "SELECT id, revision, raw_revision, repository FROM deployments "
                      "WHERE source = 'import' ORDER BY id") == [
        ("ci-1", c1, c1[:9], "shop"), ("ci-2", c3, "release-2", "shop")]
    assert sorted(_table(db, "SELECT deployment_id, sha FROM deployment_changes "
                             "WHERE deployment_id LIKE 'ci-%'")) == sorted(
        [("ci-1", c1), ("ci-2", c2), ("ci-2", c3)])


def test_incidents_command_lists_each_incident_with_its_deployment_and_rule(tmp_path: Path) -> None:
    # d1 (05-01) and d2 (05-03). INC-1 names d1 (root_cause); INC-2 (05-03T06, open) falls in
    # d2's gap; INC-3 (05-20) is 17 days after d2 -> unattributed.
    db = tmp_path / "d.duckdb"
    deps = write_csv(tmp_path / "dep.csv", DEPLOYMENT_HEADER, [
        ("d1", "pay", "production", "r1", "2024-05-01T00:00:00Z", "success", ""),
        ("d2", "pay", "production", "r2", "2024-05-03T00:00:00Z", "success", ""),
    ])
    incs = write_csv(tmp_path / "inc.csv", INCIDENT_HEADER, [
        ("INC-1", "pay", "production", "2024-05-04T00:00:00Z", "2024-05-04T03:00:00Z", "a", "d1"),
        ("INC-2", "pay", "production", "2024-05-03T06:00:00Z", "", "b", ""),
        ("INC-3", "pay", "production", "2024-05-20T00:00:00Z", "2024-05-20T01:30:00Z", "c", ""),
    ])
    run_cli(db, "import", str(deps), str(incs))
    listed = json.loads(run_cli(db, "incidents", "--format", "json").stdout)
    assert [(i["id"], i["attribution_rule"], i["deployment_id"], i["status"], i["restore_hours"])
            for i in listed] == [
        ("INC-2", "gap", "d2", "open", None),
        ("INC-1", "root_cause", "d1", "resolved", 3.0),
        ("INC-3", "unattributed", None, "resolved", 1.5),
    ]
    open_only = json.loads(run_cli(db, "incidents", "--status", "open", "--format", "json").stdout)
    assert [i["id"] for i in open_only] == ["INC-2"]
    windowed = run_cli(db, "incidents", "--since", "2024-05-04", "--until", "2024-05-20", "--format", "csv")
    assert windowed.stdout.splitlines()[1:] == [
        "INC-1,pay,production,2024-05-04T00:00:00Z,2024-05-04T03:00:00Z,resolved,3.0,root_cause,d1,"
        "2024-05-01T00:00:00Z,d1,a"
    ]


def test_revisions_resolved_in_one_batch_equal_one_query_each(tmp_path: Path) -> None:
    """deployments.resolve_many (set-based, issue #16) against _resolve (a query per revision):
    unique and ambiguous sha prefixes, upper case, a repository filter, tags in one or two
    repositories, unknown names, an empty repository."""
    from analytics.importers import deployments
    from analytics.store.connection import write_unit
    from analytics.store.location import resolve

    shas = ["abcdef1" + "0" * 33, "abcdef2" + "1" * 33, "abcdef1" + "2" * 33, "1234567" + "3" * 33]
    revisions = ("abcdef1", "ABCDEF2", "abcdef10", "abcdef", "1234567" + "3" * 33, "v1", "v2", "v3", "main")
    requests = [(repo, rev) for repo in (None, "", "a", "b", "c") for rev in revisions]

    def work(session: Any) -> None:
        for i, sha in enumerate(shas):
            session.con.execute(
                "INSERT INTO commits (repo, sha, parents, author_time, committer_time, is_merge) VALUES "
                "(?, ?, [], now(), now(), false)", ["a" if i != 1 else "b", sha])
        session.con.execute("INSERT INTO tags VALUES ('a', 'v1', ?, false, now(), NULL), "
                            "('a', 'v2', ?, false, now(), NULL), ('b', 'v2', ?, false, now(), NULL)",
                            [shas[0], shas[1], shas[3]])
        batch = deployments.resolve_many(session, requests)
        one_by_one = {request: deployments._resolve(session, *request) for request in requests}
        assert batch == one_by_one
        assert {fmt for _, _, fmt in batch.values()} == {"sha", "tag", "unknown"}
        assert batch[(None, "ABCDEF2")] == (shas[1], "b", "sha")

    write_unit(resolve(str(tmp_path / "s.ducklake")), work, source="test")

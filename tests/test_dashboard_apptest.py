"""The Streamlit dashboard under AppTest, on a database built by `gitops-dora demo`.

The numbers on the pages are compared with what the CLI prints for the same filters
(`gitops-dora metrics --format json`, `gitops-dora deployments --format json`, run in this process
by tests/cli_inprocess.py), so a page that computes or formats a value differently fails here.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml
from streamlit.testing.v1 import AppTest

from analytics.store.connection import latest_snapshot, open_writer
from dashboards.components import RATING_COLORS
from dashboards.metrics_source import MetricsRequest
from dashboards.safe_text import md
from dashboards.tiles import TILES, delta_text, fmt
from tests import cli_inprocess
from tests.apptest_pages import start_page
from tests.child_env import child_env
from tests.dashboard_server import dashboard_command
from tests.store_fixture import DemoStore
from tests.store_query import store_reader

pytestmark = pytest.mark.usefixtures("one_duckdb_thread")  # tests/conftest.py
CLI = str(Path(sys.executable).parent / "gitops-dora")
APP = str(Path(__file__).resolve().parents[1] / "dashboards" / "app.py")
PAGES = ("overview", "throughput", "stability", "deployments", "maturity", "data_health")


def read_cli(db: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``gitops-dora --db DB *args`` for the reads the pages are compared with (``metrics``,
    ``deployments``), beside the database (so a gitops-dora.yaml in the checkout cannot change the
    numbers) and without GITOPS_DORA_DB, run in this process (tests/cli_inprocess.py: same entry
    point, environment, folder, streams and exit status, without a process's 0.5-0.7 CPU-s of
    start-up); the process is not what these tests are about."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    return cli_inprocess.run(["--db", str(db), *args], env=env,
                             cwd=db.parent if db.parent.exists() else None)


@pytest.fixture(scope="module")
def demo_db(demo_store: DemoStore) -> Path:
    """The run's shared `gitops-dora demo` store (tests/conftest.py); these tests only read it."""
    return demo_store.db


@pytest.fixture
def use_db(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    def _use(db: Path) -> None:
        monkeypatch.setenv("GITOPS_DORA_DB", str(db))
        monkeypatch.delenv("GITOPS_DORA_CONFIG", raising=False)

    yield _use


def open_page(page: str, **params: str) -> AppTest:
    return start_page(page, timeout=120, **params)


def assert_clean(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def badges(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown if "-badge[" in m.value]


# `metrics --format json` documents printed: (store, catalog mtime, arguments) -> stdout
_PRINTED: dict[tuple[object, ...], str] = {}


def metrics_json(db: Path, req: MetricsRequest) -> dict[str, Any]:
    """What ``metrics --format json`` prints for ``req``, parsed afresh for each caller. The same
    command on an unchanged store prints the same document, so it is run once per request and store
    (the default view's is compared twice: 0.3-0.4 CPU-s a run); the catalog's modification time is
    part of the key, so a store written to since is read again."""
    args = (*req.argv(), "--format", "json")
    key = (str(db), db.stat().st_mtime_ns, *args)
    if key not in _PRINTED:
        proc = read_cli(db, "metrics", *args)
        assert proc.returncode == 0, proc.stderr
        _PRINTED[key] = proc.stdout
    payload: dict[str, Any] = json.loads(_PRINTED[key])
    return payload


# which recovery measure each DORA report year rates (docs/metrics.md, "Ratings")
RATED_RECOVERY = {2019: "time_to_restore", 2021: "time_to_restore", 2022: "time_to_restore",
                  2023: "failed_deployment_recovery", 2024: "failed_deployment_recovery"}


def expected_badge(metric: Any, group: dict[str, Any], year: int) -> str:
    rated = metric.key in ("deployment_frequency", "lead_time", "change_failure_rate") or \
        metric.key == RATED_RECOVERY[year]
    if not rated:
        return f":gray-badge[not rated by {year}]"
    cluster = group["ratings"][metric.benchmark]["cluster"]
    if not cluster:
        return f":gray-badge[no value to rate ({year})]"
    return f":{RATING_COLORS[cluster]}-badge[{cluster.capitalize()} ({year})]"


def check_overview_against_cli(at: AppTest, db: Path, req: MetricsRequest) -> int:
    """Every environment tile's value, delta and rating badge equal the CLI's JSON (the
    organisation row before them has no CLI equivalent: tests/test_dashboard_leader.py checks it);
    returns tiles compared."""
    payload = metrics_json(db, req)
    groups = [g for g in payload["groups"] if g["deployments"]]
    groups.sort(key=lambda g: (0 if g["environment"] == "production" else 1, g["environment"]))
    assert [h.value for h in at.subheader if h.value.startswith(("Environment:", "Organisation"))] == [
        "Organisation", *(f"Environment: {g['environment']}" for g in groups)
    ]
    shown = list(at.metric)
    assert len(shown) == len(TILES) * (1 + len(groups))
    year = req.benchmark or 2024
    rating_badges = badges(at)
    compared = 0
    for gi, group in enumerate(groups, start=1):
        for ti, tile in enumerate(TILES):
            m = shown[gi * len(TILES) + ti]
            value = group[tile.field]
            assert m.label == tile.title
            assert m.value == fmt(tile, value), (tile.field, value)
            assert (m.delta or None) == delta_text(tile, value, group["delta"][tile.field]), tile.field
            assert rating_badges[gi * len(TILES) + ti] == expected_badge(tile, group, year), tile.key
            compared += 1
    return compared


# --- tests on stores of their own, first: in a run of the suite another worker may be building the
# shared demo store (tests/conftest.py, 15-30 s) when this module starts, and these need not wait for it


def test_data_health_lists_shallow_clones_and_unknown_revisions(tmp_path: Path, use_db: Any) -> None:
    db = tmp_path / "health.duckdb"
    with open_writer(db, source="test") as w:
        w.upsert("repositories", [{"id": "shop", "url": "https://example.com/shop.git", "local_path": "/x",
                                   "is_bare": False, "is_shallow": True}])
        w.upsert("deployments", [{"id": "D1", "service": "shop", "environment": "production",
                                  "repository": "shop", "revision": "", "raw_revision": "build-7?",
                                  "revision_format": "unknown",
                                  "deployed_at": datetime(2026, 3, 2, tzinfo=UTC),
                                  "status": "success", "source": "test", "source_ref": "D1"}])
        w.warn("shallow_clone", "shop: shallow clone, history and lead times are truncated")
    use_db(db)
    at = open_page("data_health")
    assert_clean(at)
    assert "History is truncated in these repositories, so their lead times are too short." in [
        w.value for w in at.warning]
    assert "No repository was mined from a shallow clone." not in [m.value for m in at.success]
    assert "Every deployment revision was understood." not in [m.value for m in at.success]
    frames = [df.value for df in at.dataframe]
    assert any(list(f.get("repository", [])) == ["shop"] for f in frames)          # the shallow clone
    assert any(list(f.get("raw_revision", [])) == ["build-7?"] for f in frames)    # the unknown revision
    assert any("shallow" in " ".join(map(str, f.get("kind", []))) for f in frames)  # its warning


@pytest.fixture(scope="module")
def empty_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with the schema and no row, for every page's empty-store check (they only read it).
    One store for the six pages instead of one each: the first page opens the dashboard's
    connections to it (views installed, the engine's copies; 0.3-0.5 CPU-s) and the others find
    them, as pages of a server do; what each page draws from an empty store is still its own."""
    empty = tmp_path_factory.mktemp("empty-store") / "empty.duckdb"
    with open_writer(empty, source="test"):
        pass  # schema only, no rows
    return empty


@pytest.mark.parametrize("page", PAGES)
def test_empty_and_missing_database_say_what_to_collect(
    tmp_path: Path, empty_db: Path, use_db: Any, page: str
) -> None:
    for db in (empty_db, tmp_path / "missing.duckdb"):
        use_db(db)
        at = open_page(page)
        assert_clean(at)
        notes = [i.value for i in at.info]
        if page == "maturity":
            assert any("self-assessment" in n for n in notes)
        else:
            assert any("gitops-dora" in n and "yet" in n for n in notes), notes


def test_snapshot_change_refreshes_cached_numbers(tmp_path: Path, use_db: Any) -> None:
    db = tmp_path / "live.duckdb"
    t0 = datetime(2026, 3, 2, 12, tzinfo=UTC)

    def deploy(n: int) -> None:
        with open_writer(db, source="test") as w:
            w.upsert("services", [{"name": "svc", "team": "t"}])
            w.upsert("deployments", [{"id": f"d{i}", "service": "svc", "environment": "production",
                                      "deployed_at": t0.replace(day=2 + i), "status": "success",
                                      "source": "test"} for i in range(n)])

    def shown_snapshot(at: AppTest) -> str:
        return next(c.value for c in at.sidebar.caption if "data as of" in c.value)

    deploy(2)
    use_db(db)
    at = open_page("overview", since="2026-03-01", until="2026-04-01")
    # 2 deployments in 31 days: 2 * 7 / 31 = 0.4516 per week
    assert at.metric[0].value == "0.45/wk"
    first = latest_snapshot(db)
    assert first is not None and shown_snapshot(at).endswith(f"(snapshot {first.id})")
    deploy(3)  # a collection commits a new snapshot: 3 * 7 / 31 = 0.677
    at.run()
    assert at.metric[0].value == "0.68/wk"
    second = latest_snapshot(db)
    assert second is not None and second.id > first.id
    assert shown_snapshot(at).endswith(f"(snapshot {second.id})")


def test_self_assessment_form_offers_the_answers_yaml(
    tmp_path: Path, use_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The answers are a download (the server writes nothing; tests/test_dashboard_security.py)."""
    from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage

    from assessment.answers import load_answers

    served: list[bytes] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def record(self: Any, data: Any, mimetype: str, kind: Any, filename: str | None = None) -> str:
        if filename == "maturity-answers.yaml":
            served.append(data)
        return original(self, data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", record)
    use_db(tmp_path / "missing.duckdb")
    at = open_page("maturity")
    target = tmp_path / "downloaded.yaml"
    at.radio(key="ans-declarative-iac").set_value("yes")
    at.radio(key="ans-progressive-delivery").set_value("no")
    at.text_input(key="note-progressive-delivery").set_value("canaries next quarter")
    at.run()
    assert_clean(at)
    target.write_bytes(served[-1])
    answers = load_answers(target)
    assert {k: (a.value, a.note) for k, a in answers.items()} == {
        "declarative-iac": (True, None), "progressive-delivery": (False, "canaries next quarter"),
    }
    assert yaml.safe_load(target.read_text())["answers"]["declarative-iac"] == "yes"


def test_pr_breakdown_equals_metrics_json_and_hand_worked_medians(tmp_path: Path, use_db: Any) -> None:
    """Two merged PRs shipped by D1 (2026-01-11 12:00 UTC); D0 is the baseline.

    PR 1: first commit 01-10 00:00, opened 04:00, first review 10:00, merged 01-11 00:00
          -> coding 4 h, pickup 6 h, review 14 h, deploy 12 h
    PR 2: first commit 01-11 00:00, opened 02:00, first review 04:00, merged 06:00
          -> coding 2 h, pickup 2 h, review 2 h, deploy 6 h
    medians (even count, mean of the two): coding 3, pickup 4, review 8, deploy 9.
    """
    def ts(text: str) -> datetime:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)

    db = tmp_path / "prs.duckdb"
    with open_writer(db, source="test") as w:
        w.upsert("services", [{"name": "api", "team": "core"}])
        w.upsert("environments", [{"name": "production", "is_production": True}])
        w.upsert("commits", [
            {"repo": "api", "sha": sha, "parents": [], "author_time": ts(at), "committer_time": ts(at),
             "is_merge": False, "subject": sha}
            for sha, at in (("c0", "2026-01-01T00:00"), ("m1", "2026-01-11T00:00"),
                            ("m2", "2026-01-11T06:00"))
        ])
        w.upsert("deployments", [
            {"id": "D0", "service": "api", "environment": "production", "repository": "api",
             "revision": "c0", "deployed_at": ts("2026-01-02T00:00"), "status": "success", "source": "test"},
            {"id": "D1", "service": "api", "environment": "production", "repository": "api",
             "revision": "m2", "deployed_at": ts("2026-01-11T12:00"), "status": "success", "source": "test"},
        ])
        w.upsert("deployment_changes", [{"deployment_id": "D0", "repo": "api", "sha": "c0"},
                                        {"deployment_id": "D1", "repo": "api", "sha": "m1"},
                                        {"deployment_id": "D1", "repo": "api", "sha": "m2"}])
        w.upsert("pull_requests", [
            {"repo": "api", "number": 1, "provider": "github", "title": "one", "state": "merged",
             "first_commit_at": ts("2026-01-10T00:00"), "created_at": ts("2026-01-10T04:00"),
             "first_review_at": ts("2026-01-10T10:00"), "merged_at": ts("2026-01-11T00:00"),
             "merge_commit_sha": "m1", "commit_shas": ["m1"], "url": "https://example.test/pr/1"},
            {"repo": "api", "number": 2, "provider": "github", "title": "two", "state": "merged",
             "first_commit_at": ts("2026-01-11T00:00"), "created_at": ts("2026-01-11T02:00"),
             "first_review_at": ts("2026-01-11T04:00"), "merged_at": ts("2026-01-11T06:00"),
             "merge_commit_sha": "m2", "commit_shas": ["m2"], "url": "https://example.test/pr/2"},
        ])
    use_db(db)
    at = open_page("throughput", since="2026-01-01", until="2026-02-01")
    assert_clean(at)
    medians = next(df.value for df in at.dataframe if "coding" in df.value.columns)
    payload = metrics_json(db, MetricsRequest(since="2026-01-01", until="2026-02-01"))
    (group,) = payload["groups"]
    row = medians.iloc[0]
    for phase, hand in (("coding", 3.0), ("pickup", 4.0), ("review", 8.0), ("deploy", 9.0)):
        assert row[phase] == pytest.approx(group[f"pr_{phase}_median_hours"])
        assert row[phase] == pytest.approx(hand)
    assert row["prs_deployed"] == group["prs_deployed"] == 2
    prs = next(df.value for df in at.dataframe if "number" in df.value.columns)
    assert sorted(prs["number"]) == [1, 2]


def test_pages_keep_working_while_a_collection_is_writing(tmp_path: Path, use_db: Any) -> None:
    """A writer paused just before COMMIT holds the database; the dashboard reads the snapshot."""
    db = tmp_path / "busy.duckdb"
    t0 = datetime(2026, 3, 2, 12, tzinfo=UTC)
    with open_writer(db, source="test") as w:
        w.upsert("services", [{"name": "svc", "team": "t"}])
        w.upsert("deployments", [{"id": f"d{i}", "service": "svc", "environment": "production",
                                  "deployed_at": t0.replace(day=2 + i), "status": "success",
                                  "source": "test"} for i in range(2)])
    csv_file = tmp_path / "deployments.csv"
    csv_file.write_text("id,service,environment,revision,deployed_at,status,repository\n"
                        "x1,svc,production,abc1234,2026-03-20T10:00:00Z,success,\n"
                        "x2,svc,production,abc1235,2026-03-21T10:00:00Z,success,\n")
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    release = tmp_path / "release-the-writer"
    env["GITOPS_DORA_PAUSE_BEFORE_COMMIT"] = f"until:{release}"  # held until the reads are done
    writer = subprocess.Popen([CLI, "--db", str(db), "import", str(csv_file)], env=env, cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert writer.stderr is not None
        line = writer.stderr.readline()
        while line and "pausing" not in line:
            line = writer.stderr.readline()
        assert "pausing" in line                        # the writer is inside its transaction now
        use_db(db)
        at = open_page("overview", since="2026-03-01", until="2026-04-01")
        assert_clean(at)
        assert at.metric[0].value == "0.45/wk"         # 2 * 7 / 31: the last published snapshot
        health = open_page("data_health")
        assert_clean(health)
        assert writer.poll() is None                    # and the writer was still running
    finally:
        release.touch()
        out, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    at.run()
    assert at.metric[0].value == "0.90/wk"             # 4 * 7 / 31 once the new snapshot is published


def test_dashboard_command_rejects_a_bad_port(tmp_path: Path) -> None:
    """Run in this process up to the exec it must not reach (tests/dashboard_server.py,
    ``dashboard_command``): Typer's check of the option is what is tested, not a process start-up."""
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    run = dashboard_command(["--db", str(tmp_path / "x.duckdb"), "dashboard", "--port", "70000"],
                            env=env, cwd=tmp_path)
    assert run.result.returncode == 2
    assert "65535" in run.result.stderr and "--port" in run.result.stderr
    assert run.argv is None                           # no server started


def test_dashboard_command_serves_the_store_with_the_default_view_warmed(tmp_path: Path) -> None:
    """What `gitops-dora dashboard` hands the Streamlit server it execs: the app on the selected
    store, the port, and the warm-up of the default Overview switched on (dashboards/warmup.py;
    tested in-process by test_warm_up_computes_the_default_overview_once_per_snapshot)."""
    from analytics.cli.cmd_dashboard import APP_SCRIPT

    db = tmp_path / "x.ducklake"
    with open_writer(db, source="test"):
        pass
    env = child_env(drop=("GITOPS_DORA_", "STREAMLIT_"))
    run = dashboard_command(["--db", str(db), "dashboard", "--port", "8765"], env=env, cwd=tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    assert "http://127.0.0.1:8765/" in run.result.stdout
    assert run.program == sys.executable and run.argv is not None and run.env is not None
    assert run.argv[1:5] == ["-m", "streamlit", "run", str(APP_SCRIPT)]
    assert run.argv[run.argv.index("--server.port") + 1] == "8765"
    assert run.argv[run.argv.index("--server.address") + 1] == "127.0.0.1"
    assert Path(run.env["GITOPS_DORA_DB"]) == db
    assert run.env["GITOPS_DORA_WARMUP"] == "1"
    # GITOPS_DORA_WARMUP=0 given to the command turns the warm-up off (docs/dashboard.md)
    run = dashboard_command(["--db", str(db), "dashboard", "--port", "8765"],
                            env={**env, "GITOPS_DORA_WARMUP": "0"}, cwd=tmp_path)
    assert run.result.returncode == 0, run.result.stderr
    assert run.env is not None and run.env["GITOPS_DORA_WARMUP"] == "0"


def test_dashboard_csv_downloads_escape_formulas_like_the_report() -> None:
    import pandas as pd

    from dashboards.components import csv_bytes

    frame = pd.DataFrame({"service": ['=HYPERLINK("x")', "plain", "-2.5"], "delta": [-1.5, 2.0, 0.0]})
    assert csv_bytes(frame).decode().splitlines() == [
        "service,delta",
        "\"'=HYPERLINK(\"\"x\"\")\",-1.5",   # text formula escaped, numbers untouched
        "plain,2.0",
        "-2.5,0.0",                             # a plain-number string stays a number
    ]


def test_engine_connections_are_kept_for_the_databases_used_last(tmp_path: Path) -> None:
    """A test process (or a server pointed elsewhere) reads many stores: the pool keeps idle engine
    connections for the last ``databases`` only and closes the others', and a new snapshot of a
    store closes its older snapshot's connection."""
    import duckdb

    from dashboards import metrics_source
    from dashboards.source import data_stamp

    dbs = []
    for name in ("a", "b"):
        db = tmp_path / f"{name}.duckdb"
        with open_writer(db, source="test") as w:
            w.upsert("services", [{"name": "svc", "team": "t"}])
        dbs.append(db)
    readers = metrics_source._EngineReaders(databases=1)
    stamps = [data_stamp(db) for db in dbs]
    first = readers.take(dbs[0], stamps[0])
    readers.give_back(dbs[0], stamps[0], first, reusable=True)
    again = readers.take(dbs[0], stamps[0])
    assert again is first                                   # reused while it is the last database
    readers.give_back(dbs[0], stamps[0], again, reusable=True)
    other = readers.take(dbs[1], stamps[1])
    readers.give_back(dbs[1], stamps[1], other, reusable=True)
    with pytest.raises(duckdb.ConnectionException):         # the first database's was closed
        first.execute("SELECT 1")
    with open_writer(dbs[1], source="test") as w:           # a new snapshot of the second store
        w.upsert("services", [{"name": "svc2", "team": "t"}])
    newer = readers.take(dbs[1], data_stamp(dbs[1]))
    assert newer is not other
    with pytest.raises(duckdb.ConnectionException):         # the older snapshot's is closed
        other.execute("SELECT 1")
    readers.give_back(dbs[1], data_stamp(dbs[1]), newer, reusable=False)
    with pytest.raises(duckdb.ConnectionException):         # a failed run's connection is not kept
        newer.execute("SELECT 1")
    readers.clear()


# --- tests on the shared demo store ---------------------------------------------------------------


def test_overview_default_view_equals_metrics_json(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    at = open_page("overview")
    assert_clean(at)
    since, until = at.query_params["since"], at.query_params["until"]
    # the default window is the 90 days up to the day after the newest deployment
    newest = store_reader(demo_db).execute(
        "SELECT CAST(max(deployed_at) AT TIME ZONE 'UTC' AS DATE) FROM deployments").fetchone()
    assert newest is not None
    assert (datetime.fromisoformat(until).date() - newest[0]).days == 1
    assert (datetime.fromisoformat(until) - datetime.fromisoformat(since)).days == 90
    req = MetricsRequest(since=since, until=until, compare_previous=True)
    assert check_overview_against_cli(at, demo_db, req) >= len(TILES)
    assert any("What changed:" in m.value for m in at.markdown)


def test_overview_under_filters_equals_metrics_json(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    at = open_page("overview", since="2026-06-01", until="2026-09-01", service="payments-api",
                   environment="production", benchmark="2019")
    assert_clean(at)
    assert not at.warning
    assert at.query_params == {"since": "2026-06-01", "until": "2026-09-01", "service": "payments-api",
                               "environment": "production", "benchmark": "2019"}
    req = MetricsRequest(since="2026-06-01", until="2026-09-01", service="payments-api",
                         environment="production", compare_previous=True, benchmark=2019)
    assert check_overview_against_cli(at, demo_db, req) == len(TILES)


def test_overview_team_filter_equals_metrics_json(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    team = read_cli(demo_db, "deployments", "--format", "json")
    first_team = sorted({d["team"] for d in json.loads(team.stdout) if d["team"]})[0]
    at = open_page("overview", since="2026-05-01", until="2026-11-01", team=first_team)
    assert_clean(at)
    assert at.query_params["team"] == first_team
    req = MetricsRequest(since="2026-05-01", until="2026-11-01", team=first_team, compare_previous=True)
    assert check_overview_against_cli(at, demo_db, req) >= len(TILES)
    # the service picker only offers that team's services
    services = at.sidebar.selectbox[1].options
    expected = sorted({d["service"] for d in json.loads(team.stdout) if d["team"] == first_team})
    assert services == ["(all)", *expected]


def test_changing_a_filter_updates_the_url_and_the_numbers(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    at = open_page("overview", since="2026-05-01", until="2026-11-01")
    at.sidebar.selectbox[1].set_value("storefront").run()       # Service
    assert_clean(at)
    assert at.query_params["service"] == "storefront"
    req = MetricsRequest(since="2026-05-01", until="2026-11-01", service="storefront", compare_previous=True)
    assert check_overview_against_cli(at, demo_db, req) >= len(TILES)  # one row of tiles per environment


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_demo_data_without_errors(demo_db: Path, use_db: Any, page: str) -> None:
    use_db(demo_db)
    at = open_page(page, since="2026-05-01", until="2026-11-01")
    assert_clean(at)
    assert at.title[0].value  # the page drew its heading, not a blank page
    if page in ("throughput", "stability"):
        assert len(at.get("plotly_chart")) >= 1
    if page in ("deployments", "data_health", "throughput"):
        assert len(at.get("download_button")) >= 1   # every table has its CSV download


def test_deployments_table_equals_deployments_command(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    at = open_page("deployments", since="2026-08-01", until="2026-10-01", environment="production")
    assert_clean(at)
    proc = read_cli(demo_db, "deployments", "--since", "2026-08-01", "--until", "2026-10-01",
                    "--environment", "production", "--format", "json")
    expected = json.loads(proc.stdout)
    table = at.dataframe[0].value
    assert sorted(table["id"]) == sorted(d["id"] for d in expected)
    by_id = {d["id"]: d for d in expected}
    for row in table.itertuples():
        assert row.changes == by_id[row.id]["changes"]
        assert row.status == by_id[row.id]["status"]
    # drill-down of the newest deployment lists exactly the commits it shipped
    newest = table.iloc[0]["id"]
    changes = at.dataframe[1].value
    assert len(changes) == by_id[newest]["changes"]
    assert all(str(u).endswith("/commit/" + s) or u is None or str(u) == "nan"
               for u, s in zip(changes["commit_url"], changes["sha"], strict=True))


def test_data_health_counts_equal_the_database(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    at = open_page("data_health")
    assert_clean(at)
    counts = next(df.value for df in at.dataframe if "row_count" in df.value.columns)
    con = store_reader(demo_db)
    for row in counts.itertuples():
        (n,) = con.execute(f'SELECT count(*) FROM "{row.table_name}"').fetchone() or (None,)
        assert row.row_count == n, row.table_name
    runs = next(df.value for df in at.dataframe if "last_status" in df.value.columns)
    (sources,) = con.execute(
        "SELECT count(DISTINCT (source, target)) FROM collection_runs").fetchone() or (0,)
    assert len(runs) == sources
    con.close()


@pytest.mark.parametrize(
    ("params", "warning"),
    [
        ({"since": "garbage"}, "since='garbage' is not a date"),
        ({"since": "2026-09-01", "until": "2026-08-01"}, "is not after since"),
        ({"service": "no-such-service"}, "service='no-such-service' is not in the data"),
        ({"environment": "<script>"}, "environment='\\<script\\>' is not in the data"),  # escaped Markdown
        ({"benchmark": "1999"}, "benchmark='1999' is not a DORA report year"),
        ({"team": "x" * 5000}, "is not in the data"),
    ],
)
def test_bad_query_params_fall_back_with_a_warning(
    demo_db: Path, use_db: Any, params: dict[str, str], warning: str
) -> None:
    use_db(demo_db)
    at = open_page("overview", **params)
    assert_clean(at)
    assert any(warning in w.value for w in at.warning), [w.value for w in at.warning]
    assert len(at.metric) >= len(TILES)                # the page still shows the default view
    for key in params:
        if key not in ("since", "until"):
            assert key not in at.query_params            # the bad value is dropped from the URL


def test_maturity_ladder_and_badge_equal_the_stored_assessment(demo_db: Path, use_db: Any) -> None:
    from dashboards.maturity_data import STATUS_LABELS

    use_db(demo_db)
    con = store_reader(demo_db)
    latest = con.execute(
        "SELECT id, target, level FROM maturity_assessments ORDER BY as_of DESC, assessed_at DESC, id LIMIT 1"
    ).fetchone()
    assert latest is not None, "the demo stores a maturity assessment"
    stored = dict(con.execute(
        "SELECT capability, status FROM maturity_capability_status WHERE assessment_id = ?", [latest[0]]
    ).fetchall())
    monthly = con.execute("SELECT count(*) FROM maturity_assessments WHERE kind = 'monthly' AND target = ?",
                          [latest[1]]).fetchone()
    con.close()
    at = open_page("maturity")
    assert_clean(at)
    level_text = "below Level 0" if latest[2] is None else f"Level {latest[2]}"
    assert any(h.value == f"Maturity ladder: {level_text}" for h in at.subheader)
    shown = {}
    for df in at.dataframe:
        if {"id", "status"} <= set(df.value.columns):
            shown.update(dict(zip(df.value["id"], df.value["status"], strict=True)))
    assert len(shown) == 20
    assert shown == {cap: STATUS_LABELS[status] for cap, status in stored.items()}
    if monthly and monthly[0]:
        assert len(at.get("plotly_chart")) >= 1              # the maturity timeline over DORA trends
    overview = open_page("overview")
    assert any(m.value.endswith(f"-badge[{level_text}]") for m in overview.markdown)
    assert any(c.value.startswith(f"{md(latest[1])}: assessed as of") for c in overview.caption)


def test_warm_up_computes_the_default_overview_once_per_snapshot(
    demo_db: Path, use_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from dashboards import metrics_source, warmup
    from dashboards.filters import Filters, default_window
    from dashboards.source import data_stamp

    use_db(demo_db)
    con = store_reader(demo_db)
    (newest,) = con.execute(
        "SELECT CAST(max(deployed_at) AT TIME ZONE 'UTC' AS DATE) FROM deployments").fetchone() or (None,)
    con.close()
    since, until = default_window(newest, newest)
    req = metrics_source.request_for(Filters(since, until), compare_previous=True)
    key = (str(demo_db), data_stamp(demo_db), req)
    # the warm-up fills a cache of its own (so the result is there only if the warm-up put it
    # there); the engine runs it asks for are served from the process's cache when an earlier test
    # (the Overview's default view) already computed that request on this snapshot: this test is
    # about when the warm-up runs and what it leaves ready, and test_dashboard_leader's warm-up test
    # runs the engine in the warm-up's thread
    earlier, real_compute = metrics_source.RESULTS, metrics_source.compute

    def compute(db: Path, r: MetricsRequest, stamp: int | None = None) -> dict[str, Any]:
        found = None if stamp is None else earlier._results.get((str(db), stamp, r))
        return found if isinstance(found, dict) else real_compute(db, r, stamp)

    monkeypatch.setattr(metrics_source, "compute", compute)
    monkeypatch.setattr(metrics_source, "RESULTS", metrics_source._ResultCache())
    monkeypatch.setattr(warmup, "metrics", lambda db, r: metrics_source.RESULTS.get(db, r))
    monkeypatch.setattr(warmup, "_seen", set())
    assert warmup.warm_default_view(demo_db) is True
    assert warmup.warm_default_view(demo_db) is False         # once per published snapshot
    for thread in threading.enumerate():
        if thread.name == "gitops-dora-warmup":
            thread.join(timeout=120)
    assert key in metrics_source.RESULTS._results                 # ready before anyone asked
    assert metrics_source.RESULTS.get(demo_db, req) == metrics_json(demo_db, MetricsRequest(
        since=since.isoformat(), until=until.isoformat(), compare_previous=True))


def test_a_link_names_the_drilled_down_deployment(demo_db: Path, use_db: Any) -> None:
    use_db(demo_db)
    proc = read_cli(demo_db, "deployments", "--since", "2026-08-01", "--until", "2026-10-01", "--format",
                    "json")
    listed = json.loads(proc.stdout)
    target = max((d for d in listed if d["changes"]), key=lambda d: (d["changes"], d["id"]))
    at = open_page("deployments", since="2026-08-01", until="2026-10-01", deployment=target["id"])
    assert_clean(at)
    assert not at.warning
    assert at.query_params["deployment"] == target["id"]       # kept in the link
    header = next(m.value for m in at.markdown if m.value.startswith("**"))
    assert f"**{target['service']}** → **{target['environment']}**" in header
    changes = next(df.value for df in at.dataframe if "commit_url" in df.value.columns)
    assert len(changes) == target["changes"]
    bad = open_page("deployments", since="2026-08-01", until="2026-10-01", deployment="no-such-id")
    assert_clean(bad)
    assert any("deployment='no-such-id'" in w.value for w in bad.warning)
    assert "deployment" not in bad.query_params


def test_engine_connections_are_reused_and_give_what_new_ones_give(
    demo_db: Path, use_db: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The pages' engine runs take a connection of the snapshot from a pool (metrics_source
    ENGINE_READERS) instead of opening one each. A run must leave nothing behind that changes the
    next one's numbers: each request here runs on a connection that ran the ones before it (and a
    failed request; pooled requests blank every team on the connection and put them back), with
    the tables the engine copies per report copied once when the connection was opened, and must
    equal the same request on a connection of its own where the engine makes its own copies."""
    from datetime import date

    from dashboards import metrics_source
    from dashboards.filters import Filters
    from dashboards.source import data_stamp
    from dashboards.warmup import overview_requests

    use_db(demo_db)
    opened: list[bool] = []
    real_open = metrics_source.open_reader

    def counting_open(db: Any, **kwargs: Any) -> Any:
        opened.append(True)
        return real_open(db, **kwargs)

    monkeypatch.setattr(metrics_source, "open_reader", counting_open)
    readers = metrics_source._EngineReaders()
    monkeypatch.setattr(metrics_source, "ENGINE_READERS", readers)
    team = str(store_reader(demo_db).execute("SELECT min(team) FROM services").fetchone()[0])  # type: ignore[index]
    f = Filters(date(2026, 5, 1), date(2026, 11, 1))
    requests = [
        *overview_requests(Filters(f.since, f.until, team=team)),    # pooled, by environment, trends
        metrics_source.request_for(f, group_by=("team",), trend="week"),
        metrics_source.request_for(f, group_by=("service",), compare_previous=True),
    ]
    failing = MetricsRequest(since="2026-05-01", until="2026-11-01", trend="decade")
    reused = []
    for index, req in enumerate(requests):
        reused.append(metrics_source.compute(demo_db, req))
        if index == 1:
            with pytest.raises(metrics_source.MetricsUnavailable):
                metrics_source.compute(demo_db, failing)
    # one connection, and one more after the failure closed the first
    assert len(opened) == 2
    readers.clear()
    fresh = metrics_source._EngineReaders(copies=False)
    monkeypatch.setattr(metrics_source, "ENGINE_READERS", fresh)
    stamp = data_stamp(demo_db)
    for req, got in zip(requests, reused, strict=True):
        fresh.clear()
        assert metrics_source.compute(demo_db, req, stamp) == got, req
    assert len(opened) == 2 + len(requests)
    fresh.clear()
    con = real_open(demo_db)
    try:  # the copies exist (the engine then skips its own): at least the deployments and incidents
        assert {"deployments", "incidents"} <= set(metrics_source.copy_engine_tables(con))
    finally:
        con.close()

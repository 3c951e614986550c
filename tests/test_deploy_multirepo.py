"""Deployments of several repositories, redeploys and the default environment (issue #15), through
the real CLI and store.

Hand-worked example (service shop, all times UTC, March 2026; commits imported without a clone):

    api   a1 03-01 09:00   a2 03-02 09:00   a3 03-03 09:00          (each the parent of the next)
    web   w1 03-01 10:00   w2 03-02 10:00
    docs  x0 02-20 08:00   x1 03-03 08:00

    d1 03-01 12:00  api=a1 web=w1            baseline of shop/production: a1, w1 (not measured)
    d2 03-02 12:00  api=a2 web=w2            a2 3 h, w2 2 h
    d3 03-03 12:00  api=a3 web=w2 docs=x1    a3 3 h; web ships nothing new; docs is shipped for the
                                             first time: x0, x1 are its baseline (not measured)
    d4 03-03 18:00  api=a3 web=w2 docs=x1    no environment -> production; the same pairs as d3: a
                                             redeploy with 0 changes

Window [03-02, 03-04): deployments d2, d3, d4 = 3 (2 with count_redeploys: false); changes 5
(a2, w2, a3, x0, x1), of which 2 baseline; lead time median over 3, 2, 3 h = 3 h.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.stability_env import run_cli_inprocess as run_cli
from tests.stability_env import write_csv
from tests.store_query import query

A1, A2, A3 = ("a1" * 20, "a2" * 20, "a3" * 20)
W1, W2 = ("b1" * 20, "b2" * 20)
X0, X1 = ("c0" * 20, "c1" * 20)
COMMITS = [
    ("api", A1, "", "2026-03-01T09:00:00Z"), ("api", A2, A1, "2026-03-02T09:00:00Z"),
    ("api", A3, A2, "2026-03-03T09:00:00Z"),
    ("web", W1, "", "2026-03-01T10:00:00Z"), ("web", W2, W1, "2026-03-02T10:00:00Z"),
    ("docs", X0, "", "2026-02-20T08:00:00Z"), ("docs", X1, X0, "2026-03-03T08:00:00Z"),
]
DEPLOYS = [
    ("d1", "shop", "production", f"api={A1} web={W1}", "2026-03-01T12:00:00Z", "success", ""),
    ("d2", "shop", "production", f"api={A2[:7]},web={W2}", "2026-03-02T12:00:00Z", "success", ""),
    ("d3", "shop", "production", f"api={A3};web={W2};docs={X1}", "2026-03-03T12:00:00Z", "success", ""),
    ("d4", "shop", "", f"docs={X1} api={A3} web={W2}", "2026-03-03T18:00:00Z", "success", ""),
]
HEADER = ("id", "service", "environment", "revision", "deployed_at", "status", "repository")


def store(tmp: Path) -> Path:
    db = tmp / "store.ducklake"
    commits = write_csv(tmp / "commits.csv", ("repository", "sha", "parents", "authored_at"), COMMITS)
    deploys = write_csv(tmp / "deploys.csv", HEADER, DEPLOYS)
    out = run_cli(db, "import", str(commits), str(deploys))
    assert "4 deployments of several repositories" in out.stderr
    assert "1 deployments without an environment assigned to production" in out.stderr
    return db


def changes(db: Path, deployment: str) -> dict[str, tuple[float, bool]]:
    rows = json.loads(run_cli(db, "changes", "--deployment", deployment, "--format", "json").stdout)
    return {r["sha"]: (round(r["lead_hours"], 2), r["counted"]) for r in rows}


def group(db: Path, config: Path | None = None) -> dict[str, Any]:
    out = run_cli(db, "metrics", "--since", "2026-03-02", "--until", "2026-03-04", "--format", "json",
                  config=config).stdout
    groups = json.loads(out)["groups"]
    assert len(groups) == 1
    return dict(groups[0])


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return store(tmp_path_factory.mktemp("multirepo"))


def test_each_repository_ships_its_commits_since_its_own_previous_deployment(db: Path) -> None:
    assert changes(db, "d2") == {A2: (3.0, True), W2: (2.0, True)}
    # docs is new in d3: its whole history is that repository's baseline, not a 268-hour lead time
    assert changes(db, "d3") == {A3: (3.0, True), X0: (268.0, False), X1: (4.0, False)}
    assert changes(db, "d4") == {}
    pairs = query(db, "SELECT repository, revision, raw_revision FROM deployment_revisions "
                      "WHERE deployment_id = 'd2' ORDER BY repository")
    assert pairs == [("api", A2, A2[:7]), ("web", W2, W2)]                 # the abbreviated sha resolved
    assert query(db, "SELECT repository, revision FROM deployments WHERE id = 'd3'") == [("api", A3)]


def test_redeploys_count_unless_the_config_says_otherwise(db: Path, tmp_path: Path) -> None:
    counted = group(db)
    assert (counted["deployments"], counted["changes"], counted["baseline_changes"]) == (3, 5, 2)
    assert counted["lead_time_median_hours"] == pytest.approx(3.0)       # median(3, 2, 3)
    config = tmp_path / "gitops-dora.yaml"
    config.write_text("deployments:\n  count_redeploys: false\n")
    ignored = group(db, config)
    assert (ignored["deployments"], ignored["changes"]) == (2, 5)        # d4 left out
    assert ignored["deployment_days"] == 2
    assert ignored["lead_time_median_hours"] == pytest.approx(3.0)


def test_missing_environment_is_a_data_warning(db: Path) -> None:
    assert query(db, "SELECT environment FROM deployments WHERE id = 'd4'") == [("production",)]
    assert query(db, "SELECT detail, count FROM data_warnings WHERE kind = 'default_environment'") == [
        ("deployments without an environment assigned to production", 1)]


def test_configured_default_environment(tmp_path: Path) -> None:
    db = tmp_path / "store.ducklake"
    config = tmp_path / "gitops-dora.yaml"
    config.write_text("deployments:\n  default_environment: staging\n")
    deploys = write_csv(tmp_path / "d.csv", HEADER,
                        [("s1", "shop", "", A1, "2026-03-01T12:00:00Z", "", "api")])
    out = run_cli(db, "import", str(deploys), config=config)
    assert "1 deployments without an environment assigned to staging" in out.stderr
    assert query(db, "SELECT environment FROM deployments") == [("staging",)]


def test_reimport_with_one_repository_drops_the_pairs(tmp_path: Path) -> None:
    db = store(tmp_path)
    again = write_csv(tmp_path / "again.csv", HEADER,
                      [("d3", "shop", "production", A3, "2026-03-03T12:00:00Z", "success", "api")])
    run_cli(db, "import", str(again))
    assert query(db, "SELECT count(*) FROM deployment_revisions WHERE deployment_id = 'd3'") == [(0,)]
    # d3 now ships api only; docs first appears in d4, whose docs changes are that repository's baseline
    assert changes(db, "d3") == {A3: (3.0, True)}
    assert changes(db, "d4") == {X0: (274.0, False), X1: (10.0, False)}


def test_a_bad_pair_rejects_the_file(tmp_path: Path) -> None:
    db = store(tmp_path)
    bad = write_csv(tmp_path / "bad.csv", HEADER, [
        ("d9", "shop", "production", f"api={A3}", "2026-03-05T12:00:00Z", "success", ""),
        ("d10", "shop", "production", f"api={A3} web=", "2026-03-06T12:00:00Z", "success", "")])
    proc = run_cli(db, "import", str(bad), check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("line 3: revision pair 'web=' is not repository=revision; "
                                        "nothing from this file was imported")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert query(db, "SELECT count(*) FROM deployments WHERE id IN ('d9', 'd10')") == [(0,)]


def test_pairs_as_a_yaml_mapping_and_a_json_list(tmp_path: Path) -> None:
    db = store(tmp_path)
    (tmp_path / "more.yaml").write_text(
        "deployments:\n"
        f"  - {{id: y1, service: shop, environment: production, deployed_at: '2026-03-04T12:00:00Z',\n"
        f"     revision: {{api: '{A3}', web: '{W2}'}}}}\n")
    (tmp_path / "more.json").write_text(json.dumps([
        {"id": "j1", "service": "shop", "environment": "staging", "deployed_at": "2026-03-04T13:00:00Z",
         "revision": [f"api={A2}", f"web={W1}"]}]))
    run_cli(db, "import", str(tmp_path / "more.yaml"), str(tmp_path / "more.json"))
    assert query(db, "SELECT deployment_id, repository, revision FROM deployment_revisions "
                     "WHERE deployment_id IN ('y1', 'j1') ORDER BY 1, 2") == [
        ("j1", "api", A2), ("j1", "web", W1), ("y1", "api", A3), ("y1", "web", W2)]
    assert changes(db, "j1") == {A1: (76.0, False), A2: (52.0, False), W1: (75.0, False)}  # staging baseline

"""A store replaced at the same path while the dashboard runs (``gitops-dora demo`` run again, a
store deleted and collected anew): the new store's snapshot ids start again from 0, and every cache
of the dashboard is keyed by the snapshot id (Streamlit's results, the shared reader, the engine's
pooled connections with their table copies, the sidebar caption). The pages must show the new
store's figures, never the old one's for an id both have (R1's review of the engine pool).

Two stores are collected from two repositories with 3 and 9 tagged releases; each collection makes
the same snapshots, so both end on the same newest id. The live path holds one, then the other
(copied as tests/store_fixture.copy_store copies), with the dashboard's modules reading in between.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboards import metrics_source, queries, source
from tests import cli_inprocess
from tests.gitrepo import GitRepo
from tests.store_fixture import copy_store

SINCE, UNTIL = "2026-05-01", "2026-07-01"


def _collected(root: Path, name: str, releases: int) -> Path:
    repo = GitRepo.init(root / name)
    for i in range(releases):
        repo.commit(f"change {i}", at=f"2026-06-{1 + i:02d}T10:00:00+00:00")
        repo.tag(f"v{i}")
    db = root / f"{name}.ducklake"
    done = cli_inprocess.run(["--db", str(db), "collect", "git", str(repo.path), "--service", "svc",
                              "--environment", "prod", "--deploy-tags", ".*"])
    assert done.returncode == 0, done.stderr
    return db


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("replaced")
    return _collected(root, "three", 3), _collected(root, "nine", 9)


def _install(store: Path, live: Path) -> None:
    for old in (live, Path(str(live) + ".files")):
        if old.is_dir():
            shutil.rmtree(old)
        else:
            old.unlink(missing_ok=True)
    copy_store(store, live)


def _deployments(live: Path, since: str) -> int:
    req = metrics_source.MetricsRequest(since=since, until=UNTIL, group_by=("service",))
    groups = metrics_source.compute(live, req)["groups"]
    return sum(int(g["deployments"]) for g in groups)


def test_a_store_replaced_at_the_same_path_shows_its_own_figures(
        stores: tuple[Path, Path], tmp_path: Path) -> None:
    three, nine = stores
    live = tmp_path / "live.ducklake"
    _install(three, live)
    stamp = source.data_stamp(live)
    assert _deployments(live, SINCE) == 3
    listed = "SELECT count(*) AS n FROM deployments"
    assert int(queries.frame(live, listed)["n"][0]) == 3
    with source.reader(live) as con:
        assert con.execute("SELECT count(*) FROM deployments").fetchall() == [(3,)]

    _install(nine, live)
    assert source.data_stamp(live) == stamp      # the same snapshot id: only the store differs
    # a request computed before (Streamlit's cache) and one never computed (the engine's pooled
    # connection of that snapshot, with its copies of the old store's tables)
    assert _deployments(live, SINCE) == 9
    assert _deployments(live, "2026-06-02") == 8
    assert int(queries.frame(live, listed)["n"][0]) == 9
    with source.reader(live) as con:
        assert con.execute("SELECT count(*) FROM deployments").fetchall() == [(9,)]


def test_the_same_store_written_again_keeps_its_caches(stores: tuple[Path, Path], tmp_path: Path) -> None:
    """A store that only grows is not taken for another: the pooled connection survives a read of
    the same snapshot (what the pool is for), and an older snapshot's entry is simply not used."""
    three, _ = stores
    live = tmp_path / "live.ducklake"
    _install(three, live)
    assert _deployments(live, SINCE) == 3
    pooled = dict(metrics_source.ENGINE_READERS._free)
    assert any(key[0] == str(live) for key in pooled)
    source.data_stamp(live)                      # read again, nothing changed
    assert any(key[0] == str(live) for key in metrics_source.ENGINE_READERS._free)


def test_a_connection_in_use_while_the_store_is_replaced_is_not_kept(
        stores: tuple[Path, Path], tmp_path: Path) -> None:
    """A request running on the old store when the replacement is noticed gives its connection back
    afterwards: it must be closed, not pooled for the new store's requests of the same snapshot."""
    three, nine = stores
    live = tmp_path / "live.ducklake"
    _install(three, live)
    stamp = source.data_stamp(live)
    in_use = metrics_source.ENGINE_READERS.take(live, stamp)
    _install(nine, live)
    assert source.data_stamp(live) == stamp           # noticed here: the caches are emptied
    metrics_source.ENGINE_READERS.give_back(live, stamp, in_use, reusable=True)
    assert _deployments(live, "2026-06-03") == 7


def test_a_store_deleted_read_and_collected_again_shows_its_own_figures(
        stores: tuple[Path, Path], tmp_path: Path) -> None:
    """A render between the deletion and the new store (no store: nothing to compare) must not make
    the dashboard forget which store it cached for."""
    three, nine = stores
    live = tmp_path / "live.ducklake"
    _install(three, live)
    stamp = source.data_stamp(live)
    assert _deployments(live, SINCE) == 3
    shutil.rmtree(Path(str(live) + ".files"))
    live.unlink()
    assert source.data_stamp(live) == 0
    _install(nine, live)
    assert source.data_stamp(live) == stamp
    assert _deployments(live, SINCE) == 9

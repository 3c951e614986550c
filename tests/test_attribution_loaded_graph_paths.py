"""First-load attribution (written by session 10's review): the graph a repository's first
``collect git`` matches chunk by chunk (analytics/deployments/loaded_nodes.py) and its sparse
walk must give exactly the stored rows that steps 3-5 (the commits read back from the store)
give, also where the store is not new: other repositories collected before, deployments of the
repository imported before its commits (stored warnings), a scope shared with another
repository (the store path), and a later incremental collect. Each step runs on two stores, one
where the first load's graph may be used and one where it never is, and every table the steps
write must be equal. The sparse walk's spans are also checked against the list form's walk on
random graphs whose numbering is not their topological order."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from analytics.collectors import git as git_collector
from analytics.collectors import git_log
from analytics.collectors.git_source import locate, ref_tips
from analytics.deployments import attribution, loaded_nodes
from tests import cli_inprocess
from tests.gitrepo import GitRepo, git_date
from tests.store_query import GIT_TABLES, query, store_reader
from tests.test_git_ingest_equivalence import _raw_commit
from tests.test_git_speed_loaded_graph import _one_chunk_a_load

LONG = " with a subject long enough to fill a chunk of a few hundred bytes"


def _at(month: int, day: int, hour: int = 10) -> str:
    return f"2024-{month:02d}-{day:02d}T{hour:02d}:00:00+00:00"


def _history(path: Path, name: str, month: int, days: int = 9) -> GitRepo:
    """Merges whose branch commits are dated after main's (git lists them between a merge and
    its first parent), a branch that merged main in and was fast-forwarded (a merge whose first
    parent is the branch), an octopus, tags on merges (lightweight and annotated)."""
    repo = GitRepo.init(path)
    repo.commit(f"{name} root{LONG}", at=_at(month, 1))
    for day in range(2, days):
        repo.commit(f"{name} main {day}{LONG}", at=_at(month, day, 9))
        if day % 3 == 0:
            repo.branch(f"f{day}")
            repo.commit(f"{name} feature {day}{LONG}", at=_at(month, day, 15))
            repo.checkout("main")
            repo.commit(f"{name} main {day} later{LONG}", at=_at(month, day, 11))
            merge = repo.merge(f"f{day}", at=_at(month, day, 17))
            if day % 2:
                repo.annotated_tag(f"v{day}.0", at=_at(month, day, 18), ref=merge)
            else:
                repo.tag(f"v{day}.0", merge)
        if day == 4:
            repo.branch("g")
            repo.commit(f"{name} g{LONG}", at=_at(month, day, 12))
            repo.checkout("main")
            repo.commit(f"{name} main 4b{LONG}", at=_at(month, day, 13))
            repo.checkout("g")
            repo.merge("main", at=_at(month, day, 14))
            repo.checkout("main")
            repo.git("merge", "-q", "--ff-only", "g")
            repo.tag("v4.ff")
        if day == 5:
            base = repo.rev_parse("main")
            for k in range(3):
                repo.branch(f"o{k}", base)
                repo.commit(f"{name} octopus {k}{LONG}", at=_at(month, day, 12 + k))
                repo.checkout("main")
            when = git_date(_at(month, day, 20))
            repo.git("merge", "-q", "--no-ff", "-m", "octopus", "o0", "o1", "o2",
                     env={"GIT_AUTHOR_DATE": when, "GIT_COMMITTER_DATE": when})
            repo.tag("v5.octopus")
        if day == 2:
            # a commit dated 2100 on a branch of its own and a child of it on main dated now: git
            # lists the parent first (the newest tip), so that edge is matched after every chunk
            future = _raw_commit(repo, [repo.rev_parse("main")], f"{name} from the future{LONG}\n".encode(),
                                 committer=b"F <f@x> 4102444800 +0000")
            child = _raw_commit(repo, [future], f"{name} child of the future{LONG}\n".encode(),
                                committer=b"C <c@x> " + git_date(_at(month, day, 23)).encode())
            repo.git("update-ref", "refs/heads/future", future)
            repo.git("update-ref", "refs/heads/main", child)
            repo.git("reset", "-q", "--hard", "main")
    repo.tag("v-last")
    return repo


_DUMP_TABLES = {**GIT_TABLES,
                "data_warnings": "SELECT * EXCLUDE (updated_at) FROM data_warnings",
                "services": "SELECT * FROM services",
                "environments": "SELECT * FROM environments",
                "deployment_revisions": "SELECT * FROM deployment_revisions"}


def _dump(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """``store_query.git_store_dump`` and the tables the import and attribution write besides, every
    query on one reader of the newest snapshot (a reader per table cost 0.1 CPU-s each: 60% of this
    module's CPU went to opening 120 of them), in one transaction: outside one, each statement
    reads DuckLake's snapshot row again (analytics/metrics/transactions.py; 0.098 -> 0.084 CPU-s a
    dump). The reader is pinned to one snapshot, so the rows are the same."""
    con = store_reader(db)
    try:
        con.execute("BEGIN TRANSACTION")
        return {name: sorted(con.execute(sql).fetchall(), key=repr) for name, sql in _DUMP_TABLES.items()}
    finally:
        con.close()   # a read-only transaction: closing ends it


def test_first_loads_into_a_store_with_rows_equal_the_store_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(git_log, "CHUNK_BYTES", 1000)  # a few commits a chunk
    monkeypatch.setattr(git_log.LogReader, "ready", _one_chunk_a_load)
    never_loaded = {"on": False}
    real_take = loaded_nodes.LoadedNodes.take

    def take(self: loaded_nodes.LoadedNodes, con: Any) -> bool:
        if never_loaded["on"]:
            self.usable = False  # the numbering is dropped: steps 3-5 read the stored commits
        return real_take(self, con)

    monkeypatch.setattr(loaded_nodes.LoadedNodes, "take", take)
    graphs: list[str] = []
    real_graph = attribution._graph

    def graph(con: Any, loaded: loaded_nodes.LoadedNodes | None) -> Any:
        built = real_graph(con, loaded)
        graphs.append(type(built).__name__)
        return built

    monkeypatch.setattr(attribution, "_graph", graph)
    stores = {"loaded": tmp_path / "loaded.ducklake", "store": tmp_path / "store.ducklake"}

    def both(label: str, action: Any) -> list[str]:
        """Run ``action(db)`` on both stores and compare; the graphs the loaded store's run built."""
        graphs.clear()
        never_loaded["on"] = False
        action(stores["loaded"])
        built = list(graphs)
        graphs.clear()
        never_loaded["on"] = True
        action(stores["store"])
        assert "_LoadedGraph" not in graphs
        assert _dump(stores["loaded"]) == _dump(stores["store"]), label
        return built

    def collect(repo: GitRepo, repo_id: str, service: str, environment: str, tags: str) -> Any:
        def run(db: Path) -> None:
            location = locate(str(repo.path), repo_id)
            options = git_collector.GitOptions(service=service, environment=environment, deploy_tags=tags)
            git_collector.collect(db, location, options, ref_tips(location.local_path))
        return run

    a = _history(tmp_path / "a", "A", 3)
    assert both("A into a new store", collect(a, "a", "svc-a", "prod", ".*")) == ["_LoadedGraph"]
    b = _history(tmp_path / "b", "B", 4, days=5)
    assert both("B beside A", collect(b, "b", "svc-b", "prod", ".*")) == ["_LoadedGraph"]

    # G's deployments imported before its commits: a tag, an abbreviated sha, a failed one, and
    # one whose revision is unknown (a warning stored, and kept, by the import and the collect)
    g = _history(tmp_path / "g", "G", 6)
    deployments = tmp_path / "g-deployments.csv"
    deployments.write_text(
        "id,service,environment,revision,deployed_at,status,repository\n"
        "g1,svc-g,stage,v3.0,2024-06-04T00:00:00Z,success,g\n"
        f"g2,svc-g,stage,{g.rev_parse('v6.0')[:9]},2024-06-07T00:00:00Z,success,g\n"
        "g3,svc-g,stage,v-last,2024-06-20T00:00:00Z,failed,g\n"
        "g4,svc-g,stage,v-last,2024-06-21T00:00:00Z,success,g\n"
        "g5,svc-g,stage,nosuchrev,2024-06-22T00:00:00Z,success,g\n")

    def import_g(db: Path) -> None:
        done = cli_inprocess.run(["--db", str(db), "import", str(deployments)])
        assert done.returncode == 0, done.stderr

    both("G's deployments imported", import_g)
    collect_g = collect(g, "g", "svc-g", "stage", r"^v[0-9]+\.0$")
    assert both("G after its deployments", collect_g) == ["_LoadedGraph"]
    shipped = query(stores["loaded"], "SELECT count(*) FROM deployment_changes WHERE deployment_id LIKE 'g_'")
    assert shipped[0][0] > 0
    warned = query(stores["loaded"], "SELECT count(*) FROM data_warnings WHERE kind = 'unresolved_revision'")
    assert warned == [(1,)]

    # C shares A's scope: two repositories shipped, the stored commits are read
    c = _history(tmp_path / "c", "C", 5, days=4)
    assert both("C in A's scope", collect(c, "c", "svc-a", "prod", ".*")) == ["_Graph"]
    # A again, after new commits and a moved tag
    a.commit(f"A more{LONG}", at=_at(3, 20))
    a.git("tag", "-f", "v6.0")
    assert both("A again", collect(a, "a", "svc-a", "prod", ".*")) == ["_Graph"]


def _random_graph(rng: random.Random, n: int) -> tuple[list[int], dict[int, list[int]], dict[int, list[Any]]]:
    """A DAG of ``n`` commits numbered mostly in git's order (a child right before its first
    parent) with some numbers swapped (date skew), its list form (first parents, further parents)
    and its sparse form (an entry for every commit whose first parent is not the next number or
    that has further parents; the last number always has one, as a loaded graph's does)."""
    order = list(range(n))  # order[rank] = number; rank r's parents have ranks > r
    for _ in range(n // 6):
        k = rng.randrange(n - 1)
        order[k], order[k + 1] = order[k + 1], order[k]
    first = [-1] * n
    extra: dict[int, list[int]] = {}
    for rank in range(n):
        child = order[rank]
        later = n - rank - 1
        if later == 0 or rng.random() < 0.04:
            continue  # a root
        step = 1 if rng.random() < 0.75 else rng.randint(1, later)
        first[child] = order[rank + step]
        if rng.random() < 0.15:
            more = {order[rank + rng.randint(1, later)] for _ in range(rng.randint(1, 3))} - {first[child]}
            if more:
                extra[child] = sorted(more, key=lambda _: rng.random())
    special: dict[int, list[Any]] = {}
    for child in range(n):
        if first[child] != child + 1 or child in extra or child == n - 1:
            special[child] = [first[child], list(extra[child]) if child in extra else None]
    return first, extra, special


@pytest.mark.parametrize("seed", range(40))
def test_sparse_walk_spans_equal_the_list_walk(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 120)
    first, extra, special = _random_graph(rng, n)
    lists = object.__new__(attribution._Graph)
    lists.first, lists.extra = first, extra
    sparse = attribution._LoadedGraph(n, special)
    assert sparse.edges() == (first, extra)
    for _scope in range(3):
        visited_list, visited_sparse = bytearray(n), bytearray(n)
        for _ in range(rng.randint(1, 6)):
            start = rng.randrange(n)
            expected: list[int] = []
            lists.walk(start, visited_list, expected)
            spans: list[int] = []
            sparse.walk(start, visited_sparse, spans)
            assert len(spans) % 2 == 0
            expanded = [i for lo, hi in zip(spans[0::2], spans[1::2], strict=True) for i in range(lo, hi)]
            assert all(hi > lo for lo, hi in zip(spans[0::2], spans[1::2], strict=True))
            assert expanded == expected
            assert visited_sparse == visited_list

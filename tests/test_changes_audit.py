"""``gitops-dora changes``: the per-change audit agrees with ``metrics`` on a hand-worked repository.

Repository ``app`` (service app, environment production), tag deployments, all UTC:

    c0  author 03-01 09:00                              v0 annotated 03-01 10:00  baseline
    c1  author 03-02 08:00                              |
    c2  author 03-02 14:00, committer 03-02 20:00       v1 annotated 03-03 02:00  c1 18 h, c2 12 h
                                                                                  (committer: c2 6 h)
    c3  author 03-04 10:00                              |
    c4  author 03-05 12:00, committer 03-04 11:00       v2 annotated 03-05 10:00  c3 24 h, c4 -2 h
                                                                                  (committer: c4 23 h)
    c5  author 03-06 06:00                              v3 annotated 03-06 12:00  c5 6 h

Window [03-01, 03-07), author start: counted 18, 12, 24, 6 -> sorted 6, 12, 18, 24 -> median
(12 + 18) / 2 = 15 h; c0 is baseline, c4 negative.
Committer start: counted 18, 6, 24, 23, 6 -> sorted 6, 6, 18, 23, 24 -> median 18 h (c4 counts).
Window [03-03, 03-06): v1 and v2 only -> 18, 12, 24 -> median 18 h.
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests import cli_inprocess
from tests.gitrepo import GitRepo


def run(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    env["COLUMNS"] = "220"
    proc = cli_inprocess.run(["--db", str(tmp / "store.ducklake"), *args], env=env, cwd=tmp)  # in-process
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    tmp = tmp_path_factory.mktemp("audit")
    repo = GitRepo.init(tmp / "app")
    s = {"c0": repo.commit("c0", at="2026-03-01T09:00:00+00:00")}
    repo.annotated_tag("v0", at="2026-03-01T10:00:00+00:00")
    s["c1"] = repo.commit("c1", at="2026-03-02T08:00:00+00:00")
    s["c2"] = repo.commit("c2", at="2026-03-02T14:00:00+00:00", committed_at="2026-03-02T20:00:00+00:00")
    repo.annotated_tag("v1", at="2026-03-03T02:00:00+00:00")
    s["c3"] = repo.commit("c3", at="2026-03-04T10:00:00+00:00")
    s["c4"] = repo.commit("c4", at="2026-03-05T12:00:00+00:00", committed_at="2026-03-04T11:00:00+00:00")
    repo.annotated_tag("v2", at="2026-03-05T10:00:00+00:00")
    s["c5"] = repo.commit("c5", at="2026-03-06T06:00:00+00:00")
    repo.annotated_tag("v3", at="2026-03-06T12:00:00+00:00")
    run(tmp, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", "^v")
    return tmp, s


def changes(tmp: Path, *args: str) -> list[dict[str, Any]]:
    rows = json.loads(run(tmp, "changes", "--format", "json", *args).stdout)
    assert isinstance(rows, list)
    return rows


def metrics_median(tmp: Path, *args: str) -> Any:
    groups = json.loads(run(tmp, "metrics", "--format", "json", *args).stdout)["groups"]
    assert len(groups) == 1
    return groups[0]


def by_sha(rows: list[dict[str, Any]], shas: dict[str, str]) -> dict[str, dict[str, Any]]:
    names = {v: k for k, v in shas.items()}
    return {names[r["sha"]]: r for r in rows}


def test_every_change_with_its_start_lead_time_and_outcome(store: tuple[Path, dict[str, str]]) -> None:
    tmp, s = store
    rows = by_sha(changes(tmp, "--since", "2026-03-01", "--until", "2026-03-07"), s)
    assert set(rows) == {"c0", "c1", "c2", "c3", "c4", "c5"}
    got = {k: (r["deployment_id"], r["start_source"], r["lead_hours"], r["outcome"], r["counted"])
           for k, r in rows.items()}
    assert got == {
        "c0": ("git-tag:app:v0", "author", 1.0, "baseline", False),    # 09:00 -> 10:00, baseline
        "c1": ("git-tag:app:v1", "author", 18.0, "counted", True),     # 03-02 08:00 -> 03-03 02:00
        "c2": ("git-tag:app:v1", "author", 12.0, "counted", True),     # 03-02 14:00 -> 03-03 02:00
        "c3": ("git-tag:app:v2", "author", 24.0, "counted", True),     # 03-04 10:00 -> 03-05 10:00
        "c4": ("git-tag:app:v2", "author", -2.0, "negative", False),   # 03-05 12:00 -> 03-05 10:00
        "c5": ("git-tag:app:v3", "author", 6.0, "counted", True),      # 03-06 06:00 -> 12:00
    }
    assert rows["c2"]["start_at"] == "2026-03-02T14:00:00Z"
    assert rows["c2"]["committer_at"] == "2026-03-02T20:00:00Z"
    assert rows["c4"]["deployed_at"] == "2026-03-05T10:00:00Z"
    assert all(r["service"] == "app" and r["environment"] == "production" for r in rows.values())


def test_median_of_counted_changes_equals_metrics_median(store: tuple[Path, dict[str, str]]) -> None:
    tmp, _ = store
    for window, expected in ((("2026-03-01", "2026-03-07"), 15.0), (("2026-03-03", "2026-03-06"), 18.0)):
        args = ("--since", window[0], "--until", window[1])
        rows = changes(tmp, *args)
        counted = [r["lead_hours"] for r in rows if r["counted"]]
        assert statistics.median(counted) == pytest.approx(expected)
        group = metrics_median(tmp, *args)
        assert group["lead_time_median_hours"] == pytest.approx(expected)
        # the audit's outcomes are the metrics' exclusion counts
        assert group["excluded_negative_lead_times"] == sum(r["outcome"] == "negative" for r in rows)
        assert group["baseline_changes"] == sum(r["outcome"] == "baseline" for r in rows)
        assert group["changes"] == len(rows)


def test_committer_start_moves_both_the_same_way(store: tuple[Path, dict[str, str]]) -> None:
    tmp, s = store
    args = ("--since", "2026-03-01", "--until", "2026-03-07", "--lead-time-start", "committer")
    rows = by_sha(changes(tmp, *args), s)
    assert (rows["c2"]["start_source"], rows["c2"]["lead_hours"]) == ("committer", 6.0)   # 20:00 -> 02:00
    # c4: committer 03-04 11:00 -> 03-05 10:00
    assert (rows["c4"]["outcome"], rows["c4"]["lead_hours"]) == ("counted", 23.0)
    counted = sorted(r["lead_hours"] for r in rows.values() if r["counted"])
    assert counted == [6.0, 6.0, 18.0, 23.0, 24.0]
    assert metrics_median(tmp, *args)["lead_time_median_hours"] == pytest.approx(18.0)


def test_deployment_filter_csv_and_table(store: tuple[Path, dict[str, str]]) -> None:
    tmp, s = store
    rows = changes(tmp, "--deployment", "git-tag:app:v2")
    assert sorted(r["sha"] for r in rows) == sorted([s["c3"], s["c4"]])
    out = run(tmp, "changes", "--deployment", "git-tag:app:v2", "--format", "csv").stdout
    parsed = list(csv.DictReader(io.StringIO(out)))
    assert [(r["sha"], r["outcome"], r["lead_hours"]) for r in parsed] == [
        (s["c3"], "counted", "24.0"), (s["c4"], "negative", "-2.0"),   # ordered by start time
    ]
    table = run(tmp, "changes", "--service", "app", "--since", "2026-03-02", "--until", "2026-03-07")
    assert s["c5"][:12] in table.stdout and s["c0"][:12] not in table.stdout
    # 5 changes: counted c1, c2, c3, c5 (6, 12, 18, 24 -> 15 h) and negative c4
    note = "5 changes; counted 4, negative 1; median lead time of the counted changes: 15.00 h"
    assert note in table.stderr
    # no change at all: the note has no empty part ("0 changes; ; median ..." before)
    empty = run(tmp, "changes", "--deployment", "no-such-deployment")
    assert empty.returncode == 0
    assert "note: 0 changes; median lead time of the counted changes: none" in empty.stderr


def test_as_of_reads_the_store_as_it_was(tmp_path: Path) -> None:
    """c0 v0 (01-01 10:00), c1 01-02 09:00 v1 01-02 12:00 collected; then c2 01-03 08:00 v2 01-03 10:00
    collected later: --as-of a time between the two collections lists c0 and c1 only."""
    repo = GitRepo.init(tmp_path / "app")
    repo.commit("c0", at="2026-01-01T09:00:00+00:00")
    repo.annotated_tag("v0", at="2026-01-01T10:00:00+00:00")
    c1 = repo.commit("c1", at="2026-01-02T09:00:00+00:00")
    repo.annotated_tag("v1", at="2026-01-02T12:00:00+00:00")
    run(tmp_path, "collect", "git", str(repo.path), "--service", "app", "--deploy-tags", "^v")
    time.sleep(1.1)
    between = datetime.now(UTC).isoformat()
    time.sleep(1.1)
    c2 = repo.commit("c2", at="2026-01-03T08:00:00+00:00")
    repo.annotated_tag("v2", at="2026-01-03T10:00:00+00:00")
    run(tmp_path, "collect", "git", str(repo.path))
    now = {r["sha"]: r["lead_hours"] for r in changes(tmp_path) if r["counted"]}
    assert now == {c1: 3.0, c2: 2.0}
    then = {r["sha"]: r["lead_hours"] for r in changes(tmp_path, "--as-of", between) if r["counted"]}
    assert then == {c1: 3.0}

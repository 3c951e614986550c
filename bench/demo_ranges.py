"""Benchmark: the commits each deployment ships, walked in memory vs one ``git rev-list`` per range.

Linking a reconciler import lists, per deployment, the app commits between the previous and the new
image (``rev-list NEW ^OLD``). It used to run one ``git rev-list`` per range (side by side in a
thread pool); ``analytics/deployments/images.py`` now reads the graph once
(``rev-list --parents --all``) and walks each range in memory. Generates an app repository with
``git fast-import`` (feature branches merged into main), takes ``--deployments`` consecutive ranges
of main, and times, best of 3, both ways over the same ranges (the baseline is the old way, run in
the same process); checks they list the same commits.

Run:  .venv/bin/python bench/demo_ranges.py [--commits 3000] [--deployments 300]
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from analytics.demo.fast_import import FastImport, Person  # noqa: E402
from analytics.deployments.images import _GIT_WORKERS, CommitGraph  # noqa: E402

DEV = Person("Dev", "dev@example.com", "+0000")


def build(path: Path, commits: int) -> list[str]:
    """main with feature branches of 1-3 commits merged in; returns main's first-parent commits."""
    rng = random.Random(7)
    at, written = 1_700_000_000, 0
    with FastImport(path) as fi:
        tip = fi.commit("refs/heads/main", "root\n", author=DEV, authored_at=at, files={"a.txt": "0\n"})
        marks = [tip]
        while written < commits:
            head = tip
            for k in range(rng.randint(1, 3)):
                at += 60
                head = fi.commit("refs/heads/feature", f"f{written}.{k}\n", author=DEV, authored_at=at,
                                 parent=head, files={f"src/f{written % 50}.txt": f"{written}.{k}\n"})
                written += 1
            at += 60
            tip = fi.commit("refs/heads/main", f"merge {written}\n", author=DEV, authored_at=at, parent=tip,
                            merge=head)
            written += 1
            marks.append(tip)
        return [fi.sha(m) for m in marks]


def with_git(repo: Path, ranges: list[tuple[str, str]]) -> list[set[str]]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}

    def one(job: tuple[str, str]) -> set[str]:
        out = subprocess.run(["git", "-C", str(repo), "rev-list", job[0], f"^{job[1]}"],
                             capture_output=True, text=True, env=env).stdout
        return set(out.split())

    with ThreadPoolExecutor(max_workers=_GIT_WORKERS) as pool:
        return list(pool.map(one, ranges))


def in_memory(repo: Path, ranges: list[tuple[str, str]]) -> list[set[str]]:
    graph = CommitGraph(repo)
    return [set(graph.range(new, old) or ()) for new, old in ranges]


def best(
    fn: Callable[[Path, list[tuple[str, str]]], list[set[str]]], repo: Path, ranges: list[tuple[str, str]]
) -> tuple[float, float, list[set[str]]]:
    wall, cpu, result = float("inf"), float("inf"), []
    for _ in range(3):
        t0, c0 = time.perf_counter(), os.times()
        result = fn(repo, ranges)
        c1 = os.times()
        wall = min(wall, time.perf_counter() - t0)
        cpu = min(cpu, c1.user - c0.user + c1.system - c0.system
                  + c1.children_user - c0.children_user + c1.children_system - c0.children_system)
    return wall, cpu, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=3000)
    parser.add_argument("--deployments", type=int, default=300)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-ranges-") as tmp:
        repo = Path(tmp) / "app"
        main_line = build(repo, args.commits)
        step = max(1, len(main_line) // (args.deployments + 1))
        points = main_line[::step][: args.deployments + 1]
        ranges = list(zip(points[1:], points[:-1], strict=True))
        base_wall, base_cpu, expected = best(with_git, repo, ranges)
        new_wall, new_cpu, got = best(in_memory, repo, ranges)
        assert got == expected, "the in-memory ranges differ from git rev-list"
        listed = sum(len(s) for s in got)
        print(f"{len(ranges)} ranges, {listed} commits listed, repository of {args.commits} commits; "
              f"load {os.getloadavg()[0]:.1f}")
        print("| way | wall s | CPU s (with git) | x wall | x CPU |")
        print("| --- | --- | --- | --- | --- |")
        print(f"| git rev-list per range ({_GIT_WORKERS} threads; baseline) | {base_wall:.3f} "
              f"| {base_cpu:.3f} | 1.00 | 1.00 |")
        print(f"| graph read once, ranges in memory | {new_wall:.3f} | {new_cpu:.3f} "
              f"| {new_wall / base_wall:.2f} | {new_cpu / base_cpu:.2f} |")


if __name__ == "__main__":
    main()

"""Full git ingest vs. plain ``git log`` on the same repository, measured in the same run.

    .venv/bin/python bench/git_ingest.py [--commits 100000] [--repo PATH]

Builds (once, cached in bench/.work/) a synthetic repository with ``git fast-import``: a main line
with a --no-ff merge of a two-commit feature branch every 10 commits, an annotated release tag
every 500 commits and a lightweight tag every 250. Then it times, best of 3 each:

* baseline: the exact ``git log --branches --remotes --tags --format=...`` the collector runs,
  written to a file;
* ingest: the real console command ``gitops-dora collect git REPO --deploy-tags ...`` into a fresh
  store (a new DuckLake catalog: creating its tables, mining, tags, deployments, attribution,
  commit);
* an unchanged re-run of the same command (target < 0.5 s wall);
* a re-run after one new commit and release tag (on a hard-linked clone, so the cache stays intact).

It prints ``ingest/git_log ratio = X`` and the ingest process's peak RSS. ``--compare CHECKOUT``
also runs the ingest with another checkout's code (``git worktree add /tmp/base REV``) right after
this one's in every run, for an old/new comparison under the same load.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from analytics.collectors.git_log import log_command  # noqa: E402

WORK = ROOT / "bench" / ".work"
CLI = str(Path(sys.executable).parent / "gitops-dora")
DEPLOY_TAGS = r"^v[0-9]+\.[0-9]+\.[0-9]+$"


def _fast_import_stream(commits: int) -> Iterator[str]:
    """Yield the fast-import stream in chunks (never the whole thing in memory)."""
    t0 = 1_600_000_000
    mark = 0
    main_mark = 0
    made = 0
    next_release, next_nightly = 500, 250
    out: list[str] = []

    def commit(ref: str, parents: list[int], when: int, msg: str, path: str) -> int:
        nonlocal mark
        mark += 1
        body = msg.encode()
        content = f"{mark}\n"
        lines = [f"commit {ref}", f"mark :{mark}",
                 f"author Dev {mark % 37} <dev{mark % 37}@example.com> {when - 3600 * (mark % 5)} +0100",
                 f"committer Dev {mark % 37} <dev{mark % 37}@example.com> {when} +0000",
                 f"data {len(body)}", msg]
        if parents:
            lines.append(f"from :{parents[0]}")
        lines += [f"merge :{p}" for p in parents[1:]]
        lines += [f"M 100644 inline {path}", f"data {len(content.encode())}", content]
        out.append("\n".join(lines))
        return mark

    while made < commits:
        when = t0 + made * 600
        if made % 10 == 9 and made + 3 <= commits and main_mark:
            path = f"feat/{made % 50}.txt"
            f1 = commit("refs/heads/feature", [main_mark], when, f"feature work {made}", path)
            f2 = commit("refs/heads/feature", [f1], when + 60, f"feature more {made}", path)
            main_mark = commit("refs/heads/main", [main_mark, f2], when + 120, f"Merge feature {made}",
                               "merges.txt")
            made += 3
        else:
            main_mark = commit("refs/heads/main", [main_mark] if main_mark else [], when,
                               f"change {made}", f"src/{made % 200}.txt")
            made += 1
        if made >= next_release:
            msg = f"release {next_release // 500}"
            out.append(f"tag v1.{next_release // 500}.0\nfrom :{main_mark}\ntagger Rel <rel@example.com> "
                       f"{when + 1800} +0000\ndata {len(msg)}\n{msg}")
            next_release += 500
        if made >= next_nightly:
            out.append(f"reset refs/tags/nightly-{next_nightly}\nfrom :{main_mark}\n")
            next_nightly += 500
        if len(out) > 2000:
            yield "\n".join(out) + "\n"
            out.clear()
    yield "\n".join(out) + "\n"


def build_repo(commits: int) -> Path:
    path = WORK / f"synthetic-{commits}.git"
    if (path / "HEAD").exists():
        return path
    tmp = WORK / f"synthetic-{commits}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    fast_import_repo(tmp, commits)
    os.replace(tmp, path)
    return path


def fast_import_repo(path: Path, commits: int) -> None:
    """A new bare repository at ``path`` holding the synthetic history of ``commits`` commits."""
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(path)], check=True)
    proc = subprocess.Popen(["git", "-C", str(path), "fast-import", "--quiet"], stdin=subprocess.PIPE)
    assert proc.stdin is not None
    for chunk in _fast_import_stream(commits):
        proc.stdin.write(chunk.encode())
    proc.stdin.close()
    if proc.wait() != 0:
        raise SystemExit("git fast-import failed")


def time_git_log(repo: Path, out_dir: Path, command: list[str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one git log into a file."""
    started = time.perf_counter()
    with open(out_dir / "baseline.txt", "wb") as out:
        proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=out)
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit("git log failed")
    return time.perf_counter() - started, usage.ru_utime + usage.ru_stime


def metadata_only_command(repo: Path) -> list[str]:
    """The stricter baseline: the same walk without -z and without the message body."""
    command = [arg for arg in log_command(repo) if arg != "-z"]
    return [arg.replace("%x1e%b", "") if arg.startswith("--format=") else arg for arg in command]


def time_cli(args: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds (with its git children), peak RSS (KiB) of the CLI, stderr."""
    started = time.perf_counter()
    proc = subprocess.Popen([CLI, *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    assert proc.stderr is not None
    err = proc.stderr.read().decode(errors="replace")
    _, status, usage = os.wait4(proc.pid, 0)
    elapsed = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"gitops-dora failed: {err.strip()}")
    return elapsed, usage.ru_utime + usage.ru_stime, usage.ru_maxrss, err


def time_incremental(repo: Path, tmpdir: Path, env: dict[str, str]) -> tuple[float, float]:
    """Collect a hard-linked clone, add one commit and one release tag, time the re-run."""
    clone = tmpdir / "incremental.git"
    subprocess.run(["git", "clone", "-q", "--bare", "--local", str(repo), str(clone)], check=True)
    db = tmpdir / "incremental.duckdb"
    time_cli(["--db", str(db), "collect", "git", str(clone), "--deploy-tags", DEPLOY_TAGS], env)

    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(clone), *args], capture_output=True, text=True,
                              check=True, env={**env, "GIT_AUTHOR_NAME": "b", "GIT_AUTHOR_EMAIL": "b@x",
                                               "GIT_COMMITTER_NAME": "b", "GIT_COMMITTER_EMAIL": "b@x"},
                              ).stdout.strip()

    new = git("commit-tree", "main^{tree}", "-p", "main", "-m", "one more")
    git("update-ref", "refs/heads/main", new)
    git("tag", "v9.0.0", new)
    wall, cpu, _, _ = time_cli(["--db", str(db), "collect", "git", str(clone)], env)
    return wall, cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commits", type=int, default=100_000)
    parser.add_argument("--repo", type=Path, help="use this repository instead of the synthetic one")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--compare", type=Path, metavar="CHECKOUT",
                        help="also run the ingest with another checkout's code (PYTHONPATH), "
                             "alternating with this one's in every run (a worktree of the old code)")
    opts = parser.parse_args()
    WORK.mkdir(parents=True, exist_ok=True)
    repo = opts.repo or build_repo(opts.commits)
    count = subprocess.run(["git", "-C", str(repo), "rev-list", "--count", "--branches", "--tags"],
                           capture_output=True, text=True, check=True).stdout.strip()
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_PAUSE_BEFORE_COMMIT"}
    load_before = os.getloadavg()[0]
    logs: list[tuple[float, float]] = []
    plain_logs: list[tuple[float, float]] = []
    ingests: list[tuple[float, float]] = []
    compared: list[tuple[float, float]] = []
    peak = 0
    summary = phases = ""
    with tempfile.TemporaryDirectory(prefix="git-ingest-bench-", dir=WORK) as tmp:
        tmpdir = Path(tmp)
        for run in range(opts.runs):
            logs.append(time_git_log(repo, tmpdir, log_command(repo)))
            plain_logs.append(time_git_log(repo, tmpdir, metadata_only_command(repo)))
            db = tmpdir / f"run{run}.duckdb"
            args = ["--db", str(db), "collect", "git", str(repo), "--deploy-tags", DEPLOY_TAGS]
            seconds, cpu_s, rss, summary = time_cli(args, {**env, "GITOPS_DORA_TIMINGS": "1"})
            if seconds <= min((w for w, _ in ingests), default=seconds):
                phases = next((line for line in summary.splitlines() if line.startswith("timings:")), "")
            ingests.append((seconds, cpu_s))
            peak = max(peak, rss)
            if opts.compare is not None:
                other = {**env, "PYTHONPATH": str(opts.compare.resolve())}
                old_db = tmpdir / f"compare{run}.duckdb"
                compared.append(time_cli(["--db", str(old_db), *args[2:]], other)[:2])
        rerun = [time_cli(["--db", str(db), "collect", "git", str(repo)], env)[0] for _ in range(opts.runs)]
        incremental = time_incremental(repo, tmpdir, env)
    wall = {name: min(w for w, _ in runs) for name, runs in
            (("log", logs), ("plain", plain_logs), ("ingest", ingests))}
    cpu = {name: min(c for _, c in runs) for name, runs in
           (("log", logs), ("plain", plain_logs), ("ingest", ingests))}
    ratio = wall["ingest"] / wall["log"]
    load = os.getloadavg()[0]
    print(f"repository: {repo} ({count} commits)")
    print(f"collector: {[line for line in summary.splitlines() if line.startswith('git ')][-1]}")
    print(f"fastest ingest's phases: {phases}")
    print(f"git log --format, the collector's exact command (best of {opts.runs}): "
          f"{wall['log']:.2f} s wall, {cpu['log']:.2f} s CPU")
    print(f"git log --format without -z and body (best of {opts.runs}): "
          f"{wall['plain']:.2f} s wall, {cpu['plain']:.2f} s CPU")
    print(f"full ingest, whole CLI (best of {opts.runs}): {wall['ingest']:.2f} s wall, "
          f"{cpu['ingest']:.2f} s CPU including its git")
    print(f"ingest/git_log ratio = {ratio:.2f}  (target <= 3, stretch <= 1.5)")
    print(f"ingest/metadata-only git_log ratio = {wall['ingest'] / wall['plain']:.2f}")
    print(f"CPU-time ratio ingest/git_log = {cpu['ingest'] / cpu['log']:.2f}  "
          f"(less sensitive to other load; 1-minute load average {load_before:.1f} at the start, "
          f"{load:.1f} now)")
    if compared:
        print(f"full ingest with {opts.compare}'s code, alternating (best of {opts.runs}): "
              f"{min(w for w, _ in compared):.2f} s wall, {min(c for _, c in compared):.2f} s CPU; "
              f"ratio {min(w for w, _ in compared) / wall['log']:.2f} wall, "
              f"{min(c for _, c in compared) / cpu['log']:.2f} CPU; per run, this / that: "
              + ", ".join(f"{a[0]:.2f}/{b[0]:.2f} s wall {a[1]:.2f}/{b[1]:.2f} s CPU"
                          for a, b in zip(ingests, compared, strict=True)))
    print(f"peak RSS of the ingest process: {peak / 1024:.0f} MB  (target <= 500 MB)")
    print(f"unchanged re-run, whole CLI (best of {opts.runs}): {min(rerun):.2f} s  (target < 0.5 s)")
    print(f"re-run after 1 new commit and tag, whole CLI: {incremental[0]:.2f} s wall, "
          f"{incremental[1]:.2f} s CPU")


if __name__ == "__main__":
    main()

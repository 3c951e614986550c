"""Cross-check `collect git` + `metrics` against plain `git rev-list`/`git log` on any repository.

For the acceptance check on a real project: clone a well-known repository that tags releases
``vX.Y.Z``, then run

    .venv/bin/python scripts/crosscheck_revlist.py PATH [--since 2024-01-01 --until 2025-01-01]
        [--deploy-tags REGEX] [--lead-time-start author|committer]

It collects the repository into a temporary database with the real CLI, reads `metrics` JSON for the
window, computes the same figures from git plumbing and the written definitions only (release =
tag matching the regex; time = tagger date, or committer date for a lightweight tag; changes =
``git rev-list <tag> --not <earlier releases>``; the first release is the baseline), prints both,
and exits 1 if they differ. The tests run the same computation on a generated repository
(tests/test_crosscheck_revlist.py).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import statistics
import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

SEMVER = r"^v[0-9]+\.[0-9]+\.[0-9]+$"
COMPARED = ("deployments", "deployment_days", "changes", "excluded_negative_lead_times",
            "baseline_deployments", "lead_time_median_hours", "lead_time_p90_hours")


def _git(repo: Path, *args: str) -> str:
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def _day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def revlist_metrics(repo: Path, pattern: str, since: datetime, until: datetime,
                    start: str = "author") -> dict[str, Any]:
    """The throughput figures from git alone, under the definitions in docs/metrics.md."""
    releases: list[tuple[int, str, str]] = []
    listing = _git(repo, "for-each-ref", "refs/tags", "--format=%(refname:short) %(objecttype)")
    for line in listing.splitlines():
        name, kind = line.split()
        if not re.match(pattern, name):
            continue
        sha = _git(repo, "rev-parse", f"{name}^{{commit}}")
        if kind == "tag":
            stamp = _git(repo, "for-each-ref", f"refs/tags/{name}", "--format=%(taggerdate:unix)")
        else:
            stamp = _git(repo, "log", "-1", "--format=%ct", sha)
        releases.append((int(stamp), name, sha))
    releases.sort()
    field = "%at" if start == "author" else "%ct"
    commit_time = {
        sha: int(ts) for sha, ts in
        (line.split() for line in _git(repo, "log", "--all", f"--format=%H {field}").splitlines())
    }
    in_window: list[tuple[str, int]] = []
    lead_hours: list[float] = []
    negative = changes = baseline = 0
    days = set()
    for index, (epoch, name, sha) in enumerate(releases):
        moment = datetime.fromtimestamp(epoch, UTC)
        if not since <= moment < until:
            continue
        earlier = [s for _, _, s in releases[:index]]
        shipped = _git(repo, "rev-list", sha, *(["--not", *earlier] if earlier else [])).split()
        in_window.append((name, len(shipped)))
        days.add(moment.date())
        changes += len(shipped)
        if index == 0:
            baseline += 1
            continue
        for commit in shipped:
            hours = (epoch - commit_time[commit]) / 3600
            if hours < 0:
                negative += 1
            else:
                lead_hours.append(hours)
    lead_hours.sort()
    median = p90 = None
    if lead_hours:
        median = statistics.median(lead_hours)
        position = 0.9 * (len(lead_hours) - 1)
        lo, hi = math.floor(position), math.ceil(position)
        p90 = lead_hours[lo] + (position - lo) * (lead_hours[hi] - lead_hours[lo])
    window_days = (until - since).total_seconds() / 86400
    return {
        "releases": in_window,
        "deployments": len(in_window),
        "deployment_days": len(days),
        "deployments_per_week": len(in_window) * 7 / window_days,
        "changes": changes,
        "lead_time_median_hours": median,
        "lead_time_p90_hours": p90,
        "excluded_negative_lead_times": negative,
        "baseline_deployments": baseline,
    }


def _cli(db: Path, *args: str) -> str:
    cli = str(Path(sys.executable).with_name("gitops-dora"))
    env = {k: v for k, v in os.environ.items() if k != "GITOPS_DORA_DB"}
    proc = subprocess.run([cli, "--db", str(db), *args], capture_output=True, text=True, env=env)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr.strip())
    return proc.stdout


def _close(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)
    return bool(a == b)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("repo", type=Path)
    parser.add_argument("--since", default="2024-01-01")
    parser.add_argument("--until", default="2025-01-01")
    parser.add_argument("--deploy-tags", default=SEMVER)
    parser.add_argument("--lead-time-start", choices=("author", "committer"), default="author")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="crosscheck-") as tmp:
        db = Path(tmp) / "crosscheck.duckdb"
        _cli(db, "collect", "git", str(args.repo), "--service", "crosscheck",
             "--deploy-tags", args.deploy_tags)
        doc = json.loads(_cli(db, "metrics", "--since", args.since, "--until", args.until,
                              "--lead-time-start", args.lead_time_start, "--format", "json"))
    groups = [g for g in doc["groups"] if g["service"] == "crosscheck"]
    ours = groups[0] if groups else {}
    expected = revlist_metrics(args.repo, args.deploy_tags, _day(args.since), _day(args.until),
                               args.lead_time_start)
    mismatches = 0
    for key in COMPARED:
        same = _close(ours.get(key, 0 if key != "lead_time_median_hours" else None), expected[key])
        mismatches += not same
        print(f"{'ok ' if same else 'DIFF'} {key:32} metrics={ours.get(key)!r:24} git={expected[key]!r}")
    print(f"{len(expected['releases'])} releases in [{args.since}, {args.until})")
    return 1 if mismatches else 0


if __name__ == "__main__":
    sys.exit(main())

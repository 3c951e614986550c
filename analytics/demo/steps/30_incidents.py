"""Step 30: an incident log for the demo organisation, imported with ``gitops-dora import``.

The incidents follow what step 10 generated (``demo-manifest.json``), so every attribution rule
shows up in the dashboard:

* root cause: each reverted commit that a release shipped before its revert was released caused
  an incident that names the commit; it is resolved when the release carrying the revert is live.
  Every fourth feature release also has a regression found only after the NEXT release was live,
  naming the release's commit: the root cause, not the gap rule, decides which release failed;
* gap: each hotfix release answers an incident that began two hours before the hotfix was tagged
  and names no root cause, so it goes to the latest production deployment before it;
* unattributed: an incident in a long quiet stretch, more than the 7-day gap after any release;
* open: one incident still open at the end of the demo period.

Times are relative to when a release reached production (the later of its tag and the production
config commit), so the attribution holds whether deployments come from tags or from reconcilers.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime, timedelta
from typing import Any

from analytics.demo.context import DemoContext
from analytics.deployments.images import CommitGraph

INCIDENTS_FILE = "incidents.csv"
HEADER = ("id", "service", "environment", "created_at", "resolved_at", "title", "root_cause")
QUIET_STRETCH = timedelta(days=9)


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _production_times(manifest: dict[str, Any], service: str) -> dict[str, datetime]:
    """Release tag -> when it was live in production (tag time or the production config commit)."""
    live = {r["tag"]: _time(r["tagged_at"]) for r in manifest["releases"][service]}
    for commit in manifest["config_commits"].get("production", []):
        if commit["service"] == service and commit.get("tag") in live:
            live[commit["tag"]] = max(live[commit["tag"]], _time(commit["committed_at"]))
    return live


def _first_release_with(
    graph: CommitGraph, releases: list[dict[str, Any]], sha: str
) -> dict[str, Any] | None:
    """The first release whose commit descends from ``sha``, from one read of the repository's
    graph rather than a ``git merge-base --is-ancestor`` process per question."""
    return next((r for r in releases if sha in graph.ancestors(r["sha"])), None)


def _service_incidents(demo: DemoContext, manifest: dict[str, Any], service: dict[str, Any],
                       counter: list[int]) -> list[tuple[str, ...]]:
    name = service["name"]
    graph = CommitGraph(demo.workdir / service["repo"])
    releases = manifest["releases"][name]
    live = _production_times(manifest, name)
    found: list[tuple[str, ...]] = []

    def add(created: datetime, resolved: datetime | None, title: str, cause: str = "") -> None:
        counter[0] += 1
        found.append((f"INC-{counter[0]:04d}", name, "production", _iso(created),
                       _iso(resolved) if resolved else "", title, cause))

    for revert in manifest["reverts"].get(name, []):
        shipped = _first_release_with(graph, releases, revert["reverted_sha"])
        fixed = _first_release_with(graph, releases, revert["sha"])
        if shipped is None or fixed is None or live[fixed["tag"]] <= live[shipped["tag"]]:
            continue  # the bad commit never reached production on its own
        created = live[shipped["tag"]] + timedelta(hours=3)
        add(created, live[fixed["tag"]] + timedelta(minutes=30),
            f"Errors after {shipped['tag']} (reverted in {fixed['tag']})", revert["reverted_sha"])
    features = [r for r in releases if r["kind"] == "feature"]
    for index in range(1, len(features) - 1, 4):
        # found after the next release was live, but traced to this release's commit
        bad, later = features[index], releases[releases.index(features[index]) + 1]
        created = live[later["tag"]] + timedelta(hours=2)
        add(created, created + timedelta(hours=4), f"Regression traced to {bad['tag']}", bad["sha"][:10])
    for release in releases:
        if release["kind"] == "hotfix":
            created = _time(release["tagged_at"]) - timedelta(hours=2)
            topic = release.get("branch", release["tag"]).split("/", 1)[-1]
            add(created, live[release["tag"]] + timedelta(hours=1), f"Customer-facing bug: {topic}")
    ordered = sorted(live.values())
    for before, after in zip(ordered, ordered[1:], strict=False):
        if after - before > QUIET_STRETCH + timedelta(days=1):
            created = before + QUIET_STRETCH
            add(created, created + timedelta(hours=5), "Upstream provider outage")
            break
    return found


def run(demo: DemoContext) -> None:
    manifest = demo.load_manifest()
    counter = [1000]
    incidents: list[tuple[str, ...]] = []
    for service in manifest["services"]:
        incidents.extend(_service_incidents(demo, manifest, service, counter))
    last = manifest["services"][-1]["name"]
    counter[0] += 1
    opened = _time(manifest["end"]) - timedelta(days=2, hours=6)
    incidents.append((f"INC-{counter[0]:04d}", last, "production", _iso(opened), "",
                      "Intermittent 502s (investigating)", ""))
    path = demo.workdir / INCIDENTS_FILE
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(HEADER)
        writer.writerows(incidents)
    demo.cli("import", str(path))
    demo.say(f"imported {len(incidents)} incidents from {path}")

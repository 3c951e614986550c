"""ACCEPTANCE: a generator of signed GitHub webhooks; every deployment and incident it sent is counted.

The generator works like Four Keys' data generator: for each repository it posts pushes (each a few
commits, linked by ``before``), deploys the latest pushed sha now and then (a ``deployment_status``
``in_progress`` followed by ``success``), and opens and later closes incident issues; it also posts
plain issues that are not incidents, re-delivers some events (same ``X-GitHub-Delivery``) and sends
some with a bad signature. ``metrics --format json`` must count exactly what it sent.

Eight repositories send at once, as a code host's many repositories do, each its own events in the
order generated (one sender per repository, waiting for each answer): the receiver then writes
batches of a few deliveries instead of one transaction per delivery. Two repositories over 20 days
sent one at a time took 15 CPU-s of the receiver for ~190 deliveries; the same 160 events (the
generator's draws are the same) from 4 repositories x 10 days took 10.3-13.0 CPU-s for the test, from
8 x 5 days 9.1-9.9 (alternated, load 9-11).
"""

from __future__ import annotations

import json
import random
import uuid
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from tests import cli_inprocess
from tests.child_env import child_env
from tests.webhook_senders import gh_deployment_status, gh_issue, gh_push, post_github, receiver

SECRET = "acceptance-secret"
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
REPOS = ("acme/checkout", "acme/ledger", "acme/search", "acme/billing", "acme/catalog", "acme/payments",
         "acme/shipping", "acme/identity")


def iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Sent:
    deployments: Counter[tuple[str, str]] = field(default_factory=Counter)  # (service, environment)
    incidents: Counter[str] = field(default_factory=Counter)  # service
    events: list[tuple[str, dict[str, Any], str]] = field(default_factory=list)  # (event, payload, delivery)
    forged: list[tuple[str, dict[str, Any]]] = field(default_factory=list)


def generate(
    seed: int = 7, repos: tuple[str, ...] = ("acme/checkout", "acme/ledger"), days: int = 20
) -> Sent:
    rng = random.Random(seed)
    sent = Sent()
    deployment_id, issue_number = 1000, 0
    for full_name in repos:
        service = full_name.split("/")[1]
        head, now = "0" * 40, START
        for _day in range(days):
            for _push in range(rng.randint(1, 3)):
                commits = []
                for _ in range(rng.randint(1, 3)):
                    now += timedelta(minutes=rng.randint(20, 240))
                    commits.append((uuid.UUID(int=rng.getrandbits(128)).hex + "0" * 8, iso(now), "change"))
                sent.events.append(
                    ("push", gh_push(full_name, "refs/heads/main", head, commits), str(uuid.uuid4()))
                )
                head = commits[-1][0]
            if rng.random() < 0.7:
                deployment_id += 1
                environment = "production" if rng.random() < 0.8 else "staging"
                now += timedelta(minutes=rng.randint(5, 60))
                sent.events.append(
                    (
                        "deployment_status",
                        gh_deployment_status(
                            full_name, deployment_id, head, "in_progress", iso(now), environment
                        ),
                        str(uuid.uuid4()),
                    )
                )
                now += timedelta(minutes=rng.randint(1, 15))
                sent.events.append(
                    (
                        "deployment_status",
                        gh_deployment_status(
                            full_name, deployment_id, head, "success", iso(now), environment
                        ),
                        str(uuid.uuid4()),
                    )
                )
                sent.deployments[(service, environment)] += 1
            if rng.random() < 0.25:
                issue_number += 1
                opened = now + timedelta(minutes=rng.randint(1, 120))
                label = rng.choice(["incident", "Incident", "INCIDENT"])
                sent.events.append(
                    (
                        "issues",
                        gh_issue(full_name, issue_number, [label, "sev2"], iso(opened)),
                        str(uuid.uuid4()),
                    )
                )
                closed = opened + timedelta(minutes=rng.randint(10, 600))
                sent.events.append(
                    (
                        "issues",
                        gh_issue(full_name, issue_number, [label], iso(opened), iso(closed), action="closed"),
                        str(uuid.uuid4()),
                    )
                )
                sent.incidents[service] += 1
            if rng.random() < 0.2:
                issue_number += 1
                sent.events.append(
                    ("issues", gh_issue(full_name, issue_number, ["bug"], iso(now)), str(uuid.uuid4()))
                )
            if rng.random() < 0.1:  # forged: a deployment and an incident nobody may count
                sent.forged.append(
                    (
                        "deployment_status",
                        gh_deployment_status(
                            full_name, 900000 + deployment_id, head, "success", iso(now), "production"
                        ),
                    )
                )
                sent.forged.append(
                    ("issues", gh_issue(full_name, 90000 + issue_number, ["incident"], iso(now)))
                )
    return sent


def test_every_generated_deployment_and_incident_is_counted(tmp_path: Path) -> None:
    sent = generate(repos=REPOS, days=5)
    assert sum(sent.deployments.values()) >= 20 and sum(sent.incidents.values()) >= 5 and sent.forged
    db = tmp_path / "acceptance.duckdb"
    redelivered = sent.events[::9]
    by_repo: dict[str, list[tuple[str, dict[str, Any], str]]] = defaultdict(list)
    for event, payload, delivery in sent.events:
        by_repo[payload["repository"]["full_name"]].append((event, payload, delivery))
    assert sorted(by_repo) == sorted(REPOS)
    with receiver(db, {"GITOPS_DORA_GITHUB_SECRET": SECRET}) as rx:

        def send(events: list[tuple[str, dict[str, Any], str]]) -> None:
            """One repository's events, in order, each sent once the one before was answered."""
            with httpx.Client(timeout=60) as client:
                for event, payload, delivery in events:
                    answer = post_github(client, rx.url, event, payload, SECRET, delivery=delivery)
                    assert answer.status_code == 200, answer.text

        with ThreadPoolExecutor(max_workers=len(by_repo)) as pool:
            list(pool.map(send, by_repo.values()))
        with httpx.Client(timeout=60) as client:
            for event, payload, delivery in redelivered:  # GitHub's "Redeliver" button: same delivery id
                assert post_github(client, rx.url, event, payload, SECRET, delivery=delivery).json()[
                    "message"
                ] == ("duplicate")
            for event, payload in sent.forged:
                assert post_github(client, rx.url, event, payload, "wrong-secret").status_code == 401
    out = cli_inprocess.run(
        ["--db", str(db), "metrics", "--format", "json", "--since", "2026-03-01", "--until", "2026-05-01"],
        env=child_env(),
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr
    groups = json.loads(out.stdout)["groups"]
    counted_deployments = Counter(
        {(g["service"], g["environment"]): g["deployments"] for g in groups if g.get("deployments")}
    )
    counted_incidents: Counter[str] = Counter()
    for g in groups:
        counted_incidents[g["service"]] += g.get("incidents") or 0
    assert counted_deployments == sent.deployments
    assert counted_incidents == sent.incidents
    # webhook-only lead time: every deployment after the first of its service+environment shipped pushes
    production = [g for g in groups if g["environment"] == "production"]
    assert all(
        g["lead_time_median_hours"] is not None and g["lead_time_median_hours"] > 0 for g in production
    )

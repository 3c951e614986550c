"""The webhook receiver as a real process on 127.0.0.1, fed signed and unsigned deliveries.

The tests with the plain settings share one receiver and store (``shared``): each sends under
repositories, projects and commit shas of its own, reads back only its own rows, and counts what a
delivery added (``count`` before and after), so the checks of a fresh store each still hold (a
receiver is some 0.85 CPU-s and 2-5 s of a worker to start and stop). The refusal to start, the
insecure receiver and the configured one start their own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests import cli_inprocess
from tests.store_query import query_snapshot as rows
from tests.webhook_senders import (
    Receiver,
    gh_deployment_status,
    gh_issue,
    gh_push,
    post_github,
    post_gitlab,
    receiver,
)

SECRET = "It's a Secret to Everybody"
TOKEN = "gitlab-shared-token"
ENV = {"GITOPS_DORA_GITHUB_SECRET": SECRET, "GITOPS_DORA_GITLAB_TOKEN": TOKEN}
REPO = "acme/payments"
A, B, C = "a" * 40, "b" * 40, "c" * 40  # the push chain's commits; the other tests have their own
D, E, F, G = "d" * 40, "e" * 40, "1" * 40, "2" * 40
PULLS = "acme/pulls"
ZERO = "0" * 40


def accepted(client: httpx.Client, url: str, event: str, payload: dict[str, Any]) -> None:
    """A delivery signed with SECRET that the receiver must take (200)."""
    answer = post_github(client, url, event, payload, SECRET)
    assert answer.status_code == 200, answer.text


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def count(db: Path, table: str) -> int:
    """Rows of ``table`` in the store's newest snapshot: what a test's deliveries added is the
    difference before and after them (the tests of the shared receiver run one after another)."""
    return int(rows(db, f"SELECT count(*) FROM {table}")[0][0])


@dataclass
class Shared:
    rx: Receiver
    db: Path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One receiver with ENV on one store, for the tests that need no settings of their own."""
    db = tmp_path_factory.mktemp("webhooks") / "hooks.duckdb"
    with receiver(db, ENV) as running:
        yield Shared(running, db)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hooks.duckdb"


def test_signed_deliveries_are_stored_and_bad_ones_leave_no_trace(shared: Shared) -> None:
    repo, db, rx = "acme/signed", shared.db, shared.rx
    delivered, incidents = count(db, "webhook_deliveries"), count(db, "incidents")
    with httpx.Client(timeout=30) as client:
        good = post_github(
            client, rx.url, "issues", gh_issue(repo, 7, ["Incident"], "2026-01-02T03:00:00Z"), SECRET
        )
        assert good.status_code == 200, good.text
        # wrong secret, missing signature, and a correct signature over a different body: all 401
        wrong = post_github(
            client,
            rx.url,
            "issues",
            gh_issue(repo, 8, ["incident"], "2026-01-03T00:00:00Z"),
            "not the secret",
        )
        unsigned = post_github(
            client, rx.url, "issues", gh_issue(repo, 9, ["incident"], "2026-01-03T00:00:00Z"), None
        )
        body = b'{"issue": {"number": 10}}'
        from tests.webhook_senders import github_headers

        tampered = client.post(
            rx.url + "/webhooks/github", content=body + b" ", headers=github_headers(body, "issues", SECRET)
        )
        assert [wrong.status_code, unsigned.status_code, tampered.status_code] == [401, 401, 401]
        legacy = post_github(
            client,
            rx.url,
            "issues",
            gh_issue(repo, 11, ["incident"], "2026-01-04T00:00:00Z"),
            SECRET,
            legacy_sha1=True,
        )
        assert legacy.status_code == 200, legacy.text
        gl_bad = post_gitlab(client, rx.url, "Issue Hook", {"object_kind": "issue"}, "wrong")
        assert gl_bad.status_code == 401
    # only #7 and #11 exist: two deliveries, two incidents, nothing from the refused ones
    assert count(db, "webhook_deliveries") - delivered == 2
    assert count(db, "incidents") - incidents == 2
    assert rows(db, "SELECT id FROM incidents WHERE id LIKE 'github:acme/signed#%' ORDER BY id") == [
        (f"github:{repo}#11",), (f"github:{repo}#7",)]


def test_limits_malformed_json_and_idempotent_redelivery(shared: Shared) -> None:
    repo, db, rx = "acme/limits", shared.db, shared.rx
    delivered, incidents = count(db, "webhook_deliveries"), count(db, "incidents")
    with httpx.Client(timeout=120) as client:
        big = b"{" + b" " * (25 * 1024 * 1024) + b"}"  # 25 MiB + 2 bytes, one byte over is enough
        too_big = client.post(rx.url + "/webhooks/github", content=big, headers={"X-GitHub-Event": "ping"})
        assert too_big.status_code == 413
        from tests.webhook_senders import github_headers

        bad = b'{"issue": '
        malformed = client.post(
            rx.url + "/webhooks/github", content=bad, headers=github_headers(bad, "issues", SECRET)
        )
        assert malformed.status_code == 400
        assert rx.alive()
        payload = gh_issue(repo, 5, ["incident"], "2026-02-01T00:00:00Z")
        first = post_github(client, rx.url, "issues", payload, SECRET, delivery="d-5")
        again = post_github(client, rx.url, "issues", payload, SECRET, delivery="d-5")
        assert (first.json()["message"], again.json()["message"]) == ("stored", "duplicate")
        # no delivery id at all (GitLab without Idempotency-Key): keyed by content hash
        gl = {
            "object_kind": "issue",
            "project": {"path_with_namespace": "grp/proj"},
            "object_attributes": {
                "iid": 3,
                "title": "down",
                "type": "Incident",
                "created_at": "2026-02-02 10:00:00 UTC",
                "state": "opened",
            },
        }
        g1, g2 = (
            post_gitlab(client, rx.url, "Issue Hook", gl, TOKEN),
            post_gitlab(client, rx.url, "Issue Hook", gl, TOKEN),
        )
        assert (g1.json()["message"], g2.json()["message"]) == ("stored", "duplicate")
    assert count(db, "webhook_deliveries") - delivered == 2
    # GitLab "2026-02-02 10:00:00 UTC" -> 10:00 UTC; the type Incident makes it an incident without labels
    assert count(db, "incidents") - incidents == 2
    assert rows(db, "SELECT id, created_at FROM incidents WHERE id IN (?, ?) ORDER BY id",
                [f"github:{repo}#5", "gitlab:grp/proj#3"]) == [
        (f"github:{repo}#5", utc("2026-02-01T00:00:00")),
        ("gitlab:grp/proj#3", utc("2026-02-02T10:00:00")),
    ]


RUNS_STORED = ("SELECT coalesce(sum(CAST(regexp_extract(message, '(\\d+) deliveries', 1) AS INTEGER)), 0)"
               " FROM collection_runs WHERE source = 'webhook' AND target = 'receiver'")


def test_two_hundred_concurrent_signed_deliveries_lose_nothing(shared: Shared) -> None:
    repo, db, rx = "acme/concurrent", shared.db, shared.rx
    delivered, incidents = count(db, "webhook_deliveries"), count(db, "incidents")
    payloads = [gh_issue(repo, n, ["incident"], f"2026-03-01T00:{n % 60:02d}:00Z") for n in range(1, 201)]
    with httpx.Client(timeout=120, limits=httpx.Limits(max_connections=50)) as client:
        with ThreadPoolExecutor(max_workers=50) as pool:  # bounded: 50 in flight at a time
            answers = list(pool.map(lambda p: post_github(client, rx.url, "issues", p, SECRET), payloads))
        assert [a.status_code for a in answers] == [200] * 200
    assert count(db, "incidents") - incidents == 200
    assert rows(db, "SELECT count(*) FROM incidents WHERE id LIKE 'github:acme/concurrent#%'") == [(200,)]
    assert count(db, "webhook_deliveries") - delivered == 200
    # the receiver's busy periods are recorded as collection runs that together stored every delivery
    # of the store, these 200 and the earlier tests': a busy period's row is written once it has been
    # idle for a second (IDLE_SECONDS), so the last one is waited for, not slept for
    deadline = time.monotonic() + 60
    while (stored := rows(db, RUNS_STORED)[0][0]) != count(db, "webhook_deliveries"):
        assert time.monotonic() < deadline, (stored, count(db, "webhook_deliveries"))
        time.sleep(0.2)
    assert stored == count(db, "webhook_deliveries") >= 200


def test_webhook_only_push_chain_gives_deployment_changes(shared: Shared) -> None:
    repo, db, rx = "acme/chain", shared.db, shared.rx
    deployments, changes = count(db, "deployments"), count(db, "deployment_changes")
    with httpx.Client(timeout=30) as client:
        # push 1: A; push 2: B on top of A (before=A); nobody deployed A on its own
        accepted(
            client,
            rx.url,
            "push",
            gh_push(repo, "refs/heads/main", ZERO, [(A, "2026-01-01T10:00:00Z", "first")]),
        )
        accepted(
            client,
            rx.url,
            "push",
            gh_push(repo, "refs/heads/main", A, [(B, "2026-01-01 12:00:00.123456", "second")]),
        )
        # deployment of B (no environment in the payload: goes to the default "production")
        accepted(
            client,
            rx.url,
            "deployment_status",
            gh_deployment_status(repo, 1, B, "success", "2026-01-02T00:00:00Z", environment=None),
        )
        # push 3: C, deployed with a failure first and then success (same deployment id 2 re-used)
        accepted(
            client,
            rx.url,
            "push",
            gh_push(repo, "refs/heads/main", B, [(C, "2026-01-03T09:00:00Z", "third")]),
        )
        accepted(
            client,
            rx.url,
            "deployment_status",
            gh_deployment_status(repo, 3, C, "success", "2026-01-03T10:00:00Z"),
        )
        accepted(
            client,
            rx.url,
            "deployment_status",
            gh_deployment_status(repo, 4, C, "in_progress", "2026-01-03T11:00:00Z"),
        )  # not an outcome: stored delivery, no deployment
    assert count(db, "deployments") - deployments == 2
    deps = rows(db, "SELECT id, environment, revision, status FROM deployments"
                    " WHERE id LIKE 'github:acme/chain:%' ORDER BY deployed_at")
    assert deps == [
        (f"github:{repo}:1", "production", B, "success"),
        (f"github:{repo}:3", "production", C, "success"),
    ]
    # deployment 1 ships A and B (A was pushed earlier and linked through before=A); deployment 3 ships C
    assert count(db, "deployment_changes") - changes == 3
    assert rows(db, "SELECT deployment_id, sha FROM deployment_changes"
                    " WHERE deployment_id LIKE 'github:acme/chain:%' ORDER BY deployment_id, sha") == [
        (f"github:{repo}:1", A),
        (f"github:{repo}:1", B),
        (f"github:{repo}:3", C),
    ]
    # the naive "2026-01-01 12:00:00.123456" is read as UTC
    assert rows(db, "SELECT author_time FROM commits WHERE repo = ? AND sha = ?", [repo, B]) == [
        (datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),)
    ]


def test_refuses_to_start_without_secrets_unless_insecure(db: Path) -> None:
    # the refusal in this process (tests/cli_inprocess.py: the entry point's exit code and error
    # line as a process gives them; a receiver start is some 0.55 CPU-s of imports before it)
    proc = cli_inprocess.run(["--db", str(db), "serve-webhooks", "--port", "1"],
                             env={"PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2
    assert "GITOPS_DORA_GITHUB_SECRET" in proc.stderr and "--insecure" in proc.stderr
    with receiver(db, {}, args=("--insecure",)) as rx, httpx.Client(timeout=30) as client:
        status = client.get(rx.url + "/").json()
        assert status["endpoints"]["/webhooks/github"] == "insecure"
        push = {
            "ref": "refs/heads/main",
            "after": A,  # minimal: no repository, no before
            "commits": [{"id": A, "timestamp": "2026-01-02 03:04:05.123456", "message": "x"}],
        }
        answer = post_github(client, rx.url, "push", push, None)
        assert answer.status_code == 200, answer.text
    # the push went under webhooks.default_repository ("webhook")
    assert rows(db, "SELECT repo, sha FROM commits") == [("webhook", A)]


def test_pull_request_events_merge_into_one_row(shared: Shared) -> None:
    db, rx = shared.db, shared.rx
    pulls = count(db, "pull_requests")
    pr = {
        "number": 12,
        "title": "Add retries",
        "user": {"login": "ada"},
        "state": "open",
        "created_at": "2026-01-05T09:00:00Z",
        "updated_at": "2026-01-05T09:00:00Z",
        "merged_at": None,
        "closed_at": None,
        "merge_commit_sha": None,
        "base": {"ref": "main"},
        "head": {"ref": "retries"},
        "labels": [],
        "html_url": f"https://github.com/{PULLS}/pull/12",
    }
    with httpx.Client(timeout=30) as client:
        from tests.webhook_senders import gh_repository

        repo = gh_repository(PULLS)
        accepted(
            client,
            rx.url,
            "push",
            gh_push(PULLS, "refs/heads/retries", ZERO, [(D, "2026-01-04T15:00:00Z", "wip")]),
        )
        accepted(
            client,
            rx.url,
            "pull_request",
            {"action": "opened", "number": 12, "pull_request": pr, "repository": repo},
        )
        # the author's own review comment comes first: it is not a pickup (DevLake fixture pr1)
        own = {"id": 98, "user": {"login": "ada"}, "state": "commented",
               "submitted_at": "2026-01-05T12:00:00Z"}
        accepted(
            client,
            rx.url,
            "pull_request_review",
            {"action": "submitted", "review": own, "pull_request": pr, "repository": repo},
        )
        review = {
            "id": 99,
            "user": {"login": "bo"},
            "state": "approved",
            "submitted_at": "2026-01-05T13:00:00Z",
        }
        accepted(
            client,
            rx.url,
            "pull_request_review",
            {"action": "submitted", "review": review, "pull_request": pr, "repository": repo},
        )
        merged = {
            **pr,
            "state": "closed",
            "merged_at": "2026-01-05T16:00:00Z",
            "closed_at": "2026-01-05T16:00:00Z",
            "merge_commit_sha": E,
            "updated_at": "2026-01-05T16:00:00Z",
        }
        accepted(
            client,
            rx.url,
            "pull_request",
            {"action": "closed", "number": 12, "pull_request": merged, "repository": repo},
        )
        # a late, out-of-order "opened" delivery (older updated_at) must not undo the merge
        late = {"action": "edited", "number": 12, "pull_request": pr, "repository": repo}
        accepted(client, rx.url, "pull_request", late)
    # first commit = D's time (pushed to head branch "retries"); first review by someone other than
    # the author 13:00 (ada's own 12:00 comment does not count); merged 16:00
    assert count(db, "pull_requests") - pulls == 1
    assert rows(
        db,
        "SELECT number, state, first_commit_at, first_review_at, merged_at, merge_commit_sha"
        " FROM pull_requests WHERE repo = ?", [PULLS],
    ) == [
        (12, "merged", utc("2026-01-04T15:00:00"), utc("2026-01-05T13:00:00"), utc("2026-01-05T16:00:00"), E)
    ]


def test_form_encoded_github_delivery_is_accepted(shared: Shared) -> None:
    db, rx = shared.db, shared.rx
    incidents = count(db, "incidents")
    from urllib.parse import urlencode

    from tests.webhook_senders import github_headers

    payload = gh_issue("acme/form", 31, ["incident"], "2026-04-01T00:00:00Z")
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {**github_headers(body, "issues", SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    with httpx.Client(timeout=30) as client:
        answer = client.post(rx.url + "/webhooks/github", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    # the signature covers the form body as sent; the JSON inside "payload" is the event
    assert count(db, "incidents") - incidents == 1
    assert rows(db, "SELECT id FROM incidents WHERE id LIKE 'github:acme/form#%'") == [
        ("github:acme/form#31",)]


def test_gitlab_push_merge_request_and_deployment_events(shared: Shared) -> None:
    db, rx = shared.db, shared.rx
    before = {table: count(db, table) for table in ("deployments", "deployment_changes", "pull_requests")}
    project = {
        "id": 15,
        "name": "ledger",
        "path_with_namespace": "fin/ledger",
        "web_url": "https://gl/fin/ledger",
    }
    push1 = {
        "object_kind": "push",
        "event_name": "push",
        "before": ZERO,
        "after": F,
        "ref": "refs/heads/main",
        "checkout_sha": F,
        "project": project,
        "total_commits_count": 1,
        "commits": [
            {
                "id": F,
                "message": "ledger: add",
                "title": "ledger: add",
                "timestamp": "2026-05-01T10:00:00+02:00",  # 08:00 UTC
                "author": {"name": "Mei", "email": "mei@example.com"},
            }
        ],
    }
    push2 = {
        **push1,
        "before": F,
        "after": G,
        "checkout_sha": G,
        "commits": [
            {
                "id": G,
                "message": "ledger: fix",
                "timestamp": "2026-05-01 12:00:00",  # naive: UTC
                "author": {"name": "Ole", "email": "ole@example.com"},
            }
        ],
    }
    mr = {
        "object_kind": "merge_request",
        "event_type": "merge_request",
        "user": {"username": "ole"},
        "project": project,
        "labels": [{"title": "backend"}],
        "object_attributes": {
            "iid": 4,
            "title": "Ledger fix",
            "state": "merged",
            "action": "merge",
            "created_at": "2026-05-01 11:00:00 UTC",
            "updated_at": "2026-05-01 13:00:00 UTC",
            "merge_commit_sha": G,
            "source_branch": "fix",
            "target_branch": "main",
            "url": "https://gl/fin/ledger/-/merge_requests/4",
        },
    }
    deployment = {
        "object_kind": "deployment",
        "status": "success",
        "status_changed_at": "2026-05-01 16:00:00 +0200",
        "deployment_id": 77,
        "deployable_id": 700,
        "environment": "production",
        "project": project,
        "short_sha": G[:8],
        "commit_url": f"https://gl/fin/ledger/-/commit/{G}",
        "commit_title": "fix",
    }
    running = {**deployment, "status": "running", "deployment_id": 78}
    with httpx.Client(timeout=30) as client:
        for event, body in (
            ("Push Hook", push1),
            ("Push Hook", push2),
            ("Merge Request Hook", mr),
            ("Deployment Hook", running),
            ("Deployment Hook", deployment),
        ):
            answer = post_gitlab(client, rx.url, event, body, TOKEN)
            assert answer.status_code == 200, answer.text
    # "2026-05-01 16:00:00 +0200" = 14:00 UTC; the running deployment is no outcome
    assert {table: count(db, table) - n for table, n in before.items()} == {
        "deployments": 1, "deployment_changes": 2, "pull_requests": 1}
    assert rows(db, "SELECT id, revision, deployed_at, status FROM deployments WHERE id LIKE 'gitlab:%'") == [
        ("gitlab:fin/ledger:77", G, utc("2026-05-01T14:00:00"), "success")
    ]
    # G's parent is F (before of push 2), so deployment 77 ships both
    assert rows(db, "SELECT sha FROM deployment_changes WHERE deployment_id = 'gitlab:fin/ledger:77'"
                    " ORDER BY sha") == [(F,), (G,)]
    assert rows(db, "SELECT sha, author_time FROM commits WHERE repo = 'fin/ledger' ORDER BY sha") == [
        (F, utc("2026-05-01T08:00:00")),
        (G, utc("2026-05-01T12:00:00")),
    ]
    assert rows(db, "SELECT number, state, merged_at, merge_commit_sha, labels FROM pull_requests"
                    " WHERE repo = 'fin/ledger'") == [
        (4, "merged", utc("2026-05-01T13:00:00"), G, ["backend"])
    ]


def test_configured_repository_maps_webhooks_to_its_repo_id_and_service(db: Path, tmp_path: Path) -> None:
    config = tmp_path / "gitops-dora.yaml"
    config.write_text(
        "services:\n  - name: payments-svc\n    team: money\n    repositories: [/src/clones/payments]\n"
        "webhooks:\n  default_environment: prod-eu\n"
    )
    with receiver(db, ENV, config=config) as rx, httpx.Client(timeout=30) as client:
        push = gh_push(REPO, "refs/heads/main", ZERO, [(A, "2026-06-01T10:00:00Z", "x")])
        accepted(client, rx.url, "push", push)
        status = gh_deployment_status(REPO, 5, A, "success", "2026-06-01T12:00:00Z", environment=None)
        accepted(client, rx.url, "deployment_status", status)
    # acme/payments is the configured /src/clones/payments: repo id "payments" (what `collect git`
    # names it), service payments-svc; no environment in the payload -> webhooks.default_environment
    assert rows(db, "SELECT repository, service, environment FROM deployments") == [
        ("payments", "payments-svc", "prod-eu")
    ]
    assert rows(db, "SELECT repo FROM commits") == [("payments",)]
    assert rows(db, "SELECT name, team FROM services") == [("payments-svc", "money")]

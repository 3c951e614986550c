"""The webhook receiver as a real process on 127.0.0.1, fed signed and unsigned deliveries."""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.store_query import query_snapshot as rows
from tests.webhook_senders import (
    CLI,
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
A, B, C = "a" * 40, "b" * 40, "c" * 40
ZERO = "0" * 40


def accepted(client: httpx.Client, url: str, event: str, payload: dict[str, Any]) -> None:
    """A delivery signed with SECRET that the receiver must take (200)."""
    answer = post_github(client, url, event, payload, SECRET)
    assert answer.status_code == 200, answer.text


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "hooks.duckdb"


def test_signed_deliveries_are_stored_and_bad_ones_leave_no_trace(db: Path) -> None:
    with receiver(db, ENV) as rx, httpx.Client(timeout=30) as client:
        good = post_github(
            client, rx.url, "issues", gh_issue(REPO, 7, ["Incident"], "2026-01-02T03:00:00Z"), SECRET
        )
        assert good.status_code == 200, good.text
        # wrong secret, missing signature, and a correct signature over a different body: all 401
        wrong = post_github(
            client,
            rx.url,
            "issues",
            gh_issue(REPO, 8, ["incident"], "2026-01-03T00:00:00Z"),
            "not the secret",
        )
        unsigned = post_github(
            client, rx.url, "issues", gh_issue(REPO, 9, ["incident"], "2026-01-03T00:00:00Z"), None
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
            gh_issue(REPO, 11, ["incident"], "2026-01-04T00:00:00Z"),
            SECRET,
            legacy_sha1=True,
        )
        assert legacy.status_code == 200, legacy.text
        gl_bad = post_gitlab(client, rx.url, "Issue Hook", {"object_kind": "issue"}, "wrong")
        assert gl_bad.status_code == 401
    # only #7 and #11 exist: two deliveries, two incidents, nothing from the refused ones
    assert rows(db, "SELECT count(*) FROM webhook_deliveries") == [(2,)]
    assert rows(db, "SELECT id FROM incidents ORDER BY id") == [(f"github:{REPO}#11",), (f"github:{REPO}#7",)]


def test_limits_malformed_json_and_idempotent_redelivery(db: Path) -> None:
    with receiver(db, ENV) as rx, httpx.Client(timeout=120) as client:
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
        payload = gh_issue(REPO, 5, ["incident"], "2026-02-01T00:00:00Z")
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
    assert rows(db, "SELECT count(*) FROM webhook_deliveries") == [(2,)]
    # GitLab "2026-02-02 10:00:00 UTC" -> 10:00 UTC; the type Incident makes it an incident without labels
    assert rows(db, "SELECT id, created_at FROM incidents ORDER BY id") == [
        (f"github:{REPO}#5", utc("2026-02-01T00:00:00")),
        ("gitlab:grp/proj#3", utc("2026-02-02T10:00:00")),
    ]


def test_two_hundred_concurrent_signed_deliveries_lose_nothing(db: Path) -> None:
    payloads = [gh_issue(REPO, n, ["incident"], f"2026-03-01T00:{n % 60:02d}:00Z") for n in range(1, 201)]
    with (
        receiver(db, ENV) as rx,
        httpx.Client(timeout=120, limits=httpx.Limits(max_connections=50)) as client,
    ):
        with ThreadPoolExecutor(max_workers=50) as pool:  # bounded: 50 in flight at a time
            answers = list(pool.map(lambda p: post_github(client, rx.url, "issues", p, SECRET), payloads))
        assert [a.status_code for a in answers] == [200] * 200
    assert rows(db, "SELECT count(*) FROM incidents") == [(200,)]
    assert rows(db, "SELECT count(*) FROM webhook_deliveries") == [(200,)]
    # the receiver's busy periods are recorded as collection runs that together stored all 200
    stored = rows(db, "SELECT sum(CAST(regexp_extract(message, '(\\d+) deliveries', 1) AS INTEGER))"
                      " FROM collection_runs WHERE source = 'webhook' AND target = 'receiver'")
    assert stored == [(200,)]


def test_webhook_only_push_chain_gives_deployment_changes(db: Path, tmp_path: Path) -> None:
    with receiver(db, ENV) as rx, httpx.Client(timeout=30) as client:
        # push 1: A; push 2: B on top of A (before=A); nobody deployed A on its own
        accepted(
            client,
            rx.url,
            "push",
            gh_push(REPO, "refs/heads/main", ZERO, [(A, "2026-01-01T10:00:00Z", "first")]),
        )
        accepted(
            client,
            rx.url,
            "push",
            gh_push(REPO, "refs/heads/main", A, [(B, "2026-01-01 12:00:00.123456", "second")]),
        )
        # deployment of B (no environment in the payload: goes to the default "production")
        accepted(
            client,
            rx.url,
            "deployment_status",
            gh_deployment_status(REPO, 1, B, "success", "2026-01-02T00:00:00Z", environment=None),
        )
        # push 3: C, deployed with a failure first and then success (same deployment id 2 re-used)
        accepted(
            client,
            rx.url,
            "push",
            gh_push(REPO, "refs/heads/main", B, [(C, "2026-01-03T09:00:00Z", "third")]),
        )
        accepted(
            client,
            rx.url,
            "deployment_status",
            gh_deployment_status(REPO, 3, C, "success", "2026-01-03T10:00:00Z"),
        )
        accepted(
            client,
            rx.url,
            "deployment_status",
            gh_deployment_status(REPO, 4, C, "in_progress", "2026-01-03T11:00:00Z"),
        )  # not an outcome: stored delivery, no deployment
    deps = rows(db, "SELECT id, environment, revision, status FROM deployments ORDER BY deployed_at")
    assert deps == [
        (f"github:{REPO}:1", "production", B, "success"),
        (f"github:{REPO}:3", "production", C, "success"),
    ]
    # deployment 1 ships A and B (A was pushed earlier and linked through before=A); deployment 3 ships C
    assert rows(db, "SELECT deployment_id, sha FROM deployment_changes ORDER BY deployment_id, sha") == [
        (f"github:{REPO}:1", A),
        (f"github:{REPO}:1", B),
        (f"github:{REPO}:3", C),
    ]
    # the naive "2026-01-01 12:00:00.123456" is read as UTC
    assert rows(db, "SELECT author_time FROM commits WHERE sha = ?", [B]) == [
        (datetime(2026, 1, 1, 12, 0, 0, 123456, tzinfo=UTC),)
    ]


def test_refuses_to_start_without_secrets_unless_insecure(db: Path) -> None:
    proc = subprocess.run(
        [CLI, "--db", str(db), "serve-webhooks", "--port", "1"],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
    )
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


def test_pull_request_events_merge_into_one_row(db: Path) -> None:
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
        "html_url": f"https://github.com/{REPO}/pull/12",
    }
    with receiver(db, ENV) as rx, httpx.Client(timeout=30) as client:
        from tests.webhook_senders import gh_repository

        repo = gh_repository(REPO)
        accepted(
            client,
            rx.url,
            "push",
            gh_push(REPO, "refs/heads/retries", ZERO, [(A, "2026-01-04T15:00:00Z", "wip")]),
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
            "merge_commit_sha": B,
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
    # first commit = A's time (pushed to head branch "retries"); first review by someone other than
    # the author 13:00 (ada's own 12:00 comment does not count); merged 16:00
    assert rows(
        db,
        "SELECT number, state, first_commit_at, first_review_at, merged_at, merge_commit_sha"
        " FROM pull_requests",
    ) == [
        (12, "merged", utc("2026-01-04T15:00:00"), utc("2026-01-05T13:00:00"), utc("2026-01-05T16:00:00"), B)
    ]


def test_form_encoded_github_delivery_is_accepted(db: Path) -> None:
    from urllib.parse import urlencode

    from tests.webhook_senders import github_headers

    payload = gh_issue(REPO, 31, ["incident"], "2026-04-01T00:00:00Z")
    body = urlencode({"payload": json.dumps(payload)}).encode()
    headers = {**github_headers(body, "issues", SECRET), "Content-Type": "application/x-www-form-urlencoded"}
    with receiver(db, ENV) as rx, httpx.Client(timeout=30) as client:
        answer = client.post(rx.url + "/webhooks/github", content=body, headers=headers)
        assert answer.status_code == 200, answer.text
    # the signature covers the form body as sent; the JSON inside "payload" is the event
    assert rows(db, "SELECT id FROM incidents") == [(f"github:{REPO}#31",)]


def test_gitlab_push_merge_request_and_deployment_events(db: Path) -> None:
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
        "after": A,
        "ref": "refs/heads/main",
        "checkout_sha": A,
        "project": project,
        "total_commits_count": 1,
        "commits": [
            {
                "id": A,
                "message": "ledger: add",
                "title": "ledger: add",
                "timestamp": "2026-05-01T10:00:00+02:00",  # 08:00 UTC
                "author": {"name": "Mei", "email": "mei@example.com"},
            }
        ],
    }
    push2 = {
        **push1,
        "before": A,
        "after": B,
        "checkout_sha": B,
        "commits": [
            {
                "id": B,
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
            "merge_commit_sha": B,
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
        "short_sha": B[:8],
        "commit_url": f"https://gl/fin/ledger/-/commit/{B}",
        "commit_title": "fix",
    }
    running = {**deployment, "status": "running", "deployment_id": 78}
    with receiver(db, ENV) as rx, httpx.Client(timeout=30) as client:
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
    assert rows(db, "SELECT id, revision, deployed_at, status FROM deployments") == [
        ("gitlab:fin/ledger:77", B, utc("2026-05-01T14:00:00"), "success")
    ]
    # B's parent is A (before of push 2), so deployment 77 ships both
    assert rows(db, "SELECT sha FROM deployment_changes ORDER BY sha") == [(A,), (B,)]
    assert rows(db, "SELECT sha, author_time FROM commits ORDER BY sha") == [
        (A, utc("2026-05-01T08:00:00")),
        (B, utc("2026-05-01T12:00:00")),
    ]
    assert rows(db, "SELECT number, state, merged_at, merge_commit_sha, labels FROM pull_requests") == [
        (4, "merged", utc("2026-05-01T13:00:00"), B, ["backend"])
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

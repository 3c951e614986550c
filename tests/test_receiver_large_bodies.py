"""Bodies over 256 KiB take the receiver's large-body path (issue #16: memory per delivery): read
into one buffer, the payload spooled to a file the writer stores (since session 9 as a data file
of its own, added with ducklake_add_data_files; read_text where it cannot), the rows copied
out of the parsed payload, a table's rows past 10,000 merged in parts. These tests hold that path
to the small one: the same content gives the same rows, the stored payload is the body byte for
byte, refused bodies write nothing, and no spooled file is left behind. Real receiver processes on
127.0.0.1, real stores; the memory itself is measured by ``bench/webhook_body_memory.py``.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import socket
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from analytics.config import Config
from analytics.webhooks.providers import github
from analytics.webhooks.writer import Column, TableRows, made_rows
from tests.receiver_tables import every_row
from tests.reconciler_objects import application, notification
from tests.store_query import query
from tests.webhook_senders import gh_deployment_status, gh_issue, gh_push, receiver, receivers

GITHUB, GITLAB, ARGO, FLUX = "large-gh-secret", "large-gl-token", "large-argo-token", "large-flux-key"
ENV = {
    "GITOPS_DORA_GITHUB_SECRET": GITHUB,
    "GITOPS_DORA_GITLAB_TOKEN": GITLAB,
    "GITOPS_DORA_ARGOCD_SECRET": ARGO,
    "GITOPS_DORA_FLUX_SECRET": FLUX,
}
PAD = b" " * (300 * 1024)  # JSON allows whitespace after the value: same payload, a large body
REPO = "acme/large"
T0 = datetime(2026, 3, 1, 9, 0, tzinfo=UTC)
# Every table the deliveries below can write, except the audit table compared on its own.
TABLES = ("commits", "webhook_pushes", "webhook_pull_requests", "pull_requests", "pr_reviews", "deployments",
          "deployment_changes", "incidents", "reconciler_objects", "reconciler_events", "services",
          "environments", "repositories")


def sha(n: int) -> str:
    return hashlib.sha1(str(n).encode()).hexdigest()


def headers(path: str, body: bytes, delivery: str, event: str) -> dict[str, str]:
    """Signed (or carrying the token) the way each sender does."""
    base = {"Content-Type": "application/json"}
    if path == "github":
        digest = hmac.new(GITHUB.encode(), body, hashlib.sha256).hexdigest()
        return base | {"X-GitHub-Event": event, "X-GitHub-Delivery": delivery,
                       "X-Hub-Signature-256": f"sha256={digest}"}
    if path == "gitlab":
        return base | {"X-Gitlab-Event": event, "X-Gitlab-Token": GITLAB, "Idempotency-Key": delivery}
    if path == "argocd":
        return base | {"Authorization": f"Bearer {ARGO}"}
    return base | {"X-Signature": "sha256=" + hmac.new(FLUX.encode(), body, hashlib.sha256).hexdigest()}


def gitlab_push() -> dict[str, Any]:
    return {
        "object_kind": "push", "before": "0" * 40, "after": sha(3), "ref": "refs/heads/main",
        "checkout_sha": sha(3), "project": {"path_with_namespace": "acme/gl-large", "name": "gl-large"},
        "commits": [{"id": sha(n), "message": f"gl change {n}\n\nbody",
                     "timestamp": f"2026-03-01T0{n}:00:00+02:00",
                     "author": {"name": "Grace", "email": "grace@example.com"}} for n in (1, 2, 3)],
    }


def gitlab_merge_request() -> dict[str, Any]:
    return {
        "object_kind": "merge_request", "user": {"username": "grace"},
        "project": {"path_with_namespace": "acme/gl-large"},
        "object_attributes": {"iid": 7, "title": "Big change", "state": "merged", "action": "merge",
                              "created_at": "2026-03-01 08:00:00 UTC",
                              "updated_at": "2026-03-01 10:00:00 UTC",
                              "merge_commit_sha": sha(3), "target_branch": "main", "source_branch": "big",
                              "url": "https://gitlab.example/acme/gl-large/-/merge_requests/7"},
    }


def deliveries() -> list[tuple[str, str, dict[str, Any]]]:
    """(endpoint, event, payload) of every kind the providers turn into rows."""
    commits = [(sha(n), f"2026-03-01T0{n}:00:00Z", f"change {n}") for n in (1, 2, 3)]
    app = application("storefront-production", repo_url="https://git.example/acme/large", path="deploy",
                      dest_namespace="storefront", history=[(sha(2), T0), (sha(3), T0 + timedelta(hours=2))])
    return [
        ("github", "push", gh_push(REPO, "refs/heads/main", "0" * 40, commits)),
        ("github", "deployment_status", gh_deployment_status(REPO, 41, sha(3), "success",
                                                             "2026-03-01T05:00:00Z")),
        ("github", "issues", gh_issue(REPO, 12, ["incident"], "2026-03-01T06:00:00Z",
                                      closed="2026-03-01T07:00:00Z", body="root cause: " + sha(2))),
        ("gitlab", "Push Hook", gitlab_push()),
        ("gitlab", "Merge Request Hook", gitlab_merge_request()),
        ("argocd", "", app),
        ("flux", "", notification("Kustomization", "payments-api-production", "flux-system",
                                  "ReconciliationSucceeded", "Reconciliation finished in 1s", T0,
                                  revision="main@sha1:" + sha(3))),
    ]


def tables(db: Path) -> dict[str, list[tuple[Any, ...]]]:
    """Each table's rows, but for when the receiver saw an object (``last_seen``: its clock)."""
    return every_row(db, TABLES)


def payload_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("gitops-dora-payload-*"))


@pytest.fixture
def spool(tmp_path: Path) -> Path:
    """The receivers' temporary folder (TMPDIR), where large payloads are spooled."""
    folder = tmp_path / "spool"
    folder.mkdir()
    return folder


@pytest.fixture
def env(spool: Path) -> dict[str, str]:
    return ENV | {"TMPDIR": str(spool)}


@dataclass
class Shared:
    url: str
    db: Path
    spool: Path


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shared]:
    """One receiver with a 16 MiB body limit for the 12,000-commit push and the refused bodies
    (a receiver is some 0.85 CPU-s and 2-5 s of a loaded worker to start and stop); each test
    reads back only its own rows, and the refused ones compare the whole store before and after."""
    folder = tmp_path_factory.mktemp("large-shared")
    spool = folder / "spool"
    spool.mkdir()
    db = folder / "store.ducklake"
    with receiver(db, ENV | {"TMPDIR": str(spool), "GITOPS_DORA_WEBHOOK_MAX_BODY": "16M"}) as rx:
        yield Shared(rx.url, db, spool)


def test_every_kind_of_delivery_stores_the_same_rows_from_a_large_body(
    tmp_path: Path, spool: Path, env: dict[str, str]
) -> None:
    sent: dict[str, list[tuple[str, bytes, str]]] = {"small": [], "large": []}
    stores = {"small": tmp_path / "small.ducklake", "large": tmp_path / "large.ducklake"}
    # a receiver per store, started together (the same settings; a start is some 0.8 CPU-s and
    # 2-5 s of a loaded worker); each store gets only its own size's deliveries, as before
    with receivers(list(stores.values()), env) as running, httpx.Client(timeout=60) as client:
        for size, rx in zip(stores, running, strict=True):
            for n, (path, event, payload) in enumerate(deliveries()):
                body = json.dumps(payload).encode() + (PAD if size == "large" else b"")
                delivery = f"delivery-{n}"
                answer = client.post(f"{rx.url}/webhooks/{path}", content=body,
                                     headers=headers(path, body, delivery, event))
                assert answer.status_code == 200, (size, path, event, answer.text)
                sent[size].append((path, body, delivery))
    assert payload_files(spool) == []  # neither receiver left a spooled payload behind
    small, large = tables(stores["small"]), tables(stores["large"])
    assert all(small[t] for t in ("commits", "deployments", "incidents", "reconciler_events")), small
    assert large == small
    # The audit rows: the same deliveries, each payload stored exactly as its body was sent.
    for size, db in stores.items():
        stored = query(db, "SELECT provider, delivery_id, body_sha256, payload::VARCHAR, rows_written"
                           " FROM webhook_deliveries")
        assert len(stored) == len(sent[size])
        by_hash = {row[2]: row for row in stored}
        for path, body, delivery in sent[size]:
            digest = hashlib.sha256(body).hexdigest()
            provider, delivery_id, _, text, _ = by_hash[digest]
            assert provider == path
            assert delivery_id == (delivery if path in ("github", "gitlab") else f"sha256:{digest}")
            assert text == body.decode()
    audit = "SELECT provider, event, rows_written FROM webhook_deliveries ORDER BY ALL"
    assert query(stores["small"], audit) == query(stores["large"], audit)


def test_a_push_of_twelve_thousand_commits_stores_every_row_the_provider_makes(shared: Shared) -> None:
    """Past 10,000 rows a table is merged in parts: every commit must still be there, as made."""
    commits = [(sha(n), f"2026-03-01T{n % 24:02d}:{n % 60:02d}:00Z", f"change {n}\n\nwhy {n}")
               for n in range(12_000)]
    repo = "acme/twelve-k"
    payload = gh_push(repo, "refs/heads/main", "0" * 40, commits)
    body = json.dumps(payload).encode()
    db = shared.db
    assert len(body) > 5 * 2**20  # past the default limit: raised for the shared receiver
    with httpx.Client(timeout=300) as client:
        answer = client.post(shared.url + "/webhooks/github", content=body,
                             headers=headers("github", body, "big-push", "push"))
        assert answer.status_code == 200, answer.text
        assert answer.json()["rows"] == 12_001
        assert payload_files(shared.spool) == []  # removed before the answer, not when the receiver stops
    expected = github.to_rows({"x-github-event": "push"}, payload, Config())
    columns = list(expected["commits"][0])
    stored = query(db, f"SELECT {', '.join(columns)} FROM commits WHERE repo = ? ORDER BY sha", [repo])
    made = [tuple(row[c] for c in columns) for row in expected["commits"]]
    assert stored == sorted(made, key=lambda r: r[columns.index("sha")])
    push_columns = list(expected["webhook_pushes"][0])
    assert query(db, f"SELECT {', '.join(push_columns)} FROM webhook_pushes WHERE repo = ?", [repo]) == [
        tuple(expected["webhook_pushes"][0][c] for c in push_columns)]
    assert query(db, "SELECT payload::VARCHAR = ?, body_sha256 FROM webhook_deliveries"
                     " WHERE delivery_id = 'big-push'", [body.decode()]) == [
        (True, hashlib.sha256(body).hexdigest())]


def hostile(kind: str) -> bytes:
    """A large body of each kind the receiver must refuse, built so that only that flaw is wrong."""
    good = json.dumps(gh_push(REPO, "refs/heads/main", "0" * 40,
                              [(sha(1), "2026-03-01T01:00:00Z", "x" * 400_000)])).encode()
    if kind == "truncated":
        return good[: len(good) // 2]
    if kind == "invalid-utf8":
        return good.replace(b"xxxx", b"x\xff\xfex", 1)
    if kind == "nan":
        return good[:-1] + b', "score": NaN}'
    if kind == "surrogate":
        return good[:-1] + b', "note": "\\ud800"}'
    if kind == "deep":
        return b'{"a": ' + b"[" * 200 + b"]" * 200 + b', "pad": "' + b"p" * 300_000 + b'"}'
    if kind == "not-an-object":
        return b"[" + good + b"]"
    raise AssertionError(kind)


# orjson names bytes that are not UTF-8 among "surrogates"; the receiver tells them apart: a body
# that is not UTF-8 is malformed JSON (400), an escaped lone surrogate cannot be stored (422)
HOSTILE = {"truncated": 400, "invalid-utf8": 400, "nan": 400, "surrogate": 422, "deep": 422,
           "not-an-object": 400}


def test_refused_large_bodies_get_their_4xx_and_write_nothing(shared: Shared) -> None:
    url, db, spool = shared.url, shared.db, shared.spool
    with httpx.Client(timeout=30) as client:
        stored_before = client.get(url + "/").json()["stored"]
    deliveries = "SELECT count(*) FROM webhook_deliveries"
    before, delivered = every_row(db, TABLES), query(db, deliveries)
    with httpx.Client(timeout=60) as client:
        for kind, status in HOSTILE.items():
            body = hostile(kind)
            assert len(body) > 256 * 1024
            answer = client.post(url + "/webhooks/github", content=body,
                                 headers=headers("github", body, str(uuid.uuid4()), "push"))
            assert answer.status_code == status, (kind, answer.text)
            assert "\n" not in answer.json()["message"]
            # the same flaw in a small body: the same answer
            small = body if kind == "deep" else hostile(kind).replace(b"x" * 400_000, b"x")
            if kind != "deep":
                short = client.post(url + "/webhooks/github", content=small,
                                    headers=headers("github", small, str(uuid.uuid4()), "push"))
                same = (short.status_code, re.sub(r"\d+", "N", short.json()["message"]))
                assert same == (status, re.sub(r"\d+", "N", answer.json()["message"])), kind
        # Signed with another key (GitHub) or another HMAC (Flux): 401 before any parse.
        body = json.dumps(gh_push(REPO, "refs/heads/main", "0" * 40, [(sha(5), "2026-03-01T01:00:00Z", "y")])
                          ).encode() + PAD
        forged = headers("github", body, "forged", "push") | {
            "X-Hub-Signature-256": "sha256=" + hmac.new(b"guess", body, hashlib.sha256).hexdigest()}
        assert client.post(url + "/webhooks/github", content=body, headers=forged).status_code == 401
        event = json.dumps(notification("Kustomization", "payments-api-production", "flux-system",
                                        "ReconciliationSucceeded", "done", T0, revision="main@sha1:" + sha(5))
                           ).encode() + PAD
        wrong = {"Content-Type": "application/json",
                 "X-Signature": "sha256=" + hmac.new(b"guess", event, hashlib.sha256).hexdigest()}
        assert client.post(url + "/webhooks/flux", content=event, headers=wrong).status_code == 401
    # A sender that declares a large body and hangs up halfway: nothing stored either.
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"POST /webhooks/github HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                     f"Content-Length: {len(body)}\r\n".encode()
                     + "".join(f"{k}: {v}\r\n" for k, v in headers("github", body, "cut", "push").items()
                               if k != "Content-Type").encode() + b"\r\n" + body[: len(body) // 2])
        sock.shutdown(socket.SHUT_WR)
        sock.recv(4096)  # an answer or the close, whichever the receiver gives a half-sent body
    with httpx.Client(timeout=30) as client:  # still serving, and nothing of the above stored
        assert client.get(url + "/").json()["stored"] == stored_before
    assert every_row(db, TABLES) == before and query(db, deliveries) == delivered  # nothing added or changed
    assert payload_files(spool) == []


def test_prepare_spools_a_large_payload_and_keeps_neither_body_nor_parsed_strings(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the large path hands the writer: the payload in a file holding exactly the body, no
    body, its hash, and rows equal to the provider's held as Arrow tables (no Python object of the
    parsed payload outlives ``prepare``)."""
    import tempfile

    import orjson

    from analytics.webhooks import server
    from analytics.webhooks.writer import discard_payload_file

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    commits = [(sha(n), "2026-03-01T01:00:00Z", f"change {n}") for n in range(1500)]
    body = bytearray(json.dumps(gh_push(REPO, "refs/heads/main", "0" * 40, commits)).encode())
    assert len(body) > server.OFFLOAD_BYTES
    endpoint = next(e for e in server.provider_secrets({}) if e.name == "github")
    columns = {"commits": {c: _column(c) for c in github.to_rows(
                   {"x-github-event": "push"}, orjson.loads(body), Config())["commits"][0]},
               "webhook_pushes": {c: _column(c) for c in (
                   "repo", "ref", "before_sha", "after_sha", "pushed_at", "commit_shas")}}
    head = {"x-github-event": "push", "x-github-delivery": "spooled"}
    prepared = server.prepare(endpoint, head, body, Config(), columns, True, 0.0, T0)
    delivery = prepared.delivery
    assert delivery is not None, prepared.message
    assert delivery.body == b"" and delivery.payload_json is None
    assert delivery.body_sha256 == hashlib.sha256(body).hexdigest()
    assert delivery.payload_file is not None
    spooled = Path(delivery.payload_file)
    assert spooled.parent == tmp_path and spooled.read_bytes() == body
    made = github.to_rows(head, orjson.loads(body), Config())
    assert all(isinstance(rows, TableRows) for rows in delivery.rows.values())
    assert {table: list(rows) for table, rows in delivery.rows.items()} == made
    assert {table: made_rows(rows) for table, rows in delivery.rows.items()} == {"commits": 1500,
                                                                                 "webhook_pushes": 1}
    discard_payload_file(delivery)
    assert not spooled.exists() and delivery.payload_file is None
    # A small body keeps the in-memory way, unchanged.
    small = json.dumps(gh_push(REPO, "refs/heads/main", "0" * 40, commits[:2])).encode()
    plain = server.prepare(endpoint, head, small, Config(), columns, True, 0.0, T0).delivery
    assert plain is not None and plain.payload_file is None
    assert plain.body is small and plain.payload_json == small.decode()


def test_a_large_payload_stays_in_memory_where_the_temporary_folder_cannot_be_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    from analytics.webhooks import server

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "missing"))
    body = json.dumps(gh_issue(REPO, 3, ["incident"], "2026-03-01T06:00:00Z", body="z" * 300_000)).encode()
    endpoint = next(e for e in server.provider_secrets({}) if e.name == "github")
    columns = {"incidents": {c: _column(c) for c in (
        "id", "service", "environment", "created_at", "resolved_at", "title", "root_cause", "source",
        "source_ref", "url", "labels")}}
    head = {"x-github-event": "issues"}
    prepared = server.prepare(endpoint, head, bytearray(body), Config(), columns, True, 0.0, T0)
    delivery = prepared.delivery
    assert delivery is not None, prepared.message
    assert delivery.payload_file is None and delivery.payload_json == body.decode()
    assert delivery.body == body and delivery.rows["incidents"][0]["source_ref"] == "3"


def _column(name: str) -> Column:
    """The store's type of a column these tests hand to ``prepare`` (lists are VARCHAR[])."""
    return Column("VARCHAR[]" if name in ("parents", "labels", "commit_shas") else "VARCHAR", True)

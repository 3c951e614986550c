"""``serve-webhooks`` endpoints /webhooks/flux (generic-hmac) and /webhooks/argocd, through a real
receiver process on loopback, signed the way notification-controller and Argo CD send them. Both
tests share one receiver and store (a receiver is some 0.85 CPU-s and 2-5 s of a loaded worker to
start and stop): each reads back its own source's rows and counts what it added."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.reconciler_objects import application, notification
from tests.store_query import query_snapshot as query
from tests.webhook_senders import Receiver, receiver

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
FLUX_SECRET = "flux-hmac-key"
ARGO_SECRET = "argo-bearer-token"
ENV = {"GITOPS_DORA_FLUX_SECRET": FLUX_SECRET, "GITOPS_DORA_ARGOCD_SECRET": ARGO_SECRET}


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Receiver, Path]]:
    db = tmp_path_factory.mktemp("reconciler-hooks") / "db.duckdb"
    with receiver(db, ENV) as running:
        yield running, db


def count(db: Path, table: str) -> int:
    return int(query(db, f"SELECT count(*) FROM {table}")[0][0])


def flux_signature(body: bytes, key: str) -> str:
    """notification-controller generic-hmac: X-Signature: sha256=<hex HMAC-SHA256 of the body>."""
    return "sha256=" + hmac.new(key.encode(), body, hashlib.sha256).hexdigest()


def flux_post(client: httpx.Client, url: str, event: dict[str, Any], key: str) -> httpx.Response:
    body = json.dumps(event).encode()
    return client.post(
        url + "/webhooks/flux",
        content=body,
        headers={"Content-Type": "application/json", "X-Signature": flux_signature(body, key)},
    )


def test_flux_hmac_good_and_bad(shared: tuple[Receiver, Path]) -> None:
    rx, db = shared
    deployments, events = count(db, "deployments"), count(db, "reconciler_events")
    r1 = "main@sha1:" + "1" * 40
    r2 = "main@sha1:" + "2" * 40

    def succeeded(at: datetime, revision: str, bare_keys: bool = False) -> dict[str, Any]:
        """payments-api-production's Kustomization reporting a finished reconciliation."""
        return notification(
            "Kustomization",
            "payments-api-production",
            "flux-system",
            "ReconciliationSucceeded",
            "Reconciliation finished in 1s",
            at,
            revision=revision,
            bare_keys=bare_keys,
        )

    with httpx.Client(timeout=30) as client:
        ok = flux_post(client, rx.url, succeeded(T0, r1), FLUX_SECRET)
        assert ok.status_code == 200, ok.text
        # Signed with the wrong key: 401, nothing stored.
        bad = flux_post(client, rx.url, succeeded(T0 + timedelta(hours=1), r2), "wrong-key")
        assert bad.status_code == 401
        # No signature at all: 401.
        unsigned = client.post(
            rx.url + "/webhooks/flux", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert unsigned.status_code == 401
        # A bare metadata key (notification-controller >= 1.5), correctly signed: a second deployment.
        bare = flux_post(client, rx.url, succeeded(T0 + timedelta(hours=2), r2, bare_keys=True), FLUX_SECRET)
        assert bare.status_code == 200, bare.text
        # Well-formed JSON that is not an eventv1 Event: 422 (never stored, not worth a retry), with why.
        body = json.dumps({"hello": "world"}).encode()
        signed = {"X-Signature": flux_signature(body, FLUX_SECRET)}
        junk = client.post(rx.url + "/webhooks/flux", content=body, headers=signed)
        assert junk.status_code == 422
        assert "involvedObject" in junk.json()["message"]
    assert count(db, "deployments") - deployments == 2 and count(db, "reconciler_events") - events == 2
    assert query(
        db, "SELECT service, environment, revision, deployed_at, source FROM deployments"
            " WHERE source = 'flux' ORDER BY deployed_at"
    ) == [
        ("payments-api", "production", "1" * 40, T0, "flux"),
        ("payments-api", "production", "2" * 40, T0 + timedelta(hours=2), "flux"),
    ]
    assert query(db, "SELECT count(*) FROM reconciler_events WHERE source = 'webhook'"
                     " AND kind = 'Kustomization'") == [(2,)]


def test_argocd_notification_bearer(shared: tuple[Receiver, Path]) -> None:
    rx, db = shared
    deployments, events = count(db, "deployments"), count(db, "reconciler_events")
    rev_a, rev_b = "a" * 40, "b" * 40
    # The body the documented template posts: the Application's metadata, spec and status parts.
    first = application(
        "storefront-production", repo_url="u", path="p", dest_namespace="storefront", history=[(rev_a, T0)]
    )
    second = application(
        "storefront-production",
        repo_url="u",
        path="p",
        dest_namespace="storefront",
        history=[(rev_a, T0), (rev_b, T0 + timedelta(hours=4))],
    )
    with httpx.Client(timeout=30) as client:

        def post(app: dict[str, Any], token: str) -> httpx.Response:
            return client.post(
                rx.url + "/webhooks/argocd",
                content=json.dumps(app).encode(),
                headers={"Content-Type": "application/json", "Authorization": f"Bearer {token}"},
            )

        assert post(first, ARGO_SECRET).status_code == 200
        assert post(second, "guess").status_code == 401
        assert post(second, ARGO_SECRET).status_code == 200
        # The same notification again is idempotent.
        assert post(second, ARGO_SECRET).status_code == 200
    # Two syncs of two revisions -> two deployments; 1 + 2 history entries, the repeat stored once.
    assert count(db, "deployments") - deployments == 2 and count(db, "reconciler_events") - events == 2
    assert query(db, "SELECT revision, deployed_at FROM deployments WHERE source = 'argocd'"
                     " ORDER BY deployed_at") == [
        (rev_a, T0),
        (rev_b, T0 + timedelta(hours=4)),
    ]
    assert query(db, "SELECT count(*) FROM reconciler_events WHERE name = 'storefront-production'") == [(2,)]

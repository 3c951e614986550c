"""Argo CD notifications (webhook service) on ``/webhooks/argocd``.

The template in docs/reconcilers.md posts an Application-shaped object (metadata, destination,
source, history, operationState, health), so a notification is read by exactly the code that reads
an Application from the cluster. Argo CD notifications cannot sign bodies; the template sends the
shared secret as ``Authorization: Bearer <secret>``.
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping
from typing import Any

from analytics.collectors import argocd
from analytics.config import Config
from analytics.deployments.from_reconcilers import derive_pending
from analytics.deployments.reconciler_rows import OBJECT_COLUMNS, Collected
from analytics.store.connection import WriteSession
from analytics.webhooks.providers import content_hash

PATH = "/webhooks/argocd"
SECRET_ENV = "GITOPS_DORA_ARGOCD_SECRET"


def verify(headers: Mapping[str, str], body: bytes, secret: str) -> bool:
    given = (headers.get("authorization") or "").strip()
    if not given.lower().startswith("bearer "):
        return False
    return hmac.compare_digest(given[7:].strip().encode(), secret.encode())


def precheck(headers: Mapping[str, str], secret: str) -> bool:
    """The bearer token is a header: verified completely before the body is read."""
    return verify(headers, b"", secret)


def delivery_id(headers: Mapping[str, str], body: bytes) -> str:
    return content_hash(body)


def to_rows(
    headers: Mapping[str, str], payload: dict[str, Any], config: Config
) -> dict[str, list[dict[str, Any]]]:
    collected = Collected()
    argocd.notification_rows(payload, config, "webhook", collected)
    objects = [{c: o.get(c) for c in OBJECT_COLUMNS} for o in collected.objects.values()]
    return {"reconciler_objects": objects, "reconciler_events": collected.events}


def finalize(session: WriteSession, config: Config, rows: Mapping[str, list[dict[str, Any]]]) -> None:
    derive_pending(session, config)

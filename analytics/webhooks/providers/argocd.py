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
from analytics.deployments.reconciler_rows import OBJECT_COLUMNS, Collected, as_dict
from analytics.store.connection import WriteSession
from analytics.webhooks.providers import content_hash, read_time

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


def application_of(payload: dict[str, Any]) -> dict[str, Any]:
    """The Application in a notification: the body itself, or under ``application``/``app``."""
    for candidate in (payload, payload.get("application"), payload.get("app")):
        if (
            isinstance(candidate, dict)
            and isinstance(candidate.get("metadata"), dict)
            and candidate.get("kind", "Application") == "Application"
            and (isinstance(candidate.get("status"), dict) or isinstance(candidate.get("spec"), dict))
        ):
            app = dict(candidate)
            app.setdefault("apiVersion", "argoproj.io/v1alpha1")
            app.setdefault("kind", "Application")
            return app
    raise ValueError("not an Argo CD notification: no Application metadata in the body")


def notification_rows(payload: dict[str, Any], config: Config, source: str, collected: Collected) -> None:
    """Read one notification body into ``collected``, or raise ``ValueError`` saying why it is
    unusable: no Application, no name, a time that is unreadable or outside the years 1970-2100.
    Shared by this receiver (422) and the JSON-lines importer (the line named, exit 2), so a body
    is refused by both or by neither."""
    app = application_of(payload)
    if not app["metadata"].get("name"):
        raise ValueError("Argo CD notification: metadata.name is required")
    check_times(app)
    before = len(collected.rejected)
    argocd.application_events(app, config, source, collected)
    if len(collected.rejected) > before:
        raise ValueError(collected.rejected[before].message)


def to_rows(
    headers: Mapping[str, str], payload: dict[str, Any], config: Config
) -> dict[str, list[dict[str, Any]]]:
    collected = Collected()
    notification_rows(payload, config, "webhook", collected)
    objects = [{c: o.get(c) for c in OBJECT_COLUMNS} for o in collected.objects.values()]
    return {"reconciler_objects": objects, "reconciler_events": collected.events}


def check_times(app: dict[str, Any]) -> None:
    """The times the Application's events are read from: one that is there but unreadable refuses
    the notification (422) instead of dropping its event. An empty string counts as absent here:
    the template in docs/reconcilers.md fills a missing ``operationState`` time with ``""``."""

    def check(value: Any, field: str) -> None:
        read_time(None if value == "" else value, field)

    status = as_dict(app.get("status"))
    history = status.get("history")
    for entry in history if isinstance(history, list) else []:
        if isinstance(entry, dict):
            check(entry.get("deployedAt"), "status.history[].deployedAt")
            check(entry.get("deployStartedAt"), "status.history[].deployStartedAt")
    operation = as_dict(status.get("operationState"))
    check(operation.get("startedAt"), "status.operationState.startedAt")
    check(operation.get("finishedAt"), "status.operationState.finishedAt")
    check(as_dict(status.get("health")).get("lastTransitionTime"), "status.health.lastTransitionTime")


def finalize(session: WriteSession, config: Config, rows: Mapping[str, list[dict[str, Any]]]) -> None:
    derive_pending(session, config)
